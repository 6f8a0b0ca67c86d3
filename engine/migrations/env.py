"""Alembic environment: the engine's metadata, a URL from the CLI, Flask-Migrate or alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from engine.db import make_engine
from engine.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    try:  # run by Flask-Migrate inside an app context
        from flask import current_app

        return str(current_app.extensions["migrate"].db.engine.url.render_as_string(
            hide_password=False))
    except (ImportError, RuntimeError, KeyError) as exc:
        raise RuntimeError("no database URL: pass --db or set DESKFLOW_DATABASE_URL") from exc


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


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
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
