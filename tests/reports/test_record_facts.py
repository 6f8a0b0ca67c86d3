"""The dashboards' per-record facts (engine.record_figures): migration 0018 fills them from
the audit trail exactly as the importer and the engine keep them, on SQLite and PostgreSQL;
the importer's bulk path (search triggers paused) still indexes every record for search."""

from __future__ import annotations

import json

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import func, select, text

from engine.db import make_engine
from engine.migrate import alembic_config, upgrade
from engine.models import RecordFact, Request
from tests.acme import ACME
from tests.history.conftest import DATA, fresh_database
from web.cli import main


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request, tmp_path, acme):
    """A database brought to the head by the migrations, with acme's directory."""
    yield from fresh_database(request.param, tmp_path, acme, migrated=True)


def report(url: str) -> dict:
    result = CliRunner().invoke(main, ["report", "--format", "json", "--db", url,
                                       "--catalog", str(ACME)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    figures.pop("deflections")  # counted up to now: not a property of the records
    return {name: fig["rows"] for name, fig in figures.items()}


def counts(url: str) -> tuple[int, int, int]:
    """Records, their facts rows, and their rows in the search index that name them."""
    engine = make_engine(url)
    with engine.connect() as conn:
        indexed = "record" if conn.dialect.name == "sqlite" else "body"
        key = "rowid" if conn.dialect.name == "sqlite" else "request_id"
        out = (conn.scalar(select(func.count()).select_from(Request)),
               conn.scalar(select(func.count()).select_from(RecordFact)),
               conn.scalar(text(f"SELECT count(*) FROM record_search s JOIN requests r "
                                f"ON r.id = s.{key} WHERE s.{indexed} LIKE '%' || lower(r.number) || '%'")))
    engine.dispose()
    return out


def test_migration_0018_rebuilds_the_facts_the_importer_wrote(migrated):
    for name in ("servicenow", "bpic2013"):
        result = CliRunner().invoke(main, ["import", name, str(DATA / f"{name}.csv"), "--db",
                                           migrated, "--catalog", str(ACME)])
        assert result.exit_code in (0, 1), result.output  # 1: rows skipped, on purpose
    before = report(migrated)
    records, facts, indexed = counts(migrated)
    assert records == facts == indexed > 0  # the importer's bulk path indexes for search too
    engine = make_engine(migrated)
    with engine.connect() as conn:  # and leaves the triggers running for everyone else
        assert conn.scalar(text("SELECT count(*) FROM record_search_paused")) == 0
    engine.dispose()
    assert dict(map(tuple, before["reassignments"]))["records with ping-pong"] >= 1
    assert before["tiers"]

    command.downgrade(alembic_config(migrated), "0017")
    upgrade(migrated)

    assert counts(migrated) == (records, records, records)
    assert report(migrated) == before
