#!/bin/sh
# Build (or reuse) the cached Debian bookworm tree that tests/systemd/run.sh
# boots with systemd-nspawn and tests/container/run.sh runs README command 2
# in (both through lib.sh).  Usage: mkroot.sh [CACHE_TARBALL]
# The mirror is read at run time from the host's apt sources (the first
# non-security URIs: entry of /etc/apt/sources.list.d/*.sources, or the first
# non-security "deb" line of /etc/apt/sources.list); no host name is written
# into this file.
set -eu

CACHE=${1:-${DROVER_NSPAWN_CACHE:-/var/cache/drover-nspawn/bookworm.tar.zst}}
SUITE=bookworm
# libinih1 is drover's only shared-library dependency outside minbase;
# curl is handy for checks from inside the container.
INCLUDE=systemd,systemd-sysv,dbus,procps,curl,libinih1
STAMP="$SUITE $INCLUDE"

if [ -s "$CACHE" ] && [ -f "$CACHE.stamp" ] && [ "$(cat "$CACHE.stamp")" = "$STAMP" ]; then
	echo "mkroot: reusing $CACHE"
	exit 0
fi

mirror=
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	mirror=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
	[ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
	mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } else break } }' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
	echo "mkroot: no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2
	exit 1
fi

for tool in debootstrap zstd; do
	command -v "$tool" >/dev/null || { echo "mkroot: $tool is not installed" >&2; exit 1; }
done

mkdir -p "$(dirname "$CACHE")"
work=$(mktemp -d "$(dirname "$CACHE")/build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
echo "mkroot: debootstrap $SUITE from $mirror (takes 1-2 minutes)"
timeout 900 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/root" "$mirror" \
	> "$work/debootstrap.log" 2>&1 || {
	tail -n 30 "$work/debootstrap.log" >&2
	echo "mkroot: debootstrap failed" >&2
	exit 1
}
chroot "$work/root" apt-get clean
rm -rf "$work/root/var/lib/apt/lists/"*
# A machine id is generated at first boot; keep the tree neutral.
: > "$work/root/etc/machine-id"
tar -C "$work/root" --numeric-owner -cf - . | zstd -q -T0 -o "$work/root.tar.zst"
mv "$work/root.tar.zst" "$CACHE"
echo "$STAMP" > "$CACHE.stamp"
echo "mkroot: wrote $CACHE ($(du -h "$CACHE" | cut -f1))"
