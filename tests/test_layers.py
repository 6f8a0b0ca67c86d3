"""The layer rule, enforced: imports point down only, nothing below web/ imports Flask, no circles.

web -> forms, engine -> workflows -> catalog (docs/architecture.md). Every import counts,
including those inside functions and under `if TYPE_CHECKING:`: a guard hides a circle from
the interpreter, not from the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("catalog", "workflows", "forms", "engine", "web")

# What each package may import from the project; itself always.
ALLOWED: dict[str, frozenset[str]] = {
    "catalog": frozenset(),
    "workflows": frozenset({"catalog"}),
    "forms": frozenset({"catalog"}),
    "engine": frozenset({"catalog", "workflows"}),
    "web": frozenset({"catalog", "workflows", "forms", "engine"}),
}
WEB_ONLY = ("flask", "flask_sqlalchemy", "flask_wtf", "flask_login", "flask_limiter",
            "flask_migrate", "flask_bootstrap", "werkzeug")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "versions" in path.relative_to(ROOT).parts:  # generated Alembic revisions
                continue
            found[module_name(path)] = path
    return found


def imported_names(path: Path, name: str, is_package: bool) -> list[tuple[str, int]]:
    """Every module named by an import statement in `path`, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
            out += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return out


def resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The project module an import names (the longest existing prefix), or None if foreign."""
    parts = target.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    flask_below_web: list[str] = []
    for name, path in modules.items():
        for target, line in imported_names(path, name, path.name == "__init__.py"):
            top = target.split(".")[0]
            if top in WEB_ONLY and name.split(".")[0] != "web":
                flask_below_web.append(f"{path.relative_to(ROOT)}:{line}: imports {target}")
            resolved = resolve(target, modules)
            # `from engine import x` names engine/__init__ and, when x is a module, that module;
            # a package never depends on itself through its own __init__.
            if resolved and resolved != name and not name.startswith(resolved + "."):
                graph[name].add(resolved)
    return graph, flask_below_web


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_imports_point_down_only():
    graph, _ = import_graph()
    upward = [f"{m} imports {t}" for m, targets in sorted(graph.items()) for t in sorted(targets)
              if t.split(".")[0] != m.split(".")[0]
              and t.split(".")[0] not in ALLOWED[m.split(".")[0]]]
    assert upward == []


def test_nothing_below_web_imports_flask():
    _, flask_below_web = import_graph()
    assert flask_below_web == []


def test_no_module_imports_itself_through_a_circle():
    graph, _ = import_graph()
    assert cycles(graph) == []


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert cycles(graph) == expected


def test_the_graph_sees_imports_inside_functions_and_type_checking_guards(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from engine.x import A\n"
                      "def f():\n    from engine import y\n")
    names = [t for t, _ in imported_names(source, "engine.m", False)]
    assert "engine.x" in names and "engine.y" in names
