"""SQLite under ordinary use: writers, the outbox worker, sign-ins and page views at once, no 5xx."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

import engine.db
from engine.delivery_config import DeliveryConfig
from engine.models import Comment, LoginSession, OutboxMessage
from engine.service import utcnow
from engine.worker import run_worker
from tests.acme import ACME_ANSWERS
from tests.web.conftest import PASSWORD

LAPTOP = dict(ACME_ANSWERS["new-laptop"])
SECONDS = 6.0


@pytest.fixture
def app(app):
    app.config.update(WTF_CSRF_ENABLED=False)
    return app


def closed_port() -> int:
    """A local port nobody listens on: every SMTP attempt fails at once, so the worker retries."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed_in(app, person: str):
    """A client of `person`, signed in (the app must not check CSRF)."""
    client = app.test_client()
    response = client.post("/login", data={"username": person, "password": PASSWORD}, buffered=True)
    assert response.status_code == 302, response.status_code
    return client


def test_sqlite_answers_no_5xx_while_writers_the_worker_sign_ins_and_page_views_run_at_once(
        app, monkeypatch):
    import web.auth

    monkeypatch.setattr(web.auth, "SEEN_EVERY", timedelta(0))  # every page view records last-seen
    state = app.extensions["deskflow"]
    numbers = [str(state.service.submit("new-laptop", "alice", dict(LAPTOP)).number)
               for _ in range(2)]
    config = DeliveryConfig(smtp_host="127.0.0.1", smtp_port=closed_port(), smtp_timeout=1.0,
                            webhook_timeout=1.0, lease=5.0, backoff_base=0.01, backoff_cap=0.05,
                            jitter=0.0, max_attempts=10_000, concurrency=2)
    stop = threading.Event()
    statuses: dict[str, Counter[int]] = {}
    lock = threading.Lock()

    def loop(kind: str, step: Callable[[], list[int]]) -> Callable[[], None]:
        def run() -> None:
            while not stop.is_set():
                got = step()
                with lock:
                    statuses.setdefault(kind, Counter()).update(got)
        return run

    def commenter(person: str, number: str) -> Callable[[], list[int]]:
        client = signed_in(app, person)
        return lambda: [client.post(f"/requests/{number}/comment", data={"body": "Any news?"},
                                    buffered=True).status_code]

    def sign_in(people: list[str]) -> Callable[[], list[int]]:
        turn = iter(range(1_000_000))

        def step() -> list[int]:
            client = app.test_client()
            person = people[next(turn) % len(people)]
            return [client.post("/login", data={"username": person, "password": PASSWORD},
                                buffered=True).status_code]
        return step

    def viewer(person: str, number: str) -> Callable[[], list[int]]:
        client = signed_in(app, person)
        return lambda: [client.get("/", buffered=True).status_code,
                        client.get(f"/requests/{number}", buffered=True).status_code]

    threads = [threading.Thread(target=loop("comment", commenter("alice", n))) for n in numbers]
    threads += [threading.Thread(target=loop("sign-in", sign_in(group))) for group in
                (["bob", "carol"], ["frank", "oscar"])]
    threads += [threading.Thread(target=loop("view", viewer("alice", numbers[0]))),
                threading.Thread(target=loop("view", viewer("bob", numbers[1])))]
    threads.append(threading.Thread(target=run_worker, args=(state.sessions, config, utcnow),
                                    kwargs={"run_timers": state.service.run_due, "stop": stop,
                                            "poll_interval": 0.01}))
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    answered = {kind: sorted(counts) for kind, counts in statuses.items()}
    assert answered == {"comment": [302], "sign-in": [302], "view": [200]}, statuses
    assert min(sum(counts.values()) for counts in statuses.values()) >= 20, statuses
    with state.sessions() as session:
        comments = session.scalar(select(func.count()).select_from(Comment))
        retried = session.scalar(select(func.max(OutboxMessage.attempts)))
        sessions = session.scalar(select(func.count()).select_from(LoginSession))
    assert comments == statuses["comment"][302]
    assert retried > 1  # the worker really retried its outbox all along
    assert sessions >= statuses["sign-in"][302]


@contextmanager
def write_lock(app):
    """Hold SQLite's write lock from another connection, as a long writer would."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def last_seen(app) -> datetime:
    with app.extensions["deskflow"].sessions() as session:
        return session.scalar(select(LoginSession.last_seen_at))


def test_web_sessions_wait_for_the_lock_as_long_as_the_engine_s_own(app):
    from web.extensions import db

    state = app.extensions["deskflow"]
    with app.app_context():
        for session in (db.session(), state.sessions(), state.readers()):
            assert session.scalar(text("PRAGMA busy_timeout")) == 15_000
            assert session.scalar(text("PRAGMA journal_mode")) == "wal"
            session.close()


def test_a_page_view_never_waits_for_the_lock_to_record_last_seen(app):
    client = signed_in(app, "alice")
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    with app.extensions["deskflow"].sessions.begin() as session:
        session.execute(update(LoginSession).values(last_seen_at=earlier))
    with write_lock(app):
        assert client.get("/", buffered=True).status_code == 200
    assert last_seen(app) == earlier  # skipped while busy
    assert client.get("/", buffered=True).status_code == 200
    assert last_seen(app) > earlier


def test_a_sign_in_that_cannot_get_the_lock_in_time_answers_503_with_retry_after(app, monkeypatch):
    from web.extensions import db

    monkeypatch.setattr(engine.db, "SQLITE_BUSY_TIMEOUT_MS", 100)
    with app.app_context():
        db.engine.dispose()  # connections opened from now on wait 100 ms
    client = app.test_client()
    with write_lock(app):
        response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert "The service is busy right now. Wait a moment and try again." in response.text
    assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 302
