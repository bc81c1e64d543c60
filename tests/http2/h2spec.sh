#!/bin/bash
# HTTP/2 conformance with h2spec (github.com/summerwind/h2spec), when it is
# installed: every case over TLS (ALPN h2), and every case but 3.5/2 over
# plain h2c. 3.5/2 sends a malformed preface to a plain listener, which
# reads it as an HTTP/1.1 request and answers 400 (h2o does the same).
# h2spec is not a Debian package: set H2SPEC=/path/to/h2spec, or put it
# on PATH; without it the test is skipped (exit 77). 127.0.0.1 only.
set -u

drover=${DROVER_BIN:-./src/drover}
h2spec=${H2SPEC:-$(command -v h2spec || true)}
if [ -z "$h2spec" ] || [ ! -x "$h2spec" ]; then
	echo "SKIP: h2spec is not installed (set H2SPEC=/path/to/h2spec)"
	exit 77
fi
for tool in openssl python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

. "$(dirname "$0")/../lib.sh"
t_init h2spec

mkdir "$dir/www"
printf '<html><body>h2spec</body></html>\n' >"$dir/www/index.html"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
p_h2c=$(t_free_port)
p_tls=$(t_free_port)
cat >"$dir/drover.ini" <<EOF
[server]
workers = 1
control_socket = off
[listener h2c]
address = 127.0.0.1:$p_h2c
protocol = http
http2 = yes
[listener tls]
address = 127.0.0.1:$p_tls
protocol = http
tls = yes
[certificate main]
certificate = $dir/cert.pem
private_key = $dir/key.pem
[http]
root = $dir/www
EOF
t_start_drover "$dir/drover.ini" || exit 1

failed=0
"$h2spec" -h 127.0.0.1 -p "$p_tls" -t -k -P / --timeout 3 >"$dir/tls.txt" 2>&1
if grep -q "146 tests, 146 passed" "$dir/tls.txt"; then
	echo "PASS: h2spec over TLS: $(grep 'tests,' "$dir/tls.txt")"
else
	echo "FAIL: h2spec over TLS"; grep -E "×|tests," "$dir/tls.txt" | head -40; failed=1
fi
"$h2spec" -h 127.0.0.1 -p "$p_h2c" -P / --timeout 3 -j "$dir/h2c.xml" >"$dir/h2c.txt" 2>&1
if grep -q "146 tests, 145 passed" "$dir/h2c.txt" && grep -A1 "^ *× " "$dir/h2c.txt" | grep -q "Sends invalid connection preface" &&
	[ "$(grep -c '^ *× ' "$dir/h2c.txt")" -eq 1 ]; then
	echo "PASS: h2spec over h2c: $(grep 'tests,' "$dir/h2c.txt") (3.5/2 only)"
else
	echo "FAIL: h2spec over h2c"; grep -E "×|tests," "$dir/h2c.txt" | head -40; failed=1
fi
kill -TERM "$pid"
wait "$pid"
pid=
exit "$failed"
