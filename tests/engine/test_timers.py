"""Timeouts, waits and SLA clocks, driven by an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from engine.models import Approval, AuditEvent, OutboxMessage, Request, Task


def req_of(sessions, number):
    with sessions() as s:
        return s.scalar(select(Request).where(Request.number == number))


def events(sessions, number, name):
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(AuditEvent).where(AuditEvent.request_id == req.id,
                                                       AuditEvent.event == name)))


def test_approval_timeout_escalates_up_the_manager_chain(service, sessions, clock, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    clock.advance(days=2)  # Wednesday: not yet 3 business days
    assert service.run_due() == 0
    clock.advance(days=3)  # Monday after: past the timeout
    assert service.run_due() >= 1
    with sessions() as s:
        rows = {a.approver_id: a.decision for a in s.scalars(select(Approval))}
    assert rows == {"bob": "escalated", "carol": "pending"}
    [event] = events(sessions, req.number, "approval_escalated")
    assert (event.detail["from_person"], event.detail["to"]) == ("bob", "carol")


def test_approval_timeout_reminds_and_stops_after_three(service, sessions, clock, answers):
    a = answers["new-laptop"] | {"model": "pro16", "justification": "I render 3D models all day long."}
    req = service.submit("new-laptop", "alice", a)
    with sessions() as s:
        appr = s.scalar(select(Approval))
    service.approve(appr.id, "bob")
    for _ in range(6):
        clock.advance(days=7)
        service.run_due()
    with sessions() as s:
        reminders = s.scalars(select(OutboxMessage.event).where(
            OutboxMessage.event == "approval_reminder")).all()
        pending = s.scalars(select(Approval).where(Approval.decision == "pending")).all()
    assert {p.reminders for p in pending} == {3}
    assert len(reminders) == 3 * len(pending)
    assert req_of(sessions, req.number).state == "director_approval"


def test_wait_state_fires_after_its_time(service, sessions, clock, answers):
    req = service.submit("report-incident", "alice", answers["report-incident"])
    with sessions() as s:
        task = s.scalar(select(Task))
    service.claim_task(task.id, "frank")
    service.complete_task(task.id, "frank", "resolved",
                          {"resolution_notes": "Restarted the mail relay."})
    assert req_of(sessions, req.number).state == "confirm_window"
    assert service.run_due() == 0
    clock.advance(days=30)
    assert service.run_due() >= 1
    final = req_of(sessions, req.number)
    assert (final.state, final.outcome) == ("closed", "resolved")


def test_incident_sla_from_priority_warns_breaches_and_escalates(service, sessions, clock, answers):
    req = service.submit("report-incident", "alice", answers["report-incident"])
    fresh = req_of(sessions, req.number)
    assert fresh.priority == "p1"
    assert fresh.resolution_due is not None and fresh.resolution_due > fresh.created_at
    clock.now = fresh.resolution_due
    service.run_due()
    done = req_of(sessions, req.number)
    assert done.sla_state == "breached"
    assert [e.detail["target"] for e in events(sessions, req.number, "sla_warning")] == ["resolution"]
    assert {e.detail["target"] for e in events(sessions, req.number, "sla_breach")} >= {"resolution"}
    with sessions() as s:
        task = s.scalar(select(Task))
    # on_breach: escalate tasks, once per target breached (response, then resolution): tier 2,
    # then tier 3, picked by the category (email: the business applications team)
    assert (task.queue, task.tier) == ("apps-team", 2)


def test_waiting_on_the_requester_pauses_the_sla(service, sessions, clock, answers):
    req = service.submit("report-incident", "alice", answers["report-incident"])
    due = req_of(sessions, req.number).resolution_due
    with sessions() as s:
        task = s.scalar(select(Task))
    service.claim_task(task.id, "frank")
    service.ask_requester(req.number, "frank", "Which floor exactly?")
    assert req_of(sessions, req.number).waiting_on_requester
    clock.now = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)  # a whole business day later
    service.run_due()
    assert req_of(sessions, req.number).sla_state == "ok"
    service.answer(req.number, "alice", "The third floor.")
    moved = req_of(sessions, req.number)
    assert not moved.waiting_on_requester
    assert moved.resolution_due > due
