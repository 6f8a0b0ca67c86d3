"""Acme's workflows driven through the request service."""

from __future__ import annotations

from sqlalchemy import select

from engine.models import Approval, Asset, AuditEvent, OutboxMessage, Request, Task


def pending(sessions, number, approver=None):
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        q = select(Approval).where(Approval.request_id == req.id, Approval.decision == "pending")
        if approver:
            q = q.where(Approval.approver_id == approver)
        return list(s.scalars(q))


def open_tasks(sessions, number):
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(Task).where(Task.request_id == req.id, Task.status == "open")))


def reload(sessions, number):
    with sessions() as s:
        return s.scalar(select(Request).where(Request.number == number))


def test_laptop_standard_model_manager_then_hardware(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    assert req.number == "REQ-000001"
    assert req.state == "manager_approval"
    [appr] = pending(sessions, req.number)
    assert appr.approver_id == "bob"
    service.approve(appr.id, "bob", "fine")
    assert reload(sessions, req.number).state == "prepare"
    [task] = open_tasks(sessions, req.number)
    assert task.queue == "it-hardware"
    assert task.title == "Laptop std14 for Alice Andersen" or task.title.startswith("Laptop std14 for")
    service.claim_task(task.id, "frank")
    service.complete_task(task.id, "frank", answers={"serial_number": "SN123"})
    done = reload(sessions, req.number)
    assert (done.state, done.status, done.outcome) == ("delivered", "closed", "fulfilled")
    with sessions() as s:
        [asset] = s.scalars(select(Asset))
        assert (asset.type, asset.data["model"], asset.owner_id) == ("laptop", "std14", "alice")
        events = [(e.event, e.from_state, e.to_state) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.request_id == req.id).order_by(AuditEvent.id))]
        assert ("transition", "manager_approval", "check_model") in events
        assert ("transition", "check_model", "prepare") in events
        assert ("transition", "prepare", "delivered") in events
        assert s.scalar(select(OutboxMessage).where(OutboxMessage.event == "approval_requested"))


def test_laptop_pro_model_needs_a_director(service, sessions, answers):
    a = answers["new-laptop"] | {"model": "pro16", "justification": "I render 3D models all day long."}
    req = service.submit("new-laptop", "alice", a)
    [appr] = pending(sessions, req.number)
    service.approve(appr.id, "bob")
    assert reload(sessions, req.number).state == "director_approval"
    directors = {a.approver_id for a in pending(sessions, req.number)}
    assert directors and "alice" not in directors
    service.reject(pending(sessions, req.number)[0].id, sorted(directors)[0], "Too expensive")
    done = reload(sessions, req.number)
    assert (done.state, done.outcome) == ("rejected", "rejected")
