"""An upgrade: a database made by the previous release (revision 0022), with data in it written
in SQL at that schema, brought to head by this release's migrations, then used through the
request service — the request reads, can be approved, and its timeline is intact. SQLite and
PostgreSQL (DESKFLOW_TEST_DATABASE_URL)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from engine import queries
from engine.db import make_engine, make_sessionmaker
from engine.migrate import current, head, upgrade
from engine.models import OutboxMessage, UTCDateTime
from engine.service import RequestService
from tests.acme import ACME_ANSWERS
from tests.engine.conftest import PG_URL
from tests.missing import missing

#: the schema of the previous release: the newest revision of the last release commit
PREVIOUS_RELEASE = "0022"
SUBMITTED = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
NOTE = b"Error 0x80070005 at 09:12\n"
NOTE_SHA = hashlib.sha256(NOTE).hexdigest()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'deskflow.sqlite'}"
        return
    if not PG_URL:
        missing("PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL", "PostgreSQL test")
    admin = sa.create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"deskflow_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def insert(conn: Connection, table: str, **values: Any) -> None:
    """One row, typed as the columns were at the previous release."""
    def kind(v: Any) -> Any:
        if isinstance(v, dict | list):
            return sa.JSON()
        if isinstance(v, datetime):
            return UTCDateTime()
        return sa.Boolean() if isinstance(v, bool) else None

    t = sa.table(table, *(sa.column(k, kind(v)) for k, v in values.items()))
    conn.execute(sa.insert(t).values(**values))


def previous_release_data(conn: Connection, acme) -> None:
    """What the previous release stored for a laptop request waiting for bob, and a second
    one with its task open: the directory, the workflow version, requests, an approval, a task,
    audit events, a comment with an attachment, outbox messages and timers."""
    for p in acme.directory.people:
        insert(conn, "people", id=p.id, name=p.name, email=p.email, manager_id=None,
               title=p.title or "", department=p.department or "", location=p.location or "",
               active=True)
    for p in acme.directory.people:
        if p.manager:
            conn.execute(sa.text("UPDATE people SET manager_id = :m WHERE id = :id"),
                         {"m": p.manager, "id": p.id})
    for g in acme.directory.groups:
        insert(conn, "groups", id=g.id, name=g.name, email=g.email or "", manager_id=g.manager)
        for member in g.members:
            insert(conn, "memberships", group_id=g.id, person_id=member)
    for r in acme.directory.roles:
        insert(conn, "roles", id=r.id, name=r.name)
        for holder in acme.directory.holders_of(r.id):
            insert(conn, "person_roles", person_id=holder, role_id=r.id)
    wf = acme.workflow("laptop-request")
    insert(conn, "workflow_versions", id=1, workflow_id=wf.id, version=wf.version,
           definition=dict(wf.definition["data"]), created_at=SUBMITTED)
    answers = ACME_ANSWERS["new-laptop"] | {"justification": None, "replaces_asset": None,
                                             "keyboard_layout": None, "needed_by": None,
                                             "department": None, "desk": None,
                                             "home_address": None}
    later = SUBMITTED + timedelta(hours=1)
    for rid, state, when in ((1, "manager_approval", SUBMITTED), (2, "prepare", later)):
        insert(conn, "requests", id=rid, number=f"REQ-00000{rid}", item_id="new-laptop",
               item_name="New laptop", workflow_version_id=1, state=state, status="open",
               answers=answers, requester_id="alice", requested_for_id="alice", priority="p3",
               visit=1, waiting_on_requester=False, created_at=when, updated_at=when,
               resolution_due=when + timedelta(days=7), sla_state="ok", lock_version=2,
               record_type="request", title="New laptop", category="Hardware",
               assignment_group_id="it-hardware", channel="portal", reopen_count=0, major=False,
               group_changes=0, ping_pong=False)
    insert(conn, "approvals", id=1, request_id=1, visit=1, state="manager_approval",
           name="manager_approval", policy="any", approver_id="bob", source="requester.manager",
           decision="pending", comment="", created_at=SUBMITTED,
           due_at=SUBMITTED + timedelta(days=3), reminders=0, lock_version=1)
    insert(conn, "tasks", id=1, request_id=2, visit=1, state="prepare", name="prepare",
           title="Laptop std14 for Alice", instructions="Image a std14 laptop.",
           queue="it-hardware", tier=1, status="open", answers={}, created_at=later,
           due_at=later + timedelta(days=3), lock_version=1)
    events = [
        (1, "alice", "submitted", None, "manager_approval",
         {"item": "new-laptop", "version": wf.version, "requested_for": "alice"}, SUBMITTED),
        (1, None, "approval_requested", None, None,
         {"approval": "manager_approval", "approvers": ["bob"], "policy": "any"}, SUBMITTED),
        (1, "alice", "attachment_added", None, None,
         {"attachment": 1, "filename": "error.log", "size": len(NOTE), "comment": 1},
         SUBMITTED + timedelta(minutes=5)),
        (2, "alice", "submitted", None, "manager_approval",
         {"item": "new-laptop", "version": wf.version, "requested_for": "alice"}, later),
        (2, "bob", "transition", "manager_approval", "prepare", {"trigger": "approved"}, later),
    ]
    for i, (rid, actor, event, src, dst, detail, at) in enumerate(events, 1):
        insert(conn, "audit_events", id=i, request_id=rid, actor_id=actor, event=event,
               from_state=src, to_state=dst, detail=detail, at=at)
    insert(conn, "comments", id=1, request_id=1, author_id="alice", body="The error I get.",
           internal=False, kind="comment", created_at=SUBMITTED + timedelta(minutes=5))
    insert(conn, "attachments", id=1, request_id=1, comment_id=1, filename="error.log",
           stored_name=NOTE_SHA, size=len(NOTE), content_type="text/plain",
           uploaded_by_id="alice", created_at=SUBMITTED + timedelta(minutes=5))
    insert(conn, "outbox", id=1, request_id=1, kind="email", event="approval_requested",
           idempotency_key="1:approval_requested:1:manager_approval:bob",
           payload={"to": ["bob.bakker@acme.example"], "template": "approval_requested",
                    "context": {"request": {"number": "REQ-000001"}}},
           status="delivered", attempts=1, next_attempt_at=SUBMITTED, last_error="",
           created_at=SUBMITTED, delivered_at=SUBMITTED + timedelta(seconds=3))
    insert(conn, "timers", id=1, request_id=1, kind="approval_timeout", visit=1,
           ref="manager_approval", due_at=SUBMITTED + timedelta(days=3), status="pending",
           lock_version=1)
    if conn.dialect.name == "postgresql":  # rows given their ids: move the sequences on
        for table in ("workflow_versions", "requests", "approvals", "tasks",
                      "audit_events", "comments", "attachments", "outbox", "timers"):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"))


def test_the_previous_releases_database_upgrades_and_works(empty_url, acme):
    upgrade(empty_url, PREVIOUS_RELEASE)
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        previous_release_data(conn, acme)
    engine.dispose()

    upgrade(empty_url)
    assert current(empty_url) == head() != PREVIOUS_RELEASE

    now = SUBMITTED + timedelta(days=1)
    engine = make_engine(empty_url)
    desk = RequestService(make_sessionmaker(engine), lambda: acme, lambda: now)
    with desk.sessions() as s:
        req = desk.request(s, "REQ-000001", "alice", now)
        assert (req.state, req.status, req.answers["model"]) == ("manager_approval", "open", "std14")
        before = [(e.kind, e.actor, e.event.event if e.event else e.comment.body)
                  for e in queries.timeline(s, req, internal=False)]
        assert before == [("event", "alice", "submitted"), ("event", None, "approval_requested"),
                          ("event", "alice", "attachment_added"),
                          ("comment", "alice", "The error I get.")]
        [att] = desk.attachments(s, "REQ-000001", "alice", now)[1]
        assert (att.filename, att.size) == ("error.log", len(NOTE))
        assert s.scalars(sa.select(OutboxMessage.status)).all() == ["delivered"]
        task_req = desk.request(s, "REQ-000002", "alice", now)
        assert [(t.name, t.status) for t in queries.tasks_of(s, task_req)] == [("prepare", "open")]

    desk.approve(1, "bob", "Go ahead.")

    with desk.sessions() as s:
        req = desk.request(s, "REQ-000001", "alice", now)
        assert req.state == "prepare"
        after = [(e.kind, e.actor, e.event.event if e.event else e.comment.body)
                 for e in queries.timeline(s, req, internal=False)]
        assert after == before + [("event", "bob", "approval_approved"),
                                  ("event", "bob", "transition"), ("event", "bob", "transition"),
                                  ("event", None, "task_created")]
        assert [(a.approver_id, a.decision) for a in queries.approvals_of(s, req)] == \
            [("bob", "approved")]
        assert [(t.name, t.status) for t in queries.tasks_of(s, req)] == [("prepare", "open")]
    engine.dispose()
