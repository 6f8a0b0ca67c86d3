"""Alembic environment: the engine's metadata, and the URL its caller set.

`deskflow db upgrade` (engine.migrate) and Flask-Migrate (`flask db`, set up in web) both put
the database URL in the Alembic config as `sqlalchemy.url`; this file never asks Flask.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from catalog.errors import DeskflowError, UsageError
from engine import search_index
from engine.db import make_engine
from engine.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise UsageError("no database URL: pass --db or set DESKFLOW_DATABASE_URL")
    return url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True, include_name=search_index.include_name)
    with context.begin_transaction():
        context.run_migrations()
        search_index.ensure(connection)  # SQLite triggers a batch migration dropped
        if connection.dialect.name == "sqlite":  # what enforcement was off for, checked at the end
            dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if dangling:
                raise DeskflowError("the migration left rows whose references point nowhere "
                                    f"(table, row, parent): {[tuple(r[:3]) for r in dangling[:5]]}")


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # A batch migration copies a table and drops the old one; with foreign keys enforced,
            # dropping a parent that has rows fails ("database table is locked"). The pragma only
            # works outside a transaction: before the first statement. _run checks them after.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        _run(conn)
        conn.commit()  # with nothing to migrate, Alembic leaves search_index.ensure's work open
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
