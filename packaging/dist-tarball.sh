#!/bin/sh
# Make drover's release tarball ("make dist") from the source tree this
# script belongs to, without touching that tree: the tree is copied to a
# scratch directory, autoreconf'd and configured there.
# Usage: dist-tarball.sh OUTDIR   -> prints the path of OUTDIR/drover-X.Y.Z.tar.gz
set -eu

out=${1:?usage: dist-tarball.sh OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/drover-dist.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM

# Copy the tree (not .git, not build products of an in-tree build).
tar -C "$top" --exclude=.git --exclude=autom4te.cache --exclude='*.o' \
	--exclude='*.a' --exclude='drover-*.tar.gz' --exclude=config.status \
	--exclude=config.log --exclude=Makefile --exclude='./drover-[0-9]*' \
	--exclude=./fuzz-corpus -cf - . | { mkdir "$scratch/src" && tar -C "$scratch/src" -xf -; }

(
	cd "$scratch/src"
	autoreconf -fi >"$scratch/autoreconf.log" 2>&1 || { cat "$scratch/autoreconf.log" >&2; exit 1; }
	mkdir "$scratch/build"
	cd "$scratch/build"
	../src/configure --prefix=/usr >"$scratch/configure.log" 2>&1 || { tail -n 40 "$scratch/configure.log" >&2; exit 1; }
	make -s dist >"$scratch/dist.log" 2>&1 || { tail -n 40 "$scratch/dist.log" >&2; exit 1; }
) >&2

set -- "$scratch"/build/drover-*.tar.gz
[ -f "$1" ] || { echo "dist-tarball: make dist produced no drover-*.tar.gz" >&2; exit 1; }
cp "$1" "$out/"
echo "$out/$(basename "$1")"
