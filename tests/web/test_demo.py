"""The demo (seeded requests, its database, `deskflow demo`) and `deskflow serve`."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest
from sqlalchemy import select

from engine.migrate import head, upgrade
from engine.models import Approval, Person, Request, Task
from web import cli
from web.cli import main
from web.demo import DEMO_LOGINS, DEMO_PASSWORD, bundled_catalog, prepare_demo, seed_demo
from web.passwords import check_password

#: description -> (item, state, status, outcome)
PROMISED = {
    "laptop waiting for bob's approval": ("new-laptop", "manager_approval", "open", None),
    "approved laptop in the it-hardware queue": ("new-laptop", "prepare", "open", None),
    "incident claimed by frank": ("report-incident", "triage", "open", None),
    "system access waiting for two approvals": ("system-access", "admin_approvals", "open", None),
    "fulfilled monitor order": ("monitor-peripherals", "delivered", "closed", "fulfilled"),
    "rejected software licence": ("software-licence", "rejected", "closed", "rejected"),
    "cancelled vpn access": ("vpn-access", "cancelled", "closed", "cancelled"),
    "resolved incident waiting for alice": ("report-incident", "confirm_window", "open", None),
    "duplicate merged into the printer incident": ("report-incident", "closed_duplicate", "closed",
                                                   "duplicate"),
    "vpn incident from alice": ("report-incident", "triage", "open", None),
    "vpn incident from peter": ("report-incident", "triage", "open", None),
    "problem turned known error": ("problem", "known_error", "open", None),
    "standard change in conflict on crm-db01": ("standard-change", "implement", "open", None),
    "normal change approved by the board, in conflict": ("normal-change", "implement", "open", None),
    "high-risk normal change awaiting the board": ("normal-change", "cab_approval", "open", None),
    "standard change inside the change freeze": ("standard-change", "implement", "open", None),
    "emergency change awaiting its review": ("emergency-change", "review", "open", None),
    "major incident: email down": ("report-incident", "triage", "open", None),
    "child of the major incident, from alice": ("report-incident", "triage", "open", None),
    "child of the major incident, from carol": ("report-incident", "triage", "open", None),
}


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """The commands read DESKFLOW_* variables; these tests give their settings explicitly."""
    for key in ("DESKFLOW_DATABASE_URL", "DESKFLOW_CATALOG", "DESKFLOW_SECURE_COOKIES",
                "DESKFLOW_BASE_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def state(app):
    return app.extensions["deskflow"]


def by_number(sessions, number):
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        approvals = list(s.scalars(select(Approval).where(Approval.request_id == req.id)))
        tasks = list(s.scalars(select(Task).where(Task.request_id == req.id)))
        return req, approvals, tasks


def test_seed_demo_creates_requests_in_the_promised_states(state):
    created = seed_demo(state.service, state.sessions)
    assert set(created) == set(PROMISED)
    for what, (item, want_state, status, outcome) in PROMISED.items():
        req, _, _ = by_number(state.sessions, created[what])
        assert (req.item_id, req.state, req.status, req.outcome) == (item, want_state, status,
                                                                     outcome), what


def test_seeded_approvals_and_tasks_are_real(state):
    created = seed_demo(state.service, state.sessions)
    _, approvals, _ = by_number(state.sessions, created["laptop waiting for bob's approval"])
    assert [(a.approver_id, a.decision) for a in approvals] == [("bob", "pending")]
    _, _, tasks = by_number(state.sessions, created["approved laptop in the it-hardware queue"])
    assert [(t.queue, t.status, t.assignee_id) for t in tasks] == [("it-hardware", "open", None)]
    _, _, tasks = by_number(state.sessions, created["incident claimed by frank"])
    assert [(t.queue, t.assignee_id) for t in tasks] == [("service-desk", "frank")]
    _, approvals, _ = by_number(state.sessions, created["system access waiting for two approvals"])
    pending = Counter(a.name for a in approvals if a.decision == "pending")
    assert set(pending) == {"data_owner", "security"}
    _, approvals, _ = by_number(state.sessions, created["rejected software licence"])
    assert [(a.decided_by_id, a.decision) for a in approvals] == [("bob", "rejected")]


def test_seed_demo_leaves_a_database_with_requests_alone(state):
    assert seed_demo(state.service, state.sessions)
    assert seed_demo(state.service, state.sessions) == {}
    with state.sessions() as s:
        assert len(list(s.scalars(select(Request.id)))) == len(PROMISED)


def test_bob_sees_the_laptop_in_his_inbox(app, state, client, auth):
    created = seed_demo(state.service, state.sessions)
    auth.login("bob")
    inbox = client.get("/approvals").get_data(as_text=True)
    assert created["laptop waiting for bob's approval"] in inbox
    assert created["approved laptop in the it-hardware queue"] not in inbox


def test_prepare_demo_creates_the_database_and_a_second_call_reuses_it(tmp_path):
    instance = tmp_path / "instance"
    app = prepare_demo(instance)
    assert (instance / "deskflow.sqlite").is_file()
    assert app.instance_path == str(instance.resolve())
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert len(app.extensions["deskflow_demo"]) == len(PROMISED)
    with app.app_context():
        from web.extensions import db

        for pid, _role in DEMO_LOGINS:
            assert check_password(db.session.get(Person, pid), DEMO_PASSWORD), pid
    again = prepare_demo(instance)
    assert again.extensions["deskflow_demo"] == {}
    with again.app_context():
        from web.extensions import db

        assert len(db.session.scalars(select(Request.id)).all()) == len(PROMISED)


def test_demo_logins_sign_in(tmp_path):
    app = prepare_demo(tmp_path / "instance")
    app.config.update(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False)
    client = app.test_client()
    response = client.post("/login", data={"username": "oscar", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_demo_password_is_long_enough():
    assert len(DEMO_PASSWORD) >= 12


@pytest.fixture
def served(monkeypatch):
    """Record what would be served instead of binding a port; no background worker."""
    calls = []
    monkeypatch.setattr(cli, "_serve", lambda app, host, port: calls.append((app, host, port)))
    return calls


@pytest.fixture
def no_worker(monkeypatch):
    events = []

    class Idle:
        def set(self):
            events.append("stopped")

        def join(self, timeout=None):
            events.append("joined")

    def start(app):
        events.append("started")
        return Idle(), Idle()

    monkeypatch.setattr(cli, "_start_worker", start)
    return events


def test_demo_command_prints_the_logins_and_serves(tmp_path, monkeypatch, served, no_worker, runner):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["demo", "--port", "5055"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "instance" / "deskflow.sqlite").is_file()
    assert "Sign in at http://127.0.0.1:5055 as" in result.output
    for pid, role in DEMO_LOGINS:
        assert any(line.split()[:1] == [pid] and line.split()[-1] == role
                   for line in result.output.splitlines()), pid
    assert f"password for everyone: {DEMO_PASSWORD}" in result.output
    assert f"({len(PROMISED)} demo requests created)" in result.output
    (app, host, port), = served
    assert (host, port) == ("127.0.0.1", 5055)
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["DESKFLOW_BASE_URL"] == "http://127.0.0.1:5055"
    assert no_worker == ["started", "stopped", "joined"]

    again = runner.invoke(main, ["demo"])
    assert again.exit_code == 0, again.output
    assert "(reused)" in again.output
    assert served[1][1:] == ("127.0.0.1", 5000)


def test_the_demo_worker_delivers_the_outbox_and_stops_when_asked(tmp_path, monkeypatch):
    import socket
    import threading

    controller_mod = pytest.importorskip("aiosmtpd.controller")
    sent: list[str] = []
    some = threading.Event()

    class Sink:  # a real SMTP server on 127.0.0.1 (the worker keeps its connection: engine.smtp)
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            sent.extend(envelope.rcpt_tos)
            some.set()
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = controller_mod.Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("DESKFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DESKFLOW_SMTP_PORT", str(port))
    app = prepare_demo(tmp_path / "instance")
    stop, thread = cli._start_worker(app, interval=0.05)
    assert thread.daemon
    try:
        assert some.wait(timeout=30), "the demo worker delivered nothing"
    finally:
        stop.set()
        thread.join(timeout=30)
        controller.stop()
    assert not thread.is_alive()
    assert any("acme.example" in to for to in sent)


def test_serve_refuses_a_missing_database(tmp_path, monkeypatch, served, runner):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["serve", "--catalog", str(bundled_catalog())])
    assert result.exit_code == 1
    assert ("deskflow: there is no database at instance/deskflow.sqlite; run `deskflow db upgrade` "
            "first, then serve again.") in result.output
    assert not served
    assert not (tmp_path / "instance" / "deskflow.sqlite").exists()


def test_serve_refuses_an_unmigrated_database(tmp_path, served, runner):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    result = runner.invoke(main, ["serve", "--db", url])
    assert result.exit_code == 1
    assert (f"deskflow: the database has no Deskflow schema yet (this Deskflow needs revision "
            f"{head()}); run `deskflow db upgrade --db '{url}'` first") in result.output
    assert not served


def test_serve_refuses_a_database_behind(tmp_path, served, runner):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    upgrade(url, "0001")
    result = runner.invoke(main, ["serve", "--db", url])
    assert result.exit_code == 1
    assert f"the database schema is behind: revision 0001, this Deskflow needs {head()}" in result.output
    assert "deskflow db upgrade" in result.output
    assert not served


def test_serve_a_migrated_database(tmp_path, served, runner):
    url = f"sqlite:///{tmp_path / 'ok.sqlite'}"
    upgrade(url)
    result = runner.invoke(main, ["serve", "--db", url, "--catalog", str(bundled_catalog()),
                                  "--port", "0"])
    assert result.exit_code == 0, result.output
    (app, host, port), = served
    assert (host, port) == ("127.0.0.1", 0)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert "sign-in cookies are Secure" in result.output
    result = runner.invoke(main, ["serve", "--db", url, "--insecure-cookies"])
    assert result.exit_code == 0, result.output
    assert served[1][0].config["SESSION_COOKIE_SECURE"] is False


def test_serve_reads_the_default_database_where_db_upgrade_made_it(tmp_path, monkeypatch,
                                                                    served, runner):
    # a relative SQLite path means the current directory for every command, the app included
    # (Flask-SQLAlchemy alone would look in the app's instance folder: instance/instance/...)
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(main, ["serve", "--catalog", str(bundled_catalog()), "--port", "0"])
    assert result.exit_code == 0, result.output
    (app, _, _), = served
    assert app.config["SQLALCHEMY_DATABASE_URI"] == \
        f"sqlite:///{tmp_path.resolve() / 'instance' / 'deskflow.sqlite'}"
    from sqlalchemy import text

    from web.extensions import db
    with app.app_context():  # the migrated database, not a missing one
        assert db.session.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_serve_refuses_a_broken_catalog(tmp_path, served, runner):
    url = f"sqlite:///{tmp_path / 'ok.sqlite'}"
    upgrade(url)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "deskflow.yaml").write_text("kind: Settings\nname: 3\n")
    result = runner.invoke(main, ["serve", "--db", url, "--catalog", str(tmp_path / "broken")])
    assert result.exit_code == 1
    assert "deskflow: catalog has" in result.output
    assert not served
