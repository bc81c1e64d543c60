# shellcheck shell=bash
# The fresh Debian 12 (bookworm) tree that drover's container tests use,
# and its removal. Sourced by tests/systemd/run.sh (boots systemd 252 in
# it) and tests/container/run.sh (runs README command 2 in it). Facts
# checked on the Debian 12 VMs (PID 1 not systemd, as root) that these
# steps rely on:
# - The tree: debootstrap --variant=minbase with systemd, systemd-sysv,
#   dbus and procps, from the first non-security URIs: entry of
#   /etc/apt/sources.list.d/*.sources, read at run time (no host name is
#   written into a file). A minbase tree has no /bin/kill without procps.
# - Boot: systemd-nspawn -b needs both --register=no and --keep-unit
#   ("Failed to open system bus" otherwise), and runs inside a cgroup of our
#   own (under /sys/fs/cgroup/systemd/ and unified/) so that the
#   container's cgroups land below it; the directory is removed afterwards.
# - Talk to it with nsenter -t LEADER -a (LEADER: the container's systemd,
#   the nspawn process's child) once /proc/LEADER/root/run/systemd/private
#   exists; systemctl -M, machinectl and systemd-run -M do not work here.
# - The container shares the host's network (a socket unit on 127.0.0.1 is
#   reachable from the host) and mounts a fresh tmpfs on /tmp (copy files
#   in through nsenter ... sh -c 'cat > /var/tmp/x' < x).
# - Inside, the hard nofile limit is 20000 (LimitNOFILE= above is capped).
#   systemd 252 has no Type=notify-reload; with Type=notify and ExecReload=,
#   systemctl reload waits only if the daemon sends RELOADING=1 (with
#   MONOTONIC_USEC=) and later READY=1. KillMode=control-group would SIGTERM
#   the workers at once: drover's unit wants KillMode=mixed.
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
