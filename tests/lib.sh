# tests/lib.sh: what the shell tests share (sourced, never run): a work
# directory that goes at exit with the drover it started, check() and its
# tally, a free port on 127.0.0.1, and starting drover in the foreground
# until it says it is ready.
#
#   t_init NAME          dir=$(mktemp ...), pid=, the EXIT trap; a script
#                        may define t_on_exit (run first at exit), and
#                        t_keep=1 keeps the directory
#   check NAME CMD...    PASS or FAIL (with the tail of CMD's output)
#   t_free_port          a port nobody listens on now
#   t_start_drover INI   drover -c INI, stderr to $dir/drover.log, waits
#                        (as the log is written, 20 s at most) for "ready"
#   t_summary            "N passed, M failed"; false if any failed

t_init() {
	dir=$(mktemp -d "${TMPDIR:-/tmp}/drover-$1.XXXXXX")
	pid=
	passed=0
	failed=0
	trap t_cleanup EXIT
}

t_cleanup() {
	if declare -F t_on_exit >/dev/null; then
		t_on_exit
	fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	if [ -n "${t_keep:-}" ]; then
		echo "kept: $dir"
	else
		rm -rf "$dir"
	fi
}

check() { # check NAME COMMAND...: the command must succeed
	local name=$1
	shift
	if "$@" >"$dir/out" 2>&1; then
		echo "PASS: $name"
		passed=$((passed + 1))
	else
		echo "FAIL: $name"
		sed 's/^/    /' "$dir/out" | tail -n 20
		failed=$((failed + 1))
	fi
}

t_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

t_start_drover() {
	: >"$dir/drover.log" # exists before tail -f looks for it
	"${drover:-./src/drover}" -c "$1" 2>"$dir/drover.log" &
	pid=$!
	# The supervisor's "ready" line as it is written (tail -f), 20 s at
	# most; tail ends with drover (--pid). No coproc, whose variables bash
	# unsets as soon as it exits.
	timeout 20 grep -q -m1 "ready: generation 1" < <(exec tail -n +1 -f --pid="$pid" "$dir/drover.log") || true
	if ! grep -q "ready: generation 1" "$dir/drover.log"; then
		echo "FAIL: drover did not start"
		cat "$dir/drover.log"
		return 1
	fi
}

t_summary() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
