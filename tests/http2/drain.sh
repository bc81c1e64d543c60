#!/bin/bash
# Drain test of HTTP/2 (tests/http2/drain.py) with hand-built frames,
# against the real drover ($DROVER_BIN, $DROVERCTL_BIN): HTTP/2 clients
# lose nothing across 20 reloads, 3 binary upgrades and worker recycling.
# Traffic goes to 127.0.0.1 only. Exit 77 (skipped) if python3-h2 is missing.
set -u
py=/usr/bin/python3 # Debian's interpreter: it sees Debian's python3-h2
if ! [ -x "$py" ] || ! "$py" -c 'import h2, hpack' 2>/dev/null; then
	echo "SKIP: python3-h2 is not installed (apt-get install python3-h2)"
	exit 77
fi
case "${DROVER_SLOW_TESTS:-yes}" in
no | 0 | off)
	echo "SKIP: DROVER_SLOW_TESTS=$DROVER_SLOW_TESTS (CI runs this once, in the plain build)"
	exit 77
	;;
esac
here=$(cd "$(dirname "$0")" && pwd)
exec "$py" "$here/drain.py" "$@"
