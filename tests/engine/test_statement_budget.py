"""The SQL statements of one approval and of one submit (issue 13).

An approval sends at most the hand-written floor's statements plus one. The floor is
benchmarks/engine.py (a): plain ORM code writing exactly the rows the manager's approval of
acme's mobile phone writes (approval and request updated; task, three audit and two outbox
rows inserted; the record's figures upserted), in one transaction. A submit of that mobile
phone sends the statements listed in SUBMIT, no more than SUBMIT_CEILING.
"""

from __future__ import annotations

import re
import threading

from sqlalchemy import event, func, select

from engine.models import (
    Approval,
    AuditEvent,
    OutboxMessage,
    RecordFact,
    Request,
    Task,
    Timer,
    WorkflowVersion,
)

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


#: what Deskflow sends for a submit of acme's mobile phone, in order: the requester with their
#: manager, the workflow version's row and the owner group (and on SQLite the new request's
#: id) in one SELECT; on PostgreSQL the id from the sequence; the request's row, complete with
#: its number, first visit and SLA dues, in one INSERT, its figures upserted after it; the
#: approval as it opens (its id goes into the email's links); the approver's standing
#: delegations with everyone's notification preferences in one SELECT; then the in-app
#: notification, the timers (SLA warning and breach, the approval's timeout), the audit and
#: the outbox rows, each in one executemany.
SUBMIT_FIRST = {"sqlite": ["BEGIN", "SELECT people"], "postgresql": ["SELECT people", "SELECT nextval"]}
SUBMIT = ["INSERT requests", "INSERT record_facts", "INSERT approvals", "SELECT delegations",
          "INSERT notifications", "INSERT timers", "INSERT audit_events", "INSERT outbox"]
#: before issue 13's cut a submit sent 22 statements on SQLite and 19 on PostgreSQL (the
#: requester's roles and groups, the version, the owner group and the manager chain above the
#: approver each read on their own; the request's number and first visit written by an UPDATE
#: that upserted its figures again; on SQLite each timer inserted on its own)
SUBMIT_CEILING = {"sqlite": 10, "postgresql": 10}


def describe(statement: str) -> str:
    """A statement by verb and table, e.g. 'SELECT approvals' ('SELECT nextval' without a table)."""
    words = statement.split()
    verb = words[0].upper()
    if verb == "SELECT":
        outer, inner = statement, ""
        while outer != inner:  # leave out subqueries and calls' arguments
            inner, outer = outer, re.sub(r"\([^()]*\)", "", outer)
        found = re.search(r"\bFROM\s+\"?(\w+)", outer, re.IGNORECASE) \
            or re.match(r"SELECT\s+(\w+)", outer, re.IGNORECASE)
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


def test_a_submit_sends_its_listed_statements(service, sessions, engine, answers):
    service.submit("mobile-phone", "alice", answers["mobile-phone"])  # warm: caches, the version row

    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        sent.append(describe(statement))

    event.listen(engine, "before_cursor_execute", count)
    try:
        req = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    finally:
        event.remove(engine, "before_cursor_execute", count)

    kind = engine.dialect.name
    assert sent == SUBMIT_FIRST[kind] + SUBMIT, sent
    assert len(sent) <= SUBMIT_CEILING[kind]
    with sessions() as s:  # and it wrote what a submit writes
        stored = s.get(Request, req.id)
        assert (stored.number, stored.state, stored.visit, stored.lock_version) \
            == (f"REQ-{req.id:06d}", "manager_approval", 1, 1)
        assert stored.resolution_due is not None
        assert [(a.approver_id, a.visit) for a in s.scalars(
            select(Approval).where(Approval.request_id == req.id))] == [("bob", 1)]
        assert sorted(t.kind for t in s.scalars(select(Timer).where(Timer.request_id == req.id))) \
            == ["approval_timeout", "sla_breach", "sla_warning"]
        assert [e.event for e in s.scalars(select(AuditEvent).where(
            AuditEvent.request_id == req.id).order_by(AuditEvent.id))] \
            == ["submitted", "approval_requested"]
        assert [(m.event, m.payload["to"]) for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.request_id == req.id))] == [("approval_requested", ["bob.bakker@acme.example"])]
        assert s.scalar(select(RecordFact.state).where(RecordFact.request_id == req.id)) \
            == "manager_approval"


def test_the_records_of_one_order_get_consecutive_numbers(service, sessions, answers):
    """An order guide submits its items in one unit: each takes its own next id and number."""
    first = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    order = service.order_guide(
        "new-hire", "alice", {"cost_center": "CC-1234", "needed_by": "2027-01-04", "team": "engineer"},
        {"new-laptop": {"model": "std14", "building": "ams-hq", "floor": 4},
         "system-access": {"system": "crm", "role": "crm-read",
                           "reason": "I support the sales team with their pipeline."}})
    then = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    with sessions() as s:
        numbers = list(s.scalars(select(Request.number).where(Request.order_id == order.id)
                                 .order_by(Request.id)))
    assert [first.number, *numbers, then.number] == [f"REQ-{first.id + i:06d}" for i in range(4)]


def test_submits_at_the_same_moment_each_get_their_own_number(service, sessions, answers, db_url):
    """The id is known before the INSERT (SQLite: under the write lock; PostgreSQL: the
    sequence): submits racing each other all succeed, numbered by their ids, none twice."""
    threads = 20 if db_url.startswith("postgresql") else 10
    # the first submit of all: each racer may be the one to store the workflow version row
    barrier = threading.Barrier(threads)
    errors: list[str] = []

    def run() -> None:
        barrier.wait()
        try:
            service.submit("mobile-phone", "alice", dict(answers["mobile-phone"]))
        except Exception as exc:  # noqa: BLE001 - reported below, the test fails on it
            errors.append(f"{type(exc).__name__}: {exc}")

    running = [threading.Thread(target=run) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join(timeout=120)
    assert errors == []
    with sessions() as s:
        rows = s.execute(select(Request.id, Request.number).order_by(Request.id)).all()
    assert len(rows) == threads
    assert [number for _, number in rows] == [f"REQ-{i:06d}" for i, _ in rows]
    assert len({number for _, number in rows}) == threads
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(WorkflowVersion)) == 1
