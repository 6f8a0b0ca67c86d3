"""Fixtures of the history import tests: a database with acme's directory, on SQLite and
PostgreSQL (DESKFLOW_TEST_DATABASE_URL), and the `deskflow import` command."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.db import create_schema, make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.migrate import upgrade
from tests.acme import ACME, ROOT
from web.cli import main

PG_URL = os.environ.get("DESKFLOW_TEST_DATABASE_URL")
DATA = ROOT / "tests" / "data" / "history"


def fresh_database(kind: str, tmp: Path, acme, migrated: bool = False) -> Iterator[str]:
    """A new database with every table (from the models, or by the migrations when
    `migrated`) and acme's directory; dropped afterwards on PostgreSQL."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'deskflow.sqlite'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL")
        name = f"deskflow_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    if migrated:
        upgrade(url)
    engine = make_engine(url)
    if not migrated:
        create_schema(engine)
    with make_sessionmaker(engine).begin() as s:
        sync_directory(s, acme.directory)
    engine.dispose()
    yield url
    if kind != "sqlite":
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, acme) -> Iterator[str]:
    yield from fresh_database(request.param, tmp_path, acme)


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def deskflow_import(db_url) -> Callable[..., Result]:
    """Run `deskflow import ARGS... --db URL --catalog acme`."""

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(main, ["import", *map(str, args), "--db", db_url,
                                         "--catalog", str(ACME)])

    return run
