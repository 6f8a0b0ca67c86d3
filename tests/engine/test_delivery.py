"""Outbox delivery under failure: claims, SMTP and webhook chaos, SSRF, kill -9, replay, the worker.

Real receivers on 127.0.0.1 (an aiosmtpd server, an http.server thread), an injected clock,
and SQLite in tmp_path — plus PostgreSQL when DESKFLOW_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

import engine.delivery as delivery
from engine.db import create_schema, make_engine, make_sessionmaker
from engine.delivery import claim, deliver_due, deliver_one
from engine.delivery_config import DeliveryConfig
from engine.errors import BlockedDestination
from engine.mail import render_email
from engine.models import AuditEvent, OutboxMessage
from engine.outbox import dead_letters, enqueue_email, enqueue_webhook, outbox_stats, replay
from engine.webhooks import blocked_reason, check_webhook_url, resolve_webhook_target
from engine.worker import install_signal_handlers, run_worker

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("DESKFLOW_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
SECRET_ENV, SECRET = "DESKFLOW_TEST_HOOK_SECRET", "s3cret-for-tests"
SCHEDULE = [30 * 2 ** n for n in range(7)]  # backoff_base 30 s, factor 2: waits after attempts 1..7


# ---------------------------------------------------------------- database and clock

@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]
    url: str
    schema: str = ""

    def row(self, message_id: int) -> OutboxMessage:
        with self.sessions() as s:
            row = s.get(OutboxMessage, message_id)
            assert row is not None
            return row

    def rows(self) -> list[OutboxMessage]:
        with self.sessions() as s:
            return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.fixture(scope="module")
def pg_store() -> Iterator[tuple[Engine, str]]:
    """A PostgreSQL schema of our own for this module, dropped afterwards."""
    assert PG_URL
    schema = f"deskflow_delivery_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    create_schema(eng)
    try:
        yield eng, schema
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/t.db"
        eng = make_engine(url)
        create_schema(eng)
        yield Store(eng, make_sessionmaker(eng), url)
        eng.dispose()
    else:
        eng, schema = request.getfixturevalue("pg_store")
        with eng.begin() as conn:
            conn.execute(text("TRUNCATE outbox, audit_events RESTART IDENTITY"))
        assert PG_URL
        yield Store(eng, make_sessionmaker(eng), PG_URL, schema)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def hook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def config(**kw: Any) -> DeliveryConfig:
    base: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": free_port(),
                            "mail_from": "Desk <desk@example.org>", "smtp_timeout": 1.0,
                            "webhook_timeout": 0.5, "allow_private_webhooks": True}
    return DeliveryConfig(**{**base, **kw})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_webhook(store: Store, url: str, key: str = "REQ-1:approved:hook", now: datetime = T0,
                body: dict[str, Any] | None = None) -> int:
    with store.sessions() as s, s.begin():
        return enqueue_webhook(s, request_id=None, event="request_approved", url=url,
                               body=body if body is not None else {"number": "REQ-1"},
                               secret_env=SECRET_ENV, key=key, now=now).id


def add_email(store: Store, key: str = "REQ-1:approved:email:ann", now: datetime = T0, **kw: Any) -> int:
    args: dict[str, Any] = {"request_id": None, "event": "request_approved", "to": ["ann@example.org"],
                            "subject": "Approved", "text": "Body", "html": None, "key": key, "now": now}
    with store.sessions() as s, s.begin():
        return enqueue_email(s, **{**args, **kw}).id


def assert_on_schedule(row: OutboxMessage, failed_at: datetime, attempt: int) -> None:
    """The next attempt is the backoff for `attempt`, within the ±20% jitter."""
    wait = (row.next_attempt_at - failed_at).total_seconds()
    expected = SCHEDULE[attempt - 1]
    assert expected * 0.8 <= wait <= expected * 1.2, (attempt, wait, expected)


# ---------------------------------------------------------------- a webhook receiver

@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0  # send the headers one byte per `drip` seconds


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        return self.headers["Idempotency-Key"]

    def signed(self) -> bool:
        ts = self.headers["X-Deskflow-Timestamp"]
        mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers["X-Deskflow-Signature"], f"sha256={mac}")


class Receiver:
    """Answers POSTs from a script of replies, then with `default`; remembers every hit."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.url = ""

    def take(self, hit: Hit) -> Reply:
        with self.lock:
            self.hits.append(hit)
            return self.script.popleft() if self.script else self.default

    def wait_for(self, n: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while len(self.hits) < n:
            assert time.monotonic() < deadline, f"only {len(self.hits)} of {n} hits arrived"
            assert proc is None or proc.poll() is None, proc.communicate()[1].decode()
            time.sleep(0.01)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver = self.server.receiver
        reply = receiver.take(Hit(self.path, dict(self.headers.items()), body))
        if reply.delay:
            receiver.release.wait(reply.delay)
        try:
            while reply.drip and not receiver.release.is_set():
                self.wfile.write(b"X")
                self.wfile.flush()
                receiver.release.wait(reply.drip)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # the client gave up (timeout) or was killed

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = _Server(rec)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/deskflow"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------- an SMTP server

class SmtpSink:
    """An aiosmtpd handler that accepts, delays or refuses as told."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.rcpt_reply = ""
        self.data_reply = "250 OK"
        self.delay = 0.0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.data_reply.startswith("250"):
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return self.data_reply


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    sink, port = SmtpSink(), free_port()
    controller = controller_mod.Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


# ---------------------------------------------------------------- claiming

def test_claim_takes_due_messages_under_a_lease(store: Store, clock: Clock) -> None:
    due = add_webhook(store, "http://x.example.com/", key="due")
    add_webhook(store, "http://x.example.com/", key="later", now=T0 + timedelta(minutes=5))
    assert claim(store.sessions, T0, 10, lease=60) == [due]
    row = store.row(due)
    assert (row.status, row.attempts, row.locked_until) == ("sending", 1, T0 + timedelta(seconds=60))
    assert claim(store.sessions, T0 + timedelta(seconds=59), 10, lease=60) == []


def test_a_message_whose_worker_died_is_claimed_again_after_its_lease(store: Store) -> None:
    mid = add_webhook(store, "http://x.example.com/")
    assert claim(store.sessions, T0, 10, lease=60) == [mid]
    assert claim(store.sessions, T0 + timedelta(seconds=60), 10, lease=60) == []
    assert claim(store.sessions, T0 + timedelta(seconds=61), 10, lease=60) == [mid]
    assert store.row(mid).attempts == 2


def test_concurrent_claimers_never_claim_the_same_row(store: Store) -> None:
    with store.sessions() as s, s.begin():
        for i in range(120):
            enqueue_webhook(s, request_id=None, event="e", url="http://x.example.com/", body={},
                            secret_env=SECRET_ENV, key=f"k{i}", now=T0)
    claimed: list[list[int]] = [[] for _ in range(4)]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        try:
            start.wait()
            while ids := claim(store.sessions, T0, 7, lease=60):
                claimed[n].extend(ids)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    everything = [i for ids in claimed for i in ids]
    assert len(everything) == len(set(everything)) == 120
    assert all(r.attempts == 1 and r.status == "sending" for r in store.rows())


def test_a_worker_that_overran_its_lease_does_not_record_over_the_new_claim(store: Store,
                                                                           clock: Clock) -> None:
    mid = add_email(store)
    cfg = config(lease=60)
    [claimed] = claim(store.sessions, clock(), 1, lease=cfg.lease)

    def slow_sender(message: Any, _config: DeliveryConfig) -> None:
        # While this send hangs, the lease runs out and another worker claims the row.
        assert claim(store.sessions, clock() + timedelta(seconds=61), 1, lease=60) == [mid]

    assert deliver_one(store.sessions, claimed, cfg, clock, sender=slow_sender) == "skipped"
    row = store.row(mid)
    assert (row.status, row.attempts, row.locked_until) == ("sending", 2, T0 + timedelta(seconds=121))


def test_a_message_that_keeps_killing_its_worker_ends_dead(store: Store, clock: Clock) -> None:
    mid = add_webhook(store, "http://x.example.com/")
    cfg = config(max_attempts=3)
    for _ in range(3):  # three claims whose worker never came back
        assert claim(store.sessions, clock(), 1, lease=cfg.lease) == [mid]
        clock.advance(cfg.lease + 1)
    assert deliver_due(store.sessions, cfg, clock)["dead"] == 1
    row = store.row(mid)
    assert (row.status, row.attempts) == ("dead", 4)
    assert row.last_error == ("gave up after 3 attempts (the last one never finished: "
                              "the worker stopped mid-send)")


# ---------------------------------------------------------------- webhooks

def test_a_webhook_is_posted_signed_with_its_idempotency_key(store: Store, clock: Clock,
                                                               receiver: Receiver) -> None:
    mid = add_webhook(store, receiver.url + "?team=it", body={"number": "REQ-1", "note": "ünïcode"})
    assert deliver_due(store.sessions, config(), clock) == \
        {"claimed": 1, "delivered": 1, "retry": 0, "dead": 0, "skipped": 0, "error": 0}
    [hit] = receiver.hits
    assert hit.path == "/hooks/deskflow?team=it"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["Idempotency-Key"] == "REQ-1:approved:hook"
    assert hit.headers["X-Deskflow-Event"] == "request_approved"
    assert hit.headers["X-Deskflow-Timestamp"] == str(int(T0.timestamp()))
    assert hit.signed()
    assert json.loads(hit.body) == {"number": "REQ-1", "note": "ünïcode", "event": "request_approved",
                                    "idempotency_key": "REQ-1:approved:hook",
                                    "sent_at": "2030-01-07T09:00:00+00:00"}
    row = store.row(mid)
    assert (row.status, row.attempts, row.delivered_at, row.last_error) == ("delivered", 1, T0, "")


def test_a_tampered_body_fails_the_signature(store: Store, clock: Clock, receiver: Receiver) -> None:
    add_webhook(store, receiver.url)
    deliver_due(store.sessions, config(), clock)
    hit = receiver.hits[0]
    assert not Hit(hit.path, hit.headers, hit.body.replace(b"REQ-1", b"REQ-2")).signed()


def test_500_retries_on_the_backoff_schedule_then_dead_letters_after_8_attempts(
        store: Store, clock: Clock, receiver: Receiver) -> None:
    receiver.default = Reply(500)
    mid = add_webhook(store, receiver.url)
    cfg = config()
    for attempt in range(1, 9):
        failed_at = clock()
        assert deliver_due(store.sessions, cfg, clock)["claimed"] == 1
        row = store.row(mid)
        assert row.attempts == attempt
        if attempt < 8:
            assert row.status == "pending"
            assert row.last_error == f"attempt {attempt}: HTTP 500 Internal Server Error: ok"
            assert_on_schedule(row, failed_at, attempt)
            clock.now = row.next_attempt_at - timedelta(seconds=1)
            assert deliver_due(store.sessions, cfg, clock)["claimed"] == 0  # not yet due
            clock.now = row.next_attempt_at
    assert (row.status, row.last_error) == ("dead", "attempt 8 of 8: HTTP 500 Internal Server Error: ok")
    assert len(receiver.hits) == 8
    assert {h.key for h in receiver.hits} == {"REQ-1:approved:hook"}
    assert all(h.signed() for h in receiver.hits)
    assert len({h.headers["X-Deskflow-Timestamp"] for h in receiver.hits}) == 8
    clock.advance(86_400)
    assert deliver_due(store.sessions, cfg, clock)["claimed"] == 0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_a_4xx_dead_letters_at_once(store: Store, clock: Clock, receiver: Receiver, status: int) -> None:
    receiver.default = Reply(status)
    mid = add_webhook(store, receiver.url)
    assert deliver_due(store.sessions, config(), clock)["dead"] == 1
    row = store.row(mid)
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error.startswith(f"HTTP {status} ")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_408_429_and_5xx_retry(store: Store, clock: Clock, receiver: Receiver, status: int) -> None:
    receiver.default = Reply(status)
    mid = add_webhook(store, receiver.url)
    assert deliver_due(store.sessions, config(), clock)["retry"] == 1
    assert_on_schedule(store.row(mid), T0, 1)


def test_retry_after_in_seconds_and_as_a_date_is_honoured(store: Store, clock: Clock,
                                                          receiver: Receiver) -> None:
    when = T0 + timedelta(minutes=7)
    receiver.script.extend([Reply(429, {"Retry-After": "120"}),
                            Reply(503, {"Retry-After": format_datetime(when + timedelta(seconds=120),
                                                                       usegmt=True)})])
    mid = add_webhook(store, receiver.url)
    cfg = config()
    deliver_due(store.sessions, cfg, clock)
    assert store.row(mid).next_attempt_at == T0 + timedelta(seconds=120)
    clock.now = when
    deliver_due(store.sessions, cfg, clock)
    assert store.row(mid).next_attempt_at == when + timedelta(seconds=120)
    clock.advance(120)
    assert deliver_due(store.sessions, cfg, clock)["delivered"] == 1


def test_a_redirect_is_not_followed(store: Store, clock: Clock, receiver: Receiver) -> None:
    receiver.default = Reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
    mid = add_webhook(store, receiver.url)
    assert deliver_due(store.sessions, config(), clock)["dead"] == 1
    assert store.row(mid).last_error == \
        "HTTP 302: redirect to http://169.254.169.254/latest/meta-data/ not followed"
    assert len(receiver.hits) == 1


def test_a_stalled_receiver_times_out_and_retries(store: Store, clock: Clock, receiver: Receiver) -> None:
    receiver.script.append(Reply(200, delay=30))
    mid = add_webhook(store, receiver.url)
    cfg = config(webhook_timeout=0.3)
    started = time.monotonic()
    assert deliver_due(store.sessions, cfg, clock)["retry"] == 1
    assert time.monotonic() - started < 3
    row = store.row(mid)
    assert row.last_error == "attempt 1: TimeoutError: timed out"
    clock.now = row.next_attempt_at
    assert deliver_due(store.sessions, cfg, clock)["delivered"] == 1
    assert [h.key for h in receiver.hits] == ["REQ-1:approved:hook"] * 2


def test_a_receiver_that_drips_bytes_cannot_outlast_the_deadline(store: Store, clock: Clock,
                                                                 receiver: Receiver) -> None:
    receiver.script.append(Reply(200, drip=0.05))
    mid = add_webhook(store, receiver.url)
    started = time.monotonic()
    assert deliver_due(store.sessions, config(webhook_timeout=0.3), clock)["retry"] == 1
    assert time.monotonic() - started < 3
    assert store.row(mid).last_error == "attempt 1: no complete response within 0.6s"


def test_a_refused_connection_retries(store: Store, clock: Clock) -> None:
    mid = add_webhook(store, f"http://127.0.0.1:{free_port()}/hook")
    assert deliver_due(store.sessions, config(), clock)["retry"] == 1
    assert store.row(mid).last_error == "attempt 1: ConnectionRefusedError: [Errno 111] Connection refused"


def test_chaos_then_recovery_delivers_every_message_once_per_key(store: Store, clock: Clock,
                                                                 receiver: Receiver) -> None:
    receiver.default = Reply(500)
    receiver.script.extend([Reply(200, delay=30), Reply(429, {"Retry-After": "5"}), Reply(410)])
    dead_key = None
    ids = [add_webhook(store, receiver.url, key=f"REQ-{i}:approved:hook") for i in range(20)]
    cfg = config(webhook_timeout=0.3, concurrency=1)
    assert deliver_due(store.sessions, cfg, clock)["claimed"] == 20
    rows = store.rows()
    assert sorted(r.status for r in rows) == ["dead"] + ["pending"] * 19
    dead_key = next(r.idempotency_key for r in rows if r.status == "dead")
    receiver.default = Reply(200)  # the receiver recovers
    for _ in range(3):
        clock.advance(3600)
        deliver_due(store.sessions, cfg, clock)
    rows = store.rows()
    assert [r.id for r in rows] == ids
    assert {r.status for r in rows if r.idempotency_key != dead_key} == {"delivered"}
    delivered_keys = {h.key for h in receiver.hits}
    assert delivered_keys == {r.idempotency_key for r in rows}  # 0 lost
    assert all(h.signed() for h in receiver.hits)


def test_a_missing_secret_dead_letters_with_a_clear_error(store: Store, clock: Clock, receiver: Receiver,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV)
    mid = add_webhook(store, receiver.url)
    assert deliver_due(store.sessions, config(), clock)["dead"] == 1
    assert store.row(mid).last_error == \
        f"webhook secret: environment variable {SECRET_ENV} is not set or empty"
    with store.sessions() as s, s.begin():
        unnamed = enqueue_webhook(s, request_id=None, event="e", url=receiver.url, body={}, secret_env="",
                                  key="no-secret", now=T0).id
    assert deliver_due(store.sessions, config(), clock)["dead"] == 1
    assert store.row(unnamed).last_error == \
        "webhook secret: no environment variable is named for this webhook's secret"
    assert receiver.hits == []


def test_the_connection_goes_to_the_checked_address_with_the_urls_host(store: Store, clock: Clock,
                                                                      receiver: Receiver) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    calls: list[str] = []

    def resolver(host: str, port: int, **_kw: Any) -> list[tuple[Any, ...]]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    add_webhook(store, f"http://hooks.example.test:{port}/in")
    assert deliver_due(store.sessions, config(), clock, resolver=resolver)["delivered"] == 1
    assert calls == ["hooks.example.test"]
    assert receiver.hits[0].headers["Host"] == f"hooks.example.test:{port}"


# ---------------------------------------------------------------- SSRF

def stub(*addresses: str) -> Any:
    def resolver(host: str, port: int, **_kw: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return resolver


def never(*_a: Any, **_k: Any) -> Any:
    raise AssertionError("must not be called")


BLOCKED_ADDRESSES = ["127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1",
                     "172.31.255.255", "192.168.0.1", "192.168.255.255", "169.254.169.254", "0.0.0.0",
                     "100.64.0.1", "224.0.0.1", "255.255.255.255", "::1", "::", "fc00::1",
                     "fd12:3456::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                     "::ffff:8.8.8.8", "2002:7f00:1::1", "64:ff9b::a00:1"]


@pytest.mark.parametrize("address", BLOCKED_ADDRESSES)
def test_every_non_public_address_is_refused(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address))
    with pytest.raises(BlockedDestination) as info:
        resolve_webhook_target("https://hooks.example.com/in", stub(address))
    shown = ipaddress.ip_address(address)
    assert str(info.value).startswith(f"webhook host hooks.example.com resolves to {shown}, ")
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(BlockedDestination):
        resolve_webhook_target(f"http://{literal}/in", never)


@pytest.mark.parametrize("host", ["2130706433", "017700000001", "0x7f000001", "0177.0.0.1", "0x7f.0.0.1",
                                  "127.1", "127.0.1", "0", "012.0.0.1", "3232235521"])
def test_decimal_octal_and_short_ip_spellings_are_refused_without_resolving(host: str) -> None:
    with pytest.raises(BlockedDestination) as info:
        resolve_webhook_target(f"http://{host}/", never)
    assert str(info.value) == f"webhook host {host!r} is a non-canonical IP address spelling"
    with pytest.raises(BlockedDestination):  # even where private webhooks are allowed
        resolve_webhook_target(f"http://{host}/", never, allow_private=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com:70/_x",
                                 "dict://example.com:11211/", "javascript:alert(1)", "//example.com/x",
                                 "example.com/x", "http:///nohost", "http://exa mple.com/",
                                 "http://example.com:99999/"])
def test_other_schemes_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(BlockedDestination):
        resolve_webhook_target(url, never, allow_private=True)


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(BlockedDestination):
        resolve_webhook_target("https://hooks.example.com/", stub("93.184.216.34", "10.0.0.7"))


def test_a_public_destination_is_allowed_and_pinned() -> None:
    target = resolve_webhook_target("https://Hooks.Example.com.:8443/p?q=1",
                                    stub("93.184.216.34", "2606:2800:220:1::1"))
    assert (target.scheme, target.host, target.port, target.address, target.path) == \
        ("https", "hooks.example.com", 8443, "93.184.216.34", "/p?q=1")
    assert check_webhook_url("http://hooks.example.com/", stub("93.184.216.34")) is None
    assert "private" in (check_webhook_url("http://hooks.example.com/", stub("192.168.1.2")) or "")


def test_allow_private_lets_loopback_through() -> None:
    assert resolve_webhook_target("http://127.0.0.1:8080/", never, allow_private=True).address == "127.0.0.1"


def test_a_blocked_webhook_is_dead_lettered_and_nothing_connects(store: Store, clock: Clock,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[Any] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connects.append(a))
    urls = ["http://hooks.example.com/", "http://2130706433/", "http://[::ffff:169.254.169.254]/",
            "http://10.0.0.1/", "file:///etc/passwd"]
    for i, url in enumerate(urls):
        add_webhook(store, url, key=f"k{i}")
    cfg = config(allow_private_webhooks=False)
    assert deliver_due(store.sessions, cfg, clock, resolver=stub("127.0.0.1"))["dead"] == len(urls)
    assert connects == []
    assert all("refused" in r.last_error or "not http" in r.last_error or "non-canonical" in r.last_error
               for r in store.rows())


def test_dns_failure_retries(store: Store, clock: Clock) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    mid = add_webhook(store, "http://nowhere.example.com/")
    assert deliver_due(store.sessions, config(), clock, resolver=broken)["retry"] == 1
    assert store.row(mid).last_error == \
        "attempt 1: cannot resolve nowhere.example.com: [Errno -2] Name or service not known"


# ---------------------------------------------------------------- email

def test_an_email_goes_out_with_text_html_and_a_message_id_from_its_key(
        store: Store, clock: Clock, smtp: tuple[SmtpSink, int]) -> None:
    sink, port = smtp
    context = {"person": {"name": "Ann"}, "site_name": "Acme",
               "request": {"number": "REQ-7", "item_name": "Laptop", "url": "https://desk.example.org/r/7"},
               "comment": {"author": "Bob", "body": "<script>alert(1)</script> {{ ''.__class__ }}"}}
    subject, body, html = render_email("comment_added", context)
    key = "REQ-7:comment:3:email:ann"
    mid = add_email(store, key=key, to=["ann@example.org", "it@example.org"], subject=subject, text=body,
                    html=html)
    assert deliver_due(store.sessions, config(smtp_port=port), clock)["delivered"] == 1
    [msg] = sink.messages
    assert msg["From"] == "Desk <desk@example.org>"
    assert msg["To"] == "ann@example.org, it@example.org"
    assert msg["Subject"] == "[REQ-7] New comment from Bob"
    assert msg["Message-ID"] == f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}.deskflow@example.org>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    assert "<script>alert(1)</script> {{ ''.__class__ }}" in plain.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ &#39;&#39;.__class__ }}" in rich.get_content()
    assert "<script>" not in rich.get_content()
    assert store.row(mid).status == "delivered"


def test_a_text_only_email_is_not_multipart(store: Store, clock: Clock, smtp: tuple[SmtpSink, int]) -> None:
    sink, port = smtp
    add_email(store)
    deliver_due(store.sessions, config(smtp_port=port), clock)
    assert sink.messages[0].get_content_type() == "text/plain"


def test_smtp_down_retries_on_schedule_then_dead_letters(store: Store, clock: Clock) -> None:
    mid = add_email(store)
    cfg = config()  # nothing listens on its port
    for attempt in range(1, 9):
        failed_at = clock()
        deliver_due(store.sessions, cfg, clock)
        row = store.row(mid)
        if attempt < 8:
            assert (row.status, row.attempts) == ("pending", attempt)
            assert_on_schedule(row, failed_at, attempt)
            clock.now = row.next_attempt_at
    assert (row.status, row.attempts) == ("dead", 8)
    assert row.last_error == "attempt 8 of 8: SMTP ConnectionRefusedError: [Errno 111] Connection refused"


@pytest.mark.parametrize(("where", "reply", "outcome"), [
    ("data", "451 4.3.0 Try again later", "retry"),
    ("data", "452 4.3.1 Insufficient storage", "retry"),
    ("data", "554 5.7.1 Message rejected", "dead"),
    ("data", "552 5.3.4 Message too big", "dead"),
    ("rcpt", "450 4.2.0 Mailbox busy", "retry"),
    ("rcpt", "550 5.1.1 No such user", "dead"),
])
def test_smtp_4xx_retries_and_5xx_dead_letters(store: Store, clock: Clock, smtp: tuple[SmtpSink, int],
                                               where: str, reply: str, outcome: str) -> None:
    sink, port = smtp
    setattr(sink, f"{where}_reply", reply)
    mid = add_email(store)
    assert deliver_due(store.sessions, config(smtp_port=port), clock)[outcome] == 1
    row = store.row(mid)
    assert reply.split(" ", 1)[0] in row.last_error and reply.split(" ", 2)[2] in row.last_error
    if outcome == "retry":
        assert_on_schedule(row, T0, 1)
        setattr(sink, f"{where}_reply", "250 OK" if where == "data" else "")
        clock.now = row.next_attempt_at
        assert deliver_due(store.sessions, config(smtp_port=port), clock)["delivered"] == 1
        assert len(sink.messages) == 1


def test_a_slow_smtp_server_times_out_and_a_duplicate_shares_the_message_id(
        store: Store, clock: Clock, smtp: tuple[SmtpSink, int]) -> None:
    sink, port = smtp
    sink.delay = 0.6
    mid = add_email(store)
    cfg = config(smtp_port=port, smtp_timeout=0.2)
    assert deliver_due(store.sessions, cfg, clock)["retry"] == 1
    sink.delay = 0
    clock.now = store.row(mid).next_attempt_at
    time.sleep(0.6)  # the server accepts the first copy after the client gave up on it
    assert deliver_due(store.sessions, cfg, clock)["delivered"] == 1
    assert 1 <= len(sink.messages) <= 2
    assert len({m["Message-ID"] for m in sink.messages}) == 1


def test_an_unexpected_error_while_sending_is_recorded_and_retried(store: Store, clock: Clock) -> None:
    def broken(message: Any, _config: DeliveryConfig) -> None:
        raise KeyError("oops")

    mid = add_email(store)
    assert deliver_due(store.sessions, config(), clock, sender=broken)["retry"] == 1
    assert store.row(mid).last_error == "attempt 1: internal error: KeyError: 'oops'"


def test_a_custom_sender_replaces_smtp(store: Store, clock: Clock) -> None:
    sent: list[Any] = []
    add_email(store)
    assert deliver_due(store.sessions, config(), clock, sender=lambda m, c: sent.append(m))["delivered"] == 1
    assert sent[0]["Subject"] == "Approved"


# ---------------------------------------------------------------- kill -9, replay, the worker

WORKER = """
import sys
from datetime import UTC, datetime
from engine.db import make_engine, make_sessionmaker
from engine.delivery import deliver_due
from engine.delivery_config import DeliveryConfig

url, schema = sys.argv[1], sys.argv[2]
kw = {"connect_args": {"options": f"-csearch_path={schema}"}} if schema else {}
sessions = make_sessionmaker(make_engine(url, **kw))
config = DeliveryConfig(allow_private_webhooks=True, webhook_timeout=20, lease=60)
print(deliver_due(sessions, config, lambda: datetime.now(UTC)), flush=True)
"""


def test_a_worker_killed_mid_delivery_loses_nothing(store: Store, receiver: Receiver) -> None:
    receiver.script.extend([Reply(200, delay=60)] * 3)  # every first attempt hangs
    start = datetime.now(UTC)
    keys = [f"REQ-{i}:fulfilled:hook" for i in range(3)]
    for key in keys:
        add_webhook(store, receiver.url, key=key, now=start)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WORKER, store.url, store.schema], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        receiver.wait_for(3, proc=proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    assert {(r.status, r.attempts) for r in store.rows()} == {("sending", 1)}
    later = Clock(datetime.now(UTC) + timedelta(seconds=61))  # past the dead worker's lease
    assert deliver_due(store.sessions, config(), later)["delivered"] == 3
    assert {(r.status, r.attempts) for r in store.rows()} == {("delivered", 2)}
    assert sorted(h.key for h in receiver.hits) == sorted(keys * 2)  # at least once, one key each
    assert all(h.signed() for h in receiver.hits)


def test_a_replayed_dead_letter_is_delivered_once_and_audited(store: Store, clock: Clock,
                                                             receiver: Receiver) -> None:
    receiver.default = Reply(410)
    mid = add_webhook(store, receiver.url)
    cfg = config()
    deliver_due(store.sessions, cfg, clock)
    with store.sessions() as s:
        assert [m.id for m in dead_letters(s)] == [mid]
    receiver.default = Reply(200)
    clock.advance(600)
    with store.sessions() as s, s.begin():
        replay(s, mid, clock(), actor_id="admin")
    assert deliver_due(store.sessions, cfg, clock)["delivered"] == 1
    clock.advance(86_400)
    assert deliver_due(store.sessions, cfg, clock)["claimed"] == 0
    assert [h.key for h in receiver.hits] == ["REQ-1:approved:hook"] * 2
    with store.sessions() as s:
        audit = s.scalars(select(AuditEvent)).one()
        assert (audit.event, audit.actor_id, audit.detail["message_id"]) == ("outbox_replayed", "admin", mid)
        assert audit.detail["last_error"].startswith("HTTP 410 ")
        assert dead_letters(s) == []


def test_the_worker_runs_timers_and_delivers(store: Store, clock: Clock, receiver: Receiver) -> None:
    add_webhook(store, receiver.url)
    seen: list[datetime] = []

    def run_timers(now: datetime) -> int:
        seen.append(now)
        return 2

    handled = run_worker(store.sessions, config(), clock, run_timers=run_timers, stop=threading.Event(),
                         once=True)
    assert (handled, seen, len(receiver.hits)) == (3, [T0], 1)


def test_a_failing_timer_pass_does_not_stop_delivery(store: Store, clock: Clock, receiver: Receiver,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    add_webhook(store, receiver.url)

    def broken(now: datetime) -> int:
        raise RuntimeError("database restarting")

    run_worker(store.sessions, config(), clock, run_timers=broken, stop=threading.Event(), once=True)
    assert len(receiver.hits) == 1
    assert "timer pass failed" in caplog.text


def test_the_worker_stops_promptly_when_told(store: Store, clock: Clock) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(store.sessions, config(), clock),
                              kwargs={"run_timers": None, "stop": stop, "poll_interval": 30})
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 2


def test_signal_handlers_set_the_stop_event() -> None:
    stop = threading.Event()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        install_signal_handlers(stop)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_outbox_stats_show_backlog_and_dead_letters(store: Store, clock: Clock, receiver: Receiver) -> None:
    receiver.default = Reply(410)
    add_webhook(store, receiver.url, key="dead")
    deliver_due(store.sessions, config(), clock)
    add_webhook(store, receiver.url, key="waiting", now=T0 + timedelta(minutes=1))
    with store.sessions() as s:
        assert outbox_stats(s, T0 + timedelta(minutes=11)) == \
            {"pending": 1, "sending": 0, "delivered": 0, "dead": 1, "oldest_pending_seconds": 600.0}


def test_config_from_env() -> None:
    cfg = DeliveryConfig.from_env({"DESKFLOW_SMTP_HOST": "mail.example.org", "DESKFLOW_SMTP_STARTTLS": "true",
                                   "DESKFLOW_SMTP_USER": "desk", "DESKFLOW_SMTP_PASSWORD": "pw",
                                   "DESKFLOW_MAIL_FROM": "Desk <desk@example.org>",
                                   "DESKFLOW_WEBHOOK_ALLOW_PRIVATE": "1"})
    assert (cfg.smtp_host, cfg.smtp_port, cfg.smtp_starttls, cfg.smtp_ssl, cfg.smtp_user, cfg.smtp_password,
            cfg.mail_from, cfg.allow_private_webhooks) == \
        ("mail.example.org", 587, True, False, "desk", "pw", "Desk <desk@example.org>", True)
    assert DeliveryConfig.from_env({"DESKFLOW_SMTP_SSL": "yes"}).smtp_port == 465
    assert DeliveryConfig.from_env({"DESKFLOW_SMTP_PORT": "2525"}).smtp_port == 2525
    assert DeliveryConfig.from_env({}).allow_private_webhooks is False
    with pytest.raises(ValueError, match="lease must be longer"):
        DeliveryConfig(lease=5)


def test_backoff_is_capped_and_jittered_within_20_percent() -> None:
    cfg = DeliveryConfig()
    assert [cfg.backoff(n, rng=lambda: 0.5) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
    assert cfg.backoff(1, rng=lambda: 0.0) == pytest.approx(24)
    assert cfg.backoff(1, rng=lambda: 1.0) == pytest.approx(36)


def test_delivery_counts_every_row_once(store: Store, clock: Clock, receiver: Receiver) -> None:
    for i in range(9):
        add_webhook(store, receiver.url, key=f"k{i}")
    counts = deliver_due(store.sessions, config(concurrency=4), clock, limit=6)
    assert (counts["claimed"], counts["delivered"]) == (6, 6)
    assert deliver_due(store.sessions, config(concurrency=4), clock)["delivered"] == 3
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.status == "delivered")) == 9
    assert delivery.DELIVERED == "delivered"
