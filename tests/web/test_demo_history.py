"""`deskflow demo --with-history [PATH]`: the ServiceNow log imported, or a year generated."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from engine.db import create_schema, make_engine, make_sessionmaker
from engine.history.generate import demo_history, find_export
from engine.models import AuditEvent, Request
from tests.acme import ACME, ROOT
from tests.history.conftest import fresh_database
from web import cli
from web.cli import main

FIXTURE = ROOT / "tests" / "data" / "history" / "servicenow.csv"
PG_URL = os.environ.get("DESKFLOW_TEST_DATABASE_URL")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    for key in ("DESKFLOW_DATABASE_URL", "DESKFLOW_CATALOG", "DESKFLOW_SECURE_COOKIES",
                "DESKFLOW_BASE_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def start_demo(tmp_path, monkeypatch, runner):
    """Run `deskflow demo ARGS` in tmp_path/run without serving or a worker."""

    class Idle:
        def set(self):
            pass

        def join(self, timeout=None):
            pass

    monkeypatch.setattr(cli, "_serve", lambda app, host, port: None)
    monkeypatch.setattr(cli, "_start_worker", lambda app: (Idle(), Idle()))
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")

    def start(*args):
        result = runner.invoke(main, ["demo", *map(str, args)])
        assert result.exit_code == 0, result.output
        return result.output

    return start


def demo_url(tmp_path):
    return f"sqlite:///{tmp_path / 'run' / 'instance' / 'deskflow.sqlite'}"


def imported(url, source):
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        rows = s.execute(select(Request.external_id, Request.created_at, Request.status,
                                Request.support_tier).where(Request.import_source == source)).all()
    engine.dispose()
    return rows


def test_the_servicenow_file_at_path_is_imported_once(tmp_path, start_demo):
    # every case of the fixture but INC011, whose one row is bad (tests/history/test_import.py)
    numbers = {f"INC{n:03d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12)}
    out = start_demo("--with-history", FIXTURE)
    assert ("  history   servicenow: 11 records created, 0 updated, 0 unchanged, 29 timeline "
            f"events, 4 rows skipped ({FIXTURE})") in out
    assert {r.external_id for r in imported(demo_url(tmp_path), "servicenow")} == numbers
    again = start_demo("--with-history", FIXTURE)
    assert "  history   servicenow: imported before, nothing new" in again
    assert len(imported(demo_url(tmp_path), "servicenow")) == len(numbers)


def test_without_the_log_a_year_is_generated_once(tmp_path, start_demo, runner):
    empty = tmp_path / "empty"
    empty.mkdir()
    started = datetime.now(UTC)
    out = start_demo("--with-history", empty)
    assert "  history   generated: " in out and "(a generated year of incidents)" in out
    url = demo_url(tmp_path)
    rows = imported(url, "generated")
    assert 2500 <= len(rows) <= 3500
    opened = [r.created_at.replace(tzinfo=UTC) for r in rows]
    assert started - timedelta(days=366) <= min(opened) and max(opened) <= started
    assert {r.status for r in rows} == {"open", "closed"}
    assert {r.support_tier for r in rows} >= {"L1", "L2", "L3"}
    assert f"  history   generated: {len(rows)} records created, 0 updated, 0 unchanged" in out
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        events = s.scalar(select(func.count()).select_from(AuditEvent))
    engine.dispose()

    again = start_demo("--with-history", empty)
    assert "  history   generated: imported before, nothing new" in again
    assert len(imported(url, "generated")) == len(rows)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == events
    engine.dispose()

    report = runner.invoke(main, ["report", "--format", "json", "--db", url, "--catalog", str(ACME)])
    assert report.exit_code == 0, report.output
    figures = json.loads(report.output)
    assert sum(opened for _, opened, _ in figures["volume"]["rows"]) >= len(rows)
    sla = {row[0]: row for row in figures["sla_by_priority"]["rows"]}
    assert {"p1", "p2", "p3", "p4"} <= set(sla)
    reassignments = dict(figures["reassignments"]["rows"])
    assert reassignments["records"] >= len(rows)
    assert any(to == "any upper" and n > 0 for _, to, n in figures["escalations"]["rows"])


def test_a_demo_without_the_option_has_no_history(tmp_path, start_demo):
    out = start_demo()
    assert "history" not in out
    assert imported(demo_url(tmp_path), "generated") == []


def test_a_missing_path_is_refused(tmp_path, runner, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["demo", "--with-history", str(tmp_path / "nowhere.zip")])
    assert result.exit_code == 2
    assert result.output == (f"deskflow: --with-history {tmp_path / 'nowhere.zip'}: there is no such "
                             "file or folder\n")
    assert not (tmp_path / "instance").exists()


def test_find_export_looks_in_path_then_in_the_search_directories(tmp_path):
    data, empty = tmp_path / "data", tmp_path / "empty"
    data.mkdir()
    empty.mkdir()
    log = data / "servicenow-incident-event-log.csv.zip"
    log.write_bytes(b"")
    assert find_export(FIXTURE, [data]) == FIXTURE
    assert find_export(data, []) == log
    assert find_export(empty, [data]) is None  # a directory given is the only place looked in
    assert find_export(None, [empty, data]) == log
    assert find_export(None, [empty]) is None


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, acme):
    """A database with every table and acme's directory (PostgreSQL: a fresh one, dropped after)."""
    yield from fresh_database(request.param, tmp_path, acme)


def test_generation_is_deterministic_and_written_once(db_url, tmp_path):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    engine = make_engine(db_url)
    try:
        first = demo_history(engine, {"p1", "p2", "p3", "p4"}, now, None)
        assert first.summary is not None and first.summary.skipped == []
        assert first.summary.created == first.summary.cases
        assert demo_history(engine, {"p1", "p2", "p3", "p4"}, now, None).summary is None
    finally:
        engine.dispose()
    rows = imported(db_url, "generated")
    assert len(rows) == first.summary.created
    assert min(r.created_at.replace(tzinfo=UTC) for r in rows) >= now - timedelta(days=365)
    # the same seed gives the same year
    other = make_engine(f"sqlite:///{tmp_path / 'again.sqlite'}")
    create_schema(other)
    try:
        again = demo_history(other, {"p1", "p2", "p3", "p4"}, now, None)
        assert again.summary is not None and again.summary.created == first.summary.created
        assert again.summary.events == first.summary.events
    finally:
        other.dispose()
