#!/bin/sh
# Build drover's Debian package the way Debian tooling expects it: from the
# release tarball ("make dist"), with packaging/debian copied in as debian/,
# by dpkg-buildpackage -us -uc -b; then run lintian, which must report no
# error and no warning.
#
# Usage: packaging/build-deb.sh [-o OUTDIR] [-t TARBALL] [--no-lintian]
#   OUTDIR   where the .deb, .changes and .buildinfo go
#            (default: $DROVER_PKG_OUT or /tmp/drover-packages)
#   TARBALL  an existing drover-X.Y.Z.tar.gz (default: run make dist)
# DEB_BUILD_OPTIONS is passed through (e.g. nocheck to skip the unit tests
# that run at build time, parallel=N).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=${DROVER_PKG_OUT:-/tmp/drover-packages}
tarball=
run_lintian=yes
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	-t) tarball=$2; shift 2 ;;
	--no-lintian) run_lintian=no; shift ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "build-deb: unknown argument $1" >&2; exit 2 ;;
	esac
done

for tool in dpkg-buildpackage dh autoreconf; do
	command -v "$tool" >/dev/null || {
		echo "build-deb: $tool missing: apt-get install --no-install-recommends dpkg-dev debhelper autoconf automake libtool" >&2
		exit 1
	}
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/drover-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ -z "$tarball" ]; then
	tarball=$("$top/packaging/dist-tarball.sh" "$work")
fi
base=$(basename "$tarball" .tar.gz)          # drover-0.1.0
version=${base#drover-}

# The Debian revision comes from debian/changelog; its upstream part must
# be the tarball's version.
tar -C "$work" -xzf "$tarball"
src="$work/$base"
[ -d "$src/packaging/debian" ] || { echo "build-deb: $tarball has no packaging/debian" >&2; exit 1; }
cp -a "$src/packaging/debian" "$src/debian"
debversion=$(cd "$src" && dpkg-parsechangelog -SVersion)
if [ "${debversion%-*}" != "$version" ]; then
	echo "build-deb: debian/changelog says $debversion but the tarball is $version; add a changelog entry (dch -v $version-1)" >&2
	exit 1
fi
cp "$tarball" "$work/drover_$version.orig.tar.gz"

echo "build-deb: dpkg-buildpackage -us -uc -b in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (full log above, last 60 lines)" >&2
	exit 1
}

arch=$(dpkg --print-architecture)
changes="$work/drover_${debversion}_${arch}.changes"
[ -f "$changes" ] || { echo "build-deb: no $changes" >&2; exit 1; }

# Copy the results out before lintian so a lintian failure still leaves them.
rm -f "$out"/drover_*.deb "$out"/drover_*.changes "$out"/drover_*.buildinfo "$out"/drover-dbgsym_*.deb
cp "$work"/drover_*.deb "$work"/drover_*.buildinfo "$changes" "$out/"
cp "$work"/drover-dbgsym_*.deb "$out/" 2>/dev/null || true

status=0
if [ "$run_lintian" = yes ]; then
	if command -v lintian >/dev/null; then
		echo "build-deb: lintian"
		lintian --info --display-info --fail-on error,warning "$changes" || status=1
		[ "$status" = 0 ] && echo "build-deb: lintian: no errors, no warnings"
	else
		echo "build-deb: lintian missing: apt-get install --no-install-recommends lintian" >&2
		status=1
	fi
fi

ls -l "$out"/drover_*
exit $status
