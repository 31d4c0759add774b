"""The import graph of ``conformance/`` follows the layer order in the package docstring.

Built with ``ast`` from the source, function-level imports included (they hide cycles just as
well as top-level ones); imports under ``if TYPE_CHECKING:`` are annotations only and not counted.
Three rules: no import from a higher layer, no cycle, no private module or private name of another
package. A test of the test runs the same analysis on small synthetic packages.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import conformance

PACKAGE = Path(conformance.__file__).parent
_LAYER_LINE = re.compile(r"^\s*(\d+)\.\s+(.+?)\s*$")


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted
    names: tuple[str, ...]  # names taken from it (``from X import a, b``)
    line: int


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except what sits under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


@functools.cache
def imports(root: Path) -> list[Import]:
    """Every import inside the package at ``root`` that names a module of the same package."""
    modules = _modules(root)
    top = root.name
    out = []
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text("utf-8"))
        for node in _walk(tree):
            targets: list[tuple[str, tuple[str, ...]]] = []
            if isinstance(node, ast.Import):
                targets = [(a.name, ()) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in modules:  # ``from pkg import module``
                        targets.append((sub, ()))
                    else:
                        targets.append((base, (alias.name,)))
            for target, names in targets:
                if target == top or target.startswith(top + "."):
                    out.append(Import(name, target, names, getattr(node, "lineno", 0)))
    return out


def layers(root: Path) -> dict[str, int]:
    """First component below the package (``checks``, ``cli``) -> its layer, from the docstring."""
    doc = ast.get_docstring(ast.parse((root / "__init__.py").read_text("utf-8"))) or ""
    out = {}
    for line in doc.splitlines():
        m = _LAYER_LINE.match(line)
        if m:
            for part in m.group(2).split(","):
                out[part.strip()] = int(m.group(1))
    return out


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _private(segment: str) -> bool:
    return segment.startswith("_") and not segment.startswith("__")


def _parent(module: str, is_package: bool) -> str:
    return module if is_package else module.rpartition(".")[0]


def violations(root: Path) -> list[str]:
    """Every breach of the three rules, one readable line each (empty: the graph is clean)."""
    modules = _modules(root)
    order = layers(root)
    found: list[str] = []
    for name in modules:
        if _component(name) and _component(name) not in order:
            found.append(f"{name} is in no layer of the package docstring")
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports(root):
        where = f"{imp.source} (line {imp.line}) imports {imp.target}"
        src, dst = _component(imp.source), _component(imp.target)
        if not dst:
            found.append(f"{where}: the package facade, which only front ends above everything may use")
            continue
        if src and src in order and dst in order and order[dst] > order[src]:
            found.append(f"{where}: layer {order[dst]} ({dst}) is above layer {order[src]} ({src})")
        src_pkg = _parent(imp.source, modules[imp.source].name == "__init__.py")
        parts = imp.target.split(".")
        for i, seg in enumerate(parts):
            owner = ".".join(parts[:i])
            if _private(seg) and not (imp.source == owner or imp.source.startswith(owner + ".")):
                found.append(f"{where}: {seg} is private to {owner}")
        tgt_pkg = _parent(imp.target, modules.get(imp.target, Path()).name == "__init__.py")
        for n in imp.names:
            if _private(n) and src_pkg != tgt_pkg:
                found.append(f"{where}.{n}: a private name of another package")
        if imp.target != imp.source:
            edges[imp.source].add(imp.target)
    found += [f"import cycle: {' -> '.join(c)}" for c in _cycles(edges)]
    return found


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
                comps.append([*sorted(comp), sorted(comp)[0]])

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return comps


def _closure(start: str, edges: list[Import]) -> set[str]:
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph.get(m, ())
    return seen


# ------------------------------------------------------------------ the package


def test_conformance_follows_its_layer_order() -> None:
    problems = violations(PACKAGE)
    assert not problems, "import graph of conformance/ (layers: conformance/__init__.py):\n" + "\n".join(problems)


def test_every_layer_name_is_a_real_module() -> None:
    names = {_component(m) for m in _modules(PACKAGE)} - {""}
    assert set(layers(PACKAGE)) <= names, set(layers(PACKAGE)) - names


def test_the_reference_bridge_imports_nothing_of_the_checker() -> None:
    # The one way out is the HTTP server base every harness server shares, which imports nothing
    # of the package, so nothing the checker uses can reach the bridge through it.
    graph = imports(PACKAGE)
    outside = [i for i in graph if i.source.startswith("conformance.reference") and not i.target.startswith("conformance.reference")]
    assert {i.target for i in outside} <= {"conformance.http_server"}, outside
    assert _closure("conformance.http_server", graph) <= {"conformance.http_server"}


def test_the_fake_upstream_knows_cassettes_not_checks() -> None:
    reach = _closure("conformance.upstream", imports(PACKAGE))
    assert not {m for m in reach if m.startswith(("conformance.checks", "conformance.stream", "conformance.final_response"))}


# ------------------------------------------------------------------ the test of the test


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root


CLEAN = {
    "__init__.py": '"""Layers:\n\n1. low, _hidden\n2. high\n"""\n',
    "low.py": "import json\n",
    "_hidden.py": "",
    "high.py": "from pkg.low import x\nfrom pkg import sub\n",
    "sub/__init__.py": "",
}


def test_a_clean_synthetic_package_passes(tmp_path: Path) -> None:
    CLEAN["__init__.py"] = '"""Layers:\n\n1. low, _hidden\n2. high, sub\n"""\n'
    assert violations(_package(tmp_path, CLEAN)) == []


def test_a_back_edge_fails(tmp_path: Path) -> None:
    files = dict(CLEAN, **{"__init__.py": '"""1. low\n2. high, _hidden, sub\n"""\n', "low.py": "def f():\n    from pkg.high import y\n"})
    problems = violations(_package(tmp_path, files))
    assert any("pkg.low (line 2) imports pkg.high: layer 2 (high) is above layer 1 (low)" in p for p in problems), problems


def test_a_cycle_fails_even_inside_one_layer(tmp_path: Path) -> None:
    files = {"__init__.py": '"""1. a, b\n"""\n', "a.py": "import pkg.b\n", "b.py": "from pkg import a\n"}
    assert violations(_package(tmp_path, files)) == ["import cycle: pkg.a -> pkg.b -> pkg.a"]


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    files = {
        "__init__.py": '"""1. a\n2. b\n"""\n',
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
        "b.py": "import pkg.a\n",
    }
    assert violations(_package(tmp_path, files)) == []


def test_private_reaches_and_unplaced_modules_fail(tmp_path: Path) -> None:
    files = {
        "__init__.py": '"""1. a, inner\n"""\n',
        "a.py": "from pkg.inner._impl import thing\nfrom pkg.inner.pub import _helper\n",
        "inner/__init__.py": "from . import _impl\n",
        "inner/_impl.py": "",
        "inner/pub.py": "from pkg.inner._impl import ok\n",
        "stray.py": "",
    }
    problems = violations(_package(tmp_path, files))
    assert "pkg.stray is in no layer of the package docstring" in problems
    assert any("pkg.a (line 1) imports pkg.inner._impl: _impl is private to pkg.inner" in p for p in problems)
    assert any("pkg.a (line 2) imports pkg.inner.pub._helper: a private name of another package" in p for p in problems)
    assert len(problems) == 3, problems
