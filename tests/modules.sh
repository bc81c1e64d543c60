#!/usr/bin/env bash
# modules: print drover's module graph and its cycles. A module is a .c
# with its .h (a lone header or .c is a module too); A -> B when a file of
# A includes B's header. A cycle is a set of modules that reach each other
# (a strongly connected component of more than one).
# Usage: tests/modules.sh [SRCDIR] [PREFIX]
#   prints "module -> modules..." for every module under PREFIX (all if
#   empty), then each cycle that has a module under PREFIX; exits 1 if any.
# e.g. tests/modules.sh src supervisor/
set -euo pipefail
src=${1:-${DROVER_SRCDIR:-$(dirname "$0")/..}/src}
prefix=${2:-}
cd "$src"
find . -name '*.[ch]' | sed 's|^\./||' | sort | while IFS= read -r f; do
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | while IFS= read -r inc; do
		a=${f%.[ch]} b=${inc%.[ch]}
		if [ "$a" != "$b" ]; then echo "$a $b"; fi
	done
	echo "${f%.[ch]} ${f%.[ch]}"
done | sort -u | awk -v prefix="$prefix" '
function under(v) { return prefix == "" || index(v, prefix) == 1 }
{ node[$1] = 1; node[$2] = 1; if ($1 != $2) adj[$1] = adj[$1] " " $2 }
# Tarjan: low[] is the smallest index reachable; a root closes a component.
function strong(v,   i, n, ws, w, comp, k, mine) {
	index_[v] = low[v] = idx++; stack[++sp] = v; on[v] = 1
	n = split(adj[v], ws, " ")
	for (i = 1; i <= n; i++) {
		w = ws[i]
		if (!(w in index_)) { strong(w); if (low[w] < low[v]) low[v] = low[w] }
		else if (on[w] && index_[w] < low[v]) low[v] = index_[w]
	}
	if (low[v] != index_[v])
		return
	comp = ""; k = 0; mine = 0
	do { w = stack[sp--]; on[w] = 0; comp = comp " " w; k++; mine += under(w) } while (w != v)
	if (k > 1 && mine)
		cycles[++nc] = comp
}
END {
	idx = 0; sp = 0; nc = 0
	for (v in node) if (!(v in index_)) strong(v)
	for (v in node) if (under(v)) print v " ->" adj[v] | "sort"
	close("sort")
	for (i = 1; i <= nc; i++) print "cycle:" cycles[i]
	if (nc) exit 1
	print "modules: no cycle" (prefix == "" ? "" : " through " prefix)
}'
