"""Schema migrations (Alembic; Flask-Migrate runs the same scripts inside the app)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from engine.db import make_engine, normalize_url
from engine.errors import DatabaseUnreadable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (creating an SQLite file's folder)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_problem(url: str) -> str | None:
    """Why the database at `url` cannot be served by this Deskflow, or None when it can.

    Raises DatabaseUnreadable when the database cannot be read at all.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not Path(parsed.database).is_file():
        return f"there is no database at {parsed.database}"
    try:
        at = current(url)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        shown = parsed.render_as_string(hide_password=True)
        raise DatabaseUnreadable(f"cannot read the database at {shown}: {reason}") from None
    wanted = head()
    if at == wanted:
        return None
    if at is None:
        return f"the database has no Deskflow schema yet (this Deskflow needs revision {wanted})"
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(at)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
        return (f"the database is at revision {at}, which this Deskflow does not know: it was "
                "migrated by a newer Deskflow; upgrade Deskflow instead")
    return f"the database schema is behind: revision {at}, this Deskflow needs {wanted}"
