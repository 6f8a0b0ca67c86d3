"""Webhook subscriptions (deskflow.yaml `webhooks`) in the engine, on SQLite and PostgreSQL:
one outbox row per subscribed audit event and subscription, keyed by the event's id."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from catalog.loader import load_catalog
from engine.directory import sync_directory
from engine.errors import InvalidInput
from engine.models import AuditEvent, OutboxMessage
from engine.service import RequestService
from tests.acme import ACME, ACME_ANSWERS

HOOKS = """
webhooks:
  - url: https://hooks.example.com/all
    secret: HOOK_A
    events: [submitted, comment]
  - url: https://hooks.example.com/comments
    secret: HOOK_B
    events: [comment]
"""


@pytest.fixture
def hooked(tmp_path, sessions, clock) -> RequestService:
    copy = tmp_path / "catalog"
    shutil.copytree(ACME, copy)
    (copy / "deskflow.yaml").write_text((copy / "deskflow.yaml").read_text() + HOOKS)
    cat = load_catalog(copy)
    assert cat.ok, [str(e) for e in cat.errors]
    with sessions.begin() as s:
        sync_directory(s, cat.directory)
    return RequestService(sessions, lambda: cat, clock)


def webhooks(service: RequestService) -> list[tuple[str, str, str, dict]]:
    with service.sessions() as s:
        return [(r.event, r.idempotency_key, r.payload["url"], r.payload["body"]) for r in s.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "webhook").order_by(OutboxMessage.id))]


def test_each_subscribed_event_is_queued_once_per_subscription_keyed_by_its_id(hooked):
    req = hooked.submit("new-laptop", "alice", dict(ACME_ANSWERS["new-laptop"]))
    c = hooked.comment(req.number, "alice", "Any news?")
    with hooked.sessions() as s:
        ids = {e.event: e.id for e in s.scalars(select(AuditEvent).where(
            AuditEvent.request_id == req.id, AuditEvent.event.in_(("submitted", "comment"))))}
    got = webhooks(hooked)
    assert [(e, k, u) for e, k, u, _ in got] == [
        ("submitted", f"audit:{ids['submitted']}:0", "https://hooks.example.com/all"),
        ("comment", f"audit:{ids['comment']}:0", "https://hooks.example.com/all"),
        ("comment", f"audit:{ids['comment']}:1", "https://hooks.example.com/comments")]
    body = got[1][3]
    assert {k: body[k] for k in ("id", "event", "request", "actor", "detail")} == {
        "id": ids["comment"], "event": "comment", "request": req.number, "actor": "alice",
        "detail": {"comment": c.id, "internal": False}}


def test_a_refused_action_queues_nothing(hooked):
    req = hooked.submit("new-laptop", "alice", dict(ACME_ANSWERS["new-laptop"]))
    before = webhooks(hooked)
    with pytest.raises(InvalidInput):
        hooked.comment(req.number, "alice", "   ")
    assert webhooks(hooked) == before
