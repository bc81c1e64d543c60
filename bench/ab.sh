#!/usr/bin/env bash
# bench/ab.sh: a paired A/B of two builds of drover, for a change on drover
# alone (bench/README.md, "Reading the results"). Both builds are served side
# by side on one CPU (one worker each) while two clients load them at once
# from the other CPU, case by case and round by round; a pair's throughput
# ratio repeats far better than two runs of bench/run.sh would. It also reads
# each server's CPU time (/proc/PID/stat, supervisor and worker) and reports
# CPU per request, which the client-bound throughput can hide.
#
# Usage: bench/ab.sh REV_A REV_B      (git revisions of this repository)
# Environment:
#   ROUNDS          rounds (5); each runs every case on both at once
#   BENCH_DURATION  seconds per case and round (5)
#   AB_CASES        cases, a subset of "ka pipe close 1m" (all)
#   AB_CONNS        connections per client for ka and pipe (25)
#   AB_BIG_CONNS    connections per client for 1m (5)
#   AB_PIPELINE     requests in flight per connection for pipe (16)
# Prints one line per case: B ÷ A throughput (mean and each round) and CPU
# microseconds per request of each. Traffic goes to 127.0.0.1 only; every
# load run is bounded by BENCH_DURATION. Reports, never fails on a ratio.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 REV_A REV_B" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${BENCH_DURATION:-5}
CASES=${AB_CASES:-ka pipe close 1m}
CONNS=${AB_CONNS:-25}
BIG_CONNS=${AB_BIG_CONNS:-5}
PIPELINE=${AB_PIPELINE:-16}
die() { echo "ab: $*" >&2; exit 1; }
for t in wrk h2load taskset curl autoreconf; do
	command -v "$t" >/dev/null || die "needs $t (apt-get install wrk nghttp2-client util-linux curl autoconf)"
done
(( $(nproc) >= 2 )) || die "needs 2 CPUs (servers on one, clients on the other)"

work=$(mktemp -d /tmp/drover-ab.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# Build each revision from a clean export, with the same flags.
build() { # build NAME REV
	local dir=$work/$1
	mkdir -p "$dir"
	git -C "$top" archive "$2" | tar -x -C "$dir"
	(cd "$dir" && autoreconf -fi && ./configure CFLAGS="-O2 -g" && make -j"$(nproc)") >"$work/$1.build.log" 2>&1 \
		|| die "cannot build $2 (log: $work/$1.build.log)"
	echo "$dir/src/drover"
}
bin_a=$(build a "$1")
bin_b=$(build b "$2")

mkdir -p "$work/www"
head -c 1024 /dev/zero | tr '\0' 'a' >"$work/www/1k.bin"
head -c $((1 << 20)) /dev/zero | tr '\0' 'm' >"$work/www/1m.bin"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # start NAME BIN: prints the port; the pid is in $work/NAME.pid
	local port
	port=$(free_port)
	cat >"$work/$1.ini" <<-EOF
	[server]
	workers = 1
	control_socket = off
	[listener web]
	address = 127.0.0.1:$port
	protocol = http
	[http]
	root = $work/www
	access_log = off
	keepalive_requests = 1000000
	EOF
	# stdout too: a server holding this command substitution's pipe would
	# keep it open.
	taskset -c 0 "$2" -c "$work/$1.ini" >"$work/$1.log" 2>&1 &
	echo $! >"$work/$1.pid"
	for ((i = 0; i < 100; i++)); do
		curl -sf -o /dev/null "http://127.0.0.1:$port/1k.bin" && { echo "$port"; return; }
		sleep 0.1
	done
	die "$1 did not answer (log: $work/$1.log)"
}
port_a=$(start a "$bin_a"); pid_a=$(cat "$work/a.pid"); pids+=("$pid_a")
port_b=$(start b "$bin_b"); pid_b=$(cat "$work/b.pid"); pids+=("$pid_b")

# CPU ticks (user + system) of a server: its supervisor and its workers.
ticks() {
	local sum=0 p
	for p in "$1" $(pgrep -P "$1"); do
		[[ -r /proc/$p/stat ]] || continue
		sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo "$sum"
}

# load CASE PORT OUT: one client run; prints requests/s into OUT's last line.
load() {
	case $1 in
	ka) taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$2/1k.bin" >"$3" 2>&1 ;;
	close) taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" -H 'Connection: close' "http://127.0.0.1:$2/1k.bin" >"$3" 2>&1 ;;
	1m) taskset -c 1 wrk -t1 -c"$BIG_CONNS" -d"${DURATION}s" "http://127.0.0.1:$2/1m.bin" >"$3" 2>&1 ;;
	pipe) taskset -c 1 h2load --h1 -t1 -c"$CONNS" -m"$PIPELINE" -D "$DURATION" "http://127.0.0.1:$2/1k.bin" >"$3" 2>&1 ;;
	esac
}
rps() { # rps CASE FILE
	case $1 in
	pipe) awk '/^finished in/ { print $4 }' "$2" ;;
	*) awk '/^Requests\/sec:/ { print $2 }' "$2" ;;
	esac
}

hz=$(getconf CLK_TCK)
echo "A = $1 ($(git -C "$top" rev-parse --short "$1")), B = $2 ($(git -C "$top" rev-parse --short "$2"))"
echo "$ROUNDS rounds x ${DURATION}s, both servers on CPU 0, both clients at once on CPU 1"
for c in $CASES; do
	ratios=() cpu_a=0 cpu_b=0 req_a=0 req_b=0
	for ((r = 1; r <= ROUNDS; r++)); do
		ta=$(ticks "$pid_a") tb=$(ticks "$pid_b")
		load "$c" "$port_a" "$work/out-a" & la=$!
		load "$c" "$port_b" "$work/out-b" & lb=$!
		wait "$la" "$lb" || die "a client failed: $(tail -n 3 "$work/out-a" "$work/out-b")"
		ta=$(($(ticks "$pid_a") - ta)) tb=$(($(ticks "$pid_b") - tb))
		ra=$(rps "$c" "$work/out-a") rb=$(rps "$c" "$work/out-b")
		[[ -n $ra && -n $rb ]] || die "cannot read the clients' output ($c)"
		ratios+=("$(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.3f", b / a }')")
		cpu_a=$((cpu_a + ta)) cpu_b=$((cpu_b + tb))
		req_a=$(awk -v s="$req_a" -v x="$ra" -v d="$DURATION" 'BEGIN { printf "%.0f", s + x * d }')
		req_b=$(awk -v s="$req_b" -v x="$rb" -v d="$DURATION" 'BEGIN { printf "%.0f", s + x * d }')
	done
	awk -v c="$c" -v rs="${ratios[*]}" -v ca="$cpu_a" -v cb="$cpu_b" -v qa="$req_a" -v qb="$req_b" -v hz="$hz" 'BEGIN {
		n = split(rs, v, " "); m = 0; for (i = 1; i <= n; i++) m += v[i]; m /= n
		printf "%-5s B/A throughput %.3f (rounds: %s)  CPU per request: A %.2f us, B %.2f us (B/A %.3f)\n",
			c, m, rs, ca / hz / qa * 1e6, cb / hz / qb * 1e6, (cb / qb) / (ca / qa)
	}'
done
