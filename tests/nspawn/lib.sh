# shellcheck shell=bash
# The fresh Debian 12 (bookworm) tree that drover's container tests use,
# and its removal. Sourced by tests/systemd/run.sh (boots systemd 252 in
# it) and tests/container/run.sh (runs README command 2 in it). Why each
# step is done this way: ../../../shared/SYSTEMD-TESTING.md.
#
# The caller defines log MSG and die MSG (which exits), and calls
# nspawn_cleanup from its EXIT trap.
#   nspawn_host_tools [CMD:PKG ...]  install what the host lacks (as root)
#   nspawn_tree NAME                 WORK=/var/tmp/NAME.XXXXXX, ROOT=$WORK/root:
#                                    the cached tree unpacked (built first by
#                                    mkroot.sh if there is none), and a cgroup
#                                    of our own, CG
#   nspawn_in_cgroup CMD...          exec CMD (systemd-nspawn) inside CG, so that
#                                    the container's cgroups land below it; call
#                                    it as a background job (&, then $! is CMD's
#                                    pid) or in a subshell
#   nspawn_cleanup                   kill what is left in CG and remove it,
#                                    unmount and delete WORK (DROVER_KEEP=1
#                                    keeps WORK without the tree: the logs)
# Environment: DROVER_NSPAWN_CACHE (default
# /var/cache/drover-nspawn/bookworm.tar.zst), DROVER_KEEP.

NSPAWN_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NSPAWN_CACHE=${DROVER_NSPAWN_CACHE:-/var/cache/drover-nspawn/bookworm.tar.zst}
WORK=
ROOT=
CG=

nspawn_host_tools() {
	local need= want cmd
	for want in debootstrap:debootstrap systemd-nspawn:systemd-container zstd:zstd "$@"; do
		cmd=${want%%:*}
		command -v "$cmd" >/dev/null || need="$need ${want#*:}"
	done
	[ -n "$need" ] || return 0
	log "installing host packages:$need"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -q >/dev/null || die "apt-get update failed"
	# --no-install-recommends: systemd-container recommends libnss-mymachines,
	# which edits /etc/nsswitch.conf.
	# shellcheck disable=SC2086
	timeout 600 apt-get install -y -q --no-install-recommends $need >/dev/null ||
		die "apt-get install$need failed"
}

nspawn_tree() {
	"$NSPAWN_LIB/mkroot.sh" "$NSPAWN_CACHE" >&2 || die "could not build the container tree"
	WORK=$(mktemp -d "/var/tmp/$1.XXXXXX") || die "mktemp failed"
	ROOT=$WORK/root
	CG=$1-$$
	log "unpacking $NSPAWN_CACHE"
	mkdir -p "$ROOT"
	zstd -q -d -c "$NSPAWN_CACHE" | tar -C "$ROOT" --numeric-owner -xf - || die "could not unpack $NSPAWN_CACHE"
	local d
	for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
		[ -d "$d" ] && { mkdir -p "$d/$CG" || die "cannot create cgroup $d/$CG"; }
	done
	return 0
}

nspawn_in_cgroup() {
	local d
	for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
		[ -d "$d/$CG" ] && echo "$BASHPID" >"$d/$CG/cgroup.procs"
	done
	exec "$@"
}

nspawn_cleanup() {
	local d p
	# Whatever is left in our own cgroup was started by this run.
	if [ -n "$CG" ]; then
		for d in /sys/fs/cgroup/systemd/$CG /sys/fs/cgroup/unified/$CG; do
			[ -d "$d" ] || continue
			for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
				kill -9 "$p" 2>/dev/null
			done
			sleep 0.2
			find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	fi
	[ -n "$ROOT" ] && [ -d "$ROOT" ] || return 0
	# nspawn unmounts what it mounted; make sure before deleting the tree.
	if findmnt -rn -o TARGET | grep -q "^$ROOT"; then
		umount -R "$ROOT" 2>/dev/null || umount -lR "$ROOT" 2>/dev/null
	fi
	if findmnt -rn -o TARGET | grep -q "^$ROOT"; then
		log "mounts left under $ROOT; not deleting it"
	elif [ "${DROVER_KEEP:-0}" = 1 ]; then
		rm -rf "$ROOT"
		log "logs kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}
