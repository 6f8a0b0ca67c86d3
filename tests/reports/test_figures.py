"""Every figure on a hand-computed fixture: three incidents through the request service with a
clock moved by hand (Monday 23 November 2026, 08:30 UTC = t0), and the filters' errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from engine import reports
from engine.errors import InvalidInput
from engine.models import Approval, Request
from engine.reports import Filters

ALL = Filters()


@pytest.fixture
def desk(service, answers, clock):
    """r1 (alice): a comment at t0+1h, resolved at t0+2h. r2 (bob): it-ops at t0+1h, back to
    the service desk at t0+2h (ping-pong, 2 reassignments), resolved at t0+3h, reopened.
    r3 (carol): untouched. All p1, owned by the service desk."""
    r1 = service.submit("report-incident", "alice", answers["report-incident"])
    r2 = service.submit("report-incident", "bob", answers["report-incident"])
    r3 = service.submit("report-incident", "carol", answers["report-incident"])
    clock.advance(hours=1)
    service.edit_record(r2.number, "erin", {"assignment_group": "it-ops"})
    service.comment(r1.number, "grace", "Looking")
    clock.advance(hours=1)
    service.resolve(r1.number, "grace", "fixed", "Done and dusted here.")
    service.edit_record(r2.number, "erin", {"assignment_group": "service-desk"})
    clock.advance(hours=1)
    service.resolve(r2.number, "grace", "fixed", "Done and dusted here.")
    service.reopen(r2.number, "bob", "Still broken")
    return r1, r2, r3


def rows(sessions, name, clock, f=ALL):
    with sessions() as s:
        return reports.figure(s, name, f, clock.now).rows


def test_volume_counts_opened_and_currently_resolved_per_iso_week(desk, sessions, clock):
    # r2 was resolved, then reopened: it is no longer resolved
    assert rows(sessions, "volume", clock) == [["2026-W48", 3, 1]]


def test_backlog_counts_open_records_by_age_and_group(desk, sessions, clock):
    assert rows(sessions, "backlog", clock) == [["< 1 day", 2], ["1-7 days", 0], ["7-30 days", 0],
                                                ["30-90 days", 0], ["≥ 90 days", 0]]
    assert rows(sessions, "backlog_by_group", clock) == [["service-desk", 2]]
    clock.advance(days=8)
    assert rows(sessions, "backlog", clock)[:3] == [["< 1 day", 0], ["1-7 days", 0],
                                                    ["7-30 days", 2]]


def test_sla_compliance_counts_resolved_native_records_with_a_target(desk, sessions, clock):
    assert rows(sessions, "sla_by_priority", clock) == [["p1", 1, 1, 100.0]]
    assert rows(sessions, "sla_by_group", clock) == [["service-desk", 1, 1, 100.0]]


def test_times_are_wall_clock_hours_median_and_p90(desk, sessions, clock):
    # responses: r1 at 1 h (comment), r2 at 3 h (resolved); resolve: r1 2 h
    assert rows(sessions, "times", clock) == [["p1", 2, 2.0, 2.8, 1, 2.0, 2.0]]


def test_reassignments_and_ping_pong(desk, sessions, clock):
    assert rows(sessions, "reassignments", clock) == [
        ["records", 3], ["reassignments", 2], ["mean per record", 0.67],
        ["records with ping-pong", 1]]


def test_reopen_rate_and_first_contact_resolution(desk, sessions, clock):
    assert rows(sessions, "reopen_rate", clock) == [["resolved", 2], ["reopened", 1],
                                                    ["percent", 50.0]]
    assert rows(sessions, "first_contact", clock) == [["resolved", 1], ["first contact", 1],
                                                      ["percent", 100.0]]


def test_no_escalation_approval_deflection_or_survey_gives_empty_figures(desk, sessions, clock):
    assert rows(sessions, "escalations", clock) == [["L1", "any upper", 0]]
    assert rows(sessions, "approvals_by_item", clock) == []
    assert rows(sessions, "deflections", clock) == []
    assert rows(sessions, "satisfaction", clock)[-1] == ["average", None]


def test_time_to_approve_by_item_and_approver(service, answers, sessions, clock):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    clock.advance(hours=5)
    with sessions() as s:
        approval = s.scalar(select(Approval).where(Approval.request_id == req.id))
        assert approval is not None
        approval_id, approver = approval.id, approval.approver_id
    service.approve(approval_id, approver, "")
    assert rows(sessions, "approvals_by_item", clock) == [["new-laptop", 1, 5.0]]
    assert rows(sessions, "approvals_by_approver", clock) == [[approver, 1, 5.0]]


def test_filters_narrow_every_figure(desk, sessions, clock):
    with sessions() as s:
        f = reports.parse_filters(s, {"from": "2026-11-24"})
        assert f.since == datetime(2026, 11, 24, tzinfo=UTC)
        assert reports.figure(s, "volume", f, clock.now).rows == []
        f = reports.parse_filters(s, {"from": "2026-11-23", "to": "2026-11-23",
                                      "kind": "incident", "group": "service-desk",
                                      "priority": "p1", "item": "report-incident"})
        assert reports.figure(s, "volume", f, clock.now).rows == [["2026-W48", 3, 1]]
        assert reports.figure(s, "volume", reports.parse_filters(s, {"kind": "change"}),
                              clock.now).rows == []


def test_filters_that_match_every_record_change_no_figure(desk, service, sessions, clock):
    """Unfiltered, the figures read narrow indexes; filtered, one pass over the facts: both
    ways must give the same numbers when the filters match every record."""
    r1, r2, _ = desk
    service.answer_survey(r1.number, "alice", 4)
    service.answer_survey(r2.number, "bob", 1)
    with sessions() as s:
        every = reports.parse_filters(s, {"from": "2026-11-23", "to": "2026-11-23",
                                          "kind": "incident", "group": "service-desk",
                                          "priority": "p1", "item": "report-incident"})
        for name in reports.FIGURES:
            if name != "deflections":  # counted over the date range itself
                assert reports.figure(s, name, every, clock.now).rows == \
                    reports.figure(s, name, ALL, clock.now).rows, name


@pytest.mark.parametrize(("raw", "field", "message"), [
    ({"from": "2026-13-01"}, "from", "'2026-13-01' is not a date (YYYY-MM-DD)."),
    ({"to": "yesterday"}, "to", "'yesterday' is not a date (YYYY-MM-DD)."),
    ({"from": "2026-11-02", "to": "2026-11-01"}, "to", "The end date is before the start date."),
    ({"kind": "ticket"}, "kind", "Unknown kind 'ticket'; one of request, incident, problem, change."),
    ({"group": "nobody"}, "group", "Unknown group 'nobody'."),
    ({"item": "no-such-item"}, "item", "Unknown item 'no-such-item'."),
    ({"priority": "p9"}, "priority", "Unknown priority 'p9'."),
])
def test_a_bad_filter_is_refused_naming_it(sessions, raw, field, message):
    with sessions() as s, pytest.raises(InvalidInput) as err:
        reports.parse_filters(s, raw)
    assert err.value.message == "These report filters are wrong"
    assert err.value.fields == {field: [message]}


def test_records_streams_every_matching_record(desk, sessions):
    r1, r2, r3 = desk
    with sessions() as s:
        numbers = [row[0] for row in reports.records(s, Filters())]
    assert numbers == [r1.number, r2.number, r3.number]


def test_satisfaction_counts_answers_per_score_and_their_average(desk, service, sessions, clock):
    r1, r2, _ = desk  # both were resolved, so both callers were asked
    service.answer_survey(r1.number, "alice", 4)
    service.answer_survey(r2.number, "bob", 1, "Came back the next hour")
    assert rows(sessions, "satisfaction", clock) == [["1", 1], ["2", 0], ["3", 0], ["4", 1],
                                                     ["5", 0], ["average", 2.5]]
    with sessions() as s:
        changes = reports.parse_filters(s, {"kind": "change"})
    assert rows(sessions, "satisfaction", clock, changes) == [[str(k), 0] for k in range(1, 6)] + [
        ["average", None]]
    # by group, agent and item: the records' own now
    assert rows(sessions, "satisfaction_by_group", clock) == [["service-desk", 2, 2.5]]
    assert rows(sessions, "satisfaction_by_item", clock) == [["report-incident", 2, 2.5]]
    # resolved without anyone assigned: the agent is "(none)"
    assert rows(sessions, "satisfaction_by_agent", clock) == [["(none)", 2, 2.5]]
    with sessions() as s:
        s.get(Request, r1.id).assignee_id = "grace"
        s.commit()
    assert rows(sessions, "satisfaction_by_agent", clock) == [["(none)", 1, 1.0], ["grace", 1, 4.0]]
    assert rows(sessions, "satisfaction_by_agent", clock, changes) == []
