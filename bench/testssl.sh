#!/usr/bin/env bash
# bench/testssl.sh: testssl.sh (the Debian package) against drover and nginx,
# all with one ECDSA P-256 certificate made here: drover with only
# "tls = yes" and a [certificate] (so the [tls] defaults: TLS 1.2 and 1.3,
# Mozilla intermediate ciphers); nginx with only ssl_certificate and
# ssl_certificate_key (its own defaults: "nginx"), and nginx with Mozilla's
# intermediate configuration (ssl_protocols TLSv1.2 TLSv1.3, the same
# ciphers as drover's default, no server preference: "nginx-intermediate"),
# the like-for-like peer. Saves each report (text and testssl's CSV, which
# rates every finding) and prints the findings rated LOW or worse.
#
# Usage: bench/testssl.sh [OUTDIR]     (default: bench/results)
# Environment: DROVER  a drover binary (default: built from HEAD in a temp dir)
# Traffic goes to 127.0.0.1 only; each testssl run is bounded (15 min).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/bench/results}
die() { echo "testssl: $*" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v testssl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null; }
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || die "needs nginx (apt-get install nginx-light)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d /tmp/drover-testssl.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

if [[ -z ${DROVER:-} ]]; then
	mkdir -p "$work/src"
	git -C "$top" archive HEAD | tar -x -C "$work/src"
	(cd "$work/src" && autoreconf -fi && ./configure CFLAGS="-O2 -g" && make -j"$(nproc)") >"$work/build.log" 2>&1 \
		|| { tail -n 20 "$work/build.log" >&2; die "cannot build drover"; }
	DROVER=$work/src/src/drover
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$work/www" "$work/nginx"
echo hello >"$work/www/index.html"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
dport=$(free_port) nport=$(free_port) iport=$(free_port)
# Mozilla's intermediate profile, v5.7: drover's default [tls] ciphers
MOZ_INTERMEDIATE=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305
cat >"$work/drover.ini" <<EOF
[server]
workers = 1
control_socket = off
[listener web]
address = 127.0.0.1:$dport
protocol = http
tls = yes
[certificate test]
certificate = $work/cert.pem
private_key = $work/key.pem
[http]
root = $work/www
access_log = off
EOF
cat >"$work/nginx.conf" <<EOF
$( (( EUID == 0 )) && echo "user root;" )
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nport ssl;
        root $work/www;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
    }
    server {
        listen 127.0.0.1:$iport ssl;
        root $work/www;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers $MOZ_INTERMEDIATE;
        ssl_prefer_server_ciphers off;
    }
}
EOF
"$DROVER" -c "$work/drover.ini" >"$work/drover.log" 2>&1 & pids+=($!)
"$NGINX" -p "$work/nginx" -e "$work/nginx-error.log" -c "$work/nginx.conf" >"$work/nginx.log" 2>&1 & pids+=($!)
for port in "$dport" "$nport" "$iport"; do
	for ((i = 0; i < 100; i++)); do
		curl -fsk -o /dev/null "https://127.0.0.1:$port/" && continue 2
		sleep 0.1
	done
	die "no HTTPS answer on 127.0.0.1:$port (logs: $work/drover.log, $work/nginx-error.log)"
done

day=$(date -u +%Y-%m-%d)
for pair in "drover:$dport" "nginx:$nport" "nginx-intermediate:$iport"; do
	name=${pair%%:*} port=${pair#*:} file=$out/$day-testssl-${pair%%:*}.txt
	rm -f "${file%.txt}.csv"
	{
		case $name in
		drover) echo "# testssl $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null) against $("$DROVER" --version 2>&1 | head -n 1) on 127.0.0.1: [listener] tls = yes and a [certificate], [tls] at its defaults" ;;
		nginx) echo "# testssl $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null) against $("$NGINX" -v 2>&1) on 127.0.0.1: ssl_certificate and ssl_certificate_key only (nginx's defaults)" ;;
		*) echo "# testssl $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null) against $("$NGINX" -v 2>&1) on 127.0.0.1: Mozilla intermediate (ssl_protocols TLSv1.2 TLSv1.3, ssl_ciphers as drover's default, ssl_prefer_server_ciphers off)" ;;
		esac
		echo "# one ECDSA P-256 certificate, self-signed and made for the run (so its chain is not trusted and it has no CRL or OCSP URI)"
		timeout 900 testssl --quiet --color 0 --warnings batch --csvfile "${file%.txt}.csv" --ip 127.0.0.1 "127.0.0.1:$port" || true
	} >"$file" 2>&1
	echo "== $name: $file (ratings: ${file%.txt}.csv)"
	# "id","fqdn/ip","port","severity","finding","cve","cwe"
	awk -F'","' '$4 ~ /^(LOW|MEDIUM|HIGH|CRITICAL|WARN)$/ { printf "  %-8s %-28s %s\n", $4, $1, $5 }' "${file%.txt}.csv" |
		sed 's/^  \(........\) "/  \1 /' | grep . || echo "  (nothing rated LOW or worse)"
done
