"""Emails are queued with a snapshot of their context and rendered when they are sent."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from engine.delivery_config import DeliveryConfig
from engine.models import OutboxMessage
from engine.smtp import build_email


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


TABLE_SETTINGS = ("kind: Settings\nname: T\ntime_zone: UTC\n"
                  "business_hours: {days: [mon], start: '09:00', end: '17:00'}\n")
TABLE_DIRECTORY = ("people:\n  - {id: ann, name: Ann, email: ann@example.com}\n"
                   "groups:\n  - {id: team, name: Team, members: [ann]}\n")
TABLE_ITEM = """\
kind: CatalogItem
id: accounts
name: Accounts
category: Tests
summary: Accounts for new starters.
workflow: accounts
form:
  - name: accounts
    type: table
    columns:
      - {name: username, type: string, required: true}
      - {name: access, type: choice, choices: [read, write]}
      - {name: admin, type: boolean}
"""
TABLE_WORKFLOW = """\
kind: Workflow
id: accounts
start: announce
states:
  announce:
    actions:
      - notify:
          to: requester
          subject: "Accounts: {{ form.accounts }}"
          message: >-
            {{ len(form.accounts) }} accounts, first {{ form.accounts[0].username }}:
            {{ form.accounts[0] }}
    next: create
  create:
    task: {title: "Create {{ form.accounts }}", queue: team}
    on: {done: done}
  done: {end: fulfilled}
"""
ROWS = [{"username": "alice_j", "access": "read", "admin": False},
        {"username": "bob_k", "access": None, "admin": True}]


def test_a_table_answer_reads_as_rows_in_an_email_and_a_task_title(tmp_path, sessions, clock):
    from catalog.loader import load_catalog
    from engine.directory import sync_directory
    from engine.models import Task
    from engine.service import RequestService

    for name, text in (("deskflow.yaml", TABLE_SETTINGS), ("directory.yaml", TABLE_DIRECTORY),
                       ("items/accounts.yaml", TABLE_ITEM),
                       ("workflows/accounts.yaml", TABLE_WORKFLOW)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    catalog = load_catalog(tmp_path)
    assert catalog.ok, [e.render() for e in catalog.errors]
    with sessions.begin() as s:
        sync_directory(s, catalog.directory)
    service = RequestService(sessions, lambda: catalog, clock)
    req = service.submit("accounts", "ann", {"accounts": ROWS})
    with sessions() as s:
        message = s.scalar(select(OutboxMessage).where(OutboxMessage.event == "request_update"))
        title = s.scalar(select(Task.title).where(Task.request_id == req.id))
    email = build_email(message.payload, message.idempotency_key,
                        DeliveryConfig(mail_from="desk@acme.example"), datetime.now(UTC))
    rows = "username: alice_j, access: read, admin: false; username: bob_k, admin: true"
    assert email["Subject"] == f"Accounts: {rows}"
    assert ("2 accounts, first alice_j: username: alice_j, access: read, admin: false"
            in email.get_body(("plain",)).get_content())
    assert title == f"Create {rows}"
