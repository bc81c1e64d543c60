#!/usr/bin/env bash
# layers: print drover's include graph and fail on an upward include or a
# cycle. Layers, bottom up (README.md, "Layers"):
#   0 core   1 worker   2 supervisor, proto   3 cmd
# A file may include headers of its own folder's layer or below; the two
# layer-2 folders may not include each other. The supervisor sits above the
# worker because it forks workers (worker_main, struct worker_params); the
# worker never includes the supervisor.
# Usage: tests/layers.sh [SRCDIR]   (prints "src/a.c -> src/b.h" edges)
set -euo pipefail
src=${1:-${DROVER_SRCDIR:-$(dirname "$0")/..}/src}
cd "$src"
rank() {
	case $1 in
	core/*) echo 0 ;; worker/*) echo 1 ;; supervisor/*) echo 2 ;; proto/*) echo 2 ;; cmd/*) echo 3 ;;
	*) echo 9 ;;
	esac
}
top() { echo "${1%%/*}"; }
bad=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
while IFS= read -r f; do
	f=${f#./}
	[ "$(rank "$f")" = 9 ] && { echo "layers: $f is in no layer folder" >&2; bad=1; continue; }
	while IFS= read -r inc; do
		[ -e "$inc" ] || { echo "layers: $f includes \"$inc\", which is not src/$inc" >&2; bad=1; continue; }
		echo "$f $inc" >>"$edges"
		rf=$(rank "$f") ri=$(rank "$inc")
		if [ "$ri" -gt "$rf" ] || { [ "$ri" = "$rf" ] && [ "$(top "$inc")" != "$(top "$f")" ]; }; then
			echo "layers: upward or sideways include: $f -> $inc" >&2
			bad=1
		fi
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done < <(find . -name '*.[ch]' | sort)
sed 's/ / -> /' "$edges"
# A cycle among headers: tsort reports one on stderr.
if ! tsort "$edges" >/dev/null 2>"$edges.err" || [ -s "$edges.err" ]; then
	cat "$edges.err" >&2
	echo "layers: include cycle" >&2
	bad=1
fi
rm -f "$edges.err"
if [ "$bad" = 0 ]; then
	echo "layers: $(wc -l <"$edges") includes, no upward include, no cycle"
fi
exit "$bad"
