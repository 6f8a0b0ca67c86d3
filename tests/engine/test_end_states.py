"""Every acme workflow driven to each of its end states, through the request service only."""

from __future__ import annotations

from collections import deque

import pytest
from sqlalchemy import select

from catalog.workflow import StateKind
from engine import people
from engine.models import Approval, AuditEvent, Request, Task

VARIANTS = {
    "new-laptop": [{}, {"model": "pro16", "justification": "I render 3D models all day long."}],
    "system-access": [{}, {"level": "admin", "role": "crm-admin", "access_until": "2027-01-31"}],
    "software-licence": [{}, {"software": "adobe-creative-cloud"}],
    "normal-change": [{}, {"customer_facing": True, "rollback_plan": "Restore the previous image."}],
    "password-unlock": [{}, {"suspicious": True}],
}
TASK_VALUES = {"string": "user.one", "textarea": "Completed as planned, with no problems at all.",
               "integer": 0, "number": 0, "boolean": False}


def distances(wf, target):
    """Shortest number of steps from each state to `target`."""
    reverse: dict[str, set[str]] = {}
    for src, dests in wf.successors().items():
        for d in dests:
            reverse.setdefault(d, set()).add(src)
    dist, todo = {target: 0}, deque([target])
    while todo:
        cur = todo.popleft()
        for prev in reverse.get(cur, ()):
            if prev not in dist:
                dist[prev] = dist[cur] + 1
                todo.append(prev)
    return dist


def best(wf, state, target):
    dist = distances(wf, target)
    options = [(dist.get(dest, 999), trig) for trig, dest in state.on.items()]
    return min(options)[1]


def drive(service, sessions, clock, number, wf, target):
    for _ in range(60):
        with sessions() as s:
            req = s.scalar(select(Request).where(Request.number == number))
            if req.status == "closed":
                return req.state
            state = wf.state(req.state)
            approvals = list(s.scalars(select(Approval).where(
                Approval.request_id == req.id, Approval.visit == req.visit,
                Approval.decision == "pending")))
            tasks = list(s.scalars(select(Task).where(
                Task.request_id == req.id, Task.visit == req.visit, Task.status == "open")))
            members = {t.id: people.members(s, t.queue) for t in tasks}
        if state.kind is StateKind.APPROVAL:
            trigger = best(wf, state, target)
            a = approvals[0]
            if trigger == "approved":
                service.approve(a.id, a.approver_id, "ok")
            else:
                service.reject(a.id, a.approver_id, "no")
        elif state.kind is StateKind.TASK:
            t = tasks[0]
            outcome = best(wf, state, target) if len(state.tasks) == 1 else "done"
            spec = next(x for x in state.tasks if x.name == t.name)
            answers = {f.name: TASK_VALUES[f.type.value] for f in spec.fields if f.required}
            worker = t.assignee_id or members[t.id][0]
            service.claim_task(t.id, worker)
            service.complete_task(t.id, worker, outcome=outcome, answers=answers)
        elif state.kind is StateKind.WAIT:
            clock.advance(days=10)
            assert service.run_due() >= 1
        else:
            raise AssertionError(f"{number} stuck in {state.name}")
    raise AssertionError(f"{number} did not finish")


def orderer(sessions, item):
    """Alice when she may order the item, else the first person who may."""
    from engine.permissions import can_order

    with sessions() as s:
        for pid in ["alice", "frank", "heidi", "erin", "judy", "kim", "leo"]:
            if can_order(s, pid, item):
                return pid
    raise AssertionError(f"nobody may order {item.id}")


def scenarios(acme):
    for item in acme.items:
        for variant in VARIANTS.get(item.id, [{}]):
            yield item, variant


def test_every_end_state_of_every_workflow_is_reached(service, sessions, clock, acme, answers):
    reached: dict[str, set[str]] = {wf.id: set() for wf in acme.workflows}
    for item, variant in scenarios(acme):
        wf = acme.workflow(item.workflow)
        for target in wf.end_states:
            if target == "cancelled":
                continue
            req = service.submit(item.id, orderer(sessions, item), {**answers[item.id], **variant})
            end = drive(service, sessions, clock, req.number, wf, target)
            reached[wf.id].add(end)
        who = orderer(sessions, item)
        req = service.submit(item.id, who, {**answers[item.id], **variant})
        if req.status == "open":
            service.cancel(req.number, who, "changed my mind")
            reached[wf.id].add("cancelled")
    missing = {wf.id: set(wf.end_states) - reached[wf.id] for wf in acme.workflows}
    # password unlock is fully automatic: it cannot be cancelled before it ends
    assert {k: v for k, v in missing.items() if v} == {"automated-unlock": {"cancelled"}}


def test_audit_trail_is_a_path_through_the_graph(service, sessions, clock, acme, answers):
    item = acme.item("normal-change")
    wf = acme.workflow(item.workflow)
    req = service.submit(item.id, orderer(sessions, item), answers[item.id])
    drive(service, sessions, clock, req.number, wf, "completed")
    declared = {(t.source, t.trigger, t.dest) for t in wf.transitions()}
    with sessions() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.request_id == req.id,
                                                       AuditEvent.to_state.is_not(None))
                              .order_by(AuditEvent.id)))
    assert rows[0].event == "submitted" and rows[0].to_state == wf.start
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row.from_state == prev.to_state
        assert (row.from_state, row.detail["trigger"], row.to_state) in declared
    assert rows[-1].to_state == "completed"


@pytest.mark.parametrize("item_id", ["new-hire-onboarding", "offboarding"])
def test_parallel_tasks_join_only_when_all_are_done(service, sessions, answers, item_id):
    req = service.submit(item_id, "alice", answers[item_id])
    with sessions() as s:
        for a in s.scalars(select(Approval).where(Approval.decision == "pending")):
            approver = a.approver_id
            approval_id = a.id
    service.approve(approval_id, approver)
    with sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.status == "open").order_by(Task.id)))
        workers = {t.id: people.members(s, t.queue)[0] for t in tasks}
    assert len(tasks) == 4
    for i, t in enumerate(tasks):
        answers_ = {"username": "sam.smith"} if t.name == "accounts" and item_id.startswith("new") else {}
        service.complete_task(t.id, workers[t.id], answers=answers_)
        with sessions() as s:
            state = s.scalar(select(Request.state).where(Request.number == req.number))
        assert (state in ("ready", "completed")) == (i == len(tasks) - 1)
