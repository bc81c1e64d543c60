#!/bin/sh
# Build drover's RPM from the release tarball ("make dist") with
# rpmbuild -bb --nodeps (build dependencies are Debian packages here, not
# RPMs), then check that it installs the same files as the Debian package.
#
# Usage: packaging/build-rpm.sh [-o OUTDIR] [-t TARBALL] [-d DEB]
#   OUTDIR   where the .rpm goes (default: $DROVER_PKG_OUT or /tmp/drover-packages)
#   TARBALL  an existing drover-X.Y.Z.tar.gz (default: run make dist)
#   DEB      the .deb to compare with (default: OUTDIR/drover_*.deb if there;
#            no .deb: the comparison is skipped with a note)
#
# File list comparison: regular files and symlinks only (directories are
# owned differently by convention), after mapping the conventions that
# legitimately differ:
#   - /lib/systemd/system (Debian bookworm) = /usr/lib/systemd/system (RPM)
#   - man pages: compression suffix ignored
#   - /usr/share/doc/** ignored (changelog.Debian.gz/copyright vs %doc/%license)
#   - /usr/share/lintian/** ignored (Debian's lintian overrides)
#   - /usr/lib/.build-id/** ignored (RPM debuginfo links)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=${DROVER_PKG_OUT:-/tmp/drover-packages}
tarball=
deb=
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	-t) tarball=$2; shift 2 ;;
	-d) deb=$2; shift 2 ;;
	-h|--help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "build-rpm: unknown argument $1" >&2; exit 2 ;;
	esac
done

command -v rpmbuild >/dev/null || { echo "build-rpm: rpmbuild missing: apt-get install --no-install-recommends rpm" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/drover-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ -z "$tarball" ]; then
	tarball=$("$top/packaging/dist-tarball.sh" "$work")
fi
base=$(basename "$tarball" .tar.gz)
version=${base#drover-}

topdir="$work/rpmbuild"
mkdir -p "$topdir/SOURCES" "$topdir/SPECS" "$topdir/BUILD" "$topdir/RPMS" "$topdir/SRPMS"
cp "$tarball" "$topdir/SOURCES/"
tar -C "$work" -xzf "$tarball" "$base/packaging/rpm/drover.spec"
spec="$topdir/SPECS/drover.spec"
cp "$work/$base/packaging/rpm/drover.spec" "$spec"
specversion=$(rpmspec -q --srpm --qf '%{version}\n' "$spec" 2>/dev/null | head -n1)
if [ "$specversion" != "$version" ]; then
	echo "build-rpm: drover.spec says Version: $specversion but the tarball is $version" >&2
	exit 1
fi

echo "build-rpm: rpmbuild -bb --nodeps"
rpmbuild -bb --nodeps --define "_topdir $topdir" "$spec" >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log" >&2
	echo "build-rpm: rpmbuild failed (last 60 lines above)" >&2
	exit 1
}
rpm=$(find "$topdir/RPMS" -name "drover-$version-*.rpm" ! -name '*debug*' | head -n1)
[ -n "$rpm" ] || { echo "build-rpm: rpmbuild produced no drover-$version-*.rpm" >&2; exit 1; }
rm -f "$out"/drover-*.rpm
find "$topdir/RPMS" -name '*.rpm' -exec cp {} "$out/" \;
rpm="$out/$(basename "$rpm")"
ls -l "$out"/drover-*.rpm

# ------------------------------------------------------------- file lists
if [ -z "$deb" ]; then
	for f in "$out"/drover_*.deb; do [ -f "$f" ] && deb=$f; done
fi
if [ -z "$deb" ]; then
	echo "build-rpm: no .deb to compare with (build it with packaging/build-deb.sh); file list check skipped"
	exit 0
fi

normalize() {
	sed -e 's|^\./|/|' -e 's|^/lib/systemd/|/usr/lib/systemd/|' \
		-e 's#^\(/usr/share/man/.*\)\.\(gz\|bz2\|xz\|zst\)$#\1#' |
		grep -v -e '^/usr/share/doc/' -e '^/usr/share/lintian/' -e '^/usr/lib/\.build-id/' | LC_ALL=C sort -u
}
# dpkg -c: "perms owner size date time path[ -> target]"; keep non-directories.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { p = $6; print p }' | normalize >"$work/deb.list"
rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" | awk '$1 !~ /^d/ { print $2 }' | normalize >"$work/rpm.list"
if diff -u "$work/deb.list" "$work/rpm.list" >"$work/list.diff"; then
	echo "build-rpm: file lists match ($(wc -l <"$work/deb.list") files): $(basename "$deb") = $(basename "$rpm")"
else
	echo "build-rpm: file lists differ (- only in $(basename "$deb"), + only in $(basename "$rpm")):" >&2
	cat "$work/list.diff" >&2
	exit 1
fi
