#!/bin/bash
# Real HTTP clients against the real drover: curl, wget, ab and wrk must all
# get correct answers. Traffic goes to 127.0.0.1 only; every load
# is bounded in count or time. Exit 77 (skipped) if a client is missing.
set -u

drover=${DROVER_BIN:-./src/drover}
for tool in curl wget ab wrk python3 cmp; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed"
		exit 77
	fi
done

. "$(dirname "$0")/../lib.sh"
t_init clients

mkdir "$dir/www"
printf 'hello from drover\n' >"$dir/www/small.txt"
head -c 1048576 /dev/urandom >"$dir/www/big.bin"
printf '<html><body>index</body></html>\n' >"$dir/www/index.html"
# A stylesheet with its gzip variant (gzip -k keeps its time), a 404 page.
for i in $(seq 200); do printf '.c%d { color: #%06x }\n' "$i" "$i"; done >"$dir/www/style.css"
gzip -k -9 "$dir/www/style.css"
printf '<h1>no such page</h1>\n' >"$dir/www/404.html"

port=$(t_free_port)
cat >"$dir/drover.ini" <<EOF
[server]
workers = 2
shutdown_timeout = 10s
control_socket = off
[listener web]
address = 127.0.0.1:$port
protocol = http
[http]
root = $dir/www
keepalive_requests = 100000
precompressed = gzip
error_page_404 = /404.html
[cache styles]
match = *.css
cache_control = public, max-age=3600
EOF

t_start_drover "$dir/drover.ini" || exit 1
base="http://127.0.0.1:$port"

# curl
check "curl GET a small file" sh -c "curl -sSf '$base/small.txt' | cmp - '$dir/www/small.txt'"
check "curl GET 1 MiB" sh -c "curl -sSf '$base/big.bin' | cmp - '$dir/www/big.bin'"
check "curl Range 100-199" bash -c "curl -sSf -r 100-199 '$base/big.bin' | cmp - <(dd if='$dir/www/big.bin' bs=1 skip=100 count=100 status=none)"
check "curl HEAD" sh -c "curl -sSfI '$base/small.txt' | grep -qi '^content-length: 18'"
check "curl 404" sh -c "test \"\$(curl -s -o /dev/null -w '%{http_code}' '$base/nope')\" = 404"
check "curl If-Modified-Since gives 304" sh -c "test \"\$(curl -s -o /dev/null -w '%{http_code}' -z '$dir/www/small.txt' '$base/small.txt')\" = 304"
check "curl keep-alive reuses one connection" sh -c "curl -sSf -v '$base/small.txt' '$base/small.txt' 2>&1 | grep -q 'Re-using existing connection'"
check "curl HTTP/1.0" sh -c "curl -sSf --http1.0 '$base/small.txt' | cmp - '$dir/www/small.txt'"
check "curl --compressed gets the gzip variant, decoded" sh -c "curl -sSf --compressed -D '$dir/h' '$base/style.css' | cmp - '$dir/www/style.css' && grep -qi '^content-encoding: gzip' '$dir/h' && grep -qi '^vary: accept-encoding' '$dir/h' && grep -qi '^cache-control: public, max-age=3600' '$dir/h'"
check "curl without --compressed gets the file, with Vary" sh -c "curl -sSf -D '$dir/h' '$base/style.css' | cmp - '$dir/www/style.css' && ! grep -qi '^content-encoding' '$dir/h' && grep -qi '^vary: accept-encoding' '$dir/h'"
check "curl gzip bytes are the .gz file" sh -c "curl -sSf -H 'Accept-Encoding: gzip' '$base/style.css' | cmp - '$dir/www/style.css.gz'"
check "curl 404 gets the error page" sh -c "test \"\$(curl -s -o '$dir/body' -w '%{http_code}' '$base/nope')\" = 404 && cmp '$dir/body' '$dir/www/404.html'"
check "curl directory redirect" sh -c "curl -sSfL '$base/' | grep -q index"

# wget
check "wget 1 MiB" sh -c "wget -q -O '$dir/wget.bin' '$base/big.bin' && cmp '$dir/wget.bin' '$dir/www/big.bin'"
check "wget resumes a partial download (Range)" sh -c "head -c 300000 '$dir/www/big.bin' >'$dir/part.bin' && wget -q -c -O '$dir/part.bin' '$base/big.bin' && cmp '$dir/part.bin' '$dir/www/big.bin'"

# ab (keep-alive and connection-per-request), bounded by count
check "ab -k 5000 requests, no failures" sh -c "ab -q -k -n 5000 -c 20 '$base/small.txt' >'$dir/ab1' && grep -q '^Complete requests: *5000' '$dir/ab1' && grep -q '^Failed requests: *0' '$dir/ab1' && ! grep -q 'Non-2xx' '$dir/ab1'"
check "ab 2000 requests without keep-alive, no failures" sh -c "ab -q -n 2000 -c 10 '$base/small.txt' >'$dir/ab2' && grep -q '^Failed requests: *0' '$dir/ab2' && ! grep -q 'Non-2xx' '$dir/ab2'"

# wrk, bounded by time
check "wrk 2 s, no errors" sh -c "wrk -t1 -c16 -d2s '$base/small.txt' >'$dir/wrk' && grep -q 'Requests/sec' '$dir/wrk' && ! grep -q 'Socket errors\|Non-2xx' '$dir/wrk'"

kill -TERM "$pid"
wait "$pid"
status=$?
pid=
check "graceful stop exits 0" test "$status" -eq 0

t_summary
