#!/usr/bin/env bash
# bench/run.sh: drover against nginx, lighttpd and h2o on this machine, in one
# command. It installs what is missing (Debian), builds drover with -O2 out of
# tree, starts the four servers side by side on 127.0.0.1 with the same number
# of workers (server on one CPU, client on another), runs every case against
# every server interleaved, and writes results.md and chart.png (drover ÷ best
# peer) into a results directory. It reports; it never fails on a threshold.
# How to read it: bench/README.md.
#
# Usage: bench/run.sh            (from anywhere; the repository is this file's ..)
#
# Environment (all optional):
#   ROUNDS              rounds over everything, order rotated each round (5)
#   BENCH_DURATION      seconds per measured load run (3)
#   BENCH_WARMUP        seconds of unmeasured load before each (1; 0 = none)
#   BENCH_WORKERS       worker processes (h2o: threads) of every server (1)
#   BENCH_CONNS         connections of the 1 KB, pipelined, close and 64 KB cases (50)
#   BENCH_CONNS_HIGH    connections of the second keep-alive case and latency (500)
#   BENCH_BIG_CONNS     connections of the 1 MB case (10)
#   BENCH_IDLE_CONNS    idle keep-alive connections for the memory case (10000)
#   BENCH_STOP_CONNS    idle keep-alive connections during the stop case (1000)
#   BENCH_SERVER_CPUS   taskset CPU list of the servers (0)
#   BENCH_CLIENT_CPUS   taskset CPU list of the clients (1)
#   BENCH_RESULTS       results directory ($TMPDIR/drover-bench-YYYYmmdd-HHMMSS)
#   DROVER              a drover binary to use instead of building one
#   BENCH_CFLAGS        CFLAGS of that build ("-O2 -g")
#   BENCH_KEEP          1 keeps the work directory (site, build) after the run
#   BENCH_CASES         the cases to run, a subset of the default
#                       "ka ka_high pipe close 64k 1m memory reload stop
#                        tls_ka tls_1m tls_full tls_resumed h2_tls h2c h2_page";
#                       "tls" names the four TLS cases, "h2" the three HTTP/2
#                       cases (both: drover, nginx and h2o only)
#   BENCH_TLS_PROCS     client processes of tls_full and tls_resumed (8)
#   BENCH_H2_CONNS      connections of h2_tls and h2c (10)
#   BENCH_H2_STREAMS    streams in flight per connection in h2_tls and h2c (100)
#   BENCH_H2_PAGES      page loads at once in h2_page (10): each one a new
#                       TLS connection asking for the page's 50 assets at once
#
# All traffic is to 127.0.0.1; every wait and loop is bounded.
set -eu   # no pipefail: "seq | head -c" ends seq with SIGPIPE on purpose

top=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

ROUNDS=${ROUNDS:-${BENCH_ROUNDS:-5}}
DURATION=${BENCH_DURATION:-3}
WARMUP=${BENCH_WARMUP:-1}
WORKERS=${BENCH_WORKERS:-1}
CONNS=${BENCH_CONNS:-50}
CONNS_HIGH=${BENCH_CONNS_HIGH:-500}
BIG_CONNS=${BENCH_BIG_CONNS:-10}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
STOP_CONNS=${BENCH_STOP_CONNS:-1000}
SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
CLIENT_CPUS=${BENCH_CLIENT_CPUS:-1}
CFLAGS_BENCH=${BENCH_CFLAGS:--O2 -g}
PIPELINE=16
TLS_PROCS=${BENCH_TLS_PROCS:-8}
H2_CONNS=${BENCH_H2_CONNS:-10}
H2_STREAMS=${BENCH_H2_STREAMS:-100}
H2_PAGES=${BENCH_H2_PAGES:-10}
PAGE_ASSETS=50   # h2_page: the page's assets, all asked for at once
COLUMNS_=(drover nginx lighttpd h2o)   # the report's columns
PM_SERVERS=(drover nginx)   # process-model cases: drover against nginx
TLS_SUITE=TLS_AES_128_GCM_SHA256   # TLS cases: TLS 1.3 with this suite only

ALL_CASES="ka ka_high pipe close 64k 1m memory reload stop tls_ka tls_1m tls_full tls_resumed h2_tls h2c h2_page"
CASES=() EXTRA=() TLS=0 PLAIN=0 H2=0
for c in ${BENCH_CASES:-$ALL_CASES}; do
	case $c in
	tls) CASES+=(tls_ka tls_1m tls_full tls_resumed); TLS=1 ;;
	tls_ka|tls_1m|tls_full|tls_resumed) CASES+=("$c"); TLS=1 ;;
	h2) CASES+=(h2_tls h2c h2_page); H2=1 ;;
	h2_tls|h2c|h2_page) CASES+=("$c"); H2=1 ;;
	ka|ka_high|pipe|close|64k|1m) CASES+=("$c"); PLAIN=1 ;;
	memory|reload|stop) EXTRA+=("$c"); PLAIN=1 ;;
	*) die "BENCH_CASES: unknown case '$c' (known: $ALL_CASES, or tls, h2)" ;;
	esac
done
CERTS=$(( TLS || H2 ))   # a certificate, and h2o's OpenSSL config, are needed
(( ${#CASES[@]} + ${#EXTRA[@]} )) || die "BENCH_CASES names no case"
extra() { [[ " ${EXTRA[*]} " == *" $1 "* ]]; }
# lighttpd is in the plain cases only (the TLS and HTTP/2 cases compare with
# nginx and h2o)
if (( PLAIN )); then SERVERS=(drover nginx lighttpd h2o) PEERS=(nginx lighttpd h2o)
else SERVERS=(drover nginx h2o) PEERS=(nginx h2o); fi

for v in ROUNDS DURATION WARMUP WORKERS CONNS CONNS_HIGH BIG_CONNS IDLE_CONNS STOP_CONNS TLS_PROCS H2_CONNS H2_STREAMS H2_PAGES; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
(( ROUNDS > 0 && DURATION > 0 && WORKERS > 0 && CONNS > 0 && CONNS_HIGH > 0 &&
   BIG_CONNS > 0 && IDLE_CONNS > 0 && STOP_CONNS > 0 && TLS_PROCS > 0 && TLS_PROCS <= 64 &&
   H2_CONNS > 0 && H2_STREAMS > 0 && H2_STREAMS <= 100 && H2_PAGES > 0 && H2_PAGES <= 1000 )) \
	|| die "every count and duration must be > 0 (BENCH_TLS_PROCS at most 64, BENCH_H2_STREAMS at most 100: h2o's limit, BENCH_H2_PAGES at most 1000)"
(( ROUNDS <= 100 && DURATION <= 600 && WARMUP <= 60 && IDLE_CONNS <= 100000 )) \
	|| die "ROUNDS <= 100, BENCH_DURATION <= 600, BENCH_WARMUP <= 60, BENCH_IDLE_CONNS <= 100000"
if [[ -n ${DROVER:-} ]]; then
	[[ -x $DROVER ]] || die "DROVER='$DROVER' is not an executable"
	DROVER=$(cd "$(dirname "$DROVER")" && pwd)/$(basename "$DROVER")
fi

# --- tools: install only what is missing -------------------------------------
SUDO=; (( EUID == 0 )) || SUDO=sudo
have() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]]; }
apt_install() {
	say "installing $*"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
need=()
have nginx    || need+=(nginx-light)
have lighttpd || need+=(lighttpd)
have h2o      || need+=(h2o)
have wrk      || need+=(wrk)
have h2load   || need+=(nghttp2-client)
have gnuplot  || need+=(gnuplot-nox)
have curl     || need+=(curl)
have cc       || need+=(gcc libc6-dev)
have taskset  || need+=(util-linux)
have ss       || need+=(iproute2)
have openssl  || need+=(openssl)
(( ! TLS )) || [[ -r /usr/include/openssl/ssl.h ]] || need+=(libssl-dev)
if (( ${#need[@]} )); then
	# newer Debian releases dropped nginx-light; plain nginx is the same server
	apt_install "${need[@]}" || apt_install "${need[@]/nginx-light/nginx}"
fi
bin() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }
NGINX=$(bin nginx) LIGHTTPD=$(bin lighttpd) H2O=$(bin h2o)

# --- directories, cleanup ----------------------------------------------------
RESULTS=${BENCH_RESULTS:-${TMPDIR:-/tmp}/drover-bench-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
[[ -z $(ls -A "$RESULTS") ]] || die "results directory $RESULTS is not empty"
CONF=$RESULTS/conf LOGS=$RESULTS/logs RAW=$RESULTS/raw
mkdir -p "$CONF" "$LOGS" "$RAW"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench-work.XXXXXX")
chmod 755 "$WORK"
declare -A PID STARTED PORT NPROC ROOT_OF VALS ERRS
CHILD=''   # the load tool or client running now

tree_pids() {   # tree_pids PID: PID and all its descendants
	ps -e -o pid=,ppid= | awk -v root="$1" '{ kids[$2] = kids[$2] " " $1 }
		END { n = split(root, q, " ")
		      for (i = 1; i <= n; i++) { printf "%s ", q[i]; m = split(kids[q[i]], c, " ")
		                                 for (j = 1; j <= m; j++) q[++n] = c[j] } }'
}
running() {   # running PID: alive and not a zombie waiting to be reaped
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}
started() { awk '{ print $22 }' "/proc/$1/stat" 2>/dev/null || true; }   # start time, to tell a reused pid
stop_server() {   # stop_server NAME: its own graceful stop, SIGKILL after 10 s
	local name=$1 pid=${PID[$1]:-} sig=TERM i p tree=()
	[[ -n $pid ]] || return 0
	for p in $(tree_pids "$pid"); do tree+=("$p:$(started "$p")"); done
	case $name in nginx) sig=QUIT;; lighttpd) sig=INT;; esac
	if running "$pid" && [[ $(started "$pid") == "${STARTED[$name]}" ]]; then
		kill -"$sig" "$pid" 2>/dev/null || true
	fi
	for ((i = 0; i < 100; i++)); do running "$pid" || break; sleep 0.1; done
	# what is left of its processes (the same pid and start time) is killed
	for p in "${tree[@]}"; do
		[[ $(started "${p%%:*}") == "${p#*:}" ]] && running "${p%%:*}" && { kill -KILL "${p%%:*}" 2>/dev/null || true; }
	done
	wait "$pid" 2>/dev/null || true
	PID[$name]=
}
cleanup() {
	local rc=$? s
	trap - EXIT INT TERM
	set +e
	[[ -n $CHILD ]] && { kill "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; }
	for s in "${SERVERS[@]}"; do stop_server "$s"; done
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
	(( rc == 0 )) || say "failed; configs, logs and raw output are in $RESULTS"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build drover (out of tree, from a copy, so no configure in the source
#     tree is touched or gets in the way) and the benchmark's client ----------
if [[ -z ${DROVER:-} ]]; then
	say "building drover ($CFLAGS_BENCH) in $WORK/build"
	"$top/.ci/deps" >"$LOGS/build.log" 2>&1 || { tail -n 20 "$LOGS/build.log" >&2; die "installing build dependencies failed"; }
	mkdir -p "$WORK/src" "$WORK/build"
	if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# tracked and new files as they are in the work tree, nothing ignored
		(cd "$top" && git ls-files -z -co --exclude-standard |
			tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$WORK/src"
	else
		cp -a "$top/." "$WORK/src"
		[[ ! -f $WORK/src/Makefile ]] || make -C "$WORK/src" distclean >/dev/null 2>&1 || true
	fi
	( cd "$WORK/src" && autoreconf -fi && cd "$WORK/build" &&
	  "$WORK/src/configure" CFLAGS="$CFLAGS_BENCH" && make -j"$(nproc)" ) >>"$LOGS/build.log" 2>&1 \
		|| { tail -n 30 "$LOGS/build.log" >&2; die "building drover failed (log: $LOGS/build.log)"; }
	DROVER=$WORK/build/src/drover
fi
CLIENT=$WORK/client
cc -O2 -Wall -Wextra -Werror -o "$CLIENT" "$top/bench/client.c" || die "cannot build bench/client.c"
TLS_CLIENT=$WORK/tls_client
if (( TLS )); then
	cc -O2 -Wall -Wextra -Werror -o "$TLS_CLIENT" "$top/bench/tls_client.c" -lssl -lcrypto \
		|| die "cannot build bench/tls_client.c"
fi

# --- pinning and descriptor limits ------------------------------------------
PIN_SERVER=() PIN_CLIENT=() pinning="none (fewer than 2 CPUs)"
if (( $(nproc) >= 2 )); then
	PIN_SERVER=(taskset -c "$SERVER_CPUS") PIN_CLIENT=(taskset -c "$CLIENT_CPUS")
	pinning="servers on CPU $SERVER_CPUS, clients on CPU $CLIENT_CPUS (taskset)"
fi
# connection limits well above the idle connections; lighttpd allows at
# most half its descriptors as connections, so it gets twice as many fds
MAXCONN=$(( 2 * (IDLE_CONNS > STOP_CONNS ? IDLE_CONNS : STOP_CONNS) ))
(( MAXCONN >= 20000 )) || MAXCONN=20000
NOFILE=$(( 2 * MAXCONN + 1024 ))
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=$NOFILE
(( hard >= NOFILE )) || { ulimit -Hn "$NOFILE" 2>/dev/null && hard=$NOFILE; } || true
(( hard >= NOFILE )) || NOFILE=$hard   # no CAP_SYS_RESOURCE: live with the hard limit
ulimit -Sn "$NOFILE"
(( MAXCONN <= NOFILE - 1024 )) || MAXCONN=$(( NOFILE - 1024 ))
LIGHTTPD_MAXCONN=$(( MAXCONN < NOFILE / 2 ? MAXCONN : NOFILE / 2 ))
(( IDLE_CONNS + 16 <= MAXCONN )) || die "RLIMIT_NOFILE is $NOFILE: too low for $IDLE_CONNS connections (run as root or lower BENCH_IDLE_CONNS)"
limits_note="RLIMIT_NOFILE $NOFILE; connection limits $MAXCONN (lighttpd $LIGHTTPD_MAXCONN: at most half its fds)"
(( IDLE_CONNS <= LIGHTTPD_MAXCONN )) || say "warning: RLIMIT_NOFILE $NOFILE lets lighttpd hold only $LIGHTTPD_MAXCONN of the $IDLE_CONNS idle connections"

# --- the site: two roots with the same files (hard links) and a marker that
#     tells which one answered, so a reload's new generation can be seen ------
mkdir -p "$WORK/site-a" "$WORK/site-b" "$WORK/nginx"
chmod 755 "$WORK/site-a" "$WORK/site-b"
mkfile() { seq -f '%015g drover bench line' 1 $(( $2 / 16 + 1 )) | head -c "$2" > "$WORK/site-a/$1"; }
mkfile 1k.bin 1024
mkfile 64k.bin 65536
mkfile 1m.bin 1048576
for f in 1k.bin 64k.bin 1m.bin; do ln "$WORK/site-a/$f" "$WORK/site-b/$f"; done
# h2_page: a page's PAGE_ASSETS assets of 1 to 8 KB (stylesheets, scripts and
# images, by name; sizes spread evenly over the range, the same every run)
ASSETS=()
if (( H2 )); then
	mkdir -p "$WORK/site-a/page" "$WORK/site-b/page"
	chmod 755 "$WORK/site-a/page" "$WORK/site-b/page"
	for ((i = 0; i < PAGE_ASSETS; i++)); do
		if (( i < 8 )); then f=$(printf 'page/style%02d.css' "$i")
		elif (( i < 20 )); then f=$(printf 'page/script%02d.js' "$i")
		else f=$(printf 'page/image%02d.png' "$i"); fi
		mkfile "$f" $(( 1024 + (i * 4409) % 7169 ))
		ln "$WORK/site-a/$f" "$WORK/site-b/$f"
		ASSETS+=("$f")
	done
	PAGE_BYTES=$(cat "${ASSETS[@]/#/$WORK/site-a/}" | wc -c)
fi
echo a > "$WORK/site-a/gen.txt"
echo b > "$WORK/site-b/gen.txt"

# --- ports and configs ---------------------------------------------------------
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null && return
	local p
	for ((p = 20000 + RANDOM % 10000; p < 65000; p += 7)); do
		[[ -z $(ss -Htan "( sport = :$p )") ]] && { echo "$p"; return; }
	done
	die "no free port"
}
# TPORT: the HTTPS listener of the TLS cases; H2PORT and H2TPORT: the h2c
# (prior knowledge) and the HTTP/2-over-TLS listeners of the HTTP/2 cases, so
# that the listeners of the other cases stay as they are
declare -A TPORT H2PORT H2TPORT
new_port() {   # new_port: a free port not given to another listener yet
	local i p
	for ((i = 0; i < 20; i++)); do
		p=$(free_port)
		[[ " ${PORT[*]} ${TPORT[*]} ${H2PORT[*]} ${H2TPORT[*]} " == *" $p "* ]] || break
	done
	echo "$p"
}
for s in "${SERVERS[@]}"; do
	PORT[$s]=$(new_port)
	ROOT_OF[$s]=$WORK/site-a
	[[ $s != lighttpd ]] || continue
	(( ! TLS )) || TPORT[$s]=$(new_port)
	(( ! H2 )) || { H2PORT[$s]=$(new_port); H2TPORT[$s]=$(new_port); }
done

# --- TLS: one ECDSA P-256 certificate for every server (valid 2 days, made
#     here), TLS 1.3 with TLS_SUITE only. h2o 2.2 has no setting for TLS 1.3
#     suites or the minimum version 1.3, so it gets them from an OpenSSL
#     config of its own (OPENSSL_CONF, the system_default section that every
#     SSL_CTX_new applies); the check after the start proves all three
#     refuse TLS 1.2 and any other suite.
CERT=$WORK/tls/cert.pem KEY=$WORK/tls/key.pem
if (( CERTS )); then
	mkdir -p "$WORK/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
		-keyout "$KEY" -out "$CERT" >"$LOGS/openssl-req.log" 2>&1 || die "cannot make the certificate (log: $LOGS/openssl-req.log)"
	cp "$CERT" "$CONF/cert.pem"
	cat > "$CONF/h2o-openssl.cnf" <<-EOF
		openssl_conf = openssl_init
		[openssl_init]
		ssl_conf = ssl_sect
		[ssl_sect]
		system_default = system_default_sect
		[system_default_sect]
		MinProtocol = TLSv1.3
		Ciphersuites = $TLS_SUITE
		EOF
fi
as_root=0; (( EUID == 0 )) && as_root=1

write_conf() {   # write_conf NAME: its config for ROOT_OF[NAME]
	local root=${ROOT_OF[$1]} port=${PORT[$1]}
	case $1 in
	drover) cat > "$CONF/drover.ini" <<-EOF
		[server]
		workers = $WORKERS
		control_socket = off
		max_connections = $MAXCONN

		[listener web]
		address = 127.0.0.1:$port
		protocol = http
		backlog = 4096

		$( (( TLS )) && cat <<-TLSEOF
		[listener tls]
		address = 127.0.0.1:${TPORT[$1]}
		protocol = http
		backlog = 4096
		tls = yes
		TLSEOF
		)

		$( (( H2 )) && cat <<-H2EOF
		# HTTP/2: h2c with prior knowledge, and over TLS (h2 in ALPN, the
		# default of a TLS listener); [http2] at its defaults
		[listener h2c]
		address = 127.0.0.1:${H2PORT[$1]}
		protocol = http
		backlog = 4096
		http2 = yes

		[listener h2tls]
		address = 127.0.0.1:${H2TPORT[$1]}
		protocol = http
		backlog = 4096
		tls = yes
		H2EOF
		)

		$( (( CERTS )) && cat <<-TLSEOF
		[certificate bench]
		certificate = $CERT
		private_key = $KEY

		[tls]
		protocols = TLSv1.3
		ciphersuites = $TLS_SUITE
		TLSEOF
		)

		[http]
		root = $root
		access_log = off
		keepalive_timeout = 120s
		keepalive_requests = 1000000
		EOF
		;;
	nginx) cat > "$CONF/nginx.conf" <<-EOF
		$( (( as_root )) && echo "user root;" )
		worker_processes $WORKERS;
		worker_rlimit_nofile $NOFILE;
		daemon off;
		master_process on;
		pid $WORK/nginx/nginx.pid;
		error_log $LOGS/nginx-error.log warn;
		events { worker_connections $MAXCONN; }
		http {
		    $( [[ -r /etc/nginx/mime.types ]] && echo "include /etc/nginx/mime.types;" )
		    default_type application/octet-stream;
		    access_log off;
		    sendfile on;
		    tcp_nopush on;
		    tcp_nodelay on;
		    keepalive_timeout 120s;
		    keepalive_requests 1000000;
		    # the example of the nginx documentation (ngx_http_core_module)
		    open_file_cache max=1000 inactive=20s;
		    open_file_cache_valid 30s;
		    open_file_cache_min_uses 2;
		    open_file_cache_errors on;
		    client_body_temp_path $WORK/nginx/body;
		    proxy_temp_path $WORK/nginx/proxy;
		    fastcgi_temp_path $WORK/nginx/fastcgi;
		    uwsgi_temp_path $WORK/nginx/uwsgi;
		    scgi_temp_path $WORK/nginx/scgi;
		    server {
		        listen 127.0.0.1:$port backlog=4096;
		        root $root;
		    }
		    $( (( TLS )) && cat <<-TLSEOF
		    # session tickets on (the default), no session cache: tickets only
		    server {
		        listen 127.0.0.1:${TPORT[$1]} ssl backlog=4096;
		        root $root;
		        ssl_certificate $CERT;
		        ssl_certificate_key $KEY;
		        ssl_protocols TLSv1.3;
		        ssl_conf_command Ciphersuites $TLS_SUITE;
		        ssl_session_cache off;
		        ssl_session_tickets on;
		    }
		TLSEOF
		)
		    $( (( H2 )) && cat <<-H2EOF
		    # HTTP/2: h2c with prior knowledge, and over TLS (ALPN h2); the
		    # streams per connection are keepalive_requests' (1.19.7 and later)
		    server {
		        listen 127.0.0.1:${H2PORT[$1]} http2 backlog=4096;
		        root $root;
		    }
		    server {
		        listen 127.0.0.1:${H2TPORT[$1]} ssl http2 backlog=4096;
		        root $root;
		        ssl_certificate $CERT;
		        ssl_certificate_key $KEY;
		        ssl_protocols TLSv1.3;
		        ssl_conf_command Ciphersuites $TLS_SUITE;
		        ssl_session_cache off;
		        ssl_session_tickets on;
		    }
		H2EOF
		)
		}
		EOF
		;;
	lighttpd) cat > "$CONF/lighttpd.conf" <<-EOF
		server.document-root = "$root"
		server.bind = "127.0.0.1"
		server.port = $port
		server.pid-file = "$WORK/lighttpd.pid"
		server.errorlog = "$LOGS/lighttpd-error.log"
		$( (( WORKERS > 1 )) && echo "server.max-worker = $WORKERS" )
		server.max-fds = $NOFILE
		server.max-connections = $LIGHTTPD_MAXCONN
		server.listen-backlog = 4096
		server.network-backend = "sendfile"
		server.stat-cache-engine = "simple"
		server.max-keep-alive-requests = 65535
		server.max-keep-alive-idle = 120
		server.max-read-idle = 120
		mimetype.assign = ( ".bin" => "application/octet-stream", ".txt" => "text/plain" )
		EOF
		;;
	h2o) cat > "$CONF/h2o.conf" <<-EOF
		$( (( as_root )) && echo "user: root" )
		pid-file: $WORK/h2o.pid
		error-log: $LOGS/h2o-error.log
		num-threads: $WORKERS
		max-connections: $MAXCONN
		http1-request-timeout: 120
		$( (( CERTS )) && printf 'ssl-session-resumption:\n  mode: ticket\n' )
		listen:
		  host: 127.0.0.1
		  port: $port
		$( (( TLS )) && cat <<-TLSEOF
		listen:
		  host: 127.0.0.1
		  port: ${TPORT[$1]}
		  ssl:
		    certificate-file: $CERT
		    key-file: $KEY
		    ocsp-update-interval: 0
		TLSEOF
		)
		$( (( H2 )) && cat <<-H2EOF
		# HTTP/2: a plain listener serves h2c with prior knowledge, a TLS one h2
		# by ALPN; h2o has no limit of requests per HTTP/2 connection
		listen:
		  host: 127.0.0.1
		  port: ${H2PORT[$1]}
		listen:
		  host: 127.0.0.1
		  port: ${H2TPORT[$1]}
		  ssl:
		    certificate-file: $CERT
		    key-file: $KEY
		    ocsp-update-interval: 0
		H2EOF
		)
		hosts:
		  "127.0.0.1:$port":
		    paths:
		      /:
		        file.dir: $root
		EOF
		;;
	esac
}
check_conf() {
	local out=$LOGS/$1-check.log
	case $1 in
	drover)   "$DROVER" -t -c "$CONF/drover.ini" ;;
	nginx)    "$NGINX" -t -q -p "$WORK/nginx" -e "$LOGS/nginx-error.log" -c "$CONF/nginx.conf" ;;
	lighttpd) "$LIGHTTPD" -tt -f "$CONF/lighttpd.conf" ;;
	h2o)      "$H2O" -m test -c "$CONF/h2o.conf" ;;
	esac >"$out" 2>&1 || { cat "$out" >&2; die "$1 rejected its config ($CONF)"; }
}
wait_up() {   # wait_up NAME: until it serves /1k.bin (10 s at most)
	local i
	for ((i = 0; i < 100; i++)); do
		running "${PID[$1]}" || { tail -n 20 "$LOGS/$1.log" >&2; die "$1 exited at start"; }
		curl -fs -o /dev/null "http://127.0.0.1:${PORT[$1]}/1k.bin" && return 0
		sleep 0.1
	done
	die "$1 did not answer on 127.0.0.1:${PORT[$1]} within 10 s"
}
nprocs() { tree_pids "${PID[$1]}" | wc -w; }
start_server() {   # start_server NAME, pinned; waits until it answers
	local cmd
	case $1 in
	drover)   cmd=("$DROVER" -c "$CONF/drover.ini") ;;
	nginx)    cmd=("$NGINX" -p "$WORK/nginx" -e "$LOGS/nginx-error.log" -c "$CONF/nginx.conf") ;;
	lighttpd) cmd=("$LIGHTTPD" -D -f "$CONF/lighttpd.conf") ;;
	h2o)      cmd=("$H2O" -m worker -c "$CONF/h2o.conf")
	          (( ! CERTS )) || cmd=(env OPENSSL_CONF="$CONF/h2o-openssl.cnf" "${cmd[@]}") ;;
	esac
	"${PIN_SERVER[@]}" "${cmd[@]}" >>"$LOGS/$1.log" 2>&1 &
	PID[$1]=$!
	STARTED[$1]=$(started "${PID[$1]}")
	wait_up "$1"
	# workers may still be starting: the count is the largest seen in 1 s
	local i n
	NPROC[$1]=0
	for ((i = 0; i < 10; i++)); do
		n=$(nprocs "$1"); (( n > NPROC[$1] )) && NPROC[$1]=$n
		sleep 0.1
	done
}
rss_kb() {   # rss_kb NAME: VmRSS of all its processes, summed (KiB)
	local p
	for p in $(tree_pids "${PID[$1]}"); do
		awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null
	done | awk '{ s += $1 } END { print s + 0 }'
}
quiesce() {   # quiesce NAME: until no connection to it is open (10 s at most)
	local i
	local f="sport = :${PORT[$1]}" p
	for p in ${TPORT[$1]:-} ${H2PORT[$1]:-} ${H2TPORT[$1]:-}; do f+=" or sport = :$p"; done
	f="( $f )"
	for ((i = 0; i < 100; i++)); do
		[[ -z $(ss -Htn state connected exclude time-wait "$f" | head -n 1) ]] && return 0
		sleep 0.1
	done
	say "warning: $1 still has connections open after 10 s"
}
alive() { running "${PID[$1]}" || die "$1 died (log: $LOGS/$1.log)"; }

for s in "${SERVERS[@]}"; do write_conf "$s"; check_conf "$s"; done
for s in "${SERVERS[@]}"; do start_server "$s"; done

# every server must serve the same bytes
for s in "${SERVERS[@]}"; do
	for f in 1k.bin 64k.bin 1m.bin; do
		curl -fsS -o "$WORK/got" "http://127.0.0.1:${PORT[$s]}/$f" || die "$s: GET /$f failed"
		cmp -s "$WORK/got" "$WORK/site-a/$f" || die "$s served different bytes for /$f"
		[[ -n ${TPORT[$s]:-} ]] || continue
		curl -fsS --cacert "$CERT" -o "$WORK/got" "https://localhost:${TPORT[$s]}/$f" \
			--resolve "localhost:${TPORT[$s]}:127.0.0.1" || die "$s: GET https:/$f failed"
		cmp -s "$WORK/got" "$WORK/site-a/$f" || die "$s served different bytes for https:/$f"
	done
	[[ -n ${H2PORT[$s]:-} ]] || continue
	# HTTP/2: h2c with prior knowledge and h2 over TLS, every file and asset
	for f in 1k.bin "${ASSETS[@]}"; do
		v=$(curl -fsS --http2-prior-knowledge -w '%{http_version}' -o "$WORK/got" "http://127.0.0.1:${H2PORT[$s]}/$f") \
			|| die "$s: GET /$f over h2c failed"
		[[ $v == 2 ]] || die "$s answered /$f on its h2c listener in HTTP/$v"
		cmp -s "$WORK/got" "$WORK/site-a/$f" || die "$s served different bytes for /$f over h2c"
		v=$(curl -fsS --http2 --cacert "$CERT" -w '%{http_version}' -o "$WORK/got" "https://localhost:${H2TPORT[$s]}/$f" \
			--resolve "localhost:${H2TPORT[$s]}:127.0.0.1") || die "$s: GET https:/$f over HTTP/2 failed"
		[[ $v == 2 ]] || die "$s answered https:/$f on its HTTP/2 listener in HTTP/$v (ALPN h2 not chosen)"
		cmp -s "$WORK/got" "$WORK/site-a/$f" || die "$s served different bytes for https:/$f over HTTP/2"
	done
done
rm -f "$WORK/got"

# TLS: every server speaks TLS 1.3 with TLS_SUITE, and nothing else
tls_try() {   # tls_try PORT OPENSSL-OPTIONS...: "version cipher" negotiated, or "none"
	local port=$1 out
	shift
	out=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost "$@" </dev/null 2>&1 || true)
	awk '/^New, / { v = $2; c = $NF; sub(/,$/, "", v) } END { print (v == "" || v == "(NONE)" ? "none" : v " " c) }' <<<"$out"
}
TLS_NOTE=
if (( CERTS )); then
	for s in "${SERVERS[@]}"; do
		[[ $s != lighttpd ]] || continue
		for port in ${TPORT[$s]:-} ${H2TPORT[$s]:-}; do   # the TLS and the HTTP/2-over-TLS listener
			got=$(tls_try "$port")
			[[ $got == "TLSv1.3 $TLS_SUITE" ]] || die "$s (port $port) negotiated '$got', not TLSv1.3 $TLS_SUITE"
			for o in "-tls1_2" "-ciphersuites TLS_AES_256_GCM_SHA384" "-ciphersuites TLS_CHACHA20_POLY1305_SHA256"; do
				# shellcheck disable=SC2086
				got=$(tls_try "$port" $o)
				[[ $got == none ]] || die "$s (port $port) accepted openssl s_client $o ($got): not restricted to TLS 1.3 $TLS_SUITE"
			done
		done
		TLS_NOTE+="$s "
	done
	TLS_NOTE="each of ${TLS_NOTE% } negotiated TLSv1.3 $TLS_SUITE with a default OpenSSL client and refused TLS 1.2, TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256"
	(( ! H2 )) || TLS_NOTE+=" (on its HTTP/2 listener too)"
fi

# --- the cases -------------------------------------------------------------------
record() {   # record METRIC SERVER ROUND VALUE ERRORS
	VALS[$1,$2]+="$4 "
	ERRS[$1,$2]=$(( ${ERRS[$1,$2]:-0} + $5 ))
	printf '%s\t%s\t%s\t%s\t%s\n' "$3" "$1" "$2" "$4" "$5" >> "$RESULTS/rounds.tsv"
}
bg_wait() {   # bg_wait CMD...: run in the background and wait, so a signal stops it at once
	"$@" &
	CHILD=$!
	local rc=0
	wait "$CHILD" || rc=$?
	CHILD=
	return "$rc"
}
to_ms() {   # wrk prints 812.00us, 1.23ms, 1.02s, 2.00m
	awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.3f", n }'
}
wrk_errors() {
	awk '/Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 }
	     /Non-2xx or 3xx/ { s += $NF } END { print s + 0 }' "$1"
}
# CPU time (user + system, clock ticks) of all of a server's processes (h2o:
# of all its threads), from /proc/PID/stat, as bench/ab.sh reads it
HZ=$(getconf CLK_TCK)
cpu_ticks() {
	local p
	for p in $(tree_pids "${PID[$1]}"); do
		awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null
	done | awk '{ s += $1 } END { print s + 0 }'
}
us_per() {   # us_per TICKS REQUESTS: server CPU microseconds per request
	awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", t / hz / n * 1e6 }'
}
# Other work on the server's CPU during a measured run (other engineers'
# builds, say): that CPU's busy time from /proc/stat less the server's own,
# as a share of the run. Only when the servers are pinned to one CPU.
cpu_stat() {   # "busy total" ticks of the servers' CPU, or nothing
	[[ ${#PIN_SERVER[@]} -gt 0 && $SERVER_CPUS =~ ^[0-9]+$ ]] || return 0
	awk -v c="cpu$SERVER_CPUS" '$1 == c { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}
other_pct() {   # other_pct "BUSY0 TOTAL0" "BUSY1 TOTAL1" SERVER_TICKS
	[[ -n $1 && -n $2 ]] || return 0
	awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { split(a, x, " "); split(b, y, " ")
		d = y[2] - x[2]; o = y[1] - x[1] - t; if (o < 0) o = 0
		if (d > 0) printf "%.1f", 100 * o / d }'
}
# run_wrk SERVER ROUND NAME CONNS PATH [wrk options]: the raw output's path is
# left in $raw and the server's CPU ticks over the measured run in $ticks; a
# tls_* NAME goes to the server's HTTPS listener
run_wrk() {
	local srv=$1 r=$2 name=$3 c=$4 url="http://127.0.0.1:${PORT[$1]}$5"
	[[ $name != tls_* ]] || url="https://127.0.0.1:${TPORT[$1]}$5"
	shift 5
	raw=$RAW/$name-$srv-r$r.txt
	(( WARMUP == 0 )) || bg_wait "${PIN_CLIENT[@]}" wrk -t1 -c"$c" -d"${WARMUP}s" "$@" "$url" >/dev/null 2>&1 || true
	ticks=$(cpu_ticks "$srv") cpu0=$(cpu_stat)
	bg_wait "${PIN_CLIENT[@]}" wrk -t1 -c"$c" -d"${DURATION}s" --latency "$@" "$url" >"$raw" 2>&1 \
		|| die "wrk failed against $srv: $(cat "$raw")"
	ticks=$(( $(cpu_ticks "$srv") - ticks ))
	other=$(other_pct "$cpu0" "$(cpu_stat)" "$ticks")
	grep -q '^Requests/sec:' "$raw" || die "cannot read $raw"
}
wrk_requests() { awk '/ requests in / { print $1 }' "$1"; }
# run_tls_client SERVER ROUND full|resumed: the same, with bench/tls_client.c
run_tls_client() {
	local srv=$1 r=$2 mode=$3
	raw=$RAW/tls_$mode-$srv-r$r.txt
	(( WARMUP == 0 )) || bg_wait "${PIN_CLIENT[@]}" "$TLS_CLIENT" "$mode" "${TPORT[$srv]}" /1k.bin "$WARMUP" "$TLS_PROCS" \
		>/dev/null 2>>"$LOGS/tls_client.log" || true
	ticks=$(cpu_ticks "$srv") cpu0=$(cpu_stat)
	bg_wait "${PIN_CLIENT[@]}" "$TLS_CLIENT" "$mode" "${TPORT[$srv]}" /1k.bin "$DURATION" "$TLS_PROCS" >"$raw" 2>>"$LOGS/tls_client.log" \
		|| die "tls_client $mode failed against $srv: $(cat "$raw"; tail -n 3 "$LOGS/tls_client.log")"
	ticks=$(( $(cpu_ticks "$srv") - ticks ))
	other=$(other_pct "$cpu0" "$(cpu_stat)" "$ticks")
	grep -q '^requests ' "$raw" || die "cannot read $raw"
}
tls_field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$1"; }
# HTTP/2 cases, all with h2load. h2_tls and h2c: H2_CONNS connections with
# H2_STREAMS streams in flight on each, for the run's duration (-D), on /1k.bin.
# h2_page: one h2load run is H2_PAGES page loads at once, each a new TLS
# connection (ALPN h2; h2load offers no session, so a full handshake) that asks
# for the page's PAGE_ASSETS assets at once (-m and -n per connection both
# PAGE_ASSETS), reads every answer and closes; runs follow each other until the
# run's duration is up. h2load's exit status, its failed, errored and timed-out
# requests, answers other than 2xx and a protocol other than h2 (h2c) are all
# counted as errors: a run with any is a failed run.
h2_pages() {   # h2_pages SERVER SECONDS OUT: append each h2load run's output to OUT
	local srv=$1 end n=0 rc
	end=$(( ${EPOCHREALTIME//[.,]/} + $2 * 1000000 ))
	while (( ${EPOCHREALTIME//[.,]/} < end && n < 100000 )); do
		rc=0
		bg_wait "${PIN_CLIENT[@]}" timeout 30 h2load -t1 -c"$H2_PAGES" -n $(( H2_PAGES * PAGE_ASSETS )) -m"$PAGE_ASSETS" \
			-i "$WORK/urls-$srv.txt" >>"$3" 2>&1 || rc=$?
		(( rc == 0 )) || echo "h2load exit status $rc" >>"$3"
		n=$(( n + 1 ))
	done
}
# run_h2 SERVER ROUND CASE: the raw output's path is left in $raw, the server's
# CPU ticks over the measured run in $ticks, other work on its CPU in $other
run_h2() {
	local srv=$1 r=$2 name=$3 url rc=0
	local load=(timeout $(( DURATION + 30 )) h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS")
	raw=$RAW/$name-$srv-r$r.txt
	: >"$raw"
	case $name in
	h2_tls) url="https://127.0.0.1:${H2TPORT[$srv]}/1k.bin" ;;
	h2c)    url="http://127.0.0.1:${H2PORT[$srv]}/1k.bin" ;;
	h2_page)
		[[ -f $WORK/urls-$srv.txt ]] || printf "https://127.0.0.1:${H2TPORT[$srv]}/%s\n" "${ASSETS[@]}" >"$WORK/urls-$srv.txt"
		(( WARMUP == 0 )) || h2_pages "$srv" "$WARMUP" /dev/null
		ticks=$(cpu_ticks "$srv") cpu0=$(cpu_stat)
		h2_pages "$srv" "$DURATION" "$raw"
		ticks=$(( $(cpu_ticks "$srv") - ticks ))
		other=$(other_pct "$cpu0" "$(cpu_stat)" "$ticks")
		return 0 ;;
	esac
	(( WARMUP == 0 )) || bg_wait "${PIN_CLIENT[@]}" "${load[@]}" -D "$WARMUP" "$url" >/dev/null 2>&1 || true
	ticks=$(cpu_ticks "$srv") cpu0=$(cpu_stat)
	bg_wait "${PIN_CLIENT[@]}" "${load[@]}" -D "$DURATION" "$url" >"$raw" 2>&1 || rc=$?
	ticks=$(( $(cpu_ticks "$srv") - ticks ))
	other=$(other_pct "$cpu0" "$(cpu_stat)" "$ticks")
	(( rc == 0 )) || echo "h2load exit status $rc" >>"$raw"
}
# With PAGE-BYTES (h2_page), every run's body bytes must be those of its
# answered pages, PAGE_ASSETS answers a page: a short or long answer is an error.
h2_stats() {   # h2_stats RAW PROTOCOL [PAGE-BYTES]: "requests-answered seconds errors" over its h2load runs
	awk -v proto="$2" -v page="${3:-0}" -v assets="$PAGE_ASSETS" '
		/^finished in/ { t = $3; sub(/,$/, "", t); v = t + 0; u = t; sub(/^[0-9.]+/, "", u)
		                 if (u == "us") v /= 1e6; else if (u == "ms") v /= 1e3; else if (u == "m") v *= 60
		                 secs += v; runs++ }
		/^requests:/ { done += $6; err += $10 + $12 + $14; run_done = $6 }
		/^traffic:/ && page > 0 { b = $0; sub(/\) data.*/, "", b); sub(/.*\(/, "", b)
		                          if (b + 0 != run_done / assets * page) err += 1 }
		/^status codes:/ { err += $5 + $7 + $9 }
		/^Application protocol:/ && $3 != proto { err += 1; bad = 1 }
		/^h2load exit status/ { err += 1 }
		END { if (!runs || !done) err += 1
		      if (bad) err += done   # answers in another protocol: none of them counts
		      printf "%d %.6f %d\n", done, secs, err }' "$1"
}
rps_of() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
mib_of() { awk -v size="$2" '/^Requests\/sec:/ { printf "%.1f", $2 * size / 1048576 }' "$1"; }

run_case() {   # run_case CASE SERVER ROUND
	local c=$1 srv=$2 r=$3 raw e v ticks cpu0 other=
	[[ $c == tls_* && -z ${TPORT[$srv]:-} ]] && return 0   # lighttpd: plain cases only
	[[ $c == h2* && -z ${H2PORT[$srv]:-} ]] && return 0
	case $c in
	ka)
		run_wrk "$srv" "$r" ka "$CONNS" /1k.bin
		record ka "$srv" "$r" "$(rps_of "$raw")" "$(wrk_errors "$raw")" ;;
	ka_high)
		run_wrk "$srv" "$r" ka_high "$CONNS_HIGH" /1k.bin
		e=$(wrk_errors "$raw")
		record ka_high "$srv" "$r" "$(rps_of "$raw")" "$e"
		record p50 "$srv" "$r" "$(to_ms "$(awk '$1 == "50%" { print $2 }' "$raw")")" "$e"
		record p99 "$srv" "$r" "$(to_ms "$(awk '$1 == "99%" { print $2 }' "$raw")")" "$e" ;;
	pipe)
		raw=$RAW/pipe-$srv-r$r.txt
		local warm=()
		(( WARMUP == 0 )) || warm=(--warm-up-time="$WARMUP")
		bg_wait "${PIN_CLIENT[@]}" h2load --h1 -t1 -c"$CONNS" -m"$PIPELINE" -D "$DURATION" "${warm[@]}" \
			"http://127.0.0.1:${PORT[$srv]}/1k.bin" >"$raw" 2>&1 || die "h2load failed against $srv: $(tail -n 5 "$raw")"
		grep -q '^finished in' "$raw" || die "cannot read $raw"
		record pipe "$srv" "$r" "$(awk '/^finished in/ { print $4 }' "$raw")" \
			"$(awk '/^requests:/ { s += $10 + $12 + $14 } /^status codes:/ { s += $7 + $9 }
				END { print s + 0 }' "$raw")" ;;
	close)
		run_wrk "$srv" "$r" close "$CONNS" /1k.bin -H 'Connection: close'
		record close "$srv" "$r" "$(rps_of "$raw")" "$(wrk_errors "$raw")" ;;
	64k)
		run_wrk "$srv" "$r" 64k "$CONNS" /64k.bin
		record 64k "$srv" "$r" "$(mib_of "$raw" 65536)" "$(wrk_errors "$raw")" ;;
	1m)
		run_wrk "$srv" "$r" 1m "$BIG_CONNS" /1m.bin
		record 1m "$srv" "$r" "$(mib_of "$raw" 1048576)" "$(wrk_errors "$raw")" ;;
	tls_ka|tls_1m)
		local path=/1k.bin n=$CONNS
		[[ $c == tls_1m ]] && path=/1m.bin n=$BIG_CONNS
		run_wrk "$srv" "$r" "$c" "$n" "$path"
		e=$(wrk_errors "$raw")
		record "$c" "$srv" "$r" "$(rps_of "$raw")" "$e"
		record "${c}_cpu" "$srv" "$r" "$(us_per "$ticks" "$(wrk_requests "$raw")")" "$e"
		[[ -z $other ]] || record tls_other "$srv" "$r" "$other" 0 ;;
	tls_full|tls_resumed)
		run_tls_client "$srv" "$r" "${c#tls_}"
		e=$(tls_field "$raw" failed)
		record "$c" "$srv" "$r" "$(tls_field "$raw" rps)" "$e"
		record "${c}_cpu" "$srv" "$r" "$(us_per "$ticks" "$(tls_field "$raw" requests)")" "$e"
		[[ -z $other ]] || record tls_other "$srv" "$r" "$other" 0
		if [[ $c == tls_resumed ]]; then
			record tls_resumed_pct "$srv" "$r" "$(awk -v n="$(tls_field "$raw" requests)" \
				-v k="$(tls_field "$raw" resumed)" 'BEGIN { printf "%.1f", n ? 100 * k / n : 0 }')" 0
		fi ;;
	h2_tls|h2c|h2_page)
		local n secs proto=h2
		[[ $c == h2c ]] && proto=h2c
		run_h2 "$srv" "$r" "$c"
		read -r n secs e <<<"$(h2_stats "$raw" "$proto" "$( [[ $c == h2_page ]] && echo "$PAGE_BYTES")")"
		(( e == 0 )) || say "warning: $srv $c round $r: $e errors ($raw)"
		record "$c" "$srv" "$r" "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')" "$e"
		v=$(us_per "$ticks" "$n")
		record "${c}_cpu" "$srv" "$r" "${v:-0}" "$e"
		[[ -z $other ]] || record h2_other "$srv" "$r" "$other" 0 ;;
	esac
	alive "$srv"
	quiesce "$srv"
	say "round $r $(printf '%-8s %-8s' "$c" "$srv") $(awk '{ print $NF }' <<<"${VALS[$c,$srv]}")"
}

# RSS idle, then with IDLE_CONNS idle keep-alive connections open
run_memory() {   # run_memory SERVER ROUND
	local srv=$1 r=$2 idle full line held=0 failed=0 dropped=0 win i
	local in=$WORK/hold.in out=$WORK/hold.out
	idle=$(rss_kb "$srv")
	rm -f "$in" "$out"; mkfifo "$in"
	"${PIN_CLIENT[@]}" "$CLIENT" hold "${PORT[$srv]}" "$IDLE_CONNS" /1k.bin <"$in" >"$out" 2>>"$LOGS/client.log" &
	CHILD=$!
	exec {win}>"$in"   # the client holds its connections until this closes
	for ((i = 0; i < 900; i++)); do   # 90 s at most (the client gives up after 60)
		line=$(grep '^held' "$out" 2>/dev/null || true)
		[[ -n $line ]] && break
		running "$CHILD" || break
		sleep 0.1
	done
	[[ -n $line ]] || die "the hold client did not report (log: $LOGS/client.log)"
	full=$(rss_kb "$srv")
	read -r _ held _ failed <<<"$line"
	exec {win}>&-
	wait "$CHILD" || true
	CHILD=
	line=$(grep '^dropped' "$out" || echo "dropped 0")
	dropped=${line#dropped }
	(( held > 0 )) || die "$srv: none of $IDLE_CONNS connections could be opened"
	record rss_idle "$srv" "$r" "$idle" 0
	record rss_conns "$srv" "$r" "$full" 0
	record per_conn "$srv" "$r" "$(( (full - idle) * 1024 / held ))" "$(( failed + dropped ))"
	echo "$srv round $r: idle $idle KiB, $full KiB with $held held ($failed failed, $dropped dropped)" >> "$RAW/memory.txt"
	alive "$srv"
	quiesce "$srv"
	say "round $r memory   $(printf '%-8s' "$srv") $(( (full - idle) * 1024 / held )) B/connection"
}

# SIGHUP until the new generation (the other root) answers
run_reload() {   # run_reload SERVER ROUND
	local srv=$1 r=$2 want line ms failed i
	if [[ ${ROOT_OF[$srv]} == "$WORK/site-a" ]]; then ROOT_OF[$srv]=$WORK/site-b want=b
	else ROOT_OF[$srv]=$WORK/site-a want=a; fi
	write_conf "$srv"
	bg_wait "${PIN_CLIENT[@]}" "$CLIENT" reload "${PORT[$srv]}" /gen.txt "$want" "${PID[$srv]}" HUP \
		>"$WORK/client.out" 2>>"$LOGS/client.log" || true
	line=$(cat "$WORK/client.out")
	echo "$srv round $r: $line" >> "$RAW/reload.txt"
	read -r _ ms _ _ _ failed <<<"$line"
	[[ -n ${ms:-} && $ms != -1.000 ]] || die "$srv: no answer from a new generation within 10 s after SIGHUP"
	record reload "$srv" "$r" "$ms" "$failed"
	# the old generation leaves before anything else is measured
	for ((i = 0; i < 100; i++)); do (( $(nprocs "$srv") <= NPROC[$srv] )) && break; sleep 0.1; done
	alive "$srv"
	say "round $r reload   $(printf '%-8s' "$srv") $ms ms"
}

# graceful stop with STOP_CONNS idle keep-alive connections, then a restart
run_stop() {   # run_stop SERVER ROUND
	local srv=$1 r=$2 sig=TERM line held failed fin ex resets open
	[[ $srv == nginx ]] && sig=QUIT   # nginx's graceful stop
	bg_wait "${PIN_CLIENT[@]}" "$CLIENT" stop "${PORT[$srv]}" "$STOP_CONNS" /1k.bin "${PID[$srv]}" "$sig" \
		>"$WORK/client.out" 2>>"$LOGS/client.log" || true
	line=$(cat "$WORK/client.out")
	echo "$srv round $r: $line" >> "$RAW/stop.txt"
	read -r _ held _ failed _ fin _ ex _ resets _ open <<<"$line"
	[[ -n ${open:-} ]] || die "$srv: the stop client did not report (log: $LOGS/client.log)"
	# a server still running at the client's deadline (60 s) has no time, only errors
	[[ $ex == -1.000 ]] && { ERRS[stop,$srv]=$(( ${ERRS[stop,$srv]:-0} + 1 )); say "warning: $srv did not exit within 60 s"; }
	[[ $ex == -1.000 ]] || record stop "$srv" "$r" "$ex" "$(( failed + resets + open ))"
	[[ $fin == -1.000 ]] || record stop_fin "$srv" "$r" "$fin" "$(( failed + resets + open ))"
	stop_server "$srv"
	start_server "$srv"
	say "round $r stop     $(printf '%-8s' "$srv") $ex ms (last FIN $fin ms)"
}

per_round=$(( ${#CASES[@]} * ${#SERVERS[@]} * (2 * (DURATION + WARMUP) + 1) / 2 + 8 ))
extra memory && per_round=$(( per_round + ${#SERVERS[@]} * (1 + IDLE_CONNS / 5000) ))
ver() { "$@" 2>&1 | head -n 1; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_time=$(date -u '+%Y-%m-%d %H:%M UTC')
for s in "${SERVERS[@]}"; do record rss_fresh "$s" 0 "$(rss_kb "$s")" 0; done
say "results go to $RESULTS; about $(( ROUNDS * per_round / 60 + 1 )) min of measuring"
measure_start=$SECONDS

for ((r = 1; r <= ROUNDS; r++)); do
	order=() pm=()
	for ((i = 0; i < ${#SERVERS[@]}; i++)); do order+=("${SERVERS[(i + r - 1) % ${#SERVERS[@]}]}"); done
	for ((i = 0; i < ${#PM_SERVERS[@]}; i++)); do pm+=("${PM_SERVERS[(i + r - 1) % ${#PM_SERVERS[@]}]}"); done
	for c in "${CASES[@]}"; do
		for s in "${order[@]}"; do run_case "$c" "$s" "$r"; done
	done
	if extra memory; then for s in "${order[@]}"; do run_memory "$s" "$r"; done; fi
	if extra reload; then for s in "${pm[@]}"; do run_reload "$s" "$r"; done; fi
	if extra stop; then for s in "${pm[@]}"; do run_stop "$s" "$r"; done; fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
measured=$(( SECONDS - measure_start ))

# --- the report ------------------------------------------------------------------
median() {   # median "v1 v2 ...": the middle value (mean of the two middle ones)
	tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
# One row per metric: key, label, better (hi|lo), target: "rN" = ratio to the
# best peer, "aN" = an absolute value of drover's, "" = reported only; format.
ROWS=(
	"ka|1 KB keep-alive, $CONNS connections (req/s)|hi|r1.2|%.0f"
	"ka_high|1 KB keep-alive, $CONNS_HIGH connections (req/s)|hi|r1.2|%.0f"
	"pipe|1 KB pipelined ×$PIPELINE, $CONNS connections (req/s)|hi|r1.2|%.0f"
	"close|1 KB Connection: close, $CONNS connections (req/s)|hi|r1.1|%.0f"
	"64k|64 KB keep-alive, $CONNS connections (MiB/s)|hi|r1.0|%.0f"
	"1m|1 MB keep-alive, $BIG_CONNS connections (MiB/s)|hi|r1.0|%.0f"
	"p50|p50 latency, 1 KB at $CONNS_HIGH connections (ms)|lo||%.2f"
	"p99|p99 latency, 1 KB at $CONNS_HIGH connections (ms)|lo|r1.0|%.2f"
	"rss_fresh|RSS idle, all processes, fresh start (KiB)|lo||%.0f"
	"rss_idle|RSS idle, all processes, after a round of load (KiB)|lo||%.0f"
	"per_conn|RSS per idle keep-alive connection, $IDLE_CONNS open (bytes)|lo|a512|%.0f"
	"reload|SIGHUP to new generation serving (ms)|lo|a10|%.2f"
	"stop|graceful stop, $STOP_CONNS idle keep-alive connections, to exit (ms)|lo|a100|%.1f"
	"stop_fin|graceful stop, $STOP_CONNS idle keep-alive connections, to last FIN (ms)|lo||%.1f"
	"tls_ka|TLS 1 KB keep-alive, $CONNS connections (req/s)|hi|r1.0|%.0f"
	"tls_ka_cpu|TLS 1 KB keep-alive: server CPU per request (µs)|lo|r1.0|%.1f"
	"tls_1m|TLS 1 MB keep-alive, $BIG_CONNS connections (req/s = MiB/s)|hi|r1.0|%.1f"
	"tls_1m_cpu|TLS 1 MB keep-alive: server CPU per request (µs)|lo|r1.0|%.0f"
	"tls_full|TLS new connection per request, full handshake, $TLS_PROCS clients (req/s)|hi|r1.0|%.0f"
	"tls_full_cpu|TLS full handshake: server CPU per request (µs)|lo|r1.0|%.1f"
	"tls_resumed|TLS new connection per request, resumed handshake, $TLS_PROCS clients (req/s)|hi|r1.0|%.0f"
	"tls_resumed_cpu|TLS resumed handshake: server CPU per request (µs)|lo|r1.0|%.1f"
	"tls_resumed_pct|TLS resumed handshake: connections resumed (%)|hi||%.1f"
	"tls_other|TLS runs: other work on the servers' CPU, not the server's (% of that CPU; per run below)|lo||%.1f"
	"h2_tls|HTTP/2 over TLS, 1 KB, $H2_CONNS connections × $H2_STREAMS streams (req/s)|hi|r1.0|%.0f"
	"h2_tls_cpu|HTTP/2 over TLS, 1 KB: server CPU per request (µs)|lo|r0.8|%.1f"
	"h2c|HTTP/2 h2c (prior knowledge), 1 KB, $H2_CONNS connections × $H2_STREAMS streams (req/s)|hi|r1.0|%.0f"
	"h2c_cpu|HTTP/2 h2c, 1 KB: server CPU per request (µs)|lo|r0.8|%.1f"
	"h2_page|HTTP/2 over TLS, page of $PAGE_ASSETS assets (1–8 KB) at once on a new connection, $H2_PAGES pages at once (req/s; ÷ $PAGE_ASSETS = pages/s)|hi|r1.0|%.0f"
	"h2_page_cpu|HTTP/2 page of $PAGE_ASSETS assets: server CPU per request (µs; × $PAGE_ASSETS = per page)|lo|r1.0|%.1f"
	"h2_other|HTTP/2 runs: other work on the servers' CPU, not the server's (% of that CPU; per run below)|lo||%.1f"
)
declare -A SHORT
SHORT=([ka]="1K ka c$CONNS" [ka_high]="1K ka c$CONNS_HIGH" [pipe]="1K pipe x$PIPELINE" [close]="1K close"
       [64k]="64K MiB/s" [1m]="1M MiB/s" [p50]="p50 c$CONNS_HIGH" [p99]="p99 c$CONNS_HIGH"
       [rss_fresh]="RSS fresh" [rss_idle]="RSS after load" [per_conn]="B/idle conn"
       [reload]="reload (÷ nginx)" [stop]="stop (÷ nginx)" [stop_fin]="last FIN (÷ nginx)"
       [tls_ka]="TLS 1K ka" [tls_ka_cpu]="TLS 1K ka CPU/req" [tls_1m]="TLS 1M" [tls_1m_cpu]="TLS 1M CPU/req"
       [tls_full]="TLS full hs" [tls_full_cpu]="TLS full CPU/req" [tls_resumed]="TLS resumed hs"
       [tls_resumed_cpu]="TLS resumed CPU/req" [tls_resumed_pct]="TLS % resumed" [tls_other]="TLS other CPU"
       [h2_tls]="h2 TLS 1K" [h2_tls_cpu]="h2 TLS 1K CPU/req" [h2c]="h2c 1K" [h2c_cpu]="h2c 1K CPU/req"
       [h2_page]="h2 page x$PAGE_ASSETS" [h2_page_cpu]="h2 page CPU/req" [h2_other]="h2 other CPU")
# rows whose value is not shown for a server with errors in any round: the
# cell says "failed", and the server is left out of the ratio
FAIL_ROWS=" h2_tls h2_tls_cpu h2c h2c_cpu h2_page h2_page_cpu "
: > "$RESULTS/ratios-hi.dat"; : > "$RESULTS/ratios-lo.dat"
table() {
	local row key label better target fmt s v best ratio ratio_cell met tgt cells any failed
	declare -A med
	echo "| case | drover | nginx | lighttpd | h2o | drover ÷ best peer | target | met |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"
	for row in "${ROWS[@]}"; do
		IFS='|' read -r key label better target fmt <<<"$row"
		med=()
		cells='' any='' failed=''
		for s in "${COLUMNS_[@]}"; do
			v=$(median "${VALS[$key,$s]:-}")
			med[$s]=$v any+=$v
			if [[ -n $v && $FAIL_ROWS == *" $key "* ]] && (( ${ERRS[$key,$s]:-0} > 0 )); then
				cells+=" **failed** (${ERRS[$key,$s]} errors) |"; failed+="$s "
			elif [[ -z $v ]]; then cells+=" — |"; else cells+=" $(printf "$fmt" "$v") |"; fi
		done
		[[ -n $any ]] || continue   # a case that did not run (BENCH_CASES)
		best=
		for s in "${PEERS[@]}"; do
			v=${med[$s]}
			[[ -n $v ]] || continue
			if [[ -z $best ]] || awk -v a="$v" -v b="$best" -v d="$better" 'BEGIN { exit !(d == "hi" ? a > b : a < b) }'; then
				best=$v
			fi
		done
		ratio=$(awk -v d="${med[drover]}" -v b="$best" 'BEGIN { if (d == "" || b == "" || b == 0) print ""; else printf "%.2f", d / b }')
		[[ $key != tls_resumed_pct && $key != tls_other && $key != h2_other ]] || ratio=   # shares, not comparisons
		met="—" tgt="—"
		case $target in
		r*) tgt="$( [[ $better == hi ]] && echo "≥" || echo "≤" ) ${target#r}× best"
		    [[ -n $ratio ]] && met=$(awk -v x="$ratio" -v t="${target#r}" -v d="$better" \
			'BEGIN { print ((d == "hi" ? x >= t : x <= t) ? "yes" : "**no**") }') ;;
		a*) tgt="≤ ${target#a}"
		    [[ -n ${med[drover]} ]] && met=$(awk -v x="${med[drover]}" -v t="${target#a}" \
			'BEGIN { print (x <= t ? "yes" : "**no**") }') ;;
		esac
		# a failed run measured something else: no comparison in the row
		[[ -z $failed ]] || { ratio='' met="**failed**: ${failed% }"; }
		if [[ -n $ratio ]]; then ratio_cell="**$ratio**"; else ratio_cell="—"; fi
		echo "| $label |$cells $ratio_cell | $tgt | $met |"
		if [[ -n $ratio ]]; then
			# the chart shows an absolute target as the ratio drover would have at it
			local t=NaN
			case $target in
			r*) t=${target#r} ;;
			a*) t=$(awk -v t="${target#a}" -v b="$best" 'BEGIN { printf "%.3f", t / b }') ;;
			esac
			printf '"%s" %s %s\n' "${SHORT[$key]}" "$ratio" "$t" >> "$RESULTS/ratios-$better.dat"
		fi
	done
}
errors_note() {
	local key s n=0
	for key in ka ka_high pipe close 64k 1m per_conn reload stop tls_ka tls_1m tls_full tls_resumed h2_tls h2c h2_page; do
		for s in "${SERVERS[@]}"; do
			(( ${ERRS[$key,$s]:-0} == 0 )) || { echo "- $s, $key: ${ERRS[$key,$s]} errors (failed, reset or dropped requests or connections) over all rounds"; n=1; }
		done
	done
	(( n )) || echo "- no errors: every request was answered 2xx, no connection was refused, reset or dropped."
}
per_round_table() {
	local row key label s
	echo "| case | drover | nginx | lighttpd | h2o |"
	echo "| --- | --- | --- | --- | --- |"
	for row in "${ROWS[@]}"; do
		IFS='|' read -r key label _ <<<"$row"
		[[ -n ${VALS[$key,drover]:-}${VALS[$key,nginx]:-}${VALS[$key,lighttpd]:-}${VALS[$key,h2o]:-} ]] || continue
		printf '| %s |' "$label"
		for s in "${COLUMNS_[@]}"; do printf ' %s |' "$(sed 's/ *$//; s/ /, /g' <<<"${VALS[$key,$s]:-—}")"; done
		echo
	done
}
drover_rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo "?")
first_file() { local f; for f in "$@"; do [[ -s $f ]] && { echo "$f"; return; }; done; }
{
	echo "# drover against nginx, lighttpd and h2o, $start_time"
	echo
	echo "- machine: $(nproc) CPUs ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)), kernel $(uname -r)"
	echo "- $(ver "$DROVER" --version) (source $drover_rev, CFLAGS \"$CFLAGS_BENCH\"), $(ver "$NGINX" -v), $(ver "$LIGHTTPD" -v), $(ver "$H2O" -v)"
	echo "- clients: $(ver wrk -v | cut -d' ' -f1-2), $(ver h2load --version); all traffic on 127.0.0.1"
	echo "- $WORKERS worker(s) each (h2o: threads); $pinning; $limits_note"
	echo "- $ROUNDS round(s), server order rotated each round; load runs ${DURATION} s after ${WARMUP} s unmeasured warm-up;"
	echo "  \`wrk -t1\`, \`h2load --h1 -t1 -m$PIPELINE\`; figures are medians over the rounds"
	echo "- to repeat: \`ROUNDS=$ROUNDS BENCH_DURATION=$DURATION BENCH_WARMUP=$WARMUP BENCH_WORKERS=$WORKERS BENCH_CONNS=$CONNS BENCH_CONNS_HIGH=$CONNS_HIGH BENCH_BIG_CONNS=$BIG_CONNS BENCH_IDLE_CONNS=$IDLE_CONNS BENCH_STOP_CONNS=$STOP_CONNS BENCH_TLS_PROCS=$TLS_PROCS BENCH_H2_CONNS=$H2_CONNS BENCH_H2_STREAMS=$H2_STREAMS BENCH_H2_PAGES=$H2_PAGES${BENCH_CASES:+ BENCH_CASES=\"$BENCH_CASES\"} bench/run.sh\`"
	if (( TLS )); then
		echo "- TLS cases (drover, nginx, h2o; lighttpd is not in them): one ECDSA P-256 certificate, TLS 1.3 with $TLS_SUITE only;"
		echo "  $TLS_NOTE (openssl s_client); h2o 2.2 has no setting for either, so it gets them from an OpenSSL config (\`conf/h2o-openssl.cnf\`, OPENSSL_CONF)"
		echo "- TLS clients: \`wrk -t1\` over https for keep-alive and 1 MB; bench/tls_client.c for new connections ($TLS_PROCS processes, \`Connection: close\`, no certificate check),"
		echo "  negotiated: $(for s in "${!TPORT[@]}"; do f=$(ls "$RAW"/tls_full-"$s"-r*.txt 2>/dev/null | head -n 1); [[ -n $f ]] && printf '%s %s %s %s; ' "$s" "$(tls_field "$f" version)" "$(tls_field "$f" cipher)" "$(tls_field "$f" group)"; done)"
	fi
	if (( H2 )); then
		echo "- HTTP/2 cases (drover, nginx, h2o; lighttpd is not in them), each server on two listeners of their own: h2c with prior knowledge, and TLS (the same certificate and TLS 1.3 $TLS_SUITE only) with ALPN h2;"
		echo "  \`h2load -t1 -c$H2_CONNS -m$H2_STREAMS -D $DURATION\` on /1k.bin for h2_tls and h2c; h2_page: runs of \`h2load -t1 -c$H2_PAGES -n $(( H2_PAGES * PAGE_ASSETS )) -m$PAGE_ASSETS -i urls.txt\` back to back,"
		echo "  each run $H2_PAGES page loads at once, each a new TLS connection (full handshake) asking for the page's $PAGE_ASSETS assets ($PAGE_BYTES bytes, 1–8 KB each) at once and closing when all are answered;"
		echo "  req/s = answers ÷ the sum of h2load's own run times; a server with any failed, errored or timed-out request, non-2xx answer or protocol other than h2 (h2c) in any round is shown as failed"
		echo "  negotiated (h2load): $(for s in "${SERVERS[@]}"; do f=$(first_file "$RAW"/h2_tls-"$s"-r*.txt "$RAW"/h2_page-"$s"-r*.txt); [[ -n $f ]] && printf '%s %s %s %s; ' "$s" "$(awk -F': ' '/^TLS Protocol:/ { print $2; exit }' "$f")" "$(awk -F': ' '/^Cipher:/ { print $2; exit }' "$f")" "$(awk -F': ' '/^Application protocol:/ { print $2; exit }' "$f")"; done)"
	fi
	if (( CERTS )); then
		echo "- server CPU per request: user + system time of all the server's processes (/proc/PID/stat) over the measured run ÷ the requests answered in it"
	fi
	echo "- load average before $load_before, after $load_after (other work on the machine adds noise); measuring took $measured s"
	echo
	echo "## Results"
	echo
	table
	echo
	echo "drover ÷ best peer: the best of nginx, lighttpd and h2o (the process-model rows: nginx only; the TLS and HTTP/2 rows: nginx and h2o)."
	echo "For rows measured in time or memory lower is better, so there a ratio under 1 means drover is ahead."
	echo
	echo "![drover ÷ best peer](chart.png)"
	echo
	echo "## Errors"
	echo
	errors_note
	echo
	echo "## Every round, in order"
	echo
	per_round_table
	echo
	echo "Raw tool output: \`raw/\`; configs: \`conf/\`; server logs: \`logs/\`; one line per measurement: \`rounds.tsv\`."
} > "$RESULTS/results.md"

# --- the chart -----------------------------------------------------------------
# y ranges with room for the value labels: linear from 0, log around the
# data (a line of the .dat files is: "label" ratio target)
hi_max=$(awk 'BEGIN { m = 1 } { for (i = NF - 1; i <= NF; i++) if ($i != "NaN" && $i + 0 > m) m = $i + 0 }
	END { printf "%.2f", m * 1.15 }' "$RESULTS/ratios-hi.dat")
lo_min=$(awk 'BEGIN { m = 1 } { v = $(NF - 1) + 0; if (v > 0 && v < m) m = v } END { printf "%g", m / 2 }' "$RESULTS/ratios-lo.dat")
lo_max=$(awk 'BEGIN { m = 1 } { if ($(NF - 1) + 0 > m) m = $(NF - 1) + 0 } END { printf "%g", m * 3 }' "$RESULTS/ratios-lo.dat")
cat > "$RESULTS/chart.gp" <<EOF
set terminal pngcairo size 1400,640 font "sans,10"
set output "$RESULTS/chart.png"
set multiplot layout 1,2 title "drover ÷ best peer (nginx, lighttpd, h2o), medians of $ROUNDS round(s), $start_time" font "sans,12"
set style fill solid 0.85 border -1
set boxwidth 0.6
set grid ytics
set xtics rotate by -35 noenhanced
unset key
set title "throughput: higher is better (red: target)"
set yrange [0:$hi_max]
plot "$RESULTS/ratios-hi.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa", \\
     "" using (\$0 - 0.3):3:(0.6):(0) with vectors nohead lw 3 lc rgb "#cc3311" notitle, \\
     1 with lines dt 2 lc rgb "black" notitle, \\
     "" using 0:2:(sprintf("%.2f", \$2)) with labels offset 0,0.8 notitle
set title "time and memory: lower is better (log scale; red: target, as a ratio)"
set rmargin 14
set logscale y
set yrange [$lo_min:$lo_max]
plot "$RESULTS/ratios-lo.dat" using 0:2:xtic(1) with boxes lc rgb "#228833", \\
     "" using (\$0 - 0.3):3:(0.6):(0) with vectors nohead lw 3 lc rgb "#cc3311" notitle, \\
     1 with lines dt 2 lc rgb "black" notitle, \\
     "" using 0:2:(sprintf("%.2f", \$2)) with labels offset 0,0.8 notitle
unset multiplot
EOF
gnuplot "$RESULTS/chart.gp" 2>"$LOGS/gnuplot.log" || say "warning: gnuplot failed (log: $LOGS/gnuplot.log)"

sed -n '/^## Results/,/^## Errors/p' "$RESULTS/results.md" | sed '$d'
say "results: $RESULTS/results.md, chart: $RESULTS/chart.png"
