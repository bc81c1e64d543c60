#!/bin/bash
# README command 2 in a fresh Debian 12 container, as a newcomer runs it:
# a clean clone of this repository's HEAD inside the debootstrapped bookworm
# tree that tests/systemd/run.sh boots (tests/nspawn/), run with
# systemd-nspawn as an ordinary (non-boot) container with nspawn's default
# capabilities and system-call filter. The command is read from the clone's
# README.md, so what runs is what the README says. Tests that need what the
# container does not grant skip with their reason (automake SKIP); this
# script prints those reasons and fails if the command fails.
#
# Usage (as root): tests/container/run.sh
# Environment:
#   DROVER_NSPAWN_CACHE  cached tree (default /var/cache/drover-nspawn/bookworm.tar.zst)
#   DROVER_NSPAWN_ARGS   more systemd-nspawn options, split on spaces; e.g.
#                        --drop-capability=CAP_SYS_ADMIN,CAP_SYS_PTRACE for a
#                        Docker-like capability set
#   DROVER_TEST_TIMEOUT  seconds for the whole run (default 2400)
#   DROVER_KEEP=1        keep the work directory (the logs) after the run
# Uncommitted changes are not in the clone (a warning says so).

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)

# Bound the whole run: re-execute under timeout(1); our EXIT trap cleans up.
if [ -z "${DROVER_CONTAINER_TEST_INNER:-}" ]; then
	export DROVER_CONTAINER_TEST_INNER=1
	exec timeout --kill-after=60 "${DROVER_TEST_TIMEOUT:-2400}" "$0" "$@"
fi

log() { printf '%s [container] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
# shellcheck source=../nspawn/lib.sh
. "$HERE/../nspawn/lib.sh"
nspawn_host_tools git:git

REV=$(git -C "$TOP" rev-parse HEAD) || die "$TOP is not a git checkout"
if [ -n "$(git -C "$TOP" status --porcelain --untracked-files=no)" ]; then
	log "warning: uncommitted changes in $TOP are not tested (the clone has $REV)"
fi

trap 'rc=$?; trap - EXIT INT TERM; nspawn_cleanup; exit $rc' EXIT
trap 'log "interrupted"; exit 130' INT TERM

nspawn_tree drover-container-test
SRC=/root/drover
git clone -q --no-hardlinks "$TOP" "$ROOT$SRC" && git -C "$ROOT$SRC" checkout -q --detach "$REV" ||
	die "cannot clone $TOP into the container"

# The second command of README.md's first sh block, the line after "# 2.".
cmd=$(awk '/^```sh/ { inblock = 1; next } /^```/ { if (inblock) exit } inblock && /^# 2\./ { want = 1; next }
	inblock && want && !/^#/ && NF { print; exit }' "$ROOT$SRC/README.md")
[ -n "$cmd" ] || die "no command 2 in README.md"
log "in a fresh Debian 12 container (clone of ${REV:0:12}): $cmd"

t0=$(date +%s)
# shellcheck disable=SC2086
( nspawn_in_cgroup systemd-nspawn -q -D "$ROOT" -M "drover-ct-$$" --register=no --keep-unit --console=pipe \
	${DROVER_NSPAWN_ARGS:-} --chdir="$SRC" bash -c "$cmd" ) </dev/null >"$WORK/check.log" 2>&1
rc=$?
secs=$(($(date +%s) - t0))

# What the suite says, and why anything was skipped.
sed -n '/^# TOTAL:/,/^# ERROR:/p' "$WORK/check.log"
for f in "$ROOT$SRC"/tests/*.log "$ROOT$SRC"/tests/*/*.log; do
	sed -n "s/^SKIP: /  $(basename "$f" .log): skipped /p" "$f"
done
if [ $rc -ne 0 ]; then
	log "README command 2 failed in the container (exit $rc, ${secs}s); the end of its output:"
	tail -n 60 "$WORK/check.log" >&2
	[ -f "$ROOT$SRC/test-suite.log" ] && tail -n 120 "$ROOT$SRC/test-suite.log" >&2
	exit 1
fi
grep -q '^# FAIL: *0$' "$WORK/check.log" && grep -q '^# ERROR: *0$' "$WORK/check.log" ||
	die "no test summary with 0 failures in the output"
log "README command 2 passed in the container (${secs}s)"
