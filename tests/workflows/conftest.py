"""Catalogs the workflow tests run against."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from catalog.catalog import Catalog
from catalog.loader import load_catalog

DATA = Path(__file__).resolve().parent.parent / "data" / "workflows"

SETTINGS = """\
kind: Settings
name: Tiny desk
time_zone: UTC
business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
"""

ITEM = """\
kind: CatalogItem
id: tiny
name: Tiny
category: Test
summary: A tiny item.
workflow: tiny
form:
  - {name: n, type: integer}
"""


@pytest.fixture(scope="session")
def desk() -> Catalog:
    return load_catalog(DATA / "desk")


@pytest.fixture
def make_catalog(tmp_path: Path) -> Callable[[str], Path]:
    """Write a catalog of one item (`tiny`, one integer field `n`) and the given workflow."""

    def make(workflow_yaml: str, item_yaml: str = ITEM) -> Path:
        (tmp_path / "items").mkdir(exist_ok=True)
        (tmp_path / "workflows").mkdir(exist_ok=True)
        (tmp_path / "deskflow.yaml").write_text(SETTINGS)
        (tmp_path / "items" / "tiny.yaml").write_text(item_yaml)
        (tmp_path / "workflows" / "tiny.yaml").write_text(workflow_yaml)
        return tmp_path

    return make
