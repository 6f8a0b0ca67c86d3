"""Fixtures for the forms tests: small catalogs written to tmp_path (acme is tests/conftest.py's)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from catalog.catalog import Catalog
from catalog.loader import load_catalog

SETTINGS = ("kind: Settings\nname: T\ntime_zone: UTC\n"
            "business_hours: {days: [mon], start: '09:00', end: '17:00'}\n")
WORKFLOW = ("kind: Workflow\nid: wf\nstart: work\nstates:\n"
            "  work: {task: {queue: team}, on: {done: done}}\n  done: {end: fulfilled}\n")
DIRECTORY = """\
people:
  - {id: ann, name: Ann Smit, email: ann@example.com, department: IT}
  - {id: bob, name: Bob Gone, email: bob@example.com, active: false}
  - {id: cy, name: Cy Young, email: cy@example.com}
groups:
  - {id: team, name: The Team, members: [ann, bob]}
  - {id: ops, name: Operations, members: [cy]}
"""
LOOKUP = """\
kind: Lookup
id: colours
name: Colours
values:
  - {value: red, label: Red}
  - {value: blue, label: Blue}
"""
#: one field of every type, no conditions
EVERYTHING = """\
kind: CatalogItem
id: everything
name: Everything
category: Tests
summary: One field of every type.
workflow: wf
form:
  - {name: title, type: string, required: true, min_length: 3, max_length: 10,
     pattern: "^[A-Z][a-z ]*$", placeholder: Title, help: Say what it is.}
  - {name: notes, type: textarea, max_length: 50}
  - {name: count, type: integer, min: 1, max: 5}
  - {name: amount, type: number, min: 0, max: 99.5}
  - {name: agree, type: boolean}
  - {name: colour, type: choice, choices_from: "lookup:colours"}
  - {name: tags, type: multichoice, choices: [a, b, c], max_items: 2}
  - {name: day, type: date, min: "2026-01-01", max: "2026-12-31"}
  - {name: mail, type: email}
  - {name: link, type: url}
  - {name: owner, type: person}
  - name: lines
    type: table
    max_items: 3
    columns:
      - {name: what, type: string, required: true}
      - {name: qty, type: integer, default: 1, min: 1, max: 9}
"""

#: a valid HTML post to `everything`, and the clean answers it gives
HTML_ANSWERS = MultiDict([
    ("title", " Big box "), ("notes", "line one\r\nline two"), ("count", "3"),
    ("amount", "12.5"), ("agree", "y"), ("colour", "blue"), ("tags", "a"), ("tags", "c"),
    ("day", "2026-03-01"), ("mail", "ann@example.com"), ("link", "https://example.com/x"),
    ("owner", "cy"), ("lines-0-what", "Cable"), ("lines-0-qty", "2"),
    ("lines-1-what", "Plug"), ("lines-1-qty", "1"), ("csrf_token", "abc"),
])
CLEAN = {
    "title": "Big box", "notes": "line one\nline two", "count": 3, "amount": 12.5,
    "agree": True, "colour": "blue", "tags": ["a", "c"], "day": "2026-03-01",
    "mail": "ann@example.com", "link": "https://example.com/x", "owner": "cy",
    "lines": [{"what": "Cable", "qty": 2}, {"what": "Plug", "qty": 1}],
}

MakeCatalog = Callable[..., Catalog]


@pytest.fixture
def html_answers() -> MultiDict:
    """A valid HTML post to the item `everything`."""
    return HTML_ANSWERS.copy()


@pytest.fixture
def clean_values() -> dict[str, Any]:
    """The clean answers `html_answers` gives."""
    return copy.deepcopy(CLEAN)


@pytest.fixture
def make_catalog(tmp_path: Path) -> MakeCatalog:
    """Write a catalog with the given items (YAML texts) and return it loaded, error-free."""

    def make(*items: str, directory: str = DIRECTORY) -> Catalog:
        (tmp_path / "deskflow.yaml").write_text(SETTINGS)
        (tmp_path / "directory.yaml").write_text(directory)
        for folder in ("items", "workflows", "lookups"):
            (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW)
        (tmp_path / "lookups" / "colours.yaml").write_text(LOOKUP)
        for i, text in enumerate(items):
            (tmp_path / "items" / f"item{i}.yaml").write_text(text)
        catalog = load_catalog(tmp_path)
        assert catalog.ok, [str(e) for e in catalog.errors]
        return catalog

    return make


@pytest.fixture
def everything(make_catalog: MakeCatalog) -> Catalog:
    """A small catalog whose item `everything` has one field of every type."""
    return make_catalog(EVERYTHING)


@pytest.fixture
def make_item(make_catalog: MakeCatalog) -> Callable[[str], Catalog]:
    """A catalog whose one item, `thing`, has the given `form:` body (YAML, indented)."""

    def make(form: str) -> Catalog:
        return make_catalog("kind: CatalogItem\nid: thing\nname: Thing\ncategory: Tests\n"
                            f"summary: S\nworkflow: wf\nform:\n{form}")

    return make
