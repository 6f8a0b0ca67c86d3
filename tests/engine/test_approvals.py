"""Approval policies, segregation of duties, delegation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.models import Approval, AuditEvent, Request


def rows(sessions, number, decision="pending"):
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(Approval).where(
            Approval.request_id == req.id, Approval.decision == decision).order_by(Approval.id)))


def state(sessions, number):
    with sessions() as s:
        return s.scalar(select(Request.state).where(Request.number == number))


def test_any_policy_first_approval_decides(service, sessions, answers):
    req = service.submit("vpn-access", "alice", answers["vpn-access"])
    [appr] = rows(sessions, req.number)
    assert appr.policy == "any" and appr.approver_id == "bob"
    service.approve(appr.id, "bob")
    assert state(sessions, req.number) == "setup"


def test_quorum_needs_two_approvals(service, sessions, answers):
    req = service.submit("normal-change", "frank", answers["normal-change"])
    board = rows(sessions, req.number)
    assert {a.approver_id for a in board} == {"oscar", "carol", "erin", "ivan"}
    assert {a.policy for a in board} == {"quorum:2"}
    service.approve(board[0].id, board[0].approver_id)
    assert state(sessions, req.number) == "cab_approval"
    service.approve(board[1].id, board[1].approver_id)
    assert state(sessions, req.number) == "implement"
    assert {a.decision for a in rows(sessions, req.number, "closed")} == {"closed"}


def test_quorum_rejects_once_it_cannot_be_met(service, sessions, answers):
    req = service.submit("normal-change", "frank", answers["normal-change"])
    board = rows(sessions, req.number)
    for a in board[:2]:
        service.reject(a.id, a.approver_id, "too risky")
        if state(sessions, req.number) == "rejected":
            break
    # 4 approvers, quorum 2: after 3 rejections only 1 could approve; 2 rejections leave 2
    assert state(sessions, req.number) == "cab_approval"
    service.reject(board[2].id, board[2].approver_id, "no")
    assert state(sessions, req.number) == "rejected"


def test_parallel_approvals_all_must_approve(service, sessions, answers):
    a = answers["system-access"] | {"level": "admin", "role": "crm-admin", "access_until": "2027-01-31"}
    req = service.submit("system-access", "alice", a)
    pending = rows(sessions, req.number)
    names = {p.name for p in pending}
    assert names == {"data_owner", "security"}
    owner = next(p for p in pending if p.name == "data_owner")
    service.approve(owner.id, owner.approver_id)
    assert state(sessions, req.number) == "admin_approvals"
    security = next(p for p in rows(sessions, req.number) if p.name == "security")
    service.approve(security.id, security.approver_id)
    assert state(sessions, req.number) == "grant"


def test_the_all_policy_waits_for_everyone(service, sessions, acme, tmp_path, answers):
    # hr_confirmation is "any" in acme; build the all-policy case from the board
    req = service.submit("normal-change", "frank", answers["normal-change"])
    board = rows(sessions, req.number)
    from engine import approvals

    for a in board:
        a.decision = "approved"
    assert approvals.outcome(board) == "approved"
    for a in board:
        a.policy = "all"
    board[-1].decision = "pending"
    assert approvals.outcome(board) is None
    board[-1].decision = "rejected"
    assert approvals.outcome(board) == "rejected"


def test_requester_never_approves_their_own_request(service, sessions, answers):
    # ivan sits on the change board; his own change goes to the other members
    req = service.submit("normal-change", "ivan", answers["normal-change"])
    assert {a.approver_id for a in rows(sessions, req.number)} == {"oscar", "carol", "erin"}
    # her manager approves her laptop; a direct attempt by her is refused and audited
    req = service.submit("new-laptop", "bob", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    assert appr.approver_id == "carol"
    other = service.submit("new-laptop", "carol", answers["new-laptop"])
    [own] = rows(sessions, other.number)
    assert own.approver_id == "dana"
    with pytest.raises(NotAllowed) as info:
        service.approve(own.id, "carol")
    assert str(info.value) == f"carol cannot decide on their own request {other.number}"
    with sessions() as s:
        denied = s.scalar(select(AuditEvent).where(AuditEvent.event == "security_denied"))
    assert denied.actor_id == "carol" and denied.detail["reason"] == "self-approval"


def test_an_approver_who_orders_for_someone_else_cannot_approve_it(service, sessions, answers):
    req = service.submit("new-laptop", "bob", answers["new-laptop"], requested_for="alice")
    [appr] = rows(sessions, req.number)
    assert appr.approver_id == "carol"  # bob ordered it: his own manager approves


def test_strangers_cannot_approve_or_see(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    with pytest.raises(NotFound):
        service.approve(appr.id, "peter")
    with pytest.raises(NotFound):
        service.cancel(req.number, "peter")


def test_delegating_one_approval(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    new = service.delegate(appr.id, "bob", "carol", "I am away")
    assert (new.approver_id, new.delegated_from_id) == ("carol", "bob")
    with pytest.raises(Conflict):
        service.approve(appr.id, "bob")
    with pytest.raises(InvalidInput):
        service.delegate(new.id, "carol", "alice")
    service.approve(new.id, "carol")
    assert state(sessions, req.number) == "prepare"


def test_delegation_window(service, sessions, clock, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    service.set_delegation("bob", "leo", clock.now + timedelta(hours=1), clock.now + timedelta(days=2))
    with pytest.raises(NotFound):
        service.approve(appr.id, "leo")  # not yet: the window has not started
    clock.advance(hours=2)
    service.approve(appr.id, "leo", "on behalf of Bob")
    with sessions() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.event == "approval_approved"))
    assert (event.actor_id, event.detail["on_behalf_of"]) == ("leo", "bob")


def test_delegation_expires(service, sessions, clock, answers):
    service.set_delegation("bob", "leo", clock.now, clock.now + timedelta(hours=1))
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    clock.advance(hours=2)
    with pytest.raises(NotFound):
        service.approve(appr.id, "leo")


def test_reject_needs_a_comment(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    with pytest.raises(InvalidInput) as info:
        service.reject(appr.id, "bob", "  ")
    assert info.value.fields == {"comment": ["Say why the request is rejected."]}


def test_stale_page_gets_a_conflict(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    service.comment(req.number, "alice", "any news?")
    with pytest.raises(Conflict) as info:
        service.approve(appr.id, "bob", seen_version=req.lock_version)
    assert "changed since you loaded it" in str(info.value)
