"""The engine's commands: db upgrade, simulate, worker, validate --db."""

from __future__ import annotations

import shutil

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from engine import search_index
from engine.db import make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.migrate import head
from engine.models import Base, OutboxMessage
from engine.service import RequestService
from web.cli import main

#: the text index of the agents' list is no model (engine/search_index.py)
COMPARED = {"include_name": search_index.include_name}


@pytest.fixture
def migrated(tmp_path, runner, pg_database, request):
    url = f"sqlite:///{tmp_path}/m/deskflow.sqlite"
    result = runner.invoke(main, ["db", "upgrade", "--db", url])
    assert result.exit_code == 0, result.output
    return url


def test_db_upgrade_creates_the_schema_the_models_describe(migrated, runner):
    assert f"database at revision {head()}" in runner.invoke(
        main, ["db", "upgrade", "--db", migrated]).output  # twice is fine
    engine = make_engine(migrated)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts=COMPARED), Base.metadata)
    engine.dispose()
    assert diff == []


def test_migrations_match_the_models_on_postgresql(pg_database, runner):
    if pg_database is None:
        pytest.skip("PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(make_url(pg_database).set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = make_url(pg_database).database + "_mig"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_database).set(database=name).render_as_string(hide_password=False)
    try:
        assert runner.invoke(main, ["db", "upgrade", "--db", url]).exit_code == 0
        engine = make_engine(url)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts=COMPARED),
                                    Base.metadata) == []
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_simulate_prints_the_path(runner, acme):
    result = runner.invoke(main, ["simulate", "new-laptop", "--as", "alice",
                                  "--catalog", str(acme.root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("REQ-000001: new-laptop ordered by alice, workflow laptop-request")
    assert "  1. manager_approval [approval] (Waiting for your manager)" in lines
    assert "       approval manager_approval: bob via requester.manager (any) -> approved" in lines
    assert "  ends: fulfilled" in lines


def test_simulate_a_rejection_and_answers(runner, acme):
    result = runner.invoke(main, ["simulate", "new-laptop", "--as", "alice", "--catalog",
                                  str(acme.root), "--set", "model=pro16", "--set",
                                  "justification=I edit 4K video for marketing.",
                                  "--reject", "director_approval"])
    assert result.exit_code == 0, result.output
    assert ("       decides: to director_approval because `form.model == 'pro16'` held "
            "(form.model = 'pro16')") in result.output.splitlines()
    assert "  ends: rejected" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "colour=red"], "deskflow: cannot simulate: new-laptop has no field colour; give "
     "answers with --set NAME=VALUE"),
    (["--set", "floor=two"], "  floor: Must be a whole number."),
    (["--set", "model=pro99"], "  model: pro99 is not one of the choices."),
])
def test_simulate_explains_bad_answers(runner, acme, args, message):
    result = runner.invoke(main, ["simulate", "new-laptop", "--as", "alice", "--catalog",
                                  str(acme.root), *args])
    assert result.exit_code == 1
    assert message in result.output.splitlines()


def _simulate(runner, acme, item, *args):
    return runner.invoke(main, ["simulate", item, "--as", "alice", "--catalog", str(acme.root),
                                *args])


def test_simulate_refuses_an_answer_the_portal_refuses_with_the_portals_message(runner, acme):
    result = _simulate(runner, acme, "vpn-access", "--set", "personal_device=maybe")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "deskflow: cannot simulate: the answers have errors; give answers with --set NAME=VALUE",
        "  personal_device: Must be true or false.",
    ]


@pytest.mark.parametrize(("args", "message"), [
    (["new-laptops"], "deskflow: no catalog item new-laptops (did you mean new-laptop?)"),
    (["new-laptop", "--as", "nobody"], "deskflow: --as nobody: no person nobody in the directory"),
    (["new-laptop", "--reject", "nosuchstate"],
     "deskflow: --reject nosuchstate: workflow laptop-request has no state nosuchstate "
     "(approval states: manager_approval, director_approval)"),
    (["new-laptop", "--reject", "prepare"],
     "deskflow: --reject prepare: prepare is a task state; --reject names an approval state "
     "(approval states: manager_approval, director_approval)"),
    (["new-laptop", "--outcome", "nosuchstate=done"],
     "deskflow: --outcome nosuchstate: workflow laptop-request has no state nosuchstate "
     "(task states: prepare)"),
    (["new-laptop", "--outcome", "check_model=done"],
     "deskflow: --outcome check_model: check_model is a decide state; --outcome names a state "
     "with one task (task states: prepare)"),
    (["new-laptop", "--outcome", "prepare=lost"],
     "deskflow: --outcome prepare=lost: the task in prepare has no outcome lost (outcomes: done)"),
])
def test_simulate_refuses_a_state_the_option_cannot_act_on_as_a_usage_mistake(
        runner, acme, args, message):
    result = _simulate(runner, acme, *args)
    assert result.exit_code == 2
    assert result.output.splitlines() == [message]


def test_simulate_lists_the_answers_it_assumed(runner, acme):
    result = _simulate(runner, acme, "new-laptop", "--set", "model=pro16", "--set",
                       "justification=I edit 4K video for marketing.")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[4:11] == [  # after the start, the priority and the SLA
        "  Assumed answers (not given with --set):",
        "    keyboard_layout=us-intl (the field's default)",
        "    cost_center=CC-0000",
        "    department=Sales (the field's default)",
        "    building=ams-hq (the field's default)",
        "    floor=0",
        "  1. manager_approval [approval] (Waiting for your manager)",
    ]


def test_simulate_strict_assumes_nothing_and_reports_missing_answers_as_the_portal_does(
        runner, acme):
    result = _simulate(runner, acme, "new-laptop", "--strict")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "deskflow: cannot simulate: the answers have errors; give answers with --set NAME=VALUE",
        "  cost_center: This field is required.",
        "  floor: This field is required.",
    ]


def test_simulate_strict_runs_on_the_given_answers_and_the_fields_defaults(runner, acme):
    result = _simulate(runner, acme, "new-laptop", "--strict", "--set", "cost_center=CC-1234",
                       "--set", "floor=3")
    assert result.exit_code == 0, result.output
    assert "    cost_center=CC-0000" not in result.output.splitlines()
    assert "    building=ams-hq (the field's default)" in result.output.splitlines()
    assert "  ends: fulfilled" in result.output.splitlines()


def test_simulate_takes_a_table_as_a_json_list_of_rows(runner, acme):
    result = _simulate(runner, acme, "monitor-peripherals", "--set",
                       'accessories=[{"accessory": "tv", "quantity": 9}]')
    assert result.exit_code == 1
    assert result.output.splitlines()[1:] == [
        "  accessories: Row 1: Accessory tv is not one of the choices. "
        "Row 1: Quantity must be at most 4."]
    ok = _simulate(runner, acme, "monitor-peripherals", "--set",
                   'accessories=[{"accessory": "dock", "quantity": 2}]')
    assert ok.exit_code == 0, ok.output
    assert "  ends: fulfilled" in ok.output.splitlines()


@pytest.mark.parametrize(("value", "message"), [
    ('[{"accessory": "dock"', "deskflow: --set accessories: Expecting ',' delimiter at character "
     """22 (a table takes a JSON list of rows, like --set 'accessories=[{"accessory": "..."}]')"""),
    ('{"accessory": "dock"}', "deskflow: --set accessories: not a list of rows (a table takes a "
     """JSON list of rows, like --set 'accessories=[{"accessory": "..."}]')"""),
])
def test_simulate_explains_the_table_syntax(runner, acme, value, message):
    result = _simulate(runner, acme, "monitor-peripherals", "--set", f"accessories={value}")
    assert result.exit_code == 2
    assert result.output.splitlines() == [message]


def test_simulate_touches_no_database(runner, acme, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(main, ["simulate", "password-unlock", "--as", "alice",
                                "--catalog", str(acme.root)]).exit_code == 0
    assert list(tmp_path.iterdir()) == []


def test_validate_reports_workflows_removed_under_open_requests(runner, acme, tmp_path, migrated, clock):
    sessions = make_sessionmaker(make_engine(migrated))
    with sessions.begin() as s:
        sync_directory(s, acme.directory)
    RequestService(sessions, lambda: acme, clock).submit(
        "vpn-access", "alice", {"vpn_profile": "standard"})
    copy = tmp_path / "c"
    shutil.copytree(acme.root, copy)
    (copy / "workflows" / "identity-request.yaml").unlink()
    (copy / "items" / "vpn-access.yaml").unlink()
    result = runner.invoke(main, ["validate", str(copy), "--db", migrated])
    assert result.exit_code == 1
    assert (f"{copy}/workflows/identity-request.yaml:1:1: workflow identity-request was removed, "
            "but 1 open request still run on it (keep the file until they finish, or cancel them)"
            ) in result.output


def test_worker_once_fires_timers_and_tries_the_outbox(runner, acme, migrated, clock, monkeypatch):
    sessions = make_sessionmaker(make_engine(migrated))
    with sessions.begin() as s:
        sync_directory(s, acme.directory)
    RequestService(sessions, lambda: acme, clock).submit("new-laptop", "alice", {
        "model": "std14", "cost_center": "CC-1234", "building": "ams-hq", "floor": 1})
    monkeypatch.setenv("DESKFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DESKFLOW_SMTP_PORT", "9")  # nothing listens: delivery fails, retried later
    result = runner.invoke(main, ["worker", "--once", "--db", migrated, "--catalog", str(acme.root)])
    assert result.exit_code == 0, result.output
    with sessions() as s:
        attempts = [m.attempts for m in s.scalars(select(OutboxMessage))]
    assert attempts and all(a == 1 for a in attempts)
