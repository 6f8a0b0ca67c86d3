"""`deskflow worker` starts only on a database whose schema is current (as `deskflow serve`)."""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from engine.db import make_engine
from engine.migrate import head, upgrade
from tests.acme import ACME
from web.cli import main

PG_URL = os.environ.get("DESKFLOW_TEST_DATABASE_URL", "")


def test_the_worker_refuses_a_missing_database(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["worker", "--once", "--catalog", str(ACME)])
    assert result.exit_code == 1
    assert result.stderr == ("deskflow: there is no database at instance/deskflow.sqlite; run "
                             "`deskflow db upgrade` first, then start the worker again.\n")
    assert not (tmp_path / "instance" / "deskflow.sqlite").exists()


def test_the_worker_refuses_an_unmigrated_database(runner, tmp_path):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    result = runner.invoke(main, ["worker", "--once", "--db", url, "--catalog", str(ACME)])
    assert result.exit_code == 1
    assert result.stderr == (f"deskflow: the database has no Deskflow schema yet (this Deskflow "
                             f"needs revision {head()}); run `deskflow db upgrade --db '{url}'` "
                             "first, then start the worker again.\n")


def test_the_worker_refuses_a_database_behind_and_does_no_work(runner, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    upgrade(url, "0001")
    result = runner.invoke(main, ["worker", "--once", "--db", url, "--catalog", str(ACME)])
    assert result.exit_code == 1
    assert result.stderr == (f"deskflow: the database schema is behind: revision 0001, this "
                             f"Deskflow needs {head()}; run `deskflow db upgrade --db '{url}'` "
                             "first, then start the worker again.\n")
    assert "worker started" not in result.output


@pytest.mark.skipif(not PG_URL or make_url(PG_URL).get_backend_name() != "postgresql",
                    reason="PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL")
def test_the_worker_refusal_on_postgresql_hides_the_database_password(runner):
    schema = f"worker_{uuid.uuid4().hex[:8]}"  # empty: no alembic_version in it
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(PG_URL).set(password="hunter2")  # trust authentication ignores it
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        result = runner.invoke(main, ["worker", "--once", "--db", url.render_as_string(hide_password=False),
                                      "--catalog", str(ACME)])
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    shown = url.render_as_string(hide_password=True)
    assert result.exit_code == 1
    assert result.stderr == (f"deskflow: the database has no Deskflow schema yet (this Deskflow "
                             f"needs revision {head()}); run `deskflow db upgrade --db '{shown}'` "
                             "first, then start the worker again.\n")
    assert "hunter2" not in result.stderr


def test_a_worker_started_while_the_database_is_down_says_so_and_starts_anyway(runner):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://desk:hunter2@127.0.0.1:{port}/x"
    result = runner.invoke(main, ["worker", "--once", "--db", url, "--catalog", str(ACME)])
    first = result.stderr.splitlines()[0].split(" ", 1)[1]  # after the time
    assert first.startswith(f"WARNING engine.worker cannot read the database at "
                            f"postgresql://desk:***@127.0.0.1:{port}/x: ")
    assert first.endswith("; starting anyway, each pass tries again")
    assert "hunter2" not in result.output + result.stderr
    assert f"worker for postgresql://desk:***@127.0.0.1:{port}/x" in result.stderr
