"""Emails are queued with a snapshot of their context and rendered when they are sent."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from engine.delivery import DeliveryConfig, build_email
from engine.models import OutboxMessage


def test_an_approval_request_email_is_rendered_at_delivery(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    with sessions() as s:
        message = s.scalar(select(OutboxMessage).where(OutboxMessage.event == "approval_requested"))
    assert len(message.payload["to"]) == 1 and message.payload["to"][0].startswith("bob")
    assert message.payload["template"] == "approval_requested"
    assert message.payload["context"]["request"]["number"] == req.number
    email = build_email(message.payload, message.idempotency_key,
                        DeliveryConfig(mail_from="desk@acme.example"), datetime.now(UTC))
    assert req.number in email["Subject"]
    assert req.number in email.get_body(("plain",)).get_content()


def test_user_text_in_an_email_context_stays_data(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    with sessions() as s:
        appr_id = s.scalar(select(OutboxMessage.id))
    service.comment(req.number, "bob", "{{ ''.__class__.__mro__ }} <script>x</script>")
    with sessions() as s:
        message = s.scalar(select(OutboxMessage).where(OutboxMessage.event == "comment_added"))
    assert appr_id is not None
    email = build_email(message.payload, message.idempotency_key,
                        DeliveryConfig(mail_from="desk@acme.example"), datetime.now(UTC))
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "{{ ''.__class__.__mro__ }}" in text
    assert "<script>" not in html and "&lt;script&gt;" in html
