#!/usr/bin/env bash
# layers: print drover's module graph and fail on anything that breaks the
# shape README.md ("Layers") promises:
#  - layers, bottom up: 0 core, 1 worker, 2 supervisor and proto, 3 cmd. A
#    file includes headers of its own folder's layer or below; the two
#    layer-2 folders never include each other. (The supervisor sits above
#    the worker because it forks workers; the worker never includes it.)
#  - no circle of modules anywhere in src/: a module is a .c with its .h
#    (or a lone header), and module A depends on B when A's .c or .h
#    includes B's header; a circle is any set of modules that reach each
#    other (found as strongly connected components);
#  - no .c file over 900 lines, and no function over 80 lines unless the
#    comment above it says why it must be "one piece".
# Usage: tests/layers.sh [SRCDIR]   (prints "module -> module, ..." lines)
set -euo pipefail
src=${1:-${DROVER_SRCDIR:-$(dirname "$0")/..}/src}
exec python3 - "$src" <<'PY'
import os, re, sys

src = sys.argv[1]
RANK = {"core": 0, "worker": 1, "supervisor": 2, "proto": 2, "cmd": 3}
MAX_FILE_LINES = 900
MAX_FUNCTION_LINES = 80
bad = []

files = []
for root, _, names in os.walk(src):
    for n in names:
        if n.endswith((".c", ".h")):
            files.append(os.path.relpath(os.path.join(root, n), src))
files.sort()

def top(path):
    return path.split("/", 1)[0]

def module(path):
    return path[:-2]  # core/loop.c and core/loop.h are core/loop

include_re = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
deps = {}
n_includes = 0
for f in files:
    if top(f) not in RANK:
        bad.append(f"{f} is in no layer folder")
        continue
    text = open(os.path.join(src, f), encoding="utf-8").read()
    deps.setdefault(module(f), set())
    for inc in include_re.findall(text):
        n_includes += 1
        if not os.path.exists(os.path.join(src, inc)):
            bad.append(f'{f} includes "{inc}", which is not src/{inc}')
            continue
        rf, ri = RANK[top(f)], RANK.get(top(inc), 9)
        if ri > rf or (ri == rf and top(inc) != top(f)):
            bad.append(f"upward or sideways include: {f} -> {inc}")
        if module(inc) != module(f):
            deps[module(f)].add(module(inc))
    if f.endswith(".c"):
        lines = text.split("\n")
        if len(lines) - 1 > MAX_FILE_LINES:
            bad.append(f"{f}: {len(lines) - 1} lines (at most {MAX_FILE_LINES})")
        # Functions: a line "{" at column 0 after the signature, to the
        # next "}" at column 0 (the project's style). The comment block
        # above the signature may say why a long one is "one piece".
        for i, line in enumerate(lines):
            if line != "{":
                continue
            end = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("}")), None)
            if end is None or end - i - 1 <= MAX_FUNCTION_LINES:
                continue
            sig = i - 1
            while sig > 0 and lines[sig - 1].strip() and not lines[sig - 1].rstrip().endswith(("*/", ";", "}")):
                sig -= 1
            above = []
            k = sig - 1
            while k >= 0 and lines[k].strip() and not lines[k].startswith("}"):
                above.append(lines[k])
                k -= 1
            if "one piece" not in " ".join(above):
                name = lines[i - 1].split("(")[0].split()[-1] if "(" in lines[i - 1] else lines[i - 1]
                bad.append(f"{f}:{i}: function {name.lstrip('*')} is {end - i - 1} lines "
                           f"(over {MAX_FUNCTION_LINES}, and no comment says why it must be one piece)")

for m in sorted(deps):
    print(f"{m} -> {', '.join(sorted(deps[m])) if deps[m] else '(nothing)'}")

# Strongly connected components (Tarjan, iterative).
index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
for start in sorted(deps):
    if start in index:
        continue
    work = [(start, iter(sorted(deps[start])))]
    index[start] = low[start] = counter[0]; counter[0] += 1
    stack.append(start); on.add(start)
    while work:
        v, it = work[-1]
        w = next(it, None)
        if w is not None:
            if w not in deps:
                continue
            if w not in index:
                index[w] = low[w] = counter[0]; counter[0] += 1
                stack.append(w); on.add(w)
                work.append((w, iter(sorted(deps[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[v])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))
for comp in sccs:
    bad.append("module circle: " + " <-> ".join(comp))

for b in bad:
    print("layers: " + b, file=sys.stderr)
if bad:
    sys.exit(1)
print(f"layers: {len(deps)} modules, {n_includes} includes, no upward include, no module circle, "
      f"no file over {MAX_FILE_LINES} lines, no unexplained function over {MAX_FUNCTION_LINES} lines")
PY
