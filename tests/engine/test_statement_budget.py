"""The SQL statements of one approval: at most the hand-written floor's plus one (issue 13).

The floor is benchmarks/engine.py (a): plain ORM code writing exactly the rows the manager's
approval of acme's mobile phone writes (approval and request updated; task, three audit and
two outbox rows inserted; the record's figures upserted), in one transaction.
"""

from __future__ import annotations

import re

from sqlalchemy import event, select

from engine.models import Approval, AuditEvent, OutboxMessage, Request, Task

#: the floor's statements + 1, per database. The floor on SQLite: BEGIN, SELECT approvals,
#: SELECT requests, INSERT tasks, INSERT record_facts, UPDATE approvals, UPDATE requests,
#: 3 x INSERT audit_events, 2 x INSERT outbox (the ORM inserts rows one by one there) = 12.
#: On PostgreSQL (no BEGIN statement; the ORM batches each table's rows): SELECT approvals,
#: SELECT requests, INSERT tasks, INSERT record_facts, UPDATE approvals, UPDATE requests,
#: INSERT audit_events, INSERT outbox = 8.
CEILING = {"sqlite": 12 + 1, "postgresql": 8 + 1}

#: what Deskflow sends, in order: the approval with its request, requester and the visit's
#: other approvals in one SELECT; the queue's group with its members in one; one flush for
#: the two updates and the task (its id names it in the audit row), the record's figures
#: upserted after it; then the audit and the outbox rows, each in one executemany.
DESKFLOW = ["SELECT approvals", "SELECT groups", "UPDATE approvals", "INSERT tasks",
            "UPDATE requests", "INSERT record_facts", "INSERT audit_events", "INSERT outbox"]


def describe(statement: str) -> str:
    """A statement by verb and table, e.g. 'SELECT approvals'."""
    words = statement.split()
    verb = words[0].upper()
    if verb == "SELECT":
        found = re.search(r"\bFROM\s+\"?(\w+)", statement, re.IGNORECASE)
        return f"SELECT {found.group(1) if found else '-'}"
    if verb == "INSERT":
        return f"INSERT {words[2].strip(chr(34))}"
    if verb == "UPDATE":
        return f"UPDATE {words[1].strip(chr(34))}"
    return verb


def pending(sessions, request_id):
    with sessions() as s:
        row = s.execute(select(Approval.id, Approval.approver_id).where(
            Approval.request_id == request_id, Approval.decision == "pending")).one()
        return row.id, row.approver_id


def test_a_manager_approval_stays_within_the_floor_plus_one(service, sessions, engine, answers):
    first = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    service.approve(*pending(sessions, first.id))  # warm: caches filled once per process
    req = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    approval_id, approver = pending(sessions, req.id)
    assert approver == "bob"  # alice's manager

    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        sent.append(describe(statement))

    event.listen(engine, "before_cursor_execute", count)
    try:
        service.approve(approval_id, approver)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    kind = engine.dialect.name
    expected = (["BEGIN"] if kind == "sqlite" else []) + DESKFLOW
    assert sent == expected, sent
    assert len(sent) <= CEILING[kind]
    with sessions() as s:  # and it wrote what the floor writes
        assert s.get(Request, req.id).state == "deliver"
        assert s.get(Approval, approval_id).decision == "approved"
        assert [t.queue for t in s.scalars(select(Task).where(Task.request_id == req.id))] \
            == ["it-hardware"]
        assert [e.event for e in s.scalars(select(AuditEvent).where(
            AuditEvent.request_id == req.id).order_by(AuditEvent.id))][-3:] \
            == ["approval_approved", "transition", "task_created"]
        assert len(list(s.scalars(select(OutboxMessage).where(
            OutboxMessage.request_id == req.id, OutboxMessage.event == "task_assigned")))) == 2
