"""Engine fixtures: a database (SQLite, or PostgreSQL when asked), a service on acme, a clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.db import create_schema, make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.models import Base
from engine.service import RequestService
from tests.acme import ACME_ANSWERS

PG_URL = os.environ.get("DESKFLOW_TEST_DATABASE_URL")


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not PG_URL:
        yield None
        return
    name = f"deskflow_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, pg_database) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'deskflow.sqlite'}"
        engine = make_engine(url)
        create_schema(engine)
        engine.dispose()
        yield url
        return
    if pg_database is None:
        pytest.skip("PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL")
    yield pg_database
    engine = make_engine(pg_database)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    # Monday 23 November 2026, 09:30 in Amsterdam
    return Clock(datetime(2026, 11, 23, 8, 30, tzinfo=UTC))


@pytest.fixture
def service(sessions, acme, clock) -> RequestService:
    with sessions.begin() as s:
        sync_directory(s, acme.directory)
    return RequestService(sessions, lambda: acme, clock)


@pytest.fixture
def answers():
    return {k: dict(v) for k, v in ACME_ANSWERS.items()}
