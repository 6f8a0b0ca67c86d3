"""The outbox as the request service sees it: enqueue, dead letters, replay; and email rendering."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jinja2.exceptions import SecurityError
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

import engine.mail as mail
import engine.outbox as outbox
from engine.db import create_schema, make_engine, make_sessionmaker
from engine.errors import Conflict, InvalidInput, NotFound
from engine.mail import RenderLimitExceeded, render_email, render_text
from engine.models import AuditEvent, OutboxMessage
from engine.outbox import dead_letters, enqueue_email, enqueue_webhook, replay

PG_URL = os.environ.get("DESKFLOW_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)

EVENTS = ["request_submitted", "approval_requested", "approval_reminder", "request_approved",
          "request_rejected", "task_assigned", "request_fulfilled", "request_cancelled",
          "question_asked", "sla_warning", "sla_breach", "comment_added"]
SSTI = "{{ ''.__class__.__mro__ }}{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}"
XSS = "<script>alert('x')</script>"


# ---------------------------------------------------------------- fixtures

@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]


@pytest.fixture(scope="module")
def pg_engine() -> Iterator[Engine]:
    """A PostgreSQL schema of our own for this module, dropped afterwards."""
    assert PG_URL
    schema = f"deskflow_outbox_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    create_schema(eng)
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Store]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path}/t.db")
        create_schema(eng)
        yield Store(eng, make_sessionmaker(eng))
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        with eng.begin() as conn:
            conn.execute(text("TRUNCATE outbox, audit_events RESTART IDENTITY"))
        yield Store(eng, make_sessionmaker(eng))


def email(session: Session, key: str = "REQ-1:submitted:email:ann", **kw: object) -> OutboxMessage:
    args: dict[str, object] = {"request_id": None, "event": "request_submitted", "to": ["ann@example.org"],
                               "subject": "Hello", "text": "Body", "html": None, "key": key, "now": T0}
    return enqueue_email(session, **{**args, **kw})  # type: ignore[arg-type]


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


# ---------------------------------------------------------------- enqueue

def test_enqueue_writes_a_pending_row_in_the_callers_transaction(store: Store) -> None:
    with store.sessions() as s, s.begin():
        msg = email(s, html="<p>Body</p>")
        assert msg.id is not None
    with store.sessions() as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert (row.kind, row.status, row.attempts, row.next_attempt_at, row.created_at) == \
            ("email", "pending", 0, T0, T0)
        assert row.payload == {"to": ["ann@example.org"], "subject": "Hello", "text": "Body",
                               "html": "<p>Body</p>"}


def test_the_same_key_twice_is_one_row_and_the_transaction_goes_on(store: Store) -> None:
    with store.sessions() as s, s.begin():
        first = email(s)
        second = email(s, subject="Different")
        s.add(AuditEvent(request_id=None, actor_id="ann", event="submitted", detail={}, at=T0))
        assert second is first
    with store.sessions() as s, s.begin():
        again = email(s, subject="Later")
        assert again.id == first.id and again.payload["subject"] == "Hello"
    with store.sessions() as s:
        assert count(s) == 1
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_a_key_inserted_concurrently_is_returned_and_the_savepoint_saves_the_caller(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with store.sessions() as s, s.begin():
        email(s, subject="First")
    real = outbox._by_key
    calls = iter([None])

    def racing(session: Session, key: str) -> OutboxMessage | None:
        # The first look misses the row, as if another transaction inserted it just after.
        return next(calls, None) or real(session, key)

    monkeypatch.setattr(outbox, "_by_key", racing)
    with store.sessions() as s, s.begin():
        s.add(AuditEvent(request_id=None, actor_id="bob", event="approved", detail={}, at=T0))
        s.flush()
        msg = email(s, subject="Second")
        assert msg.payload["subject"] == "First"
    with store.sessions() as s:
        assert count(s) == 1
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_a_rolled_back_transaction_leaves_no_message(store: Store) -> None:
    with pytest.raises(RuntimeError), store.sessions() as s, s.begin():
        email(s)
        raise RuntimeError("the state change failed after the outbox insert")
    with store.sessions() as s:
        assert count(s) == 0


def test_enqueue_does_no_network_io(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("network I/O inside a request transaction")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with store.sessions() as s, s.begin():
        email(s)
        enqueue_webhook(s, request_id=None, event="request_approved", url="https://hooks.example.com/x",
                        body={"number": "REQ-1"}, secret_env="HOOK_SECRET", key="REQ-1:approved:hook",
                        now=T0)
    with store.sessions() as s:
        assert count(s) == 2


def test_a_webhook_stores_the_secrets_name_not_its_value(store: Store) -> None:
    with store.sessions() as s, s.begin():
        msg = enqueue_webhook(s, request_id=None, event="request_approved", url="https://h.example.com/",
                              body={"n": 1, "when": "2030-01-01"}, secret_env="HOOK_SECRET",
                              key="k1", now=T0)
    assert msg.payload == {"url": "https://h.example.com/", "body": {"n": 1, "when": "2030-01-01"},
                           "secret_env": "HOOK_SECRET"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"body": {"when": T0}}, "webhook k: body is not JSON-serialisable"),
    ({"key": "k" * 81}, "idempotency key must be 1 to 80 characters, got 81"),
])
def test_bad_webhooks_are_refused_at_enqueue(store: Store, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"request_id": None, "event": "e", "url": "https://h.example.com/",
                               "body": {}, "secret_env": "S", "key": "k", "now": T0}
    with store.sessions() as s, s.begin(), pytest.raises(InvalidInput) as info:
        enqueue_webhook(s, **{**args, **kwargs})  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("to", [[], [""], ["a@example.org\r\nBcc: x@evil.example"], ["a@x.org, b@x.org"]])
def test_bad_recipients_are_refused(store: Store, to: list[str]) -> None:
    with store.sessions() as s, s.begin(), pytest.raises(InvalidInput) as info:
        email(s, to=to)
    assert str(info.value).startswith("email REQ-1:submitted:email:ann: each recipient must be one address")


# ---------------------------------------------------------------- dead letters and replay

def make_dead(store: Store, key: str, at: datetime = T0) -> int:
    with store.sessions() as s, s.begin():
        msg = email(s, key=key, now=at)
        msg.status, msg.attempts, msg.last_error = "dead", 8, "attempt 8 of 8: SMTP 451 try later"
        s.flush()
        return msg.id


def test_dead_letters_lists_only_dead_messages_newest_first(store: Store) -> None:
    older, newer = make_dead(store, "a"), make_dead(store, "b")
    with store.sessions() as s, s.begin():
        email(s, key="c")
    with store.sessions() as s:
        assert [m.id for m in dead_letters(s)] == [newer, older]
        assert [m.id for m in dead_letters(s, limit=1)] == [newer]


def test_replay_requeues_a_dead_letter_and_audits_it(store: Store) -> None:
    dead = make_dead(store, "REQ-9:rejected:email:ann")
    later = T0 + timedelta(hours=3)
    with store.sessions() as s, s.begin():
        msg = replay(s, dead, later, actor_id="admin")
        assert (msg.status, msg.attempts, msg.next_attempt_at, msg.last_error) == ("pending", 0, later, "")
    with store.sessions() as s:
        audit = s.scalars(select(AuditEvent)).one()
        assert (audit.event, audit.actor_id, audit.at) == ("outbox_replayed", "admin", later)
        assert audit.detail == {"message_id": dead, "kind": "email", "event": "request_submitted",
                                "idempotency_key": "REQ-9:rejected:email:ann", "attempts": 8,
                                "last_error": "attempt 8 of 8: SMTP 451 try later"}
        assert s.get(OutboxMessage, dead).idempotency_key == "REQ-9:rejected:email:ann"  # type: ignore[union-attr]


def test_only_dead_letters_replay(store: Store) -> None:
    with store.sessions() as s, s.begin():
        pending = email(s).id
    with store.sessions() as s, s.begin(), pytest.raises(Conflict) as info:
        replay(s, pending, T0)
    assert str(info.value) == f"outbox message {pending} is pending; only dead messages replay"
    with store.sessions() as s, s.begin(), pytest.raises(NotFound):
        replay(s, 9999, T0)


# ---------------------------------------------------------------- email rendering

CONTEXT: dict[str, Any] = {
    "site_name": "Acme Desk",
    "person": {"name": "Ann Lee"},
    "request": {"number": "REQ-42", "item_name": "New laptop", "state_label": "Waiting for approval",
                "url": "https://desk.example.org/requests/REQ-42", "requester_name": "Bob Stone"},
    "approval": {"name": "Manager approval", "comment": "Fine by me", "decided_by": "Carol",
                 "due_at": "2030-01-10 17:00"},
    "task": {"title": "Image the laptop", "queue": "IT hardware", "due_at": "2030-01-12"},
    "comment": {"body": "Which colour?", "author": "Dan"},
    "sla": {"target": "resolution", "due_at": "2030-01-12 17:00"},
}


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_has_its_own_email(event: str) -> None:
    subject, body, html = render_email(event, CONTEXT)
    assert "REQ-42" in subject and "\n" not in subject
    assert body.startswith("Hello Ann Lee,\n") and "REQ-42" in body
    assert "https://desk.example.org/requests/REQ-42" in body
    assert html is not None and html.startswith("<!DOCTYPE html>") and "REQ-42" in html
    assert "{{" not in body + html and "{%" not in body + html
    generic = render_email("something_else", CONTEXT)
    assert (subject, body) != generic[:2]


def test_an_unknown_event_uses_the_generic_template() -> None:
    subject, body, html = render_email("asset_created", CONTEXT)
    assert subject == "[REQ-42] Asset created: New laptop"
    assert "There is news about REQ-42 (New laptop): asset created." in body
    assert html is not None and "asset created" in html
    assert render_email("../../../etc/passwd", CONTEXT)[1].startswith("Hello Ann Lee,")


def test_the_generic_template_takes_a_notify_actions_subject_and_message() -> None:
    context = {**CONTEXT, "subject": "Your laptop\nships today", "message": "Tracking: <b>ZX-1</b>"}
    subject, body, html = render_email("request_update", context)
    assert subject == "Your laptop ships today"
    assert "Tracking: <b>ZX-1</b>\n\n(About REQ-42, New laptop.)" in body
    assert html is not None and "Tracking: &lt;b&gt;ZX-1&lt;/b&gt;" in html


def test_missing_values_render_empty() -> None:
    subject, body, html = render_email("approval_requested", {})
    assert subject == "[] Approval needed:"
    assert body.startswith("Hello there,\n\nSomeone requested  (), and your approval is needed.\n")
    assert html is not None and "Deskflow" in html


def test_template_syntax_in_user_data_is_printed_not_run() -> None:
    context = {**CONTEXT, "comment": {"body": SSTI + XSS, "author": "{{ 7*7 }}"}}
    subject, body, html = render_email("comment_added", context)
    assert subject == "[REQ-42] New comment from {{ 7*7 }}"
    assert SSTI + XSS in body and "49" not in body
    assert html is not None
    assert "{{ &#39;&#39;.__class__.__mro__ }}" in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html and "<script>" not in html


def test_html_in_any_value_is_escaped_in_the_html_part() -> None:
    evil = '"><img src=x onerror=alert(1)>'
    context = {"site_name": evil, "person": {"name": evil},
               "request": {"number": evil, "item_name": evil, "state_label": evil, "url": evil}}
    for event in EVENTS:
        html = render_email(event, context)[2]
        assert html is not None and "<img" not in html, event


def test_a_newline_in_the_data_cannot_add_a_header_or_spill_into_the_body() -> None:
    context = {**CONTEXT, "request": {**CONTEXT["request"], "item_name": "Laptop\r\nBcc: eve@example.org"}}
    subject, body, _ = render_email("request_submitted", context)
    assert subject == "[REQ-42] We received your request: Laptop Bcc: eve@example.org"
    assert body.startswith("Hello Ann Lee,")


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ request.__class__ }}",
    "{{ [].append(1) }}",
    "{{ {}.update(a=1) }}",
])
def test_template_source_cannot_reach_python_internals(source: str) -> None:
    with pytest.raises(SecurityError):
        render_text(source, {"request": {"number": "REQ-1"}})


@pytest.mark.parametrize(("source", "message"), [
    ("{{ range(10**9) | list }}", "range() is limited to 1000 items in templates"),
    ("{{ 'a' * 10**9 }}", "repetition too large in a template"),
    ("{{ [0] * 10**9 }}", "repetition too large in a template"),
    ("{{ 2 ** 100000 }}", "power too large in a template"),
    ("{% for i in range(1000) %}{{ 'x' * 200 }}{% endfor %}",
     "rendered email is longer than 100000 characters"),
])
def test_rendering_has_limits(source: str, message: str) -> None:
    with pytest.raises(RenderLimitExceeded) as info:
        render_text(source, {})
    assert str(info.value) == message


def test_rendering_has_a_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mail, "MAX_SECONDS", 0.05)
    loops = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderLimitExceeded) as info:
        render_text(loops, {})
    assert str(info.value) == "template rendering took longer than 0.05s"


def test_render_text_escapes_only_when_asked() -> None:
    assert render_text("{{ v }}", {"v": XSS}) == XSS
    assert render_text("{{ v }}", {"v": XSS}, html=True) == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert render_text("{% for i in range(3) %}{{ i }}{% endfor %}", {}) == "012"
