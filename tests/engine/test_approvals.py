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


# ---------------------------------------------------------------- segregation of duties via delegation

def denials(sessions):
    with sessions() as s:
        return [(e.actor_id, e.detail["reason"]) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.event == "security_denied").order_by(AuditEvent.id))]


@pytest.mark.parametrize(("requester", "requested_for", "party"), [
    ("oscar", None, "oscar"),        # an admin orders: his manager dana approves
    ("frank", "erin", "erin"),       # ordered for an admin: she may not pick her approver either
])
def test_an_admin_cannot_delegate_an_approval_of_their_own_request(
        service, sessions, answers, requester, requested_for, party):
    req = service.submit("new-laptop", requester, answers["new-laptop"], requested_for=requested_for)
    [appr] = rows(sessions, req.number)
    assert appr.approver_id not in (requester, requested_for)
    message = f"{party} cannot choose who approves their own request {req.number}"
    with pytest.raises(NotAllowed) as info:
        service.authorize("delegate", appr.id, party)
    assert str(info.value) == message
    with pytest.raises(NotAllowed) as info:
        service.delegate(appr.id, party, "heidi", "over to you")
    assert str(info.value) == message
    assert denials(sessions) == [(party, "self-delegation"), (party, "self-delegation")]
    [still] = rows(sessions, req.number)
    assert (still.id, still.approver_id) == (appr.id, appr.approver_id)


def test_a_requester_in_the_approver_group_cannot_hand_on_their_requests_approvals(
        service, sessions, answers):
    # ivan sits on the change board; his change goes to the others, none of whom he may replace
    req = service.submit("normal-change", "ivan", answers["normal-change"])
    board = rows(sessions, req.number)
    carols = next(a for a in board if a.approver_id == "carol")
    with pytest.raises(NotAllowed) as info:
        service.delegate(carols.id, "ivan", "judy")
    assert str(info.value) == f"ivan cannot choose who approves their own request {req.number}"
    assert denials(sessions) == [("ivan", "self-delegation")]
    assert [a.approver_id for a in rows(sessions, req.number)] == [a.approver_id for a in board]


def test_a_standing_delegation_to_the_requester_lets_them_decide_nothing_of_their_own(
        service, sessions, clock, answers):
    from engine import queries

    service.set_delegation("bob", "alice", clock.now, clock.now + timedelta(days=7))
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    assert appr.approver_id == "bob"
    with sessions() as s:
        assert queries.inbox(s, "alice", clock.now).total == 0
        assert queries.inbox_count(s, "alice", clock.now) == 0
        assert queries.inbox_count(s, "bob", clock.now) == 1
    with pytest.raises(NotAllowed) as info:
        service.approve(appr.id, "alice")
    assert str(info.value) == f"alice cannot decide on their own request {req.number}"
    assert denials(sessions) == [("alice", "self-approval")]
    assert emails_to(sessions, "approval_requested") == ["bob.bakker@acme.example"]


def test_delegations_do_not_chain_to_the_requester(service, sessions, clock, answers):
    # bob lets carol decide for him, carol lets alice decide for her: alice decides nothing of bob's
    service.set_delegation("bob", "carol", clock.now, clock.now + timedelta(days=7))
    service.set_delegation("carol", "alice", clock.now, clock.now + timedelta(days=7))
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = rows(sessions, req.number)
    with pytest.raises(NotAllowed) as info:
        service.approve(appr.id, "alice")
    assert str(info.value) == f"alice cannot decide on their own request {req.number}"
    with pytest.raises(NotAllowed) as info:
        service.delegate(appr.id, "carol", "dana")  # a delegate does not pass it on
    assert str(info.value) == f"carol is not the approver of approval {appr.id}"
    with pytest.raises(InvalidInput) as info:
        service.delegate(appr.id, "bob", "alice")
    assert info.value.fields == {"to": ["Pick someone other than the requester and yourself."]}
    service.approve(appr.id, "carol", "for Bob")
    assert state(sessions, req.number) == "prepare"


# ---------------------------------------------------------------- delegates hear of approvals

def emails_to(sessions, event):
    from engine.models import OutboxMessage

    with sessions() as s:
        return [to for m in s.scalars(select(OutboxMessage).where(OutboxMessage.event == event)
                                      .order_by(OutboxMessage.id)) for to in m.payload["to"]]


def test_a_standing_delegate_gets_the_approval_email_too(service, sessions, clock, answers):
    service.set_delegation("bob", "leo", clock.now, clock.now + timedelta(days=2))
    service.submit("new-laptop", "alice", answers["new-laptop"])
    assert emails_to(sessions, "approval_requested") == ["bob.bakker@acme.example",
                                                         "leo.hendriks@acme.example"]


def test_a_delegation_that_starts_now_tells_the_delegate_what_waits(service, sessions, clock, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    service.set_delegation("bob", "leo", clock.now + timedelta(hours=1), clock.now + timedelta(days=2))
    assert emails_to(sessions, "approval_requested") == ["bob.bakker@acme.example"]  # not yet
    service.set_delegation("bob", "dana", clock.now, clock.now + timedelta(days=2))
    assert emails_to(sessions, "approval_requested") == ["bob.bakker@acme.example",
                                                         "dana.visser@acme.example"]
    [appr] = rows(sessions, req.number)
    service.set_delegation("carol", "kim", clock.now, clock.now + timedelta(days=2))
    new = service.delegate(appr.id, "bob", "carol")  # one approval: carol, and kim who decides for her
    assert emails_to(sessions, "approval_requested")[2:] == ["carol.devries@acme.example",
                                                             "kim.peters@acme.example"]
    service.approve(new.id, "kim")
    assert state(sessions, req.number) == "prepare"
