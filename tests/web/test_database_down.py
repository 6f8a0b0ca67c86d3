"""The database down: 503 with Retry-After, never 500; /readyz fails fast; the app recovers by
itself (docs/operations.md; docs/reliability-tests.md, test 39)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask import request as flask_request
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

import engine.db
from catalog.loader import load_valid_catalog
from engine.db import create_schema, engine_options, is_unreachable, make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.errors import NotFound
from engine.models import Approval, Person, Request, Task
from tests.acme import ACME, ACME_ANSWERS
from tests.web.conftest import PASSWORD, Auth
from web import create_app
from web.passwords import FAST_HASHER, hash_password

UNREACHABLE = "The database cannot be reached just now. Please try again in a moment."
BEARER = {"Authorization": "Bearer dft_" + "x" * 43}


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_on(url: str, tmp_path: Path, **config: object) -> Flask:
    return create_app({"TESTING": True, "SECRET_KEY": "test", "DESKFLOW_DATABASE_URL": url,
                       "DESKFLOW_CATALOG": str(ACME), "DESKFLOW_SECURE_COOKIES": False,
                       "RATELIMIT_ENABLED": False, **config},
                      instance_path=str(tmp_path / "instance"))


@pytest.fixture
def down(tmp_path) -> Flask:
    """The app on a PostgreSQL server that is not running: its port refuses connections."""
    return app_on(f"postgresql://postgres@127.0.0.1:{closed_port()}/x", tmp_path)


def unreachable_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "deskflow.web"]


def test_a_page_is_a_503_with_retry_after_and_a_reference_while_postgresql_is_down(down, caplog):
    caplog.set_level(logging.WARNING, logger="deskflow.web")
    response = down.test_client().get("/")
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.mimetype == "text/html"
    assert "<h1 class=\"display-6\">Database unavailable</h1>" in body
    assert f'<p class="lead">{UNREACHABLE}</p>' in body
    assert f"Reference: <code>{response.headers['X-Request-ID']}</code>" in body
    assert "Traceback" not in body and "Connection refused" not in body
    [line] = unreachable_lines(caplog)
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert line.getMessage().startswith("database unreachable on GET /: OperationalError: ")


def test_an_api_call_is_a_503_problem_with_retry_after_while_postgresql_is_down(down, caplog):
    caplog.set_level(logging.WARNING, logger="deskflow.web")
    response = down.test_client().get("/api/v1/catalog", headers=BEARER)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.mimetype == "application/problem+json"
    assert response.get_json() == {"type": "about:blank", "title": "Service Unavailable", "status": 503,
                                   "detail": UNREACHABLE,
                                   "request_id": response.headers["X-Request-ID"]}
    [line] = unreachable_lines(caplog)
    assert line.getMessage().startswith("database unreachable on GET /api/v1/catalog: ")


def test_a_page_asked_for_as_json_is_a_503_problem(down):
    response = down.test_client().get("/", headers={"Accept": "application/json"})
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert response.get_json()["detail"] == UNREACHABLE


def test_readyz_names_the_database_when_postgresql_is_down(down):
    response = down.test_client().get("/readyz")
    checks = response.get_json()["checks"]
    assert response.status_code == 503
    assert checks["database"].startswith("unreachable: ")
    assert checks["migrations"] == "unknown: the database did not answer"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that takes TCP connections and never answers: a server hung or unreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_readyz_and_pages_give_up_on_a_server_that_never_answers(silent_server, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(engine.db, "PG_CONNECT_TIMEOUT_S", 2)  # libpq's minimum
    app = app_on(f"postgresql://postgres@127.0.0.1:{silent_server}/x", tmp_path)
    answers: dict[str, int] = {}

    def ask() -> None:
        client = app.test_client()
        answers["readyz"] = client.get("/readyz").status_code
        answers["page"] = client.get("/").status_code

    asking = threading.Thread(target=ask, daemon=True)
    started = time.monotonic()
    asking.start()
    asking.join(timeout=30)  # without a connect timeout, libpq waits for the server forever
    assert not asking.is_alive(), "a request hung on a server that does not answer"
    assert answers == {"readyz": 503, "page": 503}
    assert time.monotonic() - started < 30


def test_postgresql_connections_give_up_after_the_connect_timeout():
    assert engine_options("postgresql+psycopg://db/x")["connect_args"] == {"connect_timeout": 5}
    assert "connect_timeout" not in engine_options("sqlite:///x.sqlite")["connect_args"]


# ---------------------------------------------------------------- SQLite: the file goes away

@contextmanager
def database_file_away(app: Flask, tmp_path: Path) -> Iterator[None]:
    """The SQLite file cannot be opened (a directory stands at its path), then comes back."""
    from web.extensions import db

    db_file = tmp_path / "deskflow.sqlite"
    with app.app_context():
        db.engine.dispose()  # close the pooled connections: the next one opens the file again
    moved = list(tmp_path.glob("deskflow.sqlite*"))
    for path in moved:
        path.rename(path.with_name("away-" + path.name))
    db_file.mkdir()  # what stands at the database's path cannot be opened as one
    try:
        yield
    finally:
        db_file.rmdir()
        for path in moved:
            path.with_name("away-" + path.name).rename(path)


def test_a_signed_in_page_is_a_503_while_the_database_file_cannot_be_opened_then_recovers(
        app, client, auth, tmp_path, caplog):
    auth.login("alice")
    assert client.get("/requests").status_code == 200
    with database_file_away(app, tmp_path):
        caplog.set_level(logging.WARNING, logger="deskflow.web")
        response = client.get("/requests")
        body = response.get_data(as_text=True)
        assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
        assert f'<p class="lead">{UNREACHABLE}</p>' in body
        assert "Sign out" not in body  # no nav: it reads the signed-in person and counts
        [line] = unreachable_lines(caplog)
        assert line.getMessage().startswith(
            "database unreachable on GET /requests: OperationalError: ")
    recovered = client.get("/requests")
    assert recovered.status_code == 200  # no restart, no manual step
    assert "Sign out" in recovered.get_data(as_text=True)


def open_task(service) -> int:
    """An approved laptop request's open task, in frank's it-hardware queue."""
    req = service.submit("new-laptop", "alice", dict(ACME_ANSWERS["new-laptop"]))
    with service.sessions() as s:
        approval = s.scalar(select(Approval).where(Approval.request_id == req.id))
    service.approve(approval.id, approval.approver_id)
    with service.sessions() as s:
        return int(s.scalar(select(Task.id).where(Task.request_id == req.id)))


#: the agents' and fulfillers' lists and pages: the tasks page, the queues, the approvals inbox,
#: the agents' list (web/worklist.py), notifications, the requester's list
AGENT_PAGES = ["/tasks/{task}", "/queues", "/queues/it-hardware", "/approvals", "/records",
               "/notifications", "/requests"]


@pytest.mark.parametrize("page", AGENT_PAGES)
def test_each_agent_page_is_a_503_while_the_database_file_cannot_be_opened(
        app, client, auth, service, tmp_path, page):
    url = page.format(task=open_task(service))
    auth.login("frank")
    assert client.get(url).status_code == 200
    with database_file_away(app, tmp_path):
        response = client.get(url)
        assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
        assert f'<p class="lead">{UNREACHABLE}</p>' in response.get_data(as_text=True)
    assert client.get(url).status_code == 200


def test_other_database_errors_stay_a_500(app, client, caplog):
    from web.extensions import db

    def broken() -> str:
        db.session.execute(text("SELECT * FROM no_such_table"))
        return "never"

    app.add_url_rule("/broken-query", "broken_query", broken)
    response = client.get("/broken-query")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert UNREACHABLE not in response.get_data(as_text=True)


# ---------------------------------------------------------------- a real PostgreSQL restart

PG_URL = os.environ.get("DESKFLOW_TEST_DATABASE_URL", "")
needs_postgresql = pytest.mark.skipif(
    not PG_URL or make_url(PG_URL).get_backend_name() != "postgresql",
    reason="PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL")


def terminate(pids: list[int]) -> None:
    """What a PostgreSQL restart does to the connections it had: end their server processes."""
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


@needs_postgresql
def test_a_connection_a_restart_killed_counts_as_unreachable():
    eng = make_engine(PG_URL)
    try:
        with eng.connect() as conn:
            terminate([conn.scalar(text("SELECT pg_backend_pid()"))])
            with pytest.raises(DBAPIError) as caught:
                conn.execute(text("SELECT 1"))
        assert caught.value.connection_invalidated
        assert is_unreachable(caught.value)
        with eng.connect() as conn:  # a fresh connection, with no step by hand
            assert conn.scalar(text("SELECT 1")) == 1
    finally:
        eng.dispose()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """The test database's URL, in a schema of its own holding Deskflow's tables."""
    schema = f"down_{uuid.uuid4().hex[:8]}"
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_engine(url.render_as_string(hide_password=False))
    create_schema(scoped)
    scoped.dispose()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@needs_postgresql
def test_the_app_answers_503_while_its_connection_dies_then_recovers_by_itself(pg_schema, tmp_path,
                                                                                  caplog):
    from web.extensions import db

    app = app_on(pg_schema, tmp_path)

    def dies_midway() -> str:
        terminate([db.session.scalar(text("SELECT pg_backend_pid()"))])
        db.session.execute(text("SELECT 1"))
        return "never"

    app.add_url_rule("/dies-midway", "dies_midway", dies_midway)
    client = app.test_client()
    assert client.get("/readyz").get_json()["checks"]["database"] == "ok"
    with app.app_context(), db.engine.connect() as conn:
        pooled = conn.scalar(text("SELECT pg_backend_pid()"))
    terminate([pooled])  # the connection waiting in the pool dies, as in a restart
    assert client.get("/readyz").get_json()["checks"]["database"] == "ok"  # pre-ping replaced it
    caplog.set_level(logging.WARNING, logger="deskflow.web")
    response = client.get("/dies-midway")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert f'<p class="lead">{UNREACHABLE}</p>' in response.get_data(as_text=True)
    [line] = unreachable_lines(caplog)
    assert line.getMessage() == ("database unreachable on GET /dies-midway: AdminShutdown: "
                                 "terminating connection due to administrator command")
    assert client.get("/readyz").get_json()["checks"]["database"] == "ok"
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def pg_app(pg_schema, tmp_path) -> Iterator[Flask]:
    """The app on PostgreSQL with acme's directory (PASSWORD for everyone)."""
    scoped = make_engine(pg_schema)
    with make_sessionmaker(scoped).begin() as s:
        sync_directory(s, load_valid_catalog(ACME).directory)
        s.execute(update(Person).values(password_hash=hash_password(PASSWORD, using=FAST_HASHER)))
    scoped.dispose()
    app = app_on(pg_schema, tmp_path, DESKFLOW_PASSWORD_HASHING="fast")
    yield app
    from web.extensions import db

    with app.app_context():
        db.engine.dispose()


def kill_after_the_view(app: Flask) -> None:
    """A restart between the page's last statement and the end of the request: the connection
    dies once the response is made, so only ending the session (its ROLLBACK) meets it."""
    from web.extensions import db

    @app.after_request
    def kill(response):  # type: ignore[no-untyped-def]
        if "X-Kill" in flask_request.headers:
            conn = db.session.connection().connection.dbapi_connection
            terminate([conn.info.backend_pid])
        return response


@needs_postgresql
@pytest.mark.parametrize("page", AGENT_PAGES)
def test_a_page_made_before_its_connection_died_is_answered_not_a_500(pg_app, page, caplog):
    kill_after_the_view(pg_app)
    url = page.format(task=open_task(pg_app.extensions["deskflow"].service))
    client = pg_app.test_client()
    Auth(client).login("frank")
    caplog.set_level(logging.WARNING, logger="deskflow.web")
    response = client.get(url, headers={"X-Kill": "1"})  # raised from the teardown before
    assert response.status_code == 200
    assert "Sign out" in response.get_data(as_text=True)
    [line] = unreachable_lines(caplog)
    assert line.getMessage() == ("database unreachable when the session ended: AdminShutdown: "
                                 "terminating connection due to administrator command")
    assert client.get(url).status_code == 200  # the next request has a fresh connection


@needs_postgresql
def test_an_error_page_whose_nav_cannot_be_read_keeps_its_status(pg_app, caplog):
    from web.extensions import db

    def gone_then_missing() -> str:
        terminate([db.session.scalar(text("SELECT pg_backend_pid()"))])
        raise NotFound("no such thing")

    pg_app.add_url_rule("/gone-then-missing", "gone_then_missing", gone_then_missing)
    client = pg_app.test_client()
    Auth(client).login("frank")
    caplog.set_level(logging.WARNING, logger="deskflow.web")
    response = client.get("/gone-then-missing")  # the error handler raised: a 500 before
    body = response.get_data(as_text=True)
    assert response.status_code == 404
    assert '<h1 class="display-6">Not found</h1>' in body
    assert '<p class="lead">no such thing</p>' in body
    assert "Sign out" not in body  # no nav: it reads the signed-in person and counts
    assert [r.getMessage() for r in unreachable_lines(caplog)] == [
        "database unreachable while rendering the 404 page on GET /gone-then-missing: "
        "AdminShutdown: terminating connection due to administrator command"]
    assert client.get("/queues").status_code == 200



def test_a_csv_exports_query_runs_in_the_view_where_an_outage_is_still_a_503(app, client, auth,
                                                                                service):
    """Once a streamed download has begun its status is sent: a failure there can only be a 500
    (gunicorn, before the first chunk) or a cut download. So the export's query runs, and its
    first chunk is made, before the view returns (a small export is made whole)."""
    from web.extensions import db

    open_task(service)
    with service.sessions() as s:
        numbers = sorted(s.scalars(select(Request.number)))
    ran: list[str] = []
    seen: list[int] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *args: ran.append(statement))

    @app.after_request
    def count(response):  # type: ignore[no-untyped-def]
        seen.append(sum("record_facts" in statement for statement in ran))
        return response

    auth.login("oscar")
    response = client.get("/reports/records.csv")
    assert (response.status_code, response.mimetype) == (200, "text/csv")
    assert seen[-1] == 1  # the export's SELECT had run when the view returned
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("number,record_type,")
    assert [line.split(",")[0] for line in lines[1:]] == numbers
