"""Shared fixtures: the example catalogs and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog.catalog import Catalog
from catalog.loader import load_catalog
from tests.acme import ACME, ROOT

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def acme_path() -> Path:
    return ACME


@pytest.fixture(scope="session")
def acme() -> Catalog:
    """The acme example catalog, loaded once; it must load without errors."""
    catalog = load_catalog(ACME)
    assert catalog.ok, [str(e) for e in catalog.errors]
    return catalog


@pytest.fixture(scope="session")
def broken_path() -> Path:
    return EXAMPLES / "broken"


@pytest.fixture
def runner() -> CliRunner:
    """Invoke the `deskflow` command (`runner.invoke(web.cli.main, [...])`)."""
    return CliRunner()
