"""SQLite connections: WAL, one busy timeout everywhere, BEGIN IMMEDIATE for writers only."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from engine.db import create_schema, is_busy, make_engine, make_sessionmaker, writer


@pytest.fixture
def url(tmp_path):
    address = f"sqlite:///{tmp_path / 'deskflow.sqlite'}"
    engine = make_engine(address)
    create_schema(engine)
    engine.dispose()
    return address


def pragmas(session: Session) -> tuple[int, str, int]:
    return (session.scalar(text("PRAGMA busy_timeout")), session.scalar(text("PRAGMA journal_mode")),
            session.scalar(text("PRAGMA foreign_keys")))


def test_readers_and_writers_both_wait_fifteen_seconds_for_the_lock_in_wal_mode(url):
    engine = make_engine(url)
    for writes in (False, True):
        with make_sessionmaker(engine, writes=writes)() as session:
            assert pragmas(session) == (15_000, "wal", 1)


def test_a_shorter_busy_timeout_lasts_for_its_own_transaction_only(url):
    engine = make_engine(url, pool_size=1, max_overflow=0)  # one connection, reused by each session
    with Session(writer(engine, busy_ms=200)) as session:
        assert session.scalar(text("PRAGMA busy_timeout")) == 200
    with Session(engine) as session:
        assert session.scalar(text("PRAGMA busy_timeout")) == 15_000


def test_a_writer_that_cannot_get_the_lock_in_time_fails_as_busy_and_a_reader_does_not(url):
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        engine = make_engine(url)
        with Session(engine) as session:
            assert session.scalar(text("SELECT count(*) FROM people")) == 0
        with pytest.raises(OperationalError) as caught, Session(writer(engine, busy_ms=50)) as session:
            session.execute(text("SELECT 1"))
    finally:
        holder.rollback()
        holder.close()
    assert str(caught.value.orig) == "database is locked"
    assert is_busy(caught.value)
    assert not is_busy(ValueError("database is locked"))
