#!/bin/bash
# The fleet test: HAProxy in front of two drover nodes, in network
# namespaces this test creates (and removes), with a bounded load client
# running through HAProxy while each node in turn is reloaded
# (droverctl reload), upgraded (droverctl upgrade: the binary re-executed
# in place) and stopped and started again without systemd, with
# [server] lame_duck = 2s: its health check turns 503, HAProxy takes it
# out, it stops, starts, and HAProxy puts it back. Result: 0 failed
# requests at the client. Then one node is SIGKILLed (supervisor and
# workers at once, a crash): the failures are counted and must stay within
# what can be in flight to it (one request per client connection).
#
#   client netns   10.77.0.2 --veth-- 10.77.0.1  HAProxy netns
#                                      10.77.1.1 --veth-- 10.77.1.2  node n1 (drover)
#                                      10.77.2.1 --veth-- 10.77.2.2  node n2 (drover)
#
# HAProxy: HTTP health checks on /healthz (200 expected), option
# redispatch, retries 3 (retry-on conn-failure empty-response), keep-alive
# to the nodes (http-reuse always), send-proxy-v2 to listeners with
# proxy_protocol = yes, no on-marked-down shutdown-sessions (README.md,
# "Running several nodes", says why). Every state change is waited for on
# HAProxy's stats socket, not with fixed sleeps. The access logs must show
# the client's address (10.77.0.2, from the PROXY v2 header), never
# HAProxy's. Printed: the requests each node served before, during and
# after each step, from its access log.
#
# No address outside these namespaces (and their loopback) is used.
# Exit 77 (SKIP) when not root, when ip netns is not permitted (a
# container), or when haproxy or python3 is missing.
set -u
case "${DROVER_SLOW_TESTS:-yes}" in
no | 0 | off)
	echo "SKIP: DROVER_SLOW_TESTS=$DROVER_SLOW_TESTS (CI runs this once, in the plain build)"
	exit 77
	;;
esac

drover=$(realpath "${DROVER_BIN:-./src/drover}")
droverctl=$(realpath "${DROVERCTL_BIN:-./src/droverctl}")
srcdir=${DROVER_SRCDIR:-${srcdir:-.}}
here=$(realpath "$srcdir/tests/fleet")
py=/usr/bin/python3
THREADS=4

skip() {
	echo "SKIP: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "not root (network namespaces need CAP_NET_ADMIN)"
haproxy=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
[ -x "$haproxy" ] || skip "haproxy is not installed"
[ -x "$py" ] || skip "python3 is not installed"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"

tag=dfl$$
ns_c=${tag}c ns_lb=${tag}lb ns_1=${tag}n1 ns_2=${tag}n2
if ! ip netns add "$ns_c" 2>/dev/null; then
	skip "ip netns is not permitted here (a container?)"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/drover-fleet.XXXXXX")
chmod 755 "$dir"
pids=()
load_pid=
hap_pid=
declare -A node_pid

cleanup() {
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
	# disowned first: no "Killed" line for each
	for p in "${node_pid[@]}" $hap_pid; do
		[ -n "$p" ] && disown "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
	# workers of a node whose supervisor was killed above
	for n in 1 2; do
		[ -s "$dir/n$n/pids" ] && xargs -r kill -KILL <"$dir/n$n/pids" 2>/dev/null
	done
	{ wait; } 2>/dev/null
	for ns in "$ns_c" "$ns_lb" "$ns_1" "$ns_2"; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "${DROVER_FLEET_KEEP:-}" ]; then
		echo "kept: $dir"
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

die() {
	echo "FAIL: $*"
	for f in "$dir"/n1/drover.log "$dir"/n2/drover.log "$dir"/haproxy.log "$dir"/failures.log; do
		[ -s "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
	done
	exit 1
}

# ---------------------------------------------------------------- network
for ns in "$ns_lb" "$ns_1" "$ns_2"; do
	ip netns add "$ns" || die "ip netns add $ns"
done
for ns in "$ns_c" "$ns_lb" "$ns_1" "$ns_2"; do
	ip -n "$ns" link set lo up || die "lo up in $ns"
done
# link NS_A IF_A ADDR_A NS_B IF_B ADDR_B: a veth pair between two namespaces
link() {
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" || die "veth $2-$5"
	ip -n "$1" addr add "$3/24" dev "$2" && ip -n "$1" link set "$2" up &&
		ip -n "$4" addr add "$6/24" dev "$5" && ip -n "$4" link set "$5" up || die "addresses on $2-$5"
}
link "$ns_c" "${tag}c0" 10.77.0.2 "$ns_lb" "${tag}l0" 10.77.0.1
link "$ns_1" "${tag}n1" 10.77.1.2 "$ns_lb" "${tag}l1" 10.77.1.1
link "$ns_2" "${tag}n2" 10.77.2.2 "$ns_lb" "${tag}l2" 10.77.2.1

# ---------------------------------------------------------------- nodes
mkdir -p "$dir/www"
printf 'fleet: one page served by either node\n' >"$dir/www/index.html"
for n in 1 2; do
	mkdir -p "$dir/n$n"
	cat >"$dir/n$n/drover.ini" <<EOF
[server]
workers = 2
shutdown_timeout = 10s
lame_duck = 2s
control_socket = $dir/n$n/control.sock

[listener web]
address = 10.77.$n.2:8080
protocol = http
proxy_protocol = yes

[http]
root = $dir/www
access_log = $dir/n$n/access.log
EOF
done

# The pids of node n's processes (supervisor and workers), into n/pids.
node_pids() {
	local p=${node_pid[$1]:-}
	{ [ -n "$p" ] && echo "$p" && pgrep -P "$p"; } >"$dir/n$1/pids" 2>/dev/null
}

start_node() { # start_node N
	ip netns exec "${tag}n$1" "$drover" -c "$dir/n$1/drover.ini" >>"$dir/n$1/drover.log" 2>&1 &
	node_pid[$1]=$!
}

ctl() { # ctl N COMMAND
	"$droverctl" -c "$dir/n$1/drover.ini" -w 60 "$2" >>"$dir/n$1/ctl.log" 2>&1
}

# ---------------------------------------------------------------- HAProxy
cat >"$dir/haproxy.cfg" <<EOF
global
	maxconn 1000
	nbthread 1
	stats socket $dir/haproxy.sock mode 600 level admin
	log stdout format raw local0 notice

defaults
	mode http
	log global
	option httplog
	option dontlog-normal
	timeout connect 1s
	timeout client 60s
	timeout server 30s
	timeout http-keep-alive 60s
	timeout check 1s
	retries 3
	option redispatch
	retry-on conn-failure empty-response

frontend fe
	bind 10.77.0.1:8080
	default_backend nodes

backend nodes
	balance roundrobin
	option httpchk GET /healthz
	http-check expect status 200
	http-reuse always
	default-server check inter 200ms fastinter 100ms downinter 200ms fall 2 rise 2 send-proxy-v2${FLEET_ON_MARKED_DOWN:+ on-marked-down $FLEET_ON_MARKED_DOWN}
	server n1 10.77.1.2:8080
	server n2 10.77.2.2:8080
EOF
"$haproxy" -c -f "$dir/haproxy.cfg" >"$dir/haproxy-check.log" 2>&1 || die "haproxy -c: $(cat "$dir/haproxy-check.log")"

# The state of server NAME (n1, n2) on the stats socket: UP, DOWN, "UP 1/2"...
hap_state() {
	"$py" - "$dir/haproxy.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
try:
    s.connect(sys.argv[1])
    s.sendall(b"show stat\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError:
    print("unreachable")
    sys.exit(0)
head = None
for line in data.decode().splitlines():
    f = line.split(",")
    if line.startswith("# "):
        head = line[2:].split(",")
        continue
    if head and len(f) > 1 and f[0] == "nodes" and f[1] == sys.argv[2]:
        print(f[head.index("status")])
        break
PY
}

# Wait (at most 30 s) until server NAME is in state STATE.
wait_state() {
	local t=0 s
	while [ $t -lt 300 ]; do
		s=$(hap_state "$1")
		[ "$s" = "$2" ] && return 0
		sleep 0.1
		t=$((t + 1))
	done
	die "HAProxy never saw $1 $2 (last: $s)"
}

# ---------------------------------------------------------------- counting
# Requests of the load client that node N logged so far (its address:
# 10.77.0.2, the client's, from the PROXY v2 header).
served() {
	local n
	n=$(grep -c '^10\.77\.0\.2 - - \[.*"GET /index.html HTTP/1.1" 200 ' "$dir/n$1/access.log" 2>/dev/null)
	echo "${n:-0}"
}
status() { # sent ok failed, from the load client
	cat "$dir/load.status" 2>/dev/null || echo "0 0 0"
}
failed() { status | awk '{print $3}'; }
sent() { status | awk '{print $1}'; }

# Wait until the client has sent COUNT more requests than now (at most 30 s).
wait_requests() {
	local from t=0
	from=$(sent)
	while [ $(($(sent) - from)) -lt "$1" ]; do
		[ $t -lt 300 ] || die "the load client stalled at $(sent) requests"
		kill -0 "$load_pid" 2>/dev/null || die "the load client ended early"
		sleep 0.1
		t=$((t + 1))
	done
}

mark() { # mark NAME: node counts now, into marks_NAME
	eval "mark_$1=\"$(served 1) $(served 2)\""
}
# report STEP FROM START DONE AFTER: what each node served between marks
report() {
	local a b c d
	read -r a1 a2 <<<"$(eval echo \$mark_$2)"
	read -r b1 b2 <<<"$(eval echo \$mark_$3)"
	read -r c1 c2 <<<"$(eval echo \$mark_$4)"
	read -r d1 d2 <<<"$(eval echo \$mark_$5)"
	printf '%-14s before n1=%-5d n2=%-5d | during n1=%-5d n2=%-5d | after n1=%-5d n2=%-5d | failed so far %s\n' \
		"$1" $((b1 - a1)) $((b2 - a2)) $((c1 - b1)) $((c2 - b2)) $((d1 - c1)) $((d2 - c2)) "$(failed)"
}

# ---------------------------------------------------------------- run
start_node 1
start_node 2
ip netns exec "$ns_lb" "$haproxy" -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
hap_pid=$!
wait_state n1 UP
wait_state n2 UP
echo "HAProxy sees n1 and n2 UP"

ip netns exec "$ns_c" "$py" "$here/load.py" 10.77.0.1 8080 /index.html "$dir/www/index.html" $THREADS \
	"$dir/load.stop" "$dir/load.status" "$dir/failures.log" 200000 100 &
load_pid=$!

# step NAME ACTION...: run the action under load, with 200 requests of
# load before it and after it; report what each node served in each part
step() {
	local name=$1
	shift
	mark prev
	wait_requests 200
	mark before
	"$@" || die "$name failed"
	mark done
	wait_requests 200
	mark after
	report "$name" prev before done after
	[ "$(failed)" = 0 ] || die "$(failed) failed request(s) after $name: $(tail -n 5 "$dir/failures.log")"
}

reload() { ctl "$1" reload && wait_state "n$1" UP; }
upgrade() { ctl "$1" upgrade && wait_state "n$1" UP; }
restart() { # SIGTERM with lame_duck: DOWN at HAProxy, exit, start, UP again
	kill -TERM "${node_pid[$1]}" || return 1
	wait_state "n$1" DOWN
	wait "${node_pid[$1]}"
	local rc=$?
	[ $rc = 0 ] || { echo "node $1 exited with status $rc"; return 1; }
	start_node "$1"
	wait_state "n$1" UP
}

for n in 1 2; do step "reload n$n" reload $n; done
for n in 1 2; do step "upgrade n$n" upgrade $n; done
for n in 1 2; do step "stop+start n$n" restart $n; done
clean_sent=$(sent)
echo "PASS: reload, upgrade, stop and start of each node: $clean_sent requests, 0 failed"

# A crash: node 2's supervisor and workers SIGKILLed at once; HAProxy
# finds it down, it starts again and comes back.
kill_node() {
	node_pids 2
	disown "${node_pid[2]}"
	xargs -r kill -KILL <"$dir/n2/pids"
	node_pid[2]=
	wait_state n2 DOWN
	wait_requests 200
	start_node 2
	wait_state n2 UP
}
mark prev
wait_requests 200
mark before
failed_before=$(failed)
kill_node
mark done
wait_requests 200
mark after
report "SIGKILL n2" prev before done after
touch "$dir/load.stop"
wait "$load_pid"
load_pid=
read -r total ok bad <<<"$(status)"
crash_failed=$((bad - failed_before))
echo "SIGKILL n2: $crash_failed failed request(s) (bound: $THREADS in flight, one per client connection)"
[ -s "$dir/failures.log" ] && sed 's/^/    /' "$dir/failures.log"
[ "$crash_failed" -le $THREADS ] || die "$crash_failed failures after a SIGKILL, more than could be in flight"

# The logs: the client's address on every request of the load, HAProxy's
# on none (its health checks, PROXY v2 LOCAL, show its own).
for n in 1 2; do
	other=$(grep -v '"GET /healthz ' "$dir/n$n/access.log" | grep -vc '^10\.77\.0\.2 - - \[')
	[ "$other" = 0 ] || die "n$n logged $other request(s) from another address than the client's"
done
# A sanitizer build's report in a node's log (or HAProxy's) is a failure.
for f in "$dir"/n1/drover.log "$dir"/n2/drover.log; do
	if grep -q 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' "$f"; then
		die "a sanitizer report in $f: $(grep -m1 -A5 'Sanitizer\|runtime error:' "$f")"
	fi
done
total_logged=$(($(served 1) + $(served 2)))
echo "load: $total requests sent, $ok ok, $bad failed; the nodes logged $total_logged from 10.77.0.2"

echo "PASS: fleet"
exit 0
