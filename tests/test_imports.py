"""The package's import graph (issue 50): no two modules import each other, directly or
through others, counting imports inside functions too (read from the source, nothing
imported)."""

import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "tfsym3d")


def _modules():
    mods = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                mods[rel.removesuffix(".__init__")] = path
    return mods


def import_graph():
    """{module: modules of the package it imports} (`from pkg import sub` counts as
    importing pkg.sub when that is a module, else pkg)."""
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        with open(path) as f:
            tree = ast.parse(f.read())
        package = m if path.endswith("__init__.py") else m.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                names = subs or [base]
            else:
                continue
            graph[m].update(n for n in names if n in mods and n != m)
    return graph


def cycles(graph):
    """The strongly connected components of more than one module."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other():
    graph = import_graph()
    assert "tfsym3d.loader" in graph and "tfsym3d.official" in graph["tfsym3d.loader"]
    assert cycles(graph) == []


def test_no_test_edits_sys_path():
    """Tests import the package and tests/ as packages, scripts by path (importlib)."""
    import glob
    import re

    here = os.path.dirname(os.path.abspath(__file__))
    edits = [p for p in glob.glob(os.path.join(here, "*.py"))
             if re.search(r"sys\.path\.(insert|append)\(", open(p).read())]
    assert edits == []


# The dispatcher and the commands report to the user; nothing else may.
FRONT = ("tfsym3d.cli", "tfsym3d.commands")


def _library():
    return {m: p for m, p in _modules().items()
            if not any(m == f or m.startswith(f + ".") for f in FRONT)}


def test_no_library_module_imports_a_command():
    graph = import_graph()
    wrong = {m: sorted(n for n in graph[m] if n.startswith(FRONT)) for m in _library()}
    assert {m: v for m, v in wrong.items() if v} == {}
    # every command is a module of tfsym3d.commands
    from tfsym3d.cli import COMMANDS

    assert all(module.startswith("tfsym3d.commands.") for module, _ in COMMANDS.values())


def speaking_calls(tree):
    """(line, call) of every print(), exit()/quit(), sys.exit, os._exit and
    sys.stdout/stderr.write in a module's syntax tree."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else None
        if isinstance(f, ast.Attribute):
            base = ast.unparse(f.value)
            name = f"{base}.{f.attr}"
        if name in ("print", "exit", "quit", "sys.exit", "os._exit", "sys.stdout.write",
                    "sys.stderr.write"):
            found.append((node.lineno, name))
    return found


def test_the_checker_finds_prints_and_exits():
    tree = ast.parse("import sys, os\nprint(1)\nsys.exit(2)\nos._exit(3)\n"
                     "sys.stderr.write('x')\nlog.info('fine')\n")
    assert [c for _, c in speaking_calls(tree)] == ["print", "sys.exit", "os._exit",
                                                   "sys.stderr.write"]


def test_no_library_module_prints_or_exits():
    """The library logs (logger `tfsym3d`), returns and raises; only the commands and the
    dispatcher write to the user or choose an exit status."""
    found = {}
    for m, path in _library().items():
        with open(path) as f:
            calls = speaking_calls(ast.parse(f.read()))
        if calls:
            found[m] = calls
    assert found == {}
