#!/usr/bin/env bash
# bench/handoff.sh: what keep-alive clients see of reloads, binary upgrades
# and worker recycling (issue 20, live hand-off), for drover before (a git
# revision, main by default), drover after (this tree), and nginx, measured
# the same way; and how long a reload takes under 1,000 idle keep-alive
# connections, from SIGHUP to the last connection adopted.
#
# The client (bench/handoff_client.c, the test suite's load client) runs 16
# keep-alive clients and 4 clients pipelining up to 8 deep, checks every
# byte of every response, re-sends a request whose connection closed before
# any byte of its answer (retried, up to 5 times) and counts the TCP
# connections it opens. It reports; nothing here fails on a threshold.
#
#   bench/handoff.sh            from the top of a configured build tree
#
# Environment:
#   BEFORE_REV      the "before" revision, built in a temp directory (main)
#   BEFORE_DROVER   a drover binary to use as "before" instead (droverctl
#                   next to it)
#   RELOADS=20 UPGRADES=3 RECYCLE_S=6 IDLE=1000   the scenarios' sizes
#   NGINX=0         skip nginx
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
RELOADS=${RELOADS:-20} UPGRADES=${UPGRADES:-3} RECYCLE_S=${RECYCLE_S:-6} IDLE=${IDLE:-1000}
BEFORE_REV=${BEFORE_REV:-main}
say() { printf 'handoff.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ -x src/drover && -f Makefile ]] || die "run from a configured build tree (./configure && make)"
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/drover-handoff.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	[[ ${KEEP:-0} == 1 ]] && say "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

# --- the client, and the builds ---------------------------------------------
make -s src/drover src/droverctl tests/libharness.a >/dev/null
CLIENT=$WORK/handoff_client
# shellcheck disable=SC2046
cc -O2 -std=gnu11 -I tests -I src -o "$CLIENT" bench/handoff_client.c tests/libharness.a src/libdrover.a \
	$(pkg-config --libs check libsystemd inih) -lm
SITE=$WORK/site
mkdir -p "$SITE"
"$CLIENT" site "$SITE"
chmod -R a+rX "$SITE"

AFTER=$top/src/drover AFTER_CTL=$top/src/droverctl
if [[ -n ${BEFORE_DROVER:-} ]]; then
	BEFORE=$BEFORE_DROVER BEFORE_CTL=$(dirname "$BEFORE_DROVER")/droverctl
else
	say "building $BEFORE_REV in $WORK/before"
	mkdir -p "$WORK/before"
	git archive "$BEFORE_REV" | tar -x -C "$WORK/before"
	(cd "$WORK/before" && autoreconf -fi >/dev/null 2>&1 && ./configure CFLAGS="-O2 -g" >/dev/null &&
		make -s -j2 src/drover src/droverctl >/dev/null) || die "cannot build $BEFORE_REV"
	BEFORE=$WORK/before/src/drover BEFORE_CTL=$WORK/before/src/droverctl
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { local i; for ((i = 0; i < 200; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# Start the client on port (it runs until its stdin, fd 7 here, closes);
# stop_client stops it, its RESULT lines in $RESULT.
start_client() {
	mkfifo "$WORK/stdin.$1"
	"$CLIENT" load "$1" <"$WORK/stdin.$1" >"$WORK/client.$1" 2>&1 &
	CLIENT_PID=$!
	exec 7>"$WORK/stdin.$1"
}
stop_client() {
	exec 7>&-
	wait "$CLIENT_PID" || true
	RESULT=$(grep '^RESULT' "$WORK/client.$1") || { cat "$WORK/client.$1" >&2; die "the client failed"; }
}

ROWS=()
row() {   # row SERVER SCENARIO RESULT-LINES
	local server=$1 scenario=$2 line kind clients req failed retried conns
	while read -r line; do
		kind=$(sed -n 's/^RESULT \([a-z]*\) .*/\1/p' <<<"$line")
		clients=$(sed -n 's/.* clients=\([0-9]*\).*/\1/p' <<<"$line")
		req=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
		failed=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$line")
		retried=$(sed -n 's/.* retried=\([0-9]*\).*/\1/p' <<<"$line")
		conns=$(sed -n 's/.* connections=\([0-9]*\).*/\1/p' <<<"$line")
		ROWS+=("| $server | $scenario | $kind ($clients) | $req | $failed | $retried | $conns | $(awk -v c="$conns" -v n="$clients" 'BEGIN { printf "%.1f", c / n }') |")
		say "$server, $scenario, $kind: requests $req failed $failed retried $retried connections $conns"
	done <<<"$3"
}

# --- drover -------------------------------------------------------------------
drover_start() {   # drover_start BIN DIR EXTRA-SERVER-LINES: PORT and DPID set
	local bin=$1 dir=$2
	mkdir -p "$dir"
	PORT=$(free_port)
	cat >"$dir/drover.ini" <<-EOF
	[server]
	workers = 2
	control_socket = $dir/ctl.sock
	shutdown_timeout = 10s
	max_generations = 64
	$3
	[listener web]
	address = 127.0.0.1:$PORT
	protocol = http
	[http]
	root = $SITE
	keepalive_timeout = 60s
	keepalive_requests = 4000000000
	EOF
	"$bin" -c "$dir/drover.ini" >"$dir/log" 2>&1 &
	DPID=$!
	PIDS+=("$DPID")
	wait_port "$PORT" || die "drover did not start: $(tail -5 "$dir/log")"
}
drover_stop() { kill -TERM "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; }

drover_ops() {   # drover_ops NAME BIN CTL
	local name=$1 bin=$2 ctl=$3 dir=$WORK/$1-ops i
	drover_start "$bin" "$dir" ""
	start_client "$PORT"
	sleep 1
	for ((i = 0; i < RELOADS; i++)); do "$ctl" -s "$dir/ctl.sock" reload >/dev/null; sleep 0.2; done
	for ((i = 0; i < UPGRADES; i++)); do "$ctl" -s "$dir/ctl.sock" upgrade >/dev/null; sleep 0.5; done
	sleep 1
	stop_client "$PORT"
	row "$name" "$RELOADS reloads + $UPGRADES upgrades" "$RESULT"
	drover_stop
}

drover_recycle() {   # drover_recycle NAME BIN
	local name=$1 bin=$2 dir=$WORK/$1-recycle
	drover_start "$bin" "$dir" "max_requests = 2000"
	start_client "$PORT"
	sleep "$RECYCLE_S"
	stop_client "$PORT"
	row "$name" "recycling (max_requests = 2000, ${RECYCLE_S}s): $(grep -c 'reached max_requests' "$dir/log") recycles" \
		"$RESULT"
	drover_stop
}

# SIGHUP to the last of IDLE idle keep-alive connections adopted by the new
# generation (droverctl status counts them).
drover_idle_reload() {
	local dir=$WORK/idle gen t0 t1 n=0
	drover_start "$AFTER" "$dir" "max_connections = 4096"
	mkfifo "$dir/hold"
	cat >"$dir/hold.py" <<-'EOF'
	import socket, sys
	port, n = int(sys.argv[1]), int(sys.argv[2])
	conns = []
	for i in range(n):
	    s = socket.create_connection(("127.0.0.1", port))
	    s.sendall(b"GET /tiny.txt HTTP/1.1\r\nHost: b\r\n\r\n")
	    got = b""
	    while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < 17:
	        chunk = s.recv(4096)
	        if not chunk:
	            sys.exit("connection %d closed" % i)
	        got += chunk
	    conns.append(s)
	print("ready", flush=True)
	sys.stdin.read()
	EOF
	python3 "$dir/hold.py" "$PORT" "$IDLE" <"$dir/hold" >"$dir/held" &
	local holder=$!
	exec 8>"$dir/hold"
	until grep -q ready "$dir/held" 2>/dev/null; do
		kill -0 "$holder" 2>/dev/null || die "could not open $IDLE connections"
		sleep 0.05
	done
	gen=$("$AFTER_CTL" -s "$dir/ctl.sock" status | sed -n 's/^supervisor pid [0-9]*, generation \([0-9]*\).*/\1/p')
	t0=$(date +%s%N)
	kill -HUP "$DPID"
	# droverctl status is polled as fast as it runs (a few ms: the resolution)
	local give_up=$((SECONDS + 60))
	while (( n < IDLE )); do
		(( SECONDS < give_up )) || die "only $n of $IDLE connections adopted after 60 s"
		n=$("$AFTER_CTL" -s "$dir/ctl.sock" status | sed -n "s/^generation $((gen + 1)) handed-off [0-9]* adopted \([0-9]*\)/\1/p")
		n=${n:-0}
	done
	t1=$(date +%s%N)
	IDLE_MS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
	say "reload under $IDLE idle keep-alive connections: SIGHUP to the last adopted in $IDLE_MS ms"
	exec 8>&-
	wait "$holder" || true
	drover_stop
}

# --- nginx ----------------------------------------------------------------------
nginx_ops() {
	local dir=$WORK/nginx i old new
	mkdir -p "$dir/logs"
	PORT=$(free_port)
	cat >"$dir/nginx.conf" <<-EOF
	worker_processes 2;
	pid $dir/nginx.pid;
	error_log $dir/logs/error.log;
	events { worker_connections 1024; }
	http {
	    access_log off;
	    keepalive_timeout 60s;
	    keepalive_requests 1000000;
	    server { listen 127.0.0.1:$PORT; root $SITE; }
	}
	EOF
	"$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf" || die "nginx did not start"
	wait_port "$PORT" || die "nginx is not listening"
	start_client "$PORT"
	sleep 1
	for ((i = 0; i < RELOADS; i++)); do kill -HUP "$(cat "$dir/nginx.pid")"; sleep 0.2; done
	for ((i = 0; i < UPGRADES; i++)); do
		# nginx's binary upgrade: USR2 starts a new master, QUIT ends the old one
		old=$(cat "$dir/nginx.pid")
		kill -USR2 "$old"
		until [[ -f $dir/nginx.pid.oldbin && -s $dir/nginx.pid ]] && new=$(cat "$dir/nginx.pid") && [[ $new != "$old" ]]; do
			sleep 0.05
		done
		kill -QUIT "$old"
		while kill -0 "$old" 2>/dev/null; do sleep 0.05; done
		sleep 0.5
	done
	sleep 1
	stop_client "$PORT"
	row nginx "$RELOADS reloads + $UPGRADES upgrades" "$RESULT"
	kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null || true
}

drover_ops "drover before ($BEFORE_REV)" "$BEFORE" "$BEFORE_CTL"
drover_ops "drover after" "$AFTER" "$AFTER_CTL"
drover_recycle "drover before ($BEFORE_REV)" "$BEFORE"
drover_recycle "drover after" "$AFTER"
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ${NGINX:-1} != 0 && -x $NGINX_BIN ]]; then
	nginx_ops
else
	say "nginx not measured (NGINX=0, or not installed: apt-get install nginx)"
fi
drover_idle_reload

echo
echo "| server | scenario | clients | requests | failed | retried | connections opened | per client |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${ROWS[@]}"
echo
echo "Reload under $IDLE idle keep-alive connections (drover after, 2 workers): SIGHUP to the last connection adopted: $IDLE_MS ms"
