"""Random damage to examples/acme: the validator only ever reports errors, never raises."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.loader import load_catalog

WRONG_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=30), st.text(min_size=2000, max_size=3000),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=3),
    st.just("form.model ==").map(str), st.just("{{ broken").map(str),
    st.just("(a+)+$").map(str), st.just("__import__('os')").map(str),
    st.integers(min_value=1, max_value=200).map(lambda n: _deep(n)),
)


def _deep(n: int) -> Any:
    value: Any = "x"
    for _ in range(n):
        value = [value]
    return value


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)
    else:
        parent[last] = value
    return data


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, acme_path) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "acme"
    shutil.copytree(acme_path, root)
    return root


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".md"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_catalog_gives_errors_not_exceptions(workspace, data):
    files = _files(workspace)
    target = data.draw(st.sampled_from(files), label="file")
    original = target.read_bytes()
    kind = data.draw(st.sampled_from(["structure", "bytes", "truncate"]), label="kind")
    try:
        if kind == "bytes" or target.suffix == ".md":
            pos = data.draw(st.integers(0, max(len(original) - 1, 0)), label="pos")
            junk = data.draw(st.binary(min_size=1, max_size=40), label="junk")
            target.write_bytes(original[:pos] + junk + original[pos:])
        elif kind == "truncate":
            target.write_bytes(original[: data.draw(st.integers(0, len(original)), label="cut")])
        else:
            doc = yaml.safe_load(original)
            path = data.draw(st.sampled_from(_paths(doc)), label="path")
            action = data.draw(st.sampled_from(["delete", "rename", "replace"]), label="action")
            if not path and action != "replace":
                action = "replace"
            value = data.draw(WRONG_VALUES, label="value")
            doc = _mutate(doc, path, action, value)
            target.write_text(yaml.safe_dump(doc, allow_unicode=True, width=10_000))
        catalog = load_catalog(workspace)
        for problem in catalog.problems:
            assert problem.where.line >= 1 and problem.where.col >= 1
            assert problem.render()
    finally:
        target.write_bytes(original)
