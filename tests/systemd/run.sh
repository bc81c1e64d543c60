#!/bin/bash
# drover under a real systemd: boot Debian bookworm's systemd 252 as PID 1 of
# a systemd-nspawn container, install the drover .deb with dpkg -i and check
# the socket unit, the service, reload, restart, stop, upgrade, HTTPS on a
# second socket unit with a certificate rotated by reload, and purge.
# Why each step is done this way: tests/nspawn/lib.sh's opening comment.
#
# Usage (as root): tests/systemd/run.sh [DEB]
#   DEB  the package to test; default: the newest drover_*.deb in
#        $DROVER_PKG_OUT (default /tmp/drover-packages), where
#        packaging/build-deb.sh puts it.
#        tests/systemd/run.sh --smoke boots the container and checks a
#        trivial unit only (the machinery, without drover).
# Environment:
#   DROVER_NSPAWN_CACHE  cached tree (default /var/cache/drover-nspawn/bookworm.tar.zst)
#   DROVER_TEST_TIMEOUT  seconds for the whole run (default 1200)
#   DROVER_KEEP=1        keep the work directory (logs) after the run
#
# Prints one "PASS: <check>" or "FAIL: <check>" line per check and exits
# non-zero if any check failed or the machinery broke. Everything is
# bounded in time, and the container is powered off and removed on exit,
# also on failure or interruption.

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PORT=8080 # the shipped drover.socket's ListenStream=

# Bound the whole run: re-execute under timeout(1); our EXIT trap cleans up.
if [ -z "${DROVER_SYSTEMD_TEST_INNER:-}" ]; then
	export DROVER_SYSTEMD_TEST_INNER=1
	exec timeout --kill-after=60 "${DROVER_TEST_TIMEOUT:-1200}" "$0" "$@"
fi

SMOKE=no
DEB=
for arg in "$@"; do
	case $arg in
	--smoke) SMOKE=yes ;;
	-h|--help) sed -n '2,22p' "$0"; exit 0 ;;
	*) DEB=$arg ;;
	esac
done

log() { printf '%s [run.sh] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; echo "FAIL: test machinery: $*"; exit 1; }

NPASS=0
NFAIL=0
pass() { echo "PASS: $1"; NPASS=$((NPASS + 1)); }
fail() { echo "FAIL: $1${2:+ -- $2}"; NFAIL=$((NFAIL + 1)); }
# check NAME COMMAND...: PASS if the command succeeds; its output is shown on FAIL.
check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "$name"
	else
		fail "$name" "exit $rc"
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    /' >&2
	fi
	return $rc
}

[ "$(id -u)" = 0 ] || die "must run as root"

# ---------------------------------------------------------------- host tools
# shellcheck source=../nspawn/lib.sh
. "$HERE/../nspawn/lib.sh"
nspawn_host_tools curl:curl python3:python3 nsenter:util-linux ss:iproute2

if [ "$SMOKE" = no ]; then
	if [ -z "$DEB" ]; then
		DEB=$(ls -t "${DROVER_PKG_OUT:-/tmp/drover-packages}"/drover_*.deb 2>/dev/null | grep -v dbgsym | head -n1)
	fi
	[ -n "$DEB" ] && [ -f "$DEB" ] || die "no .deb given and none in ${DROVER_PKG_OUT:-/tmp/drover-packages} (run packaging/build-deb.sh first)"
	DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
	log "testing $DEB"
fi

# The container shares the host's network: the socket unit's port must be free.
if [ -n "$(ss -Hltn "sport = :$PORT" 2>/dev/null)" ]; then
	ss -ltnp "sport = :$PORT" >&2
	die "something on the host already listens on port $PORT (drover.socket needs it); stop it first"
fi

# ---------------------------------------------------------------- container
MACHINE=drover-test-$$
NSPAWN_PID=
LEADER=
BGPIDS=

cleanup() {
	local rc=$? p i
	trap - EXIT INT TERM
	for p in $BGPIDS; do kill "$p" 2>/dev/null; done
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		log "powering off the container"
		if [ -n "$LEADER" ] && kill -0 "$LEADER" 2>/dev/null; then
			timeout 10 nsenter -t "$LEADER" -a systemctl poweroff --no-block >/dev/null 2>&1
		fi
		for i in $(seq 1 150); do
			kill -0 "$NSPAWN_PID" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$NSPAWN_PID" 2>/dev/null; then
			log "container did not power off in 30 s; terminating systemd-nspawn ($NSPAWN_PID)"
			kill "$NSPAWN_PID" 2>/dev/null
			sleep 3
			kill -9 "$NSPAWN_PID" 2>/dev/null
		fi
		wait "$NSPAWN_PID" 2>/dev/null
	fi
	nspawn_cleanup
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

nspawn_tree drover-systemd-test

log "booting $MACHINE"
nspawn_in_cgroup systemd-nspawn -D "$ROOT" -b -M "$MACHINE" --register=no --keep-unit --console=passive \
	>"$WORK/nspawn.log" 2>&1 &
NSPAWN_PID=$!

for i in $(seq 1 100); do
	LEADER=$(pgrep -P "$NSPAWN_PID" 2>/dev/null | head -n1)
	[ -n "$LEADER" ] && break
	kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$WORK/nspawn.log" >&2; die "systemd-nspawn exited"; }
	sleep 0.1
done
[ -n "$LEADER" ] || die "no container leader process"
for i in $(seq 1 300); do
	[ -S "/proc/$LEADER/root/run/systemd/private" ] && break
	sleep 0.1
done
[ -S "/proc/$LEADER/root/run/systemd/private" ] || { tail -n 30 "$WORK/nspawn.log" >&2; die "container systemd did not come up"; }

# in_ct [-t SECONDS] CMD...: run CMD inside the container (default bound: 60 s).
in_ct() {
	local t=60
	if [ "$1" = -t ]; then t=$2; shift 2; fi
	timeout --kill-after=5 "$t" nsenter -t "$LEADER" -a "$@"
}
state=$(in_ct -t 120 systemctl is-system-running --wait 2>&1)
log "container $MACHINE (leader pid $LEADER) is $state"
case $state in
running) ;;
degraded) in_ct systemctl --failed --no-legend >&2 ;;
*) die "container system state: $state" ;;
esac
in_ct systemctl --version | head -n1 >&2

if [ "$SMOKE" = yes ]; then
	cat >"$ROOT/etc/systemd/system/smoke.service" <<-'EOF'
	[Service]
	Type=notify
	NotifyAccess=all
	ExecStart=/bin/sh -c 'systemd-notify --pid=$$$$ --ready --status="smoke ok"; exec sleep infinity'
	EOF
	in_ct systemctl daemon-reload
	check "smoke: a Type=notify unit starts" in_ct systemctl start smoke.service
	check "smoke: StatusText is reported" sh -c "[ \"\$(timeout 10 nsenter -t $LEADER -a systemctl show -P StatusText smoke.service)\" = 'smoke ok' ]"
	check "smoke: unit stops" in_ct systemctl stop smoke.service
	echo "summary: $NPASS passed, $NFAIL failed"
	[ "$NFAIL" = 0 ]
	exit
fi

# ---------------------------------------------------------------- helpers
show() { in_ct systemctl show -P "$2" "$1" 2>/dev/null; }
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT${1:-/}"; }
listening() { [ -n "$(ss -Hltn "sport = :$PORT" 2>/dev/null)" ]; }
# Children of a pid inside the container, and their command names.
children() { in_ct sh -c "cat /proc/$1/task/*/children 2>/dev/null" | tr ' ' '\n' | grep -v '^$'; }
comm_of() { in_ct cat "/proc/$1/comm" 2>/dev/null; }

# load_start NAME [LOAD.PY ARGS]: bounded load from the host in the background.
LOAD_PID=
load_start() {
	LOAD_OUT=$WORK/load-$1.json
	local name=$1
	shift
	rm -f "$WORK/stop-load"
	python3 "$HERE/load.py" --port "$PORT" --conns 8 --max-seconds 90 --max-requests 200000 \
		--stopfile "$WORK/stop-load" "$@" >"$LOAD_OUT" 2>"$WORK/load-$name.err" &
	LOAD_PID=$!
	BGPIDS="$BGPIDS $LOAD_PID"
	sleep 1
}
# load_stop NAME: stop it and PASS/FAIL the check on its result.
load_stop() {
	local name=$1 rc
	sleep 1
	touch "$WORK/stop-load"
	wait "$LOAD_PID"
	rc=$?
	local summary
	summary=$(cat "$LOAD_OUT" 2>/dev/null)
	log "load: $summary"
	if [ $rc -eq 0 ]; then
		pass "$name ($summary)"
	else
		fail "$name" "${summary:-no result}"
		cat "$WORK/load-"*.err >&2 2>/dev/null
	fi
}
wait_active() { # unit state seconds
	local i
	for i in $(seq 1 $((${3:-30} * 10))); do
		[ "$(show "$1" ActiveState)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
dump_unit() {
	in_ct systemctl status --no-pager -l "$1" >&2 2>&1
	in_ct journalctl -u "$1" --no-pager -n 30 >&2 2>&1
}

# ---------------------------------------------------------------- install
log "installing the package"
in_ct sh -c 'cat > /var/tmp/drover.deb' <"$DEB" || die "cannot copy the .deb into the container"
if ! in_ct -t 180 env DEBIAN_FRONTEND=noninteractive dpkg -i /var/tmp/drover.deb >"$WORK/dpkg-install.log" 2>&1; then
	cat "$WORK/dpkg-install.log" >&2
	fail "package installs with dpkg -i"
	exit 1
fi
pass "package installs with dpkg -i"

# 1. The socket unit listens; the service is not started before the first connection.
sock_state=$(show drover.socket ActiveState)
svc_state=$(show drover.service ActiveState)
if [ "$sock_state" = active ] && [ "$svc_state" = inactive ] && listening; then
	pass "socket unit listening on 127.0.0.1:$PORT, drover.service not started before the first connection"
else
	fail "socket unit listening on 127.0.0.1:$PORT, drover.service not started before the first connection" \
		"drover.socket=$sock_state drover.service=$svc_state listening=$(listening && echo yes || echo no)"
	dump_unit drover.socket
fi

# 2. The first request starts the service and gets 200.
code=$(http_code /)
if [ "$code" = 200 ] && wait_active drover.service active 10; then
	pass "first request starts drover.service and gets 200"
else
	fail "first request starts drover.service and gets 200" "HTTP $code, drover.service $(show drover.service ActiveState)"
	dump_unit drover.service
	exit 1 # nothing else can work
fi

# 3. systemctl show: active, StatusText from drover, MainPID = the supervisor
#    (comm "drover"; its children are the workers, comm "drover..." too).
sleep 1
MAINPID=$(show drover.service MainPID)
status_text=$(show drover.service StatusText)
active=$(show drover.service ActiveState)
main_comm=$(comm_of "$MAINPID")
kids=$(children "$MAINPID")
nkids=0
kid_comms=
for k in $kids; do
	nkids=$((nkids + 1))
	kid_comms="$kid_comms $(comm_of "$k")"
done
log "MainPID=$MAINPID ($main_comm) children:$kid_comms StatusText=$status_text"
if [ "$active" = active ] && [ -n "$status_text" ] && [ "$main_comm" = drover ] && [ "$nkids" -ge 1 ] &&
	! printf '%s\n' $kid_comms | grep -qv '^drover'; then
	pass "systemctl show: ActiveState=active, StatusText=\"$status_text\", MainPID=$MAINPID is the supervisor ($nkids drover workers below it)"
else
	fail "systemctl show: ActiveState, StatusText, MainPID" \
		"ActiveState=$active StatusText='$status_text' MainPID=$MAINPID comm=$main_comm children:$kid_comms"
fi
FIRST_MAINPID=$MAINPID
FIRST_WORKERS=$kids

# 4. Reload under load loses no request; the workers are replaced, the PID is not.
load_start reload
reload_ok=yes
for n in 1 2 3; do
	if ! in_ct -t 100 systemctl reload drover.service >"$WORK/reload-$n.log" 2>&1; then
		reload_ok="no (reload $n: $(cat "$WORK/reload-$n.log"))"
	fi
	sleep 1
done
load_stop "systemctl reload (3 times) under load loses no request"
MAINPID=$(show drover.service MainPID)
new_workers=$(children "$MAINPID")
if [ "$reload_ok" = yes ] && [ "$MAINPID" = "$FIRST_MAINPID" ] && [ -n "$new_workers" ] &&
	[ -z "$(comm -12 <(printf '%s\n' $FIRST_WORKERS | sort) <(printf '%s\n' $new_workers | sort))" ]; then
	pass "systemctl reload succeeds, keeps MainPID $MAINPID and replaces every worker"
else
	fail "systemctl reload succeeds, keeps MainPID and replaces every worker" \
		"reload ok: $reload_ok; MainPID $FIRST_MAINPID -> $MAINPID; workers [$(echo $FIRST_WORKERS)] -> [$(echo $new_workers)]"
fi

# 5. Reload with a broken config fails; the old config keeps serving.
in_ct cp -p /etc/drover/drover.ini /var/tmp/drover.ini.good
in_ct sh -c 'printf "\n[bogus_section_for_test]\nno_such_key = 1\n" >> /etc/drover/drover.ini'
journal_cursor=$(in_ct journalctl -u drover.service -n 0 --show-cursor --no-pager 2>/dev/null | sed -n 's/^-- cursor: //p')
if in_ct -t 100 systemctl reload drover.service >"$WORK/reload-bad.log" 2>&1; then
	bad_reload=succeeded
else
	bad_reload=failed
fi
code=$(http_code /)
after=$(show drover.service ActiveState)
after_pid=$(show drover.service MainPID)
bad_status=$(show drover.service StatusText)
in_ct cp -p /var/tmp/drover.ini.good /etc/drover/drover.ini
if [ "$bad_reload" = failed ] && [ "$code" = 200 ] && [ "$after" = active ] && [ "$after_pid" = "$MAINPID" ]; then
	pass "systemctl reload with a broken config fails, old config keeps serving (StatusText=\"$bad_status\")"
else
	fail "systemctl reload with a broken config fails, old config keeps serving" \
		"reload $bad_reload, HTTP $code, ActiveState=$after, MainPID $MAINPID -> $after_pid"
fi
if printf '%s' "$bad_status" | grep -qi fail; then
	pass "StatusText reports the failed reload"
else
	fail "StatusText reports the failed reload" "StatusText=\"$bad_status\""
fi
if in_ct -t 100 systemctl reload drover.service >"$WORK/reload-restore.log" 2>&1 && [ "$(http_code /)" = 200 ]; then
	pass "systemctl reload after restoring the config succeeds"
else
	fail "systemctl reload after restoring the config succeeds" "$(cat "$WORK/reload-restore.log")"
fi

# 6. The journal has drover's lines at the right priorities: the broken
#    config was logged as an error naming the file, normal operation at
#    info/notice, and no raw "<N>" prefixes leaked into messages.
in_ct journalctl -u drover.service -o json --no-pager >"$WORK/journal.json" 2>/dev/null
journal_result=$(python3 - "$WORK/journal.json" "$journal_cursor" 2>&1 <<'EOF'
import json, re, sys
entries = []
after_cursor = False
cursor = sys.argv[2]
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("SYSLOG_IDENTIFIER") != "drover":
        continue
    msg = e.get("MESSAGE")
    if not isinstance(msg, str):
        continue
    e["_after"] = after_cursor
    entries.append(e)
    if cursor and e.get("__CURSOR") == cursor:
        after_cursor = True
if not cursor:
    for e in entries:
        e["_after"] = True
by_prio = {}
for e in entries:
    by_prio.setdefault(int(e.get("PRIORITY", 6)), []).append(e["MESSAGE"])
print("lines by PRIORITY:", ", ".join("%d: %d" % (p, len(m)) for p, m in sorted(by_prio.items())))
problems = []
leaked = [e["MESSAGE"] for e in entries if re.match(r"<[0-7]>", e["MESSAGE"])]
if leaked:
    problems.append("raw priority prefixes in messages: %r" % leaked[:3])
if not any(p in by_prio for p in (5, 6)):
    problems.append("no notice/info lines")
errs = [e for e in entries if e["_after"] and int(e.get("PRIORITY", 6)) <= 3
        and ("bogus_section_for_test" in e["MESSAGE"] or "drover.ini" in e["MESSAGE"])]
if not errs:
    problems.append("the broken config was not logged at priority err or higher")
else:
    print("PRIORITY=%s for: %s" % (errs[0].get("PRIORITY"), errs[0]["MESSAGE"]))
for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
EOF
)
if [ $? -eq 0 ]; then
	pass "journalctl -u drover: drover's lines at the right priorities ($(printf '%s' "$journal_result" | tr '\n' ';' | sed 's/;$//'))"
else
	fail "journalctl -u drover: drover's lines at the right priorities" "$(printf '%s' "$journal_result" | tr '\n' ';')"
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l); print("   ", e.get("PRIORITY"), e.get("SYSLOG_IDENTIFIER"), e.get("MESSAGE"))' "$WORK/journal.json" | tail -n 30 >&2
fi

# 7. Restart under load loses no request (the socket unit holds the listener).
load_start restart
if in_ct -t 100 systemctl restart drover.service >"$WORK/restart.log" 2>&1; then restart_rc=0; else restart_rc=$?; fi
load_stop "systemctl restart under load loses no request"
NEW_MAINPID=$(show drover.service MainPID)
if [ $restart_rc -eq 0 ] && [ "$(show drover.service ActiveState)" = active ] && [ "$NEW_MAINPID" != "$MAINPID" ]; then
	pass "systemctl restart succeeds with a new MainPID ($MAINPID -> $NEW_MAINPID)"
else
	fail "systemctl restart succeeds with a new MainPID" "rc=$restart_rc $(cat "$WORK/restart.log") MainPID $MAINPID -> $NEW_MAINPID"
fi
MAINPID=$NEW_MAINPID

# 8. Stop drains an in-flight download to completion.
in_ct sh -c 'head -c 50M /dev/urandom > /usr/share/drover/www/big.bin && chmod 644 /usr/share/drover/www/big.bin'
want_sha=$(in_ct sha256sum /usr/share/drover/www/big.bin | cut -d' ' -f1)
want_size=$((50 * 1024 * 1024))
rm -f "$WORK/big.bin"
# 10 MB/s: about 5 s, well inside shutdown_timeout (30 s).
curl -s --max-time 60 --limit-rate 10M -o "$WORK/big.bin" -w '%{http_code}' "http://127.0.0.1:$PORT/big.bin" >"$WORK/big.code" 2>"$WORK/big.err" &
CURL_PID=$!
BGPIDS="$BGPIDS $CURL_PID"
sleep 1.5
partial=$(stat -c %s "$WORK/big.bin" 2>/dev/null || echo 0)
t0=$(date +%s.%N)
if in_ct -t 60 systemctl stop drover.service >"$WORK/stop.log" 2>&1; then stop_rc=0; else stop_rc=$?; fi
t1=$(date +%s.%N)
wait "$CURL_PID"
curl_rc=$?
got_size=$(stat -c %s "$WORK/big.bin" 2>/dev/null || echo 0)
got_sha=$(sha256sum "$WORK/big.bin" 2>/dev/null | cut -d' ' -f1)
stop_secs=$(printf '%.1f' "$(echo "$t1 - $t0" | bc 2>/dev/null || python3 -c "print($t1 - $t0)")")
stopped=$(show drover.service ActiveState)
result=$(show drover.service Result)
if [ $stop_rc -eq 0 ] && [ $curl_rc -eq 0 ] && [ "$(cat "$WORK/big.code")" = 200 ] && [ "$got_size" = "$want_size" ] &&
	[ "$got_sha" = "$want_sha" ] && [ "$partial" -lt "$want_size" ] && [ "$stopped" = inactive ] && [ "$result" = success ]; then
	pass "systemctl stop drains an in-flight download to completion (50 MiB, sha256 ok, $partial bytes done when stop began, stop took ${stop_secs}s, Result=$result)"
else
	fail "systemctl stop drains an in-flight download to completion" \
		"stop rc=$stop_rc curl rc=$curl_rc HTTP $(cat "$WORK/big.code") size $got_size/$want_size (at stop: $partial) sha ok: $([ "$got_sha" = "$want_sha" ] && echo yes || echo no) state=$stopped Result=$result"
	cat "$WORK/big.err" >&2
	dump_unit drover.service
fi
in_ct rm -f /usr/share/drover/www/big.bin
rm -f "$WORK/big.bin"

# 9. Installing the package again over itself (the upgrade path) under load
#    loses no request; the running server is upgraded in place (same MainPID).
code=$(http_code /) # socket activation starts it again
wait_active drover.service active 10
MAINPID=$(show drover.service MainPID)
old_workers=$(children "$MAINPID")
load_start upgrade
if in_ct -t 180 env DEBIAN_FRONTEND=noninteractive dpkg -i /var/tmp/drover.deb >"$WORK/dpkg-reinstall.log" 2>&1; then dpkg_rc=0; else dpkg_rc=$?; fi
load_stop "dpkg -i over the installed package under load loses no request"
UP_MAINPID=$(show drover.service MainPID)
up_workers=$(children "$UP_MAINPID")
if grep -q "in-place binary upgrade.*failed" "$WORK/dpkg-reinstall.log"; then
	in_place="no: $(grep -m1 "in-place binary upgrade" "$WORK/dpkg-reinstall.log")"
else
	in_place=yes
fi
if [ $dpkg_rc -eq 0 ] && [ "$in_place" = yes ] && [ "$code" = 200 ] && [ "$(show drover.service ActiveState)" = active ] && [ "$UP_MAINPID" = "$MAINPID" ] &&
	[ -z "$(comm -12 <(printf '%s\n' $old_workers | sort) <(printf '%s\n' $up_workers | sort))" ]; then
	pass "package upgrade keeps drover running in place (MainPID $MAINPID kept, workers replaced)"
else
	fail "package upgrade keeps drover running in place" \
		"dpkg rc=$dpkg_rc, droverctl upgrade in place: $in_place, MainPID $MAINPID -> $UP_MAINPID, state $(show drover.service ActiveState), workers [$(echo $old_workers)] -> [$(echo $up_workers)]"
	cat "$WORK/dpkg-reinstall.log" >&2
fi

# 9b. HTTPS on the second socket unit (drover-https.socket), set up as its
#     comments say: the key 0640 root:ssl-cert in /etc/ssl/private, read by
#     the dynamic user through SupplementaryGroups=ssl-cert. A certificate
#     renewed in place and put in force by systemctl reload under HTTPS load
#     loses no request, and new connections get the new certificate.
HTTPS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TLS=$WORK/tls
mkdir -p "$TLS"
printf 'subjectAltName=DNS:localhost\n' >"$TLS/ext"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TLS/ca.key" -out "$TLS/ca.pem" \
	-days 2 -subj "/CN=drover test CA" >/dev/null 2>&1 || die "openssl cannot make the test CA"
mkcert() { # NAME SERIAL
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TLS/$1.key" -out "$TLS/$1.csr" \
		-subj "/CN=localhost" >/dev/null 2>&1 &&
		openssl x509 -req -in "$TLS/$1.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -set_serial "$2" -days 2 \
			-extfile "$TLS/ext" -out "$TLS/$1.pem" >/dev/null 2>&1 || die "openssl cannot make certificate $1"
}
mkcert first 4097
mkcert renewed 8193
install_cert() { # NAME: over the files drover.ini names, as a renewal does
	cp "$TLS/$1.pem" "$ROOT/etc/ssl/certs/drover-test.pem" &&
		cp "$TLS/$1.key" "$ROOT/etc/ssl/private/drover-test.key" &&
		in_ct sh -c 'chgrp ssl-cert /etc/ssl/private/drover-test.key && chmod 0640 /etc/ssl/private/drover-test.key'
}
https_serial() {
	openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername localhost -CAfile "$TLS/ca.pem" </dev/null 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
in_ct sh -c 'getent group ssl-cert >/dev/null || groupadd --system ssl-cert; mkdir -p /etc/ssl/private /etc/ssl/certs &&
	chgrp ssl-cert /etc/ssl/private && chmod 0710 /etc/ssl/private' || die "cannot set up /etc/ssl/private"
install_cert first || die "cannot install the certificate"
mkdir -p "$ROOT/etc/systemd/system/drover-https.socket.d" "$ROOT/etc/systemd/system/drover.service.d"
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$HTTPS_PORT" >"$ROOT/etc/systemd/system/drover-https.socket.d/test.conf"
printf '[Unit]\nRequires=drover-https.socket\nAfter=drover-https.socket\n[Service]\nSockets=drover.socket drover-https.socket\nSupplementaryGroups=ssl-cert\n' \
	>"$ROOT/etc/systemd/system/drover.service.d/https.conf"
cp "$ROOT/etc/drover/drover.ini" "$WORK/drover.ini.before-https"
printf '\n[listener https]\ntls = yes\n\n[certificate test]\ncertificate = /etc/ssl/certs/drover-test.pem\nprivate_key = /etc/ssl/private/drover-test.key\n' \
	>>"$ROOT/etc/drover/drover.ini"
in_ct systemctl daemon-reload
# systemd refuses to start a socket whose service is running (it could not
# pass the new fd), so: stop, start the socket, start (drover.socket queues
# the HTTP connections meanwhile), as drover-https.socket's comment says.
if in_ct -t 100 systemctl stop drover.service >"$WORK/https.log" 2>&1 &&
	in_ct systemctl enable --now drover-https.socket >>"$WORK/https.log" 2>&1 &&
	in_ct -t 100 systemctl start drover.service >>"$WORK/https.log" 2>&1 &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$TLS/ca.pem" \
		--resolve "localhost:$HTTPS_PORT:127.0.0.1" "https://localhost:$HTTPS_PORT/")" = 200 ] &&
	[ "$(https_serial)" = 1001 ]; then
	pass "HTTPS through drover-https.socket, key 0640 root:ssl-cert read with SupplementaryGroups=ssl-cert"
	load_start https --port "$HTTPS_PORT" --tls-ca "$TLS/ca.pem" --servername localhost
	install_cert renewed
	if in_ct -t 100 systemctl reload drover.service >>"$WORK/https.log" 2>&1; then reload_rc=0; else reload_rc=$?; fi
	load_stop "certificate renewed and put in force by systemctl reload under HTTPS load loses no request"
	serial=$(https_serial)
	if [ $reload_rc -eq 0 ] && [ "$serial" = 2001 ]; then
		pass "after the reload, new HTTPS connections get the renewed certificate (serial $serial)"
	else
		fail "after the reload, new HTTPS connections get the renewed certificate" "reload rc=$reload_rc serial ${serial:-none}"
		cat "$WORK/https.log" >&2
	fi
	# The other way in: systemd credentials. The key becomes 0600 root (the
	# dynamic user cannot open it), systemd copies both files in at start,
	# and a restart (lossless through the socket units) picks them up.
	in_ct sh -c 'chgrp root /etc/ssl/private/drover-test.key && chmod 0600 /etc/ssl/private/drover-test.key'
	printf '[Unit]\nRequires=drover-https.socket\nAfter=drover-https.socket\n[Service]\nSockets=drover.socket drover-https.socket\nLoadCredential=drover.pem:/etc/ssl/certs/drover-test.pem\nLoadCredential=drover.key:/etc/ssl/private/drover-test.key\n' \
		>"$ROOT/etc/systemd/system/drover.service.d/https.conf"
	sed -i -e 's|^certificate = /etc/ssl/certs/drover-test.pem|certificate = /run/credentials/drover.service/drover.pem|' \
		-e 's|^private_key = /etc/ssl/private/drover-test.key|private_key = /run/credentials/drover.service/drover.key|' \
		"$ROOT/etc/drover/drover.ini"
	in_ct systemctl daemon-reload
	load_start credentials --port "$HTTPS_PORT" --tls-ca "$TLS/ca.pem" --servername localhost
	if in_ct -t 100 systemctl restart drover.service >>"$WORK/https.log" 2>&1; then cred_rc=0; else cred_rc=$?; fi
	load_stop "switching to LoadCredential= keys by systemctl restart under HTTPS load loses no request"
	serial=$(https_serial)
	if [ $cred_rc -eq 0 ] && [ "$serial" = 2001 ] &&
		in_ct test -r /run/credentials/drover.service/drover.key; then
		pass "HTTPS with the key passed by LoadCredential= (0600 root at its source; serial $serial)"
	else
		fail "HTTPS with the key passed by LoadCredential=" "restart rc=$cred_rc serial ${serial:-none}"
		dump_unit drover.service
	fi
else
	fail "HTTPS through drover-https.socket, key 0640 root:ssl-cert read with SupplementaryGroups=ssl-cert" \
		"$(cat "$WORK/https.log"); serial $(https_serial)"
	dump_unit drover-https.socket
	dump_unit drover.service
fi
# Back to the shipped setup for what follows.
in_ct systemctl disable --now drover-https.socket >/dev/null 2>&1
rm -rf "$ROOT/etc/systemd/system/drover-https.socket.d" "$ROOT/etc/systemd/system/drover.service.d/https.conf"
cp "$WORK/drover.ini.before-https" "$ROOT/etc/drover/drover.ini"
in_ct systemctl daemon-reload
in_ct -t 100 systemctl restart drover.service >/dev/null 2>&1

# 10. Without the socket unit: drover binds itself, and the fd store keeps
#     its listener across systemctl restart.
in_ct systemctl stop drover.socket drover.service >/dev/null 2>&1
if in_ct -t 100 systemctl start drover-standalone.service >"$WORK/standalone.log" 2>&1 && [ "$(http_code /)" = 200 ]; then
	pass "drover-standalone.service (no socket unit) starts and serves"
	fdstore=$(show drover-standalone.service NFileDescriptorStore)
	SA_PID=$(show drover-standalone.service MainPID)
	load_start standalone
	if in_ct -t 100 systemctl restart drover-standalone.service >>"$WORK/standalone.log" 2>&1; then sa_rc=0; else sa_rc=$?; fi
	load_stop "drover-standalone.service: systemctl restart under load loses no request (fd store held $fdstore fds)"
	[ $sa_rc -eq 0 ] || fail "drover-standalone.service restart" "$(cat "$WORK/standalone.log")"
else
	fail "drover-standalone.service (no socket unit) starts and serves" "$(cat "$WORK/standalone.log")"
	dump_unit drover-standalone.service
fi
in_ct systemctl stop drover-standalone.service >/dev/null 2>&1
in_ct systemctl start drover.socket >/dev/null 2>&1
[ "$(http_code /)" = 200 ] || log "warning: socket activation did not come back after the standalone check"

# 11. dpkg --purge leaves no drover process running (and nothing listening).
if in_ct -t 180 env DEBIAN_FRONTEND=noninteractive dpkg --purge drover >"$WORK/dpkg-purge.log" 2>&1; then purge_rc=0; else purge_rc=$?; fi
sleep 0.5
left=$(in_ct pgrep -a drover)
units=$(in_ct systemctl list-units --all --no-legend 'drover*' 2>/dev/null | grep -v 'not-found' )
if [ $purge_rc -eq 0 ] && [ -z "$left" ] && ! listening && [ ! -e "$ROOT/etc/drover" ] &&
	[ ! -e "$ROOT/var/log/drover" ] && [ ! -L "$ROOT/var/log/drover" ] && [ ! -e "$ROOT/var/log/private/drover" ]; then
	pass "dpkg --purge leaves no drover process running, nothing listening on $PORT, no /etc/drover, no /var/log/drover"
else
	fail "dpkg --purge leaves nothing running" \
		"dpkg rc=$purge_rc; processes: ${left:-none}; listening: $(listening && echo yes || echo no); units: ${units:-none}; /etc/drover: $([ -e "$ROOT/etc/drover" ] && echo present || echo gone); /var/log/drover: $(ls -d "$ROOT/var/log/drover" "$ROOT/var/log/private/drover" 2>/dev/null | sed "s|^$ROOT||" | tr '\n' ' ')"
	cat "$WORK/dpkg-purge.log" >&2
fi

echo "summary: $NPASS passed, $NFAIL failed"
[ "$NFAIL" = 0 ]
