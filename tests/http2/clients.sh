#!/bin/bash
# HTTP/2 with real clients against the real drover: curl (--http2 over TLS
# by ALPN, --http2-prior-knowledge over plain h2c), nghttp and h2load, on
# the same semantics as HTTP/1.1. Traffic goes to 127.0.0.1 only; every
# load is bounded in count. Exit 77 (skipped) if a client is missing.
set -u

drover=${DROVER_BIN:-./src/drover}
for tool in curl nghttp h2load openssl python3 cmp; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed"
		exit 77
	fi
done
if ! curl -V | grep -q HTTP2; then
	echo "SKIP: this curl has no HTTP/2"
	exit 77
fi

. "$(dirname "$0")/../lib.sh"
t_init h2

mkdir -p "$dir/www/sub" "$dir/www/many"
printf 'hello over h2\n' >"$dir/www/small.txt"
printf '<html><body>index</body></html>\n' >"$dir/www/index.html"
printf 'sub index\n' >"$dir/www/sub/index.html"
head -c 33554432 /dev/urandom >"$dir/www/big.bin" # 32 MiB
for i in $(seq 0 99); do
	head -c $((1000 + i * 97)) /dev/urandom >"$dir/www/many/f$i.bin"
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

p_h2c=$(t_free_port)
p_tls=$(t_free_port)
p_h1=$(t_free_port)
p_tls1=$(t_free_port)
cat >"$dir/drover.ini" <<EOF
[server]
workers = 2
shutdown_timeout = 10s
control_socket = off
[listener h2c]
address = 127.0.0.1:$p_h2c
protocol = http
http2 = yes
status = yes
metrics = yes
[listener tls]
address = 127.0.0.1:$p_tls
protocol = http
tls = yes
[listener plain]
address = 127.0.0.1:$p_h1
protocol = http
[listener tls1]
address = 127.0.0.1:$p_tls1
protocol = http
tls = yes
http2 = no
[certificate main]
certificate = $dir/cert.pem
private_key = $dir/key.pem
[http]
root = $dir/www
keepalive_requests = 100000
access_log = $dir/access.log
EOF

t_start_drover "$dir/drover.ini" || exit 1
h2c="http://127.0.0.1:$p_h2c"
tls="https://localhost:$p_tls"
resolve="--resolve localhost:$p_tls:127.0.0.1 --resolve localhost:$p_tls1:127.0.0.1 --cacert $dir/cert.pem"
C="curl -sS --http2-prior-knowledge"
T="curl -sS --http2 $resolve"

# Negotiation
check "TLS: ALPN h2" sh -c "test \"\$($T -o /dev/null -w '%{http_version}' '$tls/small.txt')\" = 2"
check "TLS with http2 = no: HTTP/1.1" sh -c "test \"\$($T -o /dev/null -w '%{http_version}' 'https://localhost:$p_tls1/small.txt')\" = 1.1"
check "h2c prior knowledge" sh -c "test \"\$($C -o /dev/null -w '%{http_version}' '$h2c/small.txt')\" = 2"
check "h2c listener still speaks HTTP/1.1" sh -c "curl -sSf --http1.1 '$h2c/small.txt' | cmp - '$dir/www/small.txt'"
check "plain listener without http2 refuses the preface" sh -c "! $C -f -o /dev/null '$h2c/../small.txt' --connect-to 127.0.0.1:$p_h2c:127.0.0.1:$p_h1 --max-time 5"
check "no Upgrade: h2c (answered as HTTP/1.1)" sh -c "test \"\$(curl -sS --http2 -o /dev/null -w '%{http_version}' 'http://127.0.0.1:$p_h1/small.txt')\" = 1.1"

# Semantics, over both
for base in "$h2c" "$tls"; do
	if [ "$base" = "$tls" ]; then X="$T"; else X="$C"; fi
	check "$base: GET small" sh -c "$X -f '$base/small.txt' | cmp - '$dir/www/small.txt'"
	check "$base: 32 MiB byte for byte" sh -c "$X -f '$base/big.bin' | cmp - '$dir/www/big.bin'"
	check "$base: HEAD has GET's length and no body" sh -c "$X -f -I '$base/big.bin' >'$dir/head' && grep -qi '^content-length: 33554432' '$dir/head' && test \"\$($X -f -I -o /dev/null -w '%{size_download}' '$base/big.bin')\" = 0"
	check "$base: Range 206" bash -c "$X -f -r 1000-1999 '$base/big.bin' | cmp - <(tail -c +1001 '$dir/www/big.bin' | head -c 1000)"
	check "$base: two ranges: multipart/byteranges" sh -c "$X -f -r 0-9,100-109 -o /dev/null -w '%{http_code} %{content_type}' '$base/big.bin' | grep -q '^206 multipart/byteranges; boundary='"
	check "$base: 416" sh -c "test \"\$($X -o /dev/null -w '%{http_code}' -r 40000000-40000001 '$base/big.bin')\" = 416"
	etag=$($X -sI "$base/small.txt" | tr -d '\r' | sed -n 's/^etag: //p')
	check "$base: If-None-Match 304" sh -c "test \"\$($X -o /dev/null -w '%{http_code}' -H 'If-None-Match: $etag' '$base/small.txt')\" = 304"
	check "$base: If-Match mismatch 412" sh -c "test \"\$($X -o /dev/null -w '%{http_code}' -H 'If-Match: \"nope\"' '$base/small.txt')\" = 412"
	check "$base: If-Modified-Since 304" sh -c "test \"\$($X -o /dev/null -w '%{http_code}' -z '$dir/www/small.txt' '$base/small.txt')\" = 304"
	check "$base: 404" sh -c "test \"\$($X -o /dev/null -w '%{http_code}' '$base/nope')\" = 404"
	check "$base: 405 with Allow" sh -c "$X -X DELETE -D - -o /dev/null '$base/small.txt' | tr -d '\r' | grep -q '^allow: GET, HEAD'"
	check "$base: directory without slash: 301" sh -c "$X -D - -o /dev/null '$base/sub' | tr -d '\r' | grep -q '^location: /sub/'"
	check "$base: index" sh -c "$X -f '$base/sub/' | grep -q 'sub index'"
	check "$base: health" sh -c "test \"\$($X -o /dev/null -w '%{http_code}' '$base/healthz')\" = 200"
	check "$base: no connection-specific field in responses" sh -c "! $X -D - -o /dev/null '$base/small.txt' | grep -qi '^connection:\|^keep-alive:'"
done

# 100 streams at once on one connection, each body checked (over TLS: this
# curl, 7.88, fails parallel transfers over prior-knowledge h2c against
# any server, h2o's too)
args=()
for i in $(seq 0 99); do
	args+=(-o "$dir/got$i" "$tls/many/f$i.bin")
done
check "100 concurrent streams on one connection, every body" bash -c "
	$T --parallel --parallel-max 100 -w '%{num_connects}\n' ${args[*]} >'$dir/conns' &&
	test \"\$(awk '{s+=\$1} END {print s}' '$dir/conns')\" = 1 &&
	for i in \$(seq 0 99); do cmp '$dir/got'\$i '$dir/www/many/f'\$i.bin || exit 1; done"
check "nghttp: 3 streams, one connection" sh -c "nghttp -ns '$h2c/small.txt' '$h2c/many/f1.bin' '$h2c/big.bin' | grep -c ' 200 ' | grep -qx 3"
check "h2load h2c: 20000 requests, 100 streams per connection, all 2xx" sh -c "h2load -n 20000 -c 4 -m 100 '$h2c/small.txt' >'$dir/h2load' && grep -q '20000 succeeded, 0 failed' '$dir/h2load' && grep -q 'status codes: 20000 2xx'  '$dir/h2load'"
check "h2load TLS (ALPN h2): 20000 requests, all 2xx" sh -c "h2load -n 20000 -c 4 -m 100 'https://127.0.0.1:$p_tls/small.txt' >'$dir/h2load' && grep -q 'Application protocol: h2' '$dir/h2load' && grep -q '20000 succeeded, 0 failed' '$dir/h2load'"

# Counters and log
check "status JSON counts HTTP/2 connections and streams" sh -c "curl -sSf '$h2c/status' | python3 -c 'import json,sys; w=json.load(sys.stdin)[\"workers\"]; assert sum(x[\"h2_connections\"] for x in w) > 0 and sum(x[\"h2_streams\"] for x in w) >= 40000, w'"
check "metrics count HTTP/2 streams and their responses" sh -c "curl -sSf '$h2c/metrics' >'$dir/metrics' && awk '/^drover_http2_streams_total / {s=\$2} /^drover_http_requests_total\\{method=\"GET\",code=\"2xx\"\\} / {r=\$2} END {exit !(s >= 40000 && r >= 40000)}' '$dir/metrics'"
check "access log says HTTP/2.0" grep -q '"GET /small.txt HTTP/2.0" 200 14 ' "$dir/access.log"

kill -TERM "$pid"
wait "$pid"
status=$?
pid=
check "graceful stop exits 0" test "$status" -eq 0

t_summary
