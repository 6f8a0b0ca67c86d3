"""Report fixtures: the engine's (a database on SQLite and PostgreSQL, a service on acme, a clock)."""

from tests.engine.conftest import (  # noqa: F401 - fixtures
    answers,
    clock,
    db_url,
    engine,
    pg_database,
    service,
    sessions,
)
