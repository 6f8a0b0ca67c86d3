"""The worker keeps its SMTP connection between messages: one handshake per batch, not per email.

A real aiosmtpd server on 127.0.0.1 counts the connections (EHLO, QUIT); the outbox is SQLite.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.db import create_schema, make_engine, make_sessionmaker
from engine.delivery import deliver_due
from engine.delivery_config import DeliveryConfig
from engine.outbox import enqueue_email
from engine.smtp import SmtpConnections
from engine.worker import run_worker

controller_mod = pytest.importorskip("aiosmtpd.controller")

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


class CountingSink:
    """Accept every message; count connections (EHLO) and goodbyes (QUIT)."""

    def __init__(self) -> None:
        self.ehlo = self.quit = 0
        self.subjects: list[str] = []
        self.data_reply = "250 OK"

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:
        self.ehlo += 1
        session.host_name = hostname
        return responses

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.quit += 1
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_reply.startswith("250"):
            content = envelope.content.decode()
            self.subjects.append(content.split("Subject: ", 1)[1].split("\r\n", 1)[0])
        return self.data_reply


class Server:
    """An SMTP server on a fixed port that can be restarted."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.sink = CountingSink()
        self.controller: Any = None

    def start(self) -> CountingSink:
        self.sink = CountingSink()
        self.controller = controller_mod.Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self.sink

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path}/outbox.db")
    create_schema(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def config(server: Server, concurrency: int = 1) -> DeliveryConfig:
    return DeliveryConfig(smtp_host="127.0.0.1", smtp_port=server.port, smtp_timeout=2.0,
                          mail_from="Desk <desk@example.org>", concurrency=concurrency)


def add_emails(sessions: sessionmaker[Session], *subjects: str) -> None:
    with sessions() as s, s.begin():
        for subject in subjects:
            enqueue_email(s, request_id=None, event="request_approved", to=["ann@example.org"],
                          subject=subject, text="Body", html=None, key=f"key-{subject}", now=T0)


def eventually(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def deliver(sessions: sessionmaker[Session], cfg: DeliveryConfig,
            connections: SmtpConnections) -> dict[str, int]:
    counts = deliver_due(sessions, cfg, lambda: T0, sender=connections.send)
    return {k: v for k, v in counts.items() if v}


def test_the_messages_of_a_batch_share_one_connection(server: Server, sessions) -> None:
    add_emails(sessions, "one", "two", "three")
    connections = SmtpConnections()
    assert deliver(sessions, config(server), connections) == {"claimed": 3, "delivered": 3}
    assert (server.sink.subjects, server.sink.ehlo, connections.opened) == (["one", "two", "three"], 1, 1)
    connections.close()
    assert eventually(lambda: server.sink.quit == 1)


def test_the_worker_reuses_its_connection_and_says_goodbye_when_it_stops(server: Server,
                                                                         sessions) -> None:
    add_emails(sessions, "a", "b", "c", "d")
    handled = run_worker(sessions, config(server), lambda: T0, run_timers=None, stop=threading.Event(),
                         once=True)
    assert (handled, sorted(server.sink.subjects), server.sink.ehlo) == (4, ["a", "b", "c", "d"], 1)
    assert eventually(lambda: server.sink.quit == 1)


def test_a_server_restart_between_batches_still_delivers_on_a_new_connection(server: Server,
                                                                             sessions) -> None:
    connections = SmtpConnections()
    add_emails(sessions, "before-1", "before-2")
    assert deliver(sessions, config(server), connections) == {"claimed": 2, "delivered": 2}
    server.stop()
    sink = server.start()
    add_emails(sessions, "after-1", "after-2")
    assert deliver(sessions, config(server), connections) == {"claimed": 2, "delivered": 2}
    assert (sink.subjects, sink.ehlo, connections.opened) == (["after-1", "after-2"], 1, 2)
    connections.close()


def test_a_connection_idle_too_long_is_closed_and_the_next_message_opens_another(server: Server,
                                                                                  sessions) -> None:
    now = [0.0]
    connections = SmtpConnections(idle=60, clock=lambda: now[0])
    add_emails(sessions, "first")
    deliver(sessions, config(server), connections)
    now[0] = 59.0
    connections.close_idle()
    assert server.sink.quit == 0
    now[0] = 121.0
    connections.close_idle()
    assert eventually(lambda: server.sink.quit == 1)
    add_emails(sessions, "second")
    assert deliver(sessions, config(server), connections) == {"claimed": 1, "delivered": 1}
    assert (server.sink.ehlo, connections.opened) == (2, 2)
    connections.close()


@pytest.mark.parametrize(("reply", "outcome"), [("550 mailbox unavailable", "dead"),
                                                  ("451 try again later", "retry")])
def test_a_refused_message_keeps_its_outcome_and_the_next_one_a_clean_connection(
        server: Server, sessions, reply: str, outcome: str) -> None:
    connections = SmtpConnections()
    add_emails(sessions, "ok-1")
    deliver(sessions, config(server), connections)
    server.sink.data_reply = reply
    add_emails(sessions, "refused")
    assert deliver(sessions, config(server), connections) == {"claimed": 1, outcome: 1}
    server.sink.data_reply = "250 OK"
    add_emails(sessions, "ok-2")
    assert deliver(sessions, config(server), connections) == {"claimed": 1, "delivered": 1}
    assert (server.sink.subjects, server.sink.ehlo) == (["ok-1", "ok-2"], 2)
    connections.close()
