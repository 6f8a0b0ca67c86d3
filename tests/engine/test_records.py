"""The record model through the request service: fields, priority and SLA, links, watchers, channels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.models import OutboxMessage, RecordLink, Request, Task, Timer
from engine.records import links_of, watchers_of
from engine.unit import context
from tests.stored import events, reload


def order(service, answers, item="report-incident", actor="alice", **kw) -> Request:
    return service.submit(item, actor, answers[item], **kw)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------- submit


def test_an_incident_is_submitted_with_its_record_fields_filled_in(service, answers, sessions):
    req = reload(sessions, order(service, answers).number)
    assert (req.record_type, req.title, req.impact, req.urgency, req.category,
            req.assignment_group_id, req.assignee_id, req.channel) == (
        "incident", "Mail is down", "high", "high", "email", "service-desk", None, "portal")


def test_an_item_without_a_short_description_is_titled_by_its_name(service, answers, sessions):
    req = reload(sessions, order(service, answers, "vpn-access").number)
    assert (req.record_type, req.title, req.impact, req.urgency) == ("request", "VPN access", None, None)


def test_a_change_item_opens_a_change_record(service, answers, sessions):
    req = order(service, answers, "normal-change", actor="heidi")
    assert reload(sessions, req.number).record_type == "change"


def test_an_agent_logs_a_record_for_a_caller_by_phone(service, answers, sessions):
    req = order(service, answers, actor="frank", requested_for="alice", channel="phone")
    req = reload(sessions, req.number)
    assert (req.requester_id, req.requested_for_id, req.channel) == ("frank", "alice", "phone")
    [submitted] = events(sessions, req.number, "submitted")
    assert submitted.detail["channel"] == "phone"


def test_only_agents_log_a_record_from_another_channel(service, answers):
    with pytest.raises(NotAllowed, match="^only agents can log a record from the phone channel$"):
        order(service, answers, actor="bob", channel="phone")


def test_an_unknown_channel_is_refused_like_a_bad_choice(service, answers):
    with pytest.raises(InvalidInput) as err:
        order(service, answers, actor="frank", channel="pigeon")
    assert err.value.fields == {"channel": ["pigeon is not one of the choices."]}


# ---------------------------------------------------------------- editing


def test_an_agent_edits_the_record_and_each_change_is_audited_old_to_new(service, answers, sessions):
    req = order(service, answers)
    service.edit_record(req.number, "frank", {"title": "Mail down on floor 3", "category": "Email",
                                              "assignee": "grace"}, seen_version=req.lock_version)
    after = reload(sessions, req.number)
    assert (after.title, after.category, after.assignee_id) == ("Mail down on floor 3", "Email", "grace")
    [row] = events(sessions, req.number, "record_changed")
    assert (row.actor_id, row.detail["changes"]) == ("frank", {
        "title": ["Mail is down", "Mail down on floor 3"], "category": ["email", "Email"],
        "assignee": [None, "grace"]})


def test_an_edit_that_changes_nothing_writes_no_audit_row(service, answers, sessions):
    req = order(service, answers)
    service.edit_record(req.number, "frank", {"title": "Mail is down"})
    assert events(sessions, req.number, "record_changed") == []


def test_someone_who_is_not_an_agent_cannot_edit_the_record(service, answers):
    req = order(service, answers)
    with pytest.raises(NotAllowed, match=f"^only agents of {req.number} can edit its record$"):
        service.edit_record(req.number, "alice", {"title": "Mine now"})


def test_someone_who_cannot_see_the_record_gets_not_found(service, answers):
    req = order(service, answers)
    with pytest.raises(NotFound, match=f"^no request {req.number}$"):
        service.edit_record(req.number, "bob", {"title": "x"})


def test_bad_values_are_refused_per_field_like_the_order_form(service, answers, sessions):
    req = order(service, answers)
    with pytest.raises(InvalidInput) as err:
        service.edit_record(req.number, "frank", {
            "title": " ", "impact": "huge", "urgency": "now", "category": "x" * 121,
            "assignment_group": "nobody", "colour": "red"})
    assert err.value.fields == {
        "title": ["This field is required."], "impact": ["huge is not one of the choices."],
        "urgency": ["now is not one of the choices."],
        "category": ["Must be at most 120 characters."],
        "assignment_group": ["nobody is not a known group."], "_unknown": ["Unknown field colour."]}
    assert reload(sessions, req.number).title == "Mail is down"  # nothing written


def test_an_assignee_must_be_active_and_in_the_assignment_group(service, answers):
    req = order(service, answers)
    with pytest.raises(InvalidInput) as err:
        service.edit_record(req.number, "frank", {"assignee": "heidi"})
    assert err.value.fields == {"assignee": ["heidi is not a member of the assignment group."]}
    with pytest.raises(InvalidInput) as err:
        service.edit_record(req.number, "frank", {"assignee": "zed"})
    assert err.value.fields == {"assignee": ["zed is not an active person."]}


def test_an_admin_may_assign_anyone_active(service, answers, sessions):
    req = order(service, answers)
    service.edit_record(req.number, "erin", {"assignee": "heidi"})
    assert reload(sessions, req.number).assignee_id == "heidi"


def test_a_new_group_drops_an_assignee_who_is_not_in_it(service, answers, sessions):
    req = order(service, answers)
    service.edit_record(req.number, "frank", {"assignee": "grace"})
    service.edit_record(req.number, "frank", {"assignment_group": "it-ops"})
    after = reload(sessions, req.number)
    assert (after.assignment_group_id, after.assignee_id) == ("it-ops", None)
    changes = events(sessions, req.number, "record_changed")[-1].detail["changes"]
    assert changes == {"assignment_group": ["service-desk", "it-ops"], "assignee": ["grace", None]}


def test_members_of_the_assignment_group_and_the_assignee_become_agents(service, answers, sessions):
    req = order(service, answers)
    service.edit_record(req.number, "frank", {"assignment_group": "security"})
    service.edit_record(req.number, "ivan", {"assignee": "judy"})  # ivan is in security
    service.edit_record(req.number, "judy", {"category": "Security"})
    assert reload(sessions, req.number).category == "Security"


def test_a_stale_edit_is_refused(service, answers):
    req = order(service, answers)
    service.edit_record(req.number, "frank", {"category": "Email"})
    with pytest.raises(Conflict, match="changed since you loaded it"):
        service.edit_record(req.number, "grace", {"category": "Network"}, seen_version=req.lock_version)


def test_a_closed_record_cannot_be_edited(service, answers):
    req = order(service, answers)
    service.cancel(req.number, "alice", "fixed itself")
    with pytest.raises(Conflict, match=f"^{req.number} is already cancelled; its record is closed$"):
        service.edit_record(req.number, "erin", {"category": "Email"})


# ---------------------------------------------------------------- priority and SLA


def test_a_new_impact_reranks_the_priority_and_moves_the_sla_keeping_elapsed_time(
        service, answers, sessions, clock):
    req = order(service, answers)  # Monday 09:30 Amsterdam, p1: resolve in 4 business hours
    assert reload(sessions, req.number).resolution_due == utc(2026, 11, 23, 12, 30)
    clock.advance(hours=1)
    service.edit_record(req.number, "frank", {"impact": "medium"})  # p2: 1 business day
    after = reload(sessions, req.number)
    assert after.priority == "p2"
    # from the original start, not from now: Tuesday 09:30 Amsterdam
    assert after.resolution_due == utc(2026, 11, 24, 8, 30)
    assert after.response_due == utc(2026, 11, 23, 9, 30)  # 1 business hour after the start
    changes = events(sessions, req.number, "record_changed")[0].detail["changes"]
    assert changes["impact"] == ["high", "medium"] and changes["priority"] == ["p1", "p2"]
    with sessions() as s:
        due = sorted((t.kind, t.ref, t.due_at) for t in s.scalars(
            select(Timer).where(Timer.request_id == after.id, Timer.status == "pending",
                                Timer.kind.like("sla_%"))))
    assert ("sla_breach", "resolution", utc(2026, 11, 24, 8, 30)) in due
    assert ("sla_breach", "resolution", utc(2026, 11, 23, 12, 30)) not in due


def test_time_spent_waiting_on_the_requester_still_does_not_count(service, answers, sessions, clock):
    req = order(service, answers)
    clock.advance(hours=1)
    service.ask_requester(req.number, "frank", "Which floor exactly?")
    clock.advance(hours=1)
    service.answer(req.number, "alice", "Third")
    assert reload(sessions, req.number).resolution_due == utc(2026, 11, 23, 13, 30)
    service.edit_record(req.number, "frank", {"urgency": "medium"})  # high x medium: p2
    assert reload(sessions, req.number).resolution_due == utc(2026, 11, 24, 9, 30)


def test_a_new_urgency_that_keeps_the_priority_leaves_the_sla_alone(service, answers, sessions, clock):
    answers["report-incident"].update(impact="low", urgency="medium")  # p4
    req = order(service, answers)
    before = reload(sessions, req.number)
    clock.advance(hours=1)
    service.edit_record(req.number, "frank", {"urgency": "low"})  # low x low: still p4
    after = reload(sessions, req.number)
    assert (after.priority, after.resolution_due) == ("p4", before.resolution_due)
    assert "priority" not in events(sessions, req.number, "record_changed")[0].detail["changes"]


# ---------------------------------------------------------------- links


def test_an_agent_links_two_records_and_both_timelines_say_so(service, answers, sessions):
    major, child = order(service, answers), order(service, answers)
    service.link(child.number, "frank", major.number.lower(), "child_of")
    with sessions() as s:
        kid = s.get(Request, child.id)
        parent = s.get(Request, major.id)
        assert [(w, o.number) for w, _, o in links_of(s, kid)] == [("Child of", major.number)]
        assert [(w, o.number) for w, _, o in links_of(s, parent)] == [("Parent of", child.number)]
    assert events(sessions, child.number, "linked")[0].detail == {
        "kind": "child_of", "other": major.number, "side": "source"}
    assert events(sessions, major.number, "linked")[0].detail == {
        "kind": "child_of", "other": child.number, "side": "target"}


def test_a_record_cannot_be_linked_to_itself(service, answers):
    req = order(service, answers)
    with pytest.raises(InvalidInput) as err:
        service.link(req.number, "frank", req.number, "related_to")
    assert err.value.fields == {"other": ["A record cannot be linked to itself."]}


def test_a_link_that_exists_either_way_is_not_added_twice(service, answers):
    a, b = order(service, answers), order(service, answers)
    service.link(a.number, "frank", b.number, "related_to")
    with pytest.raises(Conflict, match=f"^{b.number} is already linked to {a.number} as related to$"):
        service.link(b.number, "frank", a.number, "related_to")


def test_a_child_of_cycle_is_refused(service, answers):
    a, b, c = order(service, answers), order(service, answers), order(service, answers)
    service.link(a.number, "frank", b.number, "child_of")
    service.link(b.number, "frank", c.number, "child_of")
    with pytest.raises(Conflict, match=(f"^{c.number} cannot be child of {a.number}: {a.number} is "
                                        f"already child of {c.number}, directly or through others$")):
        service.link(c.number, "frank", a.number, "child_of")


def test_a_record_cannot_be_merged_into_its_own_duplicate(service, answers):
    a, b = order(service, answers), order(service, answers)
    service.link(a.number, "frank", b.number, "duplicate_of")
    with pytest.raises(Conflict, match=f"^{b.number} cannot be duplicate of {a.number}"):
        service.link(b.number, "frank", a.number, "duplicate_of")


def test_a_child_has_one_parent(service, answers):
    a, b, c = order(service, answers), order(service, answers), order(service, answers)
    service.link(a.number, "frank", b.number, "child_of")
    with pytest.raises(Conflict, match=(f"^{a.number} is already child of {b.number}; "
                                        "remove that link first$")):
        service.link(a.number, "frank", c.number, "child_of")


def test_bad_link_input_is_refused_per_field(service, answers):
    req = order(service, answers)
    with pytest.raises(InvalidInput) as err:
        service.link(req.number, "frank", "REQ-999999", "related_to")
    assert err.value.fields == {"other": ["There is no record REQ-999999."]}
    with pytest.raises(InvalidInput) as err:
        service.link(req.number, "frank", req.number, "blocks")
    assert err.value.fields == {"kind": ["blocks is not one of the choices."]}


def test_only_agents_link_records(service, answers):
    a, b = order(service, answers), order(service, answers)
    with pytest.raises(NotAllowed, match=f"^only agents of {a.number} can link it$"):
        service.link(a.number, "alice", b.number, "related_to")


def test_an_incident_is_linked_to_the_change_that_caused_it_and_unlinked_from_either_side(
        service, answers, sessions):
    incident = order(service, answers)
    change = order(service, answers, "normal-change", actor="heidi")
    service.link(incident.number, "erin", change.number, "caused_by")
    service.unlink(change.number, "erin", incident.number, "caused_by")
    with sessions() as s:
        assert s.scalars(select(RecordLink)).all() == []
    assert events(sessions, change.number, "unlinked")[0].detail == {
        "kind": "caused_by", "other": incident.number, "side": "target"}
    with pytest.raises(NotFound, match=f"^{incident.number} has no caused by link with {change.number}$"):
        service.unlink(incident.number, "erin", change.number, "caused_by")


# ---------------------------------------------------------------- watchers


def test_a_watcher_added_by_an_agent_sees_the_record_and_gets_public_comments(
        service, answers, sessions):
    req = order(service, answers)
    service.watch(req.number, "frank", "bob")
    with sessions() as s:
        service.request(s, req.number, "bob", service.clock())  # no NotFound
    service.comment(req.number, "frank", "We are on it.")
    service.comment(req.number, "frank", "Mail relay restarted.", internal=True)
    with sessions() as s:
        sent = [(m.event, m.payload["to"]) for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.event == "comment_added").order_by(OutboxMessage.id))]
    assert sent == [("comment_added", ["alice.jansen@acme.example"]),
                    ("comment_added", ["bob.bakker@acme.example"])]
    assert events(sessions, req.number, "watcher_added")[0].detail == {"person": "bob"}


def test_the_author_of_a_comment_is_not_emailed_about_it(service, answers, sessions):
    req = order(service, answers)
    service.watch(req.number, "alice")
    service.comment(req.number, "alice", "Still down here.")
    with sessions() as s:
        assert s.scalars(select(OutboxMessage).where(OutboxMessage.event == "comment_added")).all() == []


def test_people_watch_and_stop_watching_themselves_only(service, answers, sessions):
    req = order(service, answers)
    service.watch(req.number, "alice")
    with pytest.raises(NotAllowed, match=f"^only agents of {req.number} can add or remove other watchers$"):
        service.watch(req.number, "alice", "carol")
    service.unwatch(req.number, "alice")
    with sessions() as s:
        assert watchers_of(s, s.get(Request, req.id)) == []


def test_an_inactive_or_unknown_watcher_is_refused(service, answers):
    req = order(service, answers)
    with pytest.raises(InvalidInput) as err:
        service.watch(req.number, "frank", "zed")
    assert err.value.fields == {"person": ["zed is not an active person."]}


# ---------------------------------------------------------------- expressions


def test_expressions_see_the_record_fields_under_request(service, answers, sessions, acme, clock):
    req = order(service, answers)
    service.edit_record(req.number, "frank", {"assignee": "grace"})
    seen = service.unit("frank", lambda unit: context(
        unit, unit.session.scalar(select(Request).where(Request.number == req.number)))["request"])
    assert {k: seen[k] for k in ("record_type", "title", "impact", "urgency", "category",
                                 "assignment_group", "assignee", "channel")} == {
        "record_type": "incident", "title": "Mail is down", "impact": "high", "urgency": "high",
        "category": "email", "assignment_group": "service-desk", "assignee": "grace",
        "channel": "portal"}


def test_an_escalated_task_takes_the_record_to_the_next_tier_group(service, answers, sessions):
    req = order(service, answers)
    service.edit_record(req.number, "frank", {"assignee": "frank"})
    with sessions() as s:
        task_id = s.scalar(select(Task.id).where(Task.request_id == req.id))
    service.claim_task(task_id, "frank")
    service.escalate_task(task_id, "frank", "Needs a server")
    after = reload(sessions, req.number)
    assert (after.assignment_group_id, after.assignee_id) == ("it-ops", None)
    assert events(sessions, req.number, "record_changed")[-1].detail["changes"] == {
        "assignment_group": ["service-desk", "it-ops"], "assignee": ["frank", None]}
