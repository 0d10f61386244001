#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a circle.

For every crate under crates/, each module file (src/lib.rs, src/main.rs, src/a.rs,
src/a/mod.rs, src/a/b.rs ...) is a node. Every path it names — `crate::a::b`,
`super::x`, `self::y`, `use` trees with braces — is resolved to the deepest module
that exists, and becomes an edge between the two *siblings* under their common
parent (a reference to an ancestor's own items is not an edge: the root is where
shared types live; a reference down into a descendant is the parent using its
child). A cycle among the siblings of any parent fails the check.

Inline `mod name { ... }` blocks (test modules) are left out: they are children of
their file and may use it freely.

Usage: scripts/check-module-cycles.py [crates-dir]   (exit 1 and a list of cycles)
"""
import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_files(src):
    """Maps module path tuples to files for one crate's src/ directory."""
    mods = {}
    for root, _dirs, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            full = os.path.join(root, f)
            rel = os.path.relpath(full, src)[:-3].split(os.sep)
            if rel in (["lib"], ["main"]):
                path = ()
            elif rel[-1] == "mod":
                path = tuple(rel[:-1])
            else:
                path = tuple(rel)
            if path and path[0] == "bin":
                continue
            mods[path] = full
    return mods


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals (a small lexer, so that `//`
    inside a string or a quote inside a comment cannot confuse what follows)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + len(m.group(0)))
            i = n if j < 0 else j + len(close)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^'\\])'", text[i:])
            if m:
                i += len(m.group(0))
                out.append("''")
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_inline_modules(text):
    """Removes `mod name { ... }` blocks (balanced braces)."""
    out = []
    i = 0
    pat = re.compile(r"\bmod\s+" + IDENT + r"\s*\{")
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        depth = 1
        j = m.end()
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        i = j
    return "".join(out)


def expand_use_tree(prefix, body):
    """`a::{b, c::{d, e}}` → ['a::b', 'a::c::d', 'a::c::e'] (roughly)."""
    results = []
    depth = 0
    part = ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            results.append(part)
            part = ""
        else:
            part += ch
    results.append(part)
    paths = []
    for p in results:
        p = p.strip()
        if not p:
            continue
        m = re.match(r"^((?:" + IDENT + r"\s*::\s*)*)\{(.*)\}$", p, re.S)
        if m:
            inner_prefix = prefix + re.sub(r"\s", "", m.group(1))
            paths.extend(expand_use_tree(inner_prefix, m.group(2)))
        else:
            paths.append(prefix + re.sub(r"\s", "", p))
    return paths


def referenced_paths(text):
    paths = []
    # use trees with braces: crate::{...} / super::{...} / self::{...}
    for m in re.finditer(r"\b((?:crate|super|self)(?:\s*::\s*" + IDENT + r")*)\s*::\s*\{", text):
        start = m.end()
        depth = 1
        j = start
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        prefix = re.sub(r"\s", "", m.group(1)) + "::"
        paths.extend(expand_use_tree(prefix, text[start : j - 1]))
    for m in re.finditer(r"\b((?:crate|super|self)(?:\s*::\s*" + IDENT + r")+)", text):
        paths.append(re.sub(r"\s", "", m.group(1)))
    return paths


def resolve(current, path, mods):
    parts = path.split("::")
    if parts[0] == "crate":
        base = ()
        rest = parts[1:]
    else:
        base = current
        rest = parts
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    target = base
    for i, p in enumerate(rest):
        if target + (p,) in mods:
            target = target + (p,)
        else:
            # a name re-exported by that module (`pub use self::inner::Name`) counts as
            # a reference to the module it comes from
            return reexports.get(target, {}).get(p, target)
    return target


reexports = {}


def collect_reexports(mods):
    reexports.clear()
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as fh:
            text = strip_inline_modules(strip_comments_and_strings(fh.read()))
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
            tree = re.sub(r"\s", "", m.group(1))
            if tree.startswith(("crate::", "super::", "self::")):
                refs = referenced_paths(tree) if "{" in tree else [tree]
            else:
                refs = referenced_paths("self::" + tree) if "{" in tree else ["self::" + tree]
            for ref in refs:
                name = ref.split("::")[-1]
                if " as " in ref or "as" in name:
                    continue
                target = resolve_plain(mod, ref, mods)
                if target != mod:
                    reexports.setdefault(mod, {})[name] = target


def resolve_plain(current, path, mods):
    parts = path.split("::")
    base = () if parts[0] == "crate" else current
    rest = parts[1:] if parts[0] == "crate" else parts
    while rest and rest[0] in ("super", "self"):
        if rest[0] == "super":
            base = base[:-1]
        rest = rest[1:]
    target = base
    for p in rest:
        if target + (p,) in mods:
            target = target + (p,)
        else:
            break
    return target


def crate_cycles(src):
    mods = module_files(src)
    collect_reexports(mods)
    edges = defaultdict(set)  # parent -> {(a, b)}
    why = {}
    for mod, path in mods.items():
        if "tests" in mod:
            continue  # a test module may use its siblings' internals
        with open(path, encoding="utf-8") as fh:
            text = strip_inline_modules(strip_comments_and_strings(fh.read()))
        for ref in referenced_paths(text):
            target = resolve(mod, ref, mods)
            if target == mod:
                continue
            common = 0
            while common < min(len(mod), len(target)) and mod[common] == target[common]:
                common += 1
            if common == len(target) or common == len(mod):
                continue  # ancestor's items, or the parent using its own child
            parent = mod[:common]
            a, b = mod[common], target[common]
            edges[parent].add((a, b))
            why.setdefault((parent, a, b), f"{path}: {ref}")
    cycles = []
    for parent, es in edges.items():
        graph = defaultdict(set)
        for a, b in es:
            graph[a].add(b)
        for members, cycle in find_cycles(graph):
            detail = [why[(parent, cycle[i], cycle[(i + 1) % len(cycle)])] for i in range(len(cycle))]
            cycles.append(("::".join(parent) or "crate", members, cycle, detail))
    return cycles


def find_cycles(graph):
    """One cycle per strongly connected component with more than one node."""
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    for v in sorted(list(graph)):
        if v not in index:
            strong(v)
    cycles = []
    for comp in sccs:
        members = set(comp)
        start = sorted(comp)[0]
        # shortest way back to start, breadth first
        prev = {start: None}
        queue = [start]
        found = None
        while queue and found is None:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w not in members:
                    continue
                if w == start:
                    found = v
                    break
                if w not in prev:
                    prev[w] = v
                    queue.append(w)
        path = []
        v = found
        while v is not None:
            path.append(v)
            v = prev[v]
        cycles.append((sorted(comp), list(reversed(path))))
    return cycles


def main():
    crates_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "crates")
    failed = False
    for crate in sorted(os.listdir(crates_dir)):
        src = os.path.join(crates_dir, crate, "src")
        if not os.path.isdir(src):
            continue
        for parent, members, cycle, detail in crate_cycles(src):
            failed = True
            print(f"module cycle in crates/{crate} under {parent}: {{{', '.join(members)}}} import each other,")
            print(f"  for example {' -> '.join(cycle + [cycle[0]])}:")
            for d in detail:
                print(f"    {d}")
    if failed:
        print("Break each cycle: move what both sides need into a module of its own that neither imports back.")
        return 1
    print("no module cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
