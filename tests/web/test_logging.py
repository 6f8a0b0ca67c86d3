"""Logs for operators: a request id in and out of every request, text or JSON lines, worker counts."""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import web.logs
from engine.db import make_engine, make_sessionmaker
from engine.outbox import enqueue_email
from tests.acme import ACME
from tests.web.conftest import make_app
from web.api.spec import schema_of
from web.cli import main
from web.logs import configure

HEX_ID = re.compile(r"[0-9a-f]{32}")
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (?P<level>[A-Z]+) (?P<logger>\S+) "
                       r"(?:\[(?P<rid>[^\]]+)\] )?(?P<message>.*)")


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch) -> Iterator[None]:
    """Configuring logging touches the root logger; put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(web.logs, "_configured", False)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def boom(app):
    def fail() -> Any:
        raise RuntimeError("secret internals")

    app.add_url_rule("/boom", "boom", fail)
    app.add_url_rule("/api/v1/boom", "api_boom", fail)
    return app


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ---------------------------------------------------------------- the request id

def test_every_response_carries_a_new_request_id(client) -> None:
    first = client.get("/login").headers["X-Request-ID"]
    second = client.get("/login").headers["X-Request-ID"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second) and first != second


@pytest.mark.parametrize("incoming", ["edge-7f3a.01_B", "a" * 64])
def test_a_sane_incoming_request_id_is_kept(client, incoming: str) -> None:
    assert client.get("/login", headers={"X-Request-ID": incoming}).headers["X-Request-ID"] == incoming


@pytest.mark.parametrize("incoming", ["", "a" * 65, "two words", "id;drop", "<script>", "../etc"])
def test_an_insane_incoming_request_id_is_replaced(client, incoming: str) -> None:
    answer = client.get("/login", headers={"X-Request-ID": incoming}).headers["X-Request-ID"]
    assert HEX_ID.fullmatch(answer)


def test_the_error_page_shows_the_reference(client) -> None:
    response = client.get("/no-such-page", headers={"X-Request-ID": "ref-404"})
    assert response.status_code == 404
    assert "Reference: <code>ref-404</code>" in response.get_data(as_text=True)


def test_an_unexpected_error_page_shows_the_reference_of_its_log_line(boom, capsys) -> None:
    configure("json")
    response = boom.test_client().get("/boom", headers={"X-Request-ID": "ref-500"})
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "ref-500"
    assert "Reference: <code>ref-500</code>" in page and "secret internals" not in page
    [line] = [r for r in json_lines(capsys.readouterr().err) if r["level"] == "ERROR"]
    assert {k: line[k] for k in ("level", "logger", "message", "request_id")} == {
        "level": "ERROR", "logger": "deskflow.web", "message": "unexpected error on GET /boom",
        "request_id": "ref-500"}
    assert "RuntimeError: secret internals" in line["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


def test_an_api_problem_names_the_request_id(boom) -> None:
    response = boom.test_client().get("/api/v1/boom", headers={"X-Request-ID": "api-ref"})
    body = response.get_json()
    assert (response.status_code, body["request_id"], response.headers["X-Request-ID"]) == \
        (500, "api-ref", "api-ref")
    Draft202012Validator(schema_of("Problem")).validate(body)


def test_a_json_error_outside_the_api_names_the_request_id(client) -> None:
    response = client.get("/no-such-page", headers={"Accept": "application/json", "X-Request-ID": "j-1"})
    assert response.get_json()["request_id"] == "j-1"


# ---------------------------------------------------------------- formats

def test_a_text_line_has_time_level_logger_request_id_and_message(boom, capsys) -> None:
    configure("text")
    boom.test_client().get("/boom", headers={"X-Request-ID": "txt-1"})
    first = capsys.readouterr().err.splitlines()[0]
    match = TEXT_LINE.fullmatch(first)
    assert match and match.group("level", "logger", "rid", "message") == (
        "ERROR", "deskflow.web", "txt-1", "unexpected error on GET /boom")


def test_a_line_written_outside_a_request_has_no_request_id(capsys) -> None:
    configure("json", "warning")
    log = logging.getLogger("engine.worker")
    log.info("not shown below WARNING")
    log.warning("outside")
    assert [{k: v for k, v in line.items() if k != "time"} for line in json_lines(capsys.readouterr().err)] \
        == [{"level": "WARNING", "logger": "engine.worker", "message": "outside"}]


def test_gunicorn_apps_log_json_when_the_environment_asks(monkeypatch, tmp_path, template_db, capsys) -> None:
    monkeypatch.setenv("DESKFLOW_LOG_FORMAT", "json")
    app = make_app(tmp_path, template_db)
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    app.test_client().get("/boom", headers={"X-Request-ID": "g-1"})
    [line] = json_lines(capsys.readouterr().err)
    assert (line["level"], line["request_id"]) == ("ERROR", "g-1")


def test_an_unknown_log_format_in_the_environment_is_a_clear_error(monkeypatch, tmp_path,
                                                                   template_db) -> None:
    from catalog.errors import UsageError

    monkeypatch.setenv("DESKFLOW_LOG_FORMAT", "xml")
    with pytest.raises(UsageError, match=r"^log format must be one of text, json \(not xml\)$"):
        make_app(tmp_path, template_db)


@pytest.mark.parametrize("command", ["serve", "demo", "worker"])
def test_an_unknown_log_format_option_is_refused(runner, command: str) -> None:
    result = runner.invoke(main, [command, "--log-format", "xml"])
    assert result.exit_code == 2
    assert "Invalid value for '--log-format': 'xml' is not one of 'text', 'json'." in result.output


# ---------------------------------------------------------------- the worker

def test_the_worker_logs_json_lines_with_its_counts(runner, tmp_path, template_db) -> None:
    controller_mod = pytest.importorskip("aiosmtpd.controller")

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    db_file = tmp_path / "worker.sqlite"
    shutil.copy(template_db, db_file)
    url = f"sqlite:///{db_file}"
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        for n in range(3):
            enqueue_email(session, request_id=None, event="request_approved", to=["ann@example.org"],
                          subject=f"n{n}", text="Body", html=None, key=f"k{n}",
                          now=datetime(2020, 1, 1, tzinfo=UTC))
    engine.dispose()
    controller = controller_mod.Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = runner.invoke(main, ["worker", "--once", "--log-format", "json", "--db",
                                      "sqlite:///" + str(db_file), "--catalog", str(ACME)],
                               env={"DESKFLOW_SMTP_HOST": "127.0.0.1", "DESKFLOW_SMTP_PORT": str(port),
                                    "DESKFLOW_SECRET_KEY": "test"})
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stderr)
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in lines)
    messages = [line["message"] for line in lines if line["logger"] == "engine.worker"]
    assert messages[0].startswith(f"worker for {url}, catalog {ACME} (")
    assert messages[0].endswith("), polling every 2.0s")
    assert messages[1:] == ["worker started: polling every 2.0s, 4 deliveries at once",
                            "refreshed the reports snapshot",
                            "delivered 3, retry 0, dead 0; timers fired 0",
                            "worker stopped after 3 items"]


def test_the_worker_start_line_hides_the_database_password(runner) -> None:
    result = runner.invoke(main, ["worker", "--once", "--db", "postgresql://desk:hunter2@127.0.0.1:1/x",
                                  "--catalog", str(ACME)])
    assert "hunter2" not in result.output + result.stderr
