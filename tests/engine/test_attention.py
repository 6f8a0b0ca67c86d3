"""No runtime failure strands a request: a failing step flags it; an admin retries or routes it.

The `fragile` workflow (tests/data/workflows/attention) fails in the step its `step` answer
names, because its expressions divide by a lookup value that is 0; the fixed catalog makes
it 1. Each test drives a request through the request service only.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from catalog.catalog import Catalog
from catalog.loader import load_catalog
from engine import timers
from engine.directory import sync_directory
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.models import Approval, Asset, AuditEvent, Membership, OutboxMessage, Request, Task, Timer
from engine.service import RequestService

DATA = Path(__file__).resolve().parents[1] / "data" / "workflows" / "attention"
SHARE = "10 / lookup('limits', 'divisor').data.value"


@dataclass
class Catalogs:
    broken: Catalog
    fixed: Catalog
    current: Catalog

    def __call__(self) -> Catalog:
        return self.current


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> tuple[Catalog, Catalog]:
    copy = tmp_path_factory.mktemp("fixed") / "attention"
    shutil.copytree(DATA, copy)
    limits = copy / "lookups" / "limits.yaml"
    limits.write_text(limits.read_text().replace("{value: 0}", "{value: 1}"))
    broken, fixed = load_catalog(DATA), load_catalog(copy)
    assert broken.ok and fixed.ok, [e.render() for e in (*broken.errors, *fixed.errors)]
    return broken, fixed


@pytest.fixture
def catalogs(loaded) -> Catalogs:
    return Catalogs(loaded[0], loaded[1], loaded[0])


@pytest.fixture
def service(sessions, catalogs, clock) -> RequestService:
    with sessions.begin() as s:
        sync_directory(s, catalogs.broken.directory)
    return RequestService(sessions, catalogs, clock)


def load(sessions, number: str) -> Request:
    with sessions() as s:
        return s.scalar(select(Request).where(Request.number == number))


def events(sessions, number: str, event: str) -> list[AuditEvent]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(AuditEvent).where(
            AuditEvent.request_id == req.id, AuditEvent.event == event).order_by(AuditEvent.id)))


def review(service, sessions, step: str) -> tuple[str, int]:
    """Alice orders a fragile request; return its number and the desk's pending review."""
    number = service.submit("fragile", "alice", {"step": step}).number
    with sessions() as s:
        appr = s.scalar(select(Approval).join(Request, Request.id == Approval.request_id)
                        .where(Request.number == number, Approval.decision == "pending"))
    return number, appr.id


def approve_review(service, sessions, clock, step: str) -> str:
    """Bob approves the review: the failing step comes right after, in the same click."""
    number, review_id = review(service, sessions, step)
    appr = service.approve(review_id, "bob")  # must not raise: the click is recorded
    assert appr.decision == "approved"
    return number


def wait_out(service, sessions, clock, step: str) -> str:
    number = approve_review(service, sessions, clock, step)
    assert load(sessions, number).state == "pause"
    clock.advance(hours=2)
    assert service.run_due() == 1
    return number


@dataclass(frozen=True)
class Case:
    step: str            # the answer that picks the failing state
    drive: object        # how the request gets there
    state: str           # where it halts
    key: str             # the step a retry re-runs
    error: str           # exactly what the admin reads
    after: str           # where a retry (with the fixed catalog) leaves it


CASES = [
    Case("decision", approve_review, "decision", "trigger:route",
         f"decision: decision: {SHARE} > 100: division by zero", "work"),
    Case("set", approve_review, "set_note", "action:0",
         f"set_note: action 1 (set): {SHARE}: division by zero", "work"),
    Case("notify", approve_review, "tell", "action:0",
         f"tell: action 1 (notify): {SHARE}: division by zero", "work"),
    Case("webhook", approve_review, "call", "action:0",
         f"call: action 1 (webhook): {SHARE}: division by zero", "work"),
    Case("create_asset", approve_review, "record", "action:1",
         f"record: action 2 (create_asset): {SHARE}: division by zero", "work"),
    Case("approval", approve_review, "sign_off", "approvals",
         f"sign_off: opening its approvals: 'bob' if {SHARE} else 'bob': division by zero",
         "sign_off"),
    Case("task", approve_review, "work", "tasks",
         f"work: opening its tasks: {SHARE} if form.step == 'task' else 1: division by zero",
         "work"),
    Case("wait", wait_out, "decision", "trigger:route",
         f"decision: decision: {SHARE} > 100: division by zero", "work"),
    Case("end", approve_review, "closing", "action:0",
         f"closing: action 1 (notify): {SHARE} if form.step == 'end' else 1: division by zero",
         "closing"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.step for c in CASES])
def test_a_failing_step_flags_the_request_and_a_retry_after_the_fix_moves_it_on(
        service, sessions, catalogs, clock, case):
    number = case.drive(service, sessions, clock, case.step)
    req = load(sessions, number)
    assert (req.status, req.state) == ("open", case.state)
    assert (req.attention_state, req.attention_step, req.attention_error) == (
        case.state, case.key, case.error)
    assert req.attention_at == clock.now
    [flagged] = events(sessions, number, "needs_attention")
    assert flagged.detail == {"state": case.state, "step": case.key, "error": case.error}
    assert flagged.actor_id is None

    catalogs.current = catalogs.fixed
    service.retry(number, "root", "The divisor is 1 now.", seen_version=req.lock_version)
    req = load(sessions, number)
    assert req.state == case.after
    assert (req.attention_at, req.attention_state, req.attention_step, req.attention_error) == (
        None, None, None, None)
    [retried] = events(sessions, number, "attention_retried")
    assert (retried.actor_id, retried.detail) == ("root", {
        "state": case.state, "step": case.key, "error": case.error,
        "reason": "The divisor is 1 now."})
    if case.step == "end":
        assert (req.status, req.outcome) == ("closed", "fulfilled")
    elif case.step == "approval":
        with sessions() as s:
            assert [(a.state, a.approver_id, a.decision) for a in s.scalars(
                select(Approval).where(Approval.request_id == req.id).order_by(Approval.id))] == [
                ("review", "bob", "approved"), ("sign_off", "bob", "pending")]
    else:
        with sessions() as s:
            assert [(t.state, t.title, t.status) for t in s.scalars(
                select(Task).where(Task.request_id == req.id))] == [
                ("work", "Work 10.0" if case.step == "task" else "Work 1", "open")]


def test_a_retry_resumes_at_the_failed_action_and_does_not_repeat_the_ones_before(
        service, sessions, catalogs, clock):
    number = approve_review(service, sessions, clock, "create_asset")
    catalogs.current = catalogs.fixed
    service.retry(number, "root", "Fixed.")
    req = load(sessions, number)
    with sessions() as s:
        assert [(a.type, a.name) for a in s.scalars(select(Asset))] == [("laptop", "Share 10.0")]
        told = s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.request_id == req.id, OutboxMessage.event == "request_update"))
    assert told == 1  # action 1 (notify) ran before the failure, and only then


def test_a_set_action_retried_writes_the_answer(service, sessions, catalogs, clock):
    number = approve_review(service, sessions, clock, "set")
    assert "note" not in load(sessions, number).answers
    catalogs.current = catalogs.fixed
    service.retry(number, "root", "Fixed.")
    assert load(sessions, number).answers["note"] == "10.0"


def test_a_retry_that_fails_again_keeps_the_request_flagged_with_the_new_error(
        service, sessions, clock):
    number = approve_review(service, sessions, clock, "decision")
    clock.advance(minutes=5)
    service.retry(number, "root", "Try once more.")
    req = load(sessions, number)
    assert (req.state, req.attention_at) == ("decision", clock.now)
    assert req.attention_error == f"decision: decision: {SHARE} > 100: division by zero"
    assert len(events(sessions, number, "needs_attention")) == 2


def test_an_approval_nobody_can_decide_flags_the_request_at_submission(service, sessions):
    with sessions.begin() as s:  # the desk is empty, and root (the only admin) orders
        s.execute(delete(Membership).where(Membership.group_id == "desk"))
    req = service.submit("fragile", "root", {"step": "decision"})
    req = load(sessions, req.number)
    assert (req.status, req.state, req.attention_step) == ("open", "review", "approvals")
    assert req.attention_error == ("review: opening its approvals: nobody can approve review: "
                                   "every approver is the requester or inactive")
    with sessions.begin() as s:
        s.add(Membership(group_id="desk", person_id="bob"))
    service.retry(req.number, "root", "Bob is back on the desk.")
    with sessions() as s:
        assert [(a.state, a.approver_id, a.decision) for a in s.scalars(select(Approval))] == [
            ("review", "bob", "pending")]
    assert load(sessions, req.number).attention_error is None


@pytest.mark.parametrize("case", CASES, ids=[c.step for c in CASES])
def test_an_admin_routes_a_flagged_request_by_hand_into_a_declared_state(
        service, sessions, clock, case):
    number = case.drive(service, sessions, clock, case.step)
    service.route(number, "root", "Skip the broken step.", to_state="rejected")
    req = load(sessions, number)
    assert (req.status, req.state, req.outcome, req.attention_error) == (
        "closed", "rejected", "rejected", None)
    [routed] = events(sessions, number, "attention_routed")
    assert (routed.actor_id, routed.from_state, routed.to_state) == ("root", case.state, "rejected")
    assert routed.detail == {"step": case.key, "error": case.error, "outcome": None,
                             "reason": "Skip the broken step."}


def test_ending_by_hand_with_an_outcome_skips_the_end_states_actions(service, sessions, clock):
    number = approve_review(service, sessions, clock, "end")
    service.route(number, "root", "Delivered by hand.", outcome="fulfilled")
    req = load(sessions, number)
    assert (req.status, req.state, req.outcome, req.attention_error) == (
        "closed", "closing", "fulfilled", None)


def test_routing_into_a_state_that_fails_flags_the_request_there(service, sessions, clock):
    number = approve_review(service, sessions, clock, "end")
    service.route(number, "root", "Try the decision.", to_state="decision")
    req = load(sessions, number)
    assert (req.state, req.attention_step) == ("decision", "trigger:route")
    assert req.attention_error == f"decision: decision: {SHARE} > 100: division by zero"


def test_only_admins_retry_or_route_and_only_requests_that_need_it(service, sessions, clock):
    number = approve_review(service, sessions, clock, "decision")
    with pytest.raises(NotAllowed) as info:
        service.retry(number, "alice", "Please.")
    assert str(info.value) == f"only an admin can retry or route {number} by hand"
    with pytest.raises(NotAllowed):
        service.route(number, "bob", "Please.", to_state="work")
    with pytest.raises(InvalidInput) as info:
        service.retry(number, "root", "  ")
    assert str(info.value) == "reason is empty (reason: This field is required.)"
    with pytest.raises(InvalidInput) as info:
        service.route(number, "root", "Somewhere.", to_state="nowhere")
    assert info.value.fields == {"target": ["nowhere is not a state of this workflow."]}
    with pytest.raises(InvalidInput) as info:
        service.route(number, "root", "Somehow.", outcome="won")
    assert info.value.fields == {"target": ["Choose one of: fulfilled, rejected, cancelled."]}
    with pytest.raises(InvalidInput):
        service.route(number, "root", "Both.", to_state="work", outcome="fulfilled")
    with pytest.raises(Conflict) as info:
        service.retry(number, "root", "Stale.", seen_version=1)
    assert str(info.value).startswith(f"{number} changed since you loaded it")
    healthy, _ = review(service, sessions, "decision")
    with pytest.raises(Conflict) as info:
        service.retry(healthy, "root", "Nothing wrong.")
    assert str(info.value) == f"{healthy} does not need attention (it is review)"


def test_cancelling_a_flagged_request_ends_it_and_clears_the_flag(service, sessions, clock):
    number = approve_review(service, sessions, clock, "decision")
    service.cancel(number, "alice", "Never mind.")
    req = load(sessions, number)
    assert (req.status, req.outcome, req.attention_error) == ("closed", "cancelled", None)


def test_a_timer_whose_firing_fails_flags_its_request_once_and_the_other_timers_still_fire(
        service, sessions, catalogs, clock, monkeypatch):
    first = approve_review(service, sessions, clock, "wait")
    second = approve_review(service, sessions, clock, "wait")
    catalogs.current = catalogs.fixed
    real = timers.HANDLERS["wait"]

    def wait(step, req, timer):
        if req.number == first:
            raise RuntimeError("the clock fell off the wall")
        real(step, req, timer)

    monkeypatch.setitem(timers.HANDLERS, "wait", wait)
    clock.advance(hours=2)
    assert service.run_due() == 1
    assert service.run_due() == 0  # the failed timer is not tried again on its own
    assert load(sessions, second).state == "work"
    req = load(sessions, first)
    with sessions() as s:
        timer = s.scalar(select(Timer).where(Timer.request_id == req.id, Timer.kind == "wait"))
    assert (req.state, timer.status) == ("pause", "failed")
    assert req.attention_step == f"timer:{timer.id}"
    assert req.attention_error == "pause: timer wait: RuntimeError: the clock fell off the wall"

    monkeypatch.undo()
    service.retry(first, "root", "The clock is back.")
    req = load(sessions, first)
    assert (req.state, req.attention_error) == ("work", None)
    with sessions() as s:
        assert s.get(Timer, timer.id).status == "fired"


def test_needing_attention_lists_open_flagged_requests_oldest_first(service, sessions, clock):
    from engine.attention import needing_attention

    older = approve_review(service, sessions, clock, "decision")
    clock.advance(minutes=1)
    newer = approve_review(service, sessions, clock, "set")
    review(service, sessions, "decision")
    cancelled = approve_review(service, sessions, clock, "notify")
    service.cancel(cancelled, "alice")
    with sessions() as s:
        assert [r.number for r in needing_attention(s)] == [older, newer]



def test_a_simulation_stops_where_a_step_fails_and_says_why(runner):
    from web.cli import main

    result = runner.invoke(main, ["simulate", "fragile", "--as", "alice", "--catalog",
                                  str(DATA), "--set", "step=set"])
    assert result.exit_code == 0, result.output
    assert (f"       needs attention: set_note: action 1 (set): {SHARE}: division by zero"
            in result.output.splitlines())
