"""Outgoing webhooks subscribed per event kind in deskflow.yaml (docs/api.md "Webhooks"):
an outbox row per subscribed audit event, in the same transaction, delivered by the worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from engine.delivery import deliver_due
from engine.delivery_config import DeliveryConfig
from engine.models import AuditEvent, OutboxMessage, Request
from tests.acme import ACME, ACME_ANSWERS
from tests.web.conftest import make_app
from web.cli import main

LAPTOP = dict(ACME_ANSWERS["new-laptop"])
SECRET_ENV, SECRET = "DESK_HOOK_SECRET", "s3cret"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.hits.append((dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def catalog_with(tmp_path, webhooks: str) -> Any:
    copy = tmp_path / "catalog"
    shutil.copytree(ACME, copy)
    settings = copy / "deskflow.yaml"
    settings.write_text(settings.read_text() + "\n" + webhooks)
    return copy


@pytest.fixture
def hooked(tmp_path, template_db, receiver, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
    copy = catalog_with(tmp_path, f"webhooks:\n  - url: {url}\n    secret: {SECRET_ENV}\n"
                                  "    events: [submitted, approved, record_changed]\n")
    app = make_app(tmp_path / "app", template_db)
    state = app.extensions["deskflow"]
    state.path = copy
    state.reload()
    return app


def rows(service) -> list[OutboxMessage]:
    with service.sessions() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "webhook")
                              .order_by(OutboxMessage.id)))


def test_subscribed_events_are_queued_in_their_transaction_and_delivered_signed(hooked, receiver):
    service = hooked.extensions["deskflow"].service
    req = service.submit("new-laptop", "alice", dict(LAPTOP))
    queued = rows(service)
    with service.sessions() as s:
        submitted = s.scalar(select(AuditEvent).where(AuditEvent.request_id == req.id,
                                                      AuditEvent.event == "submitted"))
        events = set(s.scalars(select(AuditEvent.event).where(AuditEvent.request_id == req.id)))
    # approval_requested, transition...: recorded, but not subscribed
    assert {"submitted", "approval_requested"} <= events
    assert [(r.event, r.idempotency_key) for r in queued] == [("submitted", f"audit:{submitted.id}:0")]
    body = queued[0].payload["body"]
    assert body == {"id": submitted.id, "event": "submitted", "request": req.number,
                    "state": body["state"], "at": submitted.at.replace(tzinfo=UTC).isoformat()
                    if submitted.at.tzinfo is None else submitted.at.isoformat(),
                    "actor": "alice", "detail": submitted.detail}
    with service.sessions() as s:
        appr_id = s.scalar(select(Request).where(Request.id == req.id)).id
        from engine.models import Approval
        appr_id = s.scalar(select(Approval.id).where(Approval.request_id == appr_id))
    service.approve(appr_id, "bob", "Fine.")
    assert [r.event for r in rows(service)] == ["submitted", "approval_approved"]
    service.comment(req.number, "alice", "Thanks")  # `comment`: not subscribed
    assert len(rows(service)) == 2
    config = DeliveryConfig(smtp_host="127.0.0.1", smtp_port=1, webhook_timeout=2.0,
                            allow_private_webhooks=True)
    counts = deliver_due(service.sessions, config, lambda: datetime.now(UTC))
    assert (counts["delivered"], counts["dead"]) == (2, 0)
    got = sorted((h["X-Deskflow-Event"], json.loads(b)["event"], json.loads(b)["request"])
                 for h, b in receiver.hits)
    assert got == [("approval_approved", "approval_approved", req.number),
                   ("submitted", "submitted", req.number)]
    for headers, raw in receiver.hits:
        stamp = headers["X-Deskflow-Timestamp"]
        expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
        assert expected in headers["X-Deskflow-Signature"]
        assert headers["Idempotency-Key"].startswith("audit:")


def test_without_subscriptions_nothing_is_queued(app):
    service = app.extensions["deskflow"].service
    service.submit("new-laptop", "alice", dict(LAPTOP))
    assert rows(service) == []


@pytest.mark.parametrize(("webhooks", "message"), [
    ("webhooks:\n  - url: https://hooks.example.com/x\n    secret: HOOK\n    events: [submitted, aproved]\n",
     "unknown event kind aproved"),
    ("webhooks:\n  - url: https://hooks.example.com/x\n    secret: hook-secret\n    events: [submitted]\n",
     "secret"),
])
def test_a_bad_event_kind_or_secret_name_is_a_validate_error_with_its_place(tmp_path, runner, webhooks,
                                                                           message):
    copy = catalog_with(tmp_path, webhooks)
    lines = (copy / "deskflow.yaml").read_text().splitlines()
    result = runner.invoke(main, ["validate", str(copy)])
    assert result.exit_code != 0
    wrong = [line for line in result.output.splitlines() if "deskflow.yaml:" in line]
    assert wrong and message in wrong[0], result.output
    place = wrong[0].split("deskflow.yaml:")[1].split(":")
    assert int(place[0]) in (len(lines), len(lines) - 1) and int(place[1]) > 1
