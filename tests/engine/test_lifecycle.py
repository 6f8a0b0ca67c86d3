"""The incident lifecycle through the request service: resolve, confirm, reopen, auto-close, merge."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from catalog.models import Duration
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.models import Comment, Notification, RecordLink, Request, Task, Timer
from engine.records import watchers_of
from engine.service import RequestService
from tests.stored import events, reload

NOTES = "Restarted the mail relay."


def order(service, answers, item="report-incident", actor="alice", **kw) -> Request:
    return service.submit(item, actor, answers[item], **kw)


def tasks(sessions, number) -> list[Task]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(Task).where(Task.request_id == req.id).order_by(Task.id)))


def pending_sla_timers(sessions, number) -> list[str]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return sorted(f"{t.kind}:{t.ref}" for t in s.scalars(select(Timer).where(
            Timer.request_id == req.id, Timer.status == "pending", Timer.kind.like("sla%"))))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def resolved(service, answers, clock) -> str:
    """Alice's mail incident, resolved by Frank an hour after she reported it (Mon 10:30)."""
    req = order(service, answers)
    clock.advance(hours=1)
    service.resolve(req.number, "frank", "fixed", NOTES)
    return req.number


# ---------------------------------------------------------------- resolve


def test_resolving_stores_the_code_and_notes_and_waits_for_the_caller(service, sessions, resolved):
    req = reload(sessions, resolved)
    assert (req.state, req.status, req.resolved_at, req.resolution_code, req.resolution_notes) == (
        "confirm_window", "open", utc(2026, 11, 23, 9, 30), "fixed", NOTES)
    [task] = tasks(sessions, resolved)
    assert (task.status, task.outcome, task.answers) == ("done", "resolved", {"resolution_notes": NOTES})
    [event] = events(sessions, resolved, "resolved")
    assert (event.actor_id, event.detail["code"], event.detail["state"]) == ("frank", "fixed", "triage")


def test_the_sla_clocks_stop_while_the_caller_checks_the_fix(service, sessions, resolved):
    assert reload(sessions, resolved).sla_paused_at == utc(2026, 11, 23, 9, 30)
    assert pending_sla_timers(sessions, resolved) == []


def test_an_unknown_resolution_code_is_refused_and_nothing_changes(service, answers, sessions):
    req = order(service, answers)
    with pytest.raises(InvalidInput) as err:
        service.resolve(req.number, "frank", "magic", NOTES)
    assert err.value.fields == {"resolution_code": [
        "Choose one of: fixed, workaround, no-fault-found, duplicate, user-error."]}
    after = reload(sessions, req.number)
    assert (after.state, after.resolved_at, tasks(sessions, req.number)[0].status) == ("triage", None, "open")


def test_a_resolution_code_is_required(service, answers):
    req = order(service, answers)
    with pytest.raises(InvalidInput) as err:
        service.resolve(req.number, "frank", "", NOTES)
    assert err.value.fields == {"resolution_code": ["This field is required."]}


def test_the_resolving_tasks_form_checks_the_notes(service, answers, sessions):
    req = order(service, answers)
    with pytest.raises(InvalidInput) as err:
        service.resolve(req.number, "frank", "fixed", "done")
    assert list(err.value.fields) == ["resolution_notes"]
    assert reload(sessions, req.number).resolved_at is None


def test_only_agents_resolve(service, answers):
    req = order(service, answers)
    with pytest.raises(NotAllowed, match="^only agents of REQ-000001 can resolve it$"):
        service.resolve(req.number, "alice", "fixed", NOTES)


def test_a_resolved_record_is_not_resolved_twice(service, resolved):
    with pytest.raises(Conflict, match="^REQ-000001 is already resolved$"):
        service.resolve(resolved, "frank", "fixed", NOTES)


def test_resolving_through_the_task_form_records_the_resolution_too(service, answers, sessions):
    req = order(service, answers)
    [task] = tasks(sessions, req.number)
    service.complete_task(task.id, "frank", "resolved", {"resolution_notes": NOTES})
    after = reload(sessions, req.number)
    assert (after.state, after.resolution_code, after.resolution_notes) == ("confirm_window", None, NOTES)
    assert after.resolved_at is not None and after.sla_paused_at is not None
    service.reopen(req.number, "alice", "Mail is down again.")
    assert reload(sessions, req.number).state == "triage"


# ---------------------------------------------------------------- confirm


def test_the_caller_confirms_and_the_record_closes_now_keeping_its_resolution(service, sessions, resolved):
    service.confirm_resolution(resolved, "alice")
    req = reload(sessions, resolved)
    assert (req.status, req.outcome, req.resolved_at, req.resolution_code) == (
        "closed", "resolved", utc(2026, 11, 23, 9, 30), "fixed")
    assert len(events(sessions, resolved, "resolution_confirmed")) == 1


def test_only_the_caller_confirms(service, resolved):
    with pytest.raises(NotAllowed, match="^only the caller of REQ-000001 can confirm its resolution$"):
        service.confirm_resolution(resolved, "frank")


def test_an_unresolved_record_cannot_be_confirmed(service, answers):
    req = order(service, answers)
    with pytest.raises(Conflict, match=r"^REQ-000001 is not waiting for a confirmation \(it is triage\)$"):
        service.confirm_resolution(req.number, "alice")


# ---------------------------------------------------------------- reopen


def test_the_caller_reopens_within_the_window_and_it_goes_back_to_triage(service, sessions, clock, resolved):
    clock.advance(days=1)  # Tue 10:30
    service.reopen(resolved, "alice", "Mail is down again.")
    req = reload(sessions, resolved)
    assert (req.state, req.status, req.reopen_count, req.resolved_at, req.resolution_code) == (
        "triage", "open", 1, None, None)
    assert [(t.status, t.outcome) for t in tasks(sessions, resolved)] == [
        ("done", "resolved"), ("open", None)]
    [event] = events(sessions, resolved, "reopened")
    assert (event.from_state, event.to_state, event.detail["reason"], event.detail["count"]) == (
        "confirm_window", "triage", "Mail is down again.", 1)
    with sessions() as s:
        assert s.scalar(select(Comment.body).where(Comment.request_id == req.id)) == "Mail is down again."


def test_the_sla_resumes_after_a_reopen_with_the_paused_time_added(service, sessions, clock, resolved):
    before = reload(sessions, resolved).resolution_due
    assert before == utc(2026, 11, 23, 12, 30)  # p1: 4 business hours from Mon 09:30 local
    clock.advance(days=1)  # a whole business day later
    service.reopen(resolved, "alice", "Mail is down again.")
    req = reload(sessions, resolved)
    assert (req.sla_paused_at, req.resolution_due) == (None, utc(2026, 11, 24, 12, 30))
    assert "sla_breach:resolution" in pending_sla_timers(sessions, resolved)


def test_a_reopened_record_can_be_resolved_again(service, sessions, clock, resolved):
    service.reopen(resolved, "alice", "Mail is down again.")
    service.resolve(resolved, "frank", "workaround", "Routed mail through the backup relay.")
    req = reload(sessions, resolved)
    assert (req.state, req.resolution_code, req.reopen_count) == ("confirm_window", "workaround", 1)


def test_a_record_closed_after_its_window_cannot_be_reopened(service, sessions, clock, resolved):
    clock.now = utc(2026, 11, 26, 12, 0)  # Thursday: three business days later
    service.run_due()
    req = reload(sessions, resolved)
    assert (req.status, req.outcome, req.resolved_at, req.resolution_code, req.resolution_notes) == (
        "closed", "resolved", utc(2026, 11, 23, 9, 30), "fixed", NOTES)
    with pytest.raises(Conflict, match="^REQ-000001 was closed on 2026-11-26 13:00; "
                                       "open a new incident and mention it$"):
        service.reopen(resolved, "alice", "Mail is down again.")


def test_a_confirmed_record_cannot_be_reopened(service, resolved):
    service.confirm_resolution(resolved, "alice")
    with pytest.raises(Conflict, match="^REQ-000001 was closed on 2026-11-23 10:30; "
                                       "open a new incident and mention it$"):
        service.reopen(resolved, "alice", "Mail is down again.")


def test_a_record_past_a_shorter_reopen_window_cannot_be_reopened(sessions, acme, clock, service, resolved):
    short = replace(acme, settings=replace(acme.settings, reopen_window=Duration(1, "hour", True)))
    strict = RequestService(sessions, lambda: short, clock)
    clock.advance(hours=2)
    with pytest.raises(Conflict, match="^REQ-000001 was resolved on 2026-11-23 10:30 and could be "
                                       "reopened until 2026-11-23 11:30; open a new incident and "
                                       "mention it$"):
        strict.reopen(resolved, "alice", "Mail is down again.")
    assert reload(sessions, resolved).state == "confirm_window"


def test_a_reopen_tells_the_desk(service, sessions, resolved):
    service.reopen(resolved, "alice", "Mail is down again.")
    with sessions() as s:
        rows = sorted((n.person_id, n.kind, n.text) for n in s.scalars(
            select(Notification).where(Notification.kind != "major_incident")))
    assert rows == [(p, "caller_reply", "Alice Jansen reopened it: Mail is down again.")
                    for p in ("frank", "grace")]


def test_a_reopen_needs_a_reason(service, resolved):
    with pytest.raises(InvalidInput) as err:
        service.reopen(resolved, "alice", "  ")
    assert err.value.fields == {"reason": ["This field is required."]}


def test_an_unresolved_record_cannot_be_reopened(service, answers):
    req = order(service, answers)
    with pytest.raises(Conflict, match="^REQ-000001 is not resolved; there is nothing to reopen$"):
        service.reopen(req.number, "alice", "Still broken.")


# ---------------------------------------------------------------- merge


@pytest.fixture
def pair(service, answers, clock) -> tuple[str, str]:
    """Alice's mail incident (the survivor) and Bob's report of the same outage (the duplicate)."""
    survivor = order(service, answers).number
    clock.advance(minutes=5)
    dup = order(service, answers, actor="bob").number
    service.comment(dup, "bob", "Mail has been down since nine.")
    service.watch(dup, "frank", "carol")
    return dup, survivor


def test_merging_closes_the_duplicate_and_moves_its_comments_and_people(service, sessions, pair):
    dup, survivor = pair
    service.merge(dup, survivor, "frank")
    d, s_ = reload(sessions, dup), reload(sessions, survivor)
    assert (d.status, d.outcome, d.state, d.resolution_code, d.resolution_notes) == (
        "closed", "duplicate", "closed_duplicate", "duplicate", "Duplicate of REQ-000001.")
    assert s_.status == "open"
    with sessions() as s:
        link = s.scalar(select(RecordLink).where(RecordLink.source_id == d.id))
        assert (link.kind, link.target_id) == ("duplicate_of", s_.id)
        bodies = list(s.scalars(select(Comment.body).where(Comment.request_id == s_.id)))
        assert bodies == ["(From REQ-000002, 2026-11-23 09:35)\n\nMail has been down since nine."]
        assert watchers_of(s, s_) == ["bob", "carol"]
        assert watchers_of(s, d) == []
    [event] = events(sessions, survivor, "merged_in")
    assert event.detail == {"other": dup, "comments": 1, "watchers": ["carol", "bob"]}


def test_a_record_cannot_be_merged_into_itself(service, pair):
    dup, _ = pair
    with pytest.raises(InvalidInput) as err:
        service.merge(dup, dup, "frank")
    assert err.value.fields == {"survivor": ["A record cannot be merged into itself."]}


def test_a_record_cannot_be_merged_into_a_closed_one(service, pair):
    dup, survivor = pair
    service.cancel(survivor, "alice")
    with pytest.raises(InvalidInput) as err:
        service.merge(dup, survivor, "frank")
    assert err.value.fields == {"survivor": ["REQ-000001 is closed; merge into an open record."]}


def test_a_record_cannot_be_merged_into_its_own_duplicate(service, pair):
    dup, survivor = pair
    service.link(survivor, "frank", dup, "duplicate_of")
    with pytest.raises(InvalidInput) as err:
        service.merge(dup, survivor, "frank")
    assert err.value.fields == {"survivor": [
        "REQ-000001 is a duplicate of REQ-000002; merge REQ-000001 into REQ-000002 instead."]}


def test_records_of_different_types_are_not_merged(service, answers, pair):
    dup, _ = pair
    other = order(service, answers, "vpn-access", actor="frank").number
    with pytest.raises(InvalidInput) as err:
        service.merge(dup, other, "frank")
    assert err.value.fields == {"survivor": ["REQ-000003 is a request; merge into another incident."]}


def test_an_unknown_survivor_is_refused(service, pair):
    dup, _ = pair
    with pytest.raises(InvalidInput) as err:
        service.merge(dup, "REQ-999999", "frank")
    assert err.value.fields == {"survivor": ["There is no record REQ-999999."]}


def test_only_agents_merge(service, pair):
    dup, survivor = pair
    with pytest.raises(NotAllowed, match="^only agents of REQ-000002 can merge it$"):
        service.merge(dup, survivor, "bob")


def test_a_refused_merge_changes_nothing(service, sessions, pair):
    dup, _ = pair
    with pytest.raises(InvalidInput):
        service.merge(dup, dup, "frank")
    assert reload(sessions, dup).status == "open"
