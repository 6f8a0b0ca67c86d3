"""The inbox and queue queries are served by their indexes, on SQLite and on PostgreSQL.

The tables are filled with a realistic spread (many approvers, many queues) and analysed,
so the planner chooses as it would in production.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.orm import Session

from engine import queries, worklist
from engine.models import Approval, Group, Membership, Person, Request, Task, WorkflowVersion

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


@pytest.fixture
def desk(filled, acme):
    """The filled tables as a service desk: record types, groups, assignees, titles with a rare
    word in one record of a hundred; p7 an agent of the service desk."""
    with filled.begin() as conn:
        conn.execute(insert(Group), [{"id": "service-desk", "name": "Service Desk", "email": ""}])
        conn.execute(insert(Membership), [{"person_id": "p7", "group_id": "service-desk"}])
        for i in range(0, 3000, 100):
            conn.execute(update(Request).where(Request.id.between(i + 1, i + 100)).values(
                record_type=("incident", "request", "change")[i // 100 % 3],
                assignment_group_id="service-desk" if i // 100 % 4 == 0 else f"g{i // 100 % 20}",
                assignee_id=f"p{i // 100 % 60}", title=f"Laptop {i} is slow"))
        conn.execute(update(Request).where(Request.id % 100 == 7).values(title="Kerberos fails"))
    with filled.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return filled


def worklist_plans(engine, acme, **raw) -> tuple[str, str]:
    with Session(engine) as s:
        found = worklist.parse_filters(s, acme, "p7", raw)
        page, count = (worklist.page_query(s, acme, "p7", found),
                       worklist.count_query(s, acme, "p7", found))
    if not raw.get("q") or engine.dialect.name == "sqlite":
        return plan(engine, page), plan(engine, count)
    shown = []
    with engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        for query in (page, count):
            compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
            shown.append("\n".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN {compiled}"))))
        conn.rollback()
    return shown[0], shown[1]


def test_the_agents_list_pages_in_the_order_of_an_index(desk, acme):
    page, count = worklist_plans(desk, acme)
    assert "ix_requests_updated" in page and "TEMP B-TREE" not in page, page
    # PostgreSQL probes tasks and work events per row, it does not hash all of them first
    assert "hashed SubPlan" not in page + count, page + count
    page, count = worklist_plans(desk, acme, status="open", group="service-desk")
    assert ("ix_requests_group_status_updated" in page or "ix_requests_updated" in page) \
        and "TEMP B-TREE" not in page and "Sort" not in page, page


def test_the_agents_list_searches_through_the_text_index(desk, acme):
    for statement in worklist_plans(desk, acme, kind="incident", status="open",
                                    group="service-desk", q="kerberos"):
        if desk.dialect.name == "sqlite":  # the index drives: the matches looked up by id
            assert "record_search VIRTUAL TABLE INDEX 0:M" in statement, statement
            assert "SEARCH requests USING INTEGER PRIMARY KEY" in statement, statement
            assert "ix_requests_type_status" not in statement, statement
        else:  # a few thousand rows are read faster than an index: is the index usable?
            assert "ix_record_search_body" in statement, statement


def test_the_sidebar_views_count_from_their_indexes(desk, acme):
    mine = worklist_plans(desk, acme, assignee="me", status="open")[1]
    assert "ix_requests_assignee_status_updated" in mine, mine
    breached = worklist_plans(desk, acme, sla="breached", status="open")[1]
    assert "ix_requests_sla_status_updated" in breached, breached
