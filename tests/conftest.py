"""Shared fixtures: the example catalogs and a CLI runner."""

from __future__ import annotations

import logging
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


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """`deskflow serve|demo|worker` configure logging for the whole process (web.logs): undo it
    after each test, so no later test sees their handler, levels or captured warnings."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    if root.handlers != handlers or root.level != level:
        import web.logs

        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        for name in web.logs.QUIET:
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.captureWarnings(False)
        web.logs._configured = False
