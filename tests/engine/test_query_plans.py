"""The inbox and queue queries are served by their indexes, on SQLite and on PostgreSQL.

The tables are filled with a realistic spread (many approvers, many queues) and analysed,
so the planner chooses as it would in production.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text

from engine import queries
from engine.models import Approval, Group, Person, Request, Task, WorkflowVersion

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


@pytest.fixture
def filled(engine):
    people = [{"id": f"p{i}", "name": f"P {i}", "email": f"p{i}@x.example", "title": "",
               "department": "", "location": "", "active": True} for i in range(60)]
    groups = [{"id": f"g{i}", "name": f"G {i}", "email": ""} for i in range(20)]
    requests = [{"id": i + 1, "number": f"REQ-{i + 1:06d}", "item_id": "x", "item_name": "X",
                 "workflow_version_id": 1, "state": "s", "status": "open" if i % 3 else "closed",
                 "answers": {}, "requester_id": f"p{i % 60}", "requested_for_id": f"p{i % 60}",
                 "priority": f"p{i % 4 + 1}", "visit": 1, "waiting_on_requester": False,
                 "created_at": NOW, "updated_at": NOW,
                 "sla_state": "ok", "lock_version": 1} for i in range(3000)]
    approvals = [{"request_id": i % 3000 + 1, "visit": 1, "state": "s", "name": "a",
                  "policy": "any", "approver_id": f"p{i % 60}", "source": "",
                  "decision": "pending" if i % 4 == 0 else "approved", "comment": "",
                  "created_at": NOW, "reminders": 0, "lock_version": 1} for i in range(6000)]
    tasks = [{"request_id": i % 3000 + 1, "visit": 1, "state": "s", "name": "t", "title": "T",
              "instructions": "", "queue": f"g{i % 20}", "tier": 0,
              "status": "open" if i % 3 == 0 else "done", "answers": {}, "created_at": NOW,
              "due_at": NOW, "lock_version": 1} for i in range(6000)]
    with engine.begin() as conn:
        conn.execute(insert(Person), people)
        conn.execute(insert(Group), groups)
        conn.execute(insert(WorkflowVersion), [{"id": 1, "workflow_id": "w", "version": "v",
                                               "definition": {}, "created_at": NOW}])
        conn.execute(insert(Request), requests)
        conn.execute(insert(Approval), approvals)
        conn.execute(insert(Task), tasks)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return engine


def plan(engine, query) -> str:
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        prefix = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
        rows = conn.execute(text(f"{prefix} {compiled}")).all()
    return "\n".join(str(r[-1]) for r in rows)


def test_the_inbox_uses_its_index(filled):
    assert "ix_approvals_inbox" in plan(filled, queries.inbox_query("p7", ["p8"]))


def test_a_queue_uses_its_index(filled):
    for kw in ({}, {"assignee": "unassigned"}, {"priority": "p1", "sort": "new"}):
        assert "ix_tasks_queue" in plan(filled, queries.queue_query("g3", **kw)), kw


def test_my_requests_never_scan_every_request(filled):
    for status in (None, "open"):
        shown = plan(filled, queries.my_requests_query("p5", status, None))
        assert "SCAN requests" not in shown and "Seq Scan on requests" not in shown, shown
