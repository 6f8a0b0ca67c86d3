"""Database engines and sessions for the engine, outside any Flask app."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from engine import search_index
from engine.extras import require_database_driver
from engine.models import Base

SQLITE_BUSY_TIMEOUT_MS = 15_000
#: seconds a PostgreSQL connection attempt may take, so a page or /readyz fails fast while the
#: server is down instead of hanging on a host that does not answer (libpq's minimum is 2)
PG_CONNECT_TIMEOUT_S = 5


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs; refuse a driver whose extra is not installed."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    require_database_driver(parsed)
    return parsed.render_as_string(hide_password=False)


def absolute_sqlite(url: str) -> str:
    """A SQLite URL with a relative path made absolute from the current directory, as every
    command reads it (Flask-SQLAlchemy would otherwise take it from the app's instance folder)."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:" \
            or name.startswith("file:") or Path(name).is_absolute():
        return url
    return parsed.set(database=str(Path(name).resolve())).render_as_string(hide_password=False)


def engine_options(url: str) -> dict[str, Any]:
    """Pool and connect options suited to the database behind `url`."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                 "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20,
            "connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT_S}}


def configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for every writer transaction.

    BEGIN IMMEDIATE takes the write lock up front, so two writers queue on the busy
    timeout instead of one failing at once with "database is locked" when it upgrades: SQLite
    does not wait for a deferred transaction whose snapshot is older than the last commit.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        busy_ms = int(options.get("deskflow_busy_ms", SQLITE_BUSY_TIMEOUT_MS))
        info = conn.connection.info  # lives as long as the pooled DBAPI connection
        if info.get("deskflow_busy_ms", SQLITE_BUSY_TIMEOUT_MS) != busy_ms:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={busy_ms}")
            info["deskflow_busy_ms"] = busy_ms
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("deskflow_writes") else "BEGIN")


def make_engine(url: str, **kw: Any) -> Engine:
    url = normalize_url(url)
    options = engine_options(url)
    if "connect_args" in kw:  # added to ours (the connect timeout), not instead of them
        kw = {**kw, "connect_args": {**options.get("connect_args", {}), **kw["connect_args"]}}
    engine = create_engine(url, **{**options, **kw})
    configure_sqlite(engine)
    return engine


def writer(engine: Engine, busy_ms: int | None = None) -> Engine:
    """The same engine, for sessions that write: on SQLite they take the write lock at BEGIN.

    Readers (page views) keep plain deferred transactions, so they never queue behind writers.
    `busy_ms` waits less than the usual busy timeout for the lock, for writes worth skipping
    when the database is busy.
    """
    if busy_ms is None:
        return engine.execution_options(deskflow_writes=True)
    return engine.execution_options(deskflow_writes=True, deskflow_busy_ms=busy_ms)


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` says the database lock could not be had within the busy timeout."""
    if not isinstance(exc, DBAPIError):
        return False
    text = str(exc.orig)
    return "database is locked" in text or "database is busy" in text


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or the connection to it was lost.

    Decided by the exception's class and code, never its text: SQLAlchemy saw a disconnect
    (`connection_invalidated`: a server restart killed the connection), psycopg could not
    connect or lost the connection (an OperationalError with no SQLSTATE, or a connection,
    shutdown or "cannot connect now" SQLSTATE), or SQLite cannot open its file.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        return (orig.sqlite_errorcode & 0xFF) == sqlite3.SQLITE_CANTOPEN
    psycopg = sys.modules.get("psycopg")  # not imported: the error cannot be one of its
    if psycopg is None or not isinstance(orig, psycopg.OperationalError):
        return False
    errors = psycopg.errors
    return orig.sqlstate is None or isinstance(orig, (
        errors.ConnectionException, errors.AdminShutdown, errors.CrashShutdown,
        errors.CannotConnectNow))


def make_sessionmaker(engine: Engine, writes: bool = True) -> sessionmaker[Session]:
    return sessionmaker(bind=writer(engine) if writes else engine, expire_on_commit=False)


def create_schema(engine: Engine) -> None:
    """Create every table directly (tests and the simulator; production uses migrations)."""
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        search_index.create(conn)  # not a model: the agents' list's text index


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """One write transaction on the database at `url`, for a command that runs once."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as session:
            yield session
    finally:
        engine.dispose()
