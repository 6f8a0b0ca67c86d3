"""Change records through the request service: the three kinds, the planned window and CIs,
the review an emergency change cannot skip, and the change calendar's conflicts and freezes."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert, select, text

from catalog.loader import load_catalog
from engine import cmdb
from engine.changes import calendar_query, change_of, warnings_of
from engine.directory import sync_directory
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.models import Approval, AuditEvent, Change, Person, Request, Task, WorkflowVersion
from engine.service import RequestService
from engine.unit import context
from tests.acme import ACME_ANSWERS
from tests.stored import reload

AMS_21 = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # 22:00 in Amsterdam


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def server(service, name: str) -> str:
    with service.sessions.begin() as s:
        ci = cmdb.create(s, service.catalog(), "oscar", "server",
                         cmdb.CIInput(name, {"hostname": name}, owner_group_id="it-ops"),
                         service.clock())
        return str(ci.id)


def data(service, number):
    with service.sessions() as s:
        return change_of(s, s.scalar(select(Request).where(Request.number == number)))


def standard(service, answers, ci=None, day="2026-12-01", start="22:00", end="23:00",
             actor="heidi"):
    given = {**answers["standard-change"], "planned_date": day, "start_time": start,
             "end_time": end, **({"affected_server": ci} if ci else {})}
    return service.submit("standard-change", actor, given)


def open_tasks(sessions, req):
    with sessions() as s:
        return list(s.scalars(select(Task).where(Task.request_id == req.id, Task.status == "open")))


def pending(sessions, req):
    with sessions() as s:
        return list(s.scalars(select(Approval).where(Approval.request_id == req.id,
                                                     Approval.decision == "pending")
                              .order_by(Approval.id)))


def finish_task(service, sessions, req, outcome, answers=None):
    [task] = open_tasks(sessions, req)
    worker = task.assignee_id or {"it-ops": "heidi", "change-board": "carol"}[task.queue]
    service.claim_task(task.id, worker)
    service.complete_task(task.id, worker, outcome=outcome, answers=answers or {})


# ---------------------------------------------------------------- the three kinds


def test_a_standard_change_goes_straight_to_implementation_with_its_window_and_ci(service, answers,
                                                                                    sessions):
    ci = server(service, "mail01")
    req = standard(service, answers, ci)
    assert reload(sessions, req.number).state == "implement"
    got = data(service, req.number)
    assert (got.change_type, got.risk, got.start, got.end, got.cis) == (
        "standard", "low", AMS_21, utc(2026, 12, 1, 22), ((int(ci), "mail01"),))


def test_a_day_without_times_is_planned_from_midnight_to_midnight(service, answers):
    req = standard(service, answers, start="", end="")
    got = data(service, req.number)
    assert (got.start, got.end) == (utc(2026, 11, 30, 23), utc(2026, 12, 1, 23))


def test_a_planned_end_before_the_start_is_refused_on_the_end_field(service, answers, sessions):
    with pytest.raises(InvalidInput) as exc:
        standard(service, answers, start="22:00", end="21:00")
    assert exc.value.fields == {"end_time": ["The planned end must be after the planned start."]}
    with sessions() as s:
        assert s.scalar(select(Request.id)) is None and s.scalar(select(Change.request_id)) is None


def test_a_normal_change_of_low_risk_needs_two_board_votes_and_not_the_cio(service, answers,
                                                                          sessions):
    req = service.submit("normal-change", "heidi", answers["normal-change"])
    assert data(service, req.number).risk == "low"
    first, second, *_ = pending(sessions, req)
    service.approve(first.id, first.approver_id, "fine")
    assert reload(sessions, req.number).state == "cab_approval"  # quorum 2
    service.approve(second.id, second.approver_id, "fine")
    assert reload(sessions, req.number).state == "implement"


@pytest.mark.parametrize(("variant", "risk"), [
    ({"customer_facing": True, "rollback_plan": "Restore the image."}, "high"),
    ({"customer_facing": True, "rollback_tested": True, "rollback_plan": "Restore it."}, "low"),
    ({"expected_downtime_minutes": 30}, "medium"),
    ({"users_affected": "all"}, "high"),
])
def test_the_risk_is_computed_from_the_assessment(service, answers, variant, risk):
    req = service.submit("normal-change", "heidi", {**answers["normal-change"], **variant})
    assert data(service, req.number).risk == risk


def test_a_computed_high_risk_adds_the_cio_after_the_board(service, answers, sessions):
    req = service.submit("normal-change", "heidi", {**answers["normal-change"],
                                                    "customer_facing": True,
                                                    "rollback_plan": "Restore the image."})
    for appr in pending(sessions, req)[:2]:
        service.approve(appr.id, appr.approver_id, "fine")
    assert reload(sessions, req.number).state == "cio_approval"
    [cio] = pending(sessions, req)
    assert cio.approver_id == "oscar"


def test_expressions_see_the_change_type_and_risk(service, answers):
    req = service.submit("normal-change", "heidi", answers["normal-change"])
    seen = service.unit("heidi", lambda unit: context(
        unit, unit.session.scalar(select(Request).where(Request.number == req.number))))
    assert (seen["request"]["change_type"], seen["request"]["risk"]) == ("normal", "low")


# ---------------------------------------------------------------- emergency changes


def emergency(service, answers):
    return service.submit("emergency-change", "heidi", answers["emergency-change"])


REFUSED = ("{} is an emergency change that has been implemented; it cannot be closed before its "
           "post-implementation review is done")


def test_an_emergency_change_is_approved_by_the_cio_alone_then_implemented(service, answers,
                                                                         sessions):
    req = emergency(service, answers)
    [appr] = pending(sessions, req)
    assert appr.approver_id == "oscar"
    service.approve(appr.id, "oscar", "go")
    assert reload(sessions, req.number).state == "implement"
    assert data(service, req.number).change_type == "emergency"


def test_an_implemented_emergency_change_cannot_be_cancelled_before_its_review(service, answers,
                                                                             sessions):
    req = emergency(service, answers)
    [appr] = pending(sessions, req)
    service.approve(appr.id, "oscar", "go")
    with pytest.raises(Conflict, match=f"^{REFUSED.format(req.number)}$"):
        service.cancel(req.number, "heidi", "never mind")
    finish_task(service, sessions, req, "implemented",
                {"implementation_notes": "Patched the gateway to the fixed release."})
    assert reload(sessions, req.number).state == "review"
    with pytest.raises(Conflict, match=f"^{REFUSED.format(req.number)}$"):
        service.cancel(req.number, "heidi", "never mind")
    finish_task(service, sessions, req, "successful")
    assert (reload(sessions, req.number).status, reload(sessions, req.number).outcome) == (
        "closed", "implemented")


def test_a_rolled_back_emergency_change_is_reviewed_too(service, answers, sessions):
    req = emergency(service, answers)
    [appr] = pending(sessions, req)
    service.approve(appr.id, "oscar", "go")
    finish_task(service, sessions, req, "rolled_back",
                {"implementation_notes": "The patch broke logins; restored the backup."})
    assert reload(sessions, req.number).state == "review_rollback"


def test_an_emergency_change_not_yet_implemented_may_be_cancelled(service, answers, sessions):
    req = emergency(service, answers)
    service.cancel(req.number, "heidi", "the vendor fixed it")
    assert reload(sessions, req.number).outcome == "cancelled"


# ---------------------------------------------------------------- validation


def copy_acme(acme_path, tmp_path):
    root = tmp_path / "acme"
    shutil.copytree(acme_path, root)
    return root


def errors_of(root):
    return [str(e) for e in load_catalog(root).errors]


def test_an_emergency_workflow_that_can_end_without_a_review_is_refused(acme_path, tmp_path):
    root = copy_acme(acme_path, tmp_path)
    wf = root / "workflows" / "emergency-change.yaml"
    wf.write_text(wf.read_text().replace("on: {implemented: review, rolled_back: review_rollback}",
                                         "on: {implemented: review, rolled_back: rolled_back}"))
    assert [e for e in errors_of(root) if "emergency change" in e] == [
        "workflows/emergency-change.yaml:19:3: states.implement: emergency change emergency-change: "
        "the path implement → rolled_back ends without a review after implementing (route every "
        "outcome of the implementation through a `review: true` task state)"]


def test_an_emergency_workflow_without_a_review_state_is_refused(acme_path, tmp_path):
    root = copy_acme(acme_path, tmp_path)
    wf = root / "workflows" / "emergency-change.yaml"
    wf.write_text(wf.read_text().replace("    review: true\n", ""))
    assert [e for e in errors_of(root) if "review" in e] == [
        "workflows/emergency-change.yaml:9:1: states: workflow emergency-change of emergency change "
        "emergency-change has no review state (mark the post-implementation review task `review: true`)"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("  affected: affected_server\n", "  affected: target\n",
     "16:13: change.affected: field target is a string field; affected configuration items need an "
     "asset field"),
    ("  planned_end: {date: planned_date, time: end_time}\n",
     "  planned_end: {date: planned_day, time: end_time}\n",
     "15:23: change.planned_end.date: unknown field planned_day (did you mean planned_date?)"),
    ("  planned_start: {date: planned_date, time: start_time}\n",
     "  planned_start: {date: planned_date, time: target}\n",
     ""),
    ("  risk: low\n", "  risk: \"'high' if form.colour else 'low'\"\n",
     "13:9: change.risk: risk names unknown field colour (known: affected_server, change_template, "
     "details, end_time, planned_date, start_time, target)"),
    ("  risk: low\n", "  risk: \"'high' if\"\n",
     "13:9: change.risk: expression \"'high' if\" does not parse: invalid syntax (expressions look "
     "like form.model == 'pro16')"),
    ("record_type: change\n", "record_type: request\n",
     "12:3: change: change: is only for items with record_type: change (set record_type: change "
     "or remove the change block)"),
])
def test_a_change_block_is_checked_against_the_form(acme_path, tmp_path, old, new, expected):
    root = copy_acme(acme_path, tmp_path)
    item = root / "items" / "standard-change.yaml"
    text = item.read_text()
    assert old in text
    item.write_text(text.replace(old, new))
    found = [e for e in errors_of(root) if e.startswith("items/standard-change.yaml")]
    if expected:
        assert found == [f"items/standard-change.yaml:{expected}"]
    else:
        assert found == []  # a string field is a fine time field


def test_a_freeze_that_ends_before_it_starts_is_refused(acme_path, tmp_path):
    root = copy_acme(acme_path, tmp_path)
    settings = root / "deskflow.yaml"
    settings.write_text(settings.read_text().replace('end: "2027-01-04"', 'end: "2026-12-01"'))
    [error] = [e for e in errors_of(root) if "change_freezes" in e]
    assert re.fullmatch(r"deskflow\.yaml:\d+:55: change_freezes\[0\]\.end: end 2026-12-01 is before "
                        r"start 2026-12-18 \(a freeze ends on or after the day it starts\)", error)


# ---------------------------------------------------------------- editing the change


def test_an_agent_moves_the_window_and_the_cis_audited_old_to_new(service, answers, sessions):
    a, b = server(service, "mail01"), server(service, "mail02")
    req = standard(service, answers, a)
    version = reload(sessions, req.number).lock_version
    service.edit_change(req.number, "erin", {"planned_start": "2026-12-02T20:00",
                                             "planned_end": "2026-12-02 21:30",
                                             "affected": [b]}, seen_version=version)
    got = data(service, req.number)
    assert (got.start, got.end, got.cis) == (utc(2026, 12, 2, 19), utc(2026, 12, 2, 20, 30),
                                             ((int(b), "mail02"),))
    with sessions() as s:
        [row] = s.scalars(select(AuditEvent).where(AuditEvent.event == "change_changed"))
    assert row.detail == {"changes": {"planned_start": ["2026-12-01 22:00", "2026-12-02 20:00"],
                                      "planned_end": ["2026-12-01 23:00", "2026-12-02 21:30"],
                                      "affected": [[int(a)], [int(b)]]}}
    with pytest.raises(Conflict, match="changed since you loaded it"):
        service.edit_change(req.number, "erin", {"planned_end": "2026-12-02T22:00"},
                            seen_version=version)


def test_editing_the_change_is_checked_per_field(service, answers):
    req = standard(service, answers)
    with pytest.raises(InvalidInput) as exc:
        service.edit_change(req.number, "erin", {"planned_start": "tomorrow", "affected": ["999"],
                                                 "colour": "red"})
    assert exc.value.fields == {
        "planned_start": ["tomorrow is not a date and time (YYYY-MM-DD HH:MM)."],
        "affected": ["There is no configuration item 999."], "_unknown": ["Unknown field colour."]}
    with pytest.raises(InvalidInput) as exc:
        service.edit_change(req.number, "erin", {"planned_end": "2026-12-01T21:00"})
    assert exc.value.fields == {"planned_end": ["The planned end must be after the planned start."]}


def test_only_agents_edit_the_change(service, answers):
    req = standard(service, answers)
    service.watch(req.number, "heidi", "carol")  # carol sees it, but works on nothing of it
    with pytest.raises(NotAllowed, match=f"^only agents of {req.number} can edit its change$"):
        service.edit_change(req.number, "carol", {"affected": []})


# ---------------------------------------------------------------- the calendar


def month(service, viewer="erin", **kw):
    with service.sessions() as s:
        return service.change_calendar(s, viewer, **kw)


def shown(view):
    return {c.number: (c.conflicts, c.freezes, c.awaiting_approval) for c in view.changes}


def test_overlapping_windows_on_the_same_ci_conflict_both_ways(service, answers):
    ci = server(service, "crm-db01")
    a = standard(service, answers, ci, start="20:00", end="22:00")
    b = standard(service, answers, ci, start="21:00", end="23:00")
    assert shown(month(service, month="2026-12")) == {
        a.number: ([b.number], [], False), b.number: ([a.number], [], False)}


def test_no_conflict_on_different_cis_or_apart_or_end_to_end(service, answers):
    one, two = server(service, "app01"), server(service, "app02")
    a = standard(service, answers, one, start="20:00", end="22:00")
    b = standard(service, answers, two, start="20:00", end="22:00")   # another CI
    c = standard(service, answers, one, start="22:00", end="23:00")   # starts as a ends
    d = standard(service, answers, one, day="2026-12-03")             # another day
    view = month(service, month="2026-12")
    assert {n: v[0] for n, v in shown(view).items()} == {
        a.number: [], b.number: [], c.number: [], d.number: []}


def test_a_change_inside_a_freeze_is_flagged_and_the_freeze_drawn(service, answers):
    req = standard(service, answers, day="2026-12-18")
    view = month(service, month="2026-12")
    assert shown(view)[req.number] == ([], ["Year-end freeze"], False)
    assert [(f.name, f.start, f.end) for f in view.freezes] == [
        ("Year-end freeze", date(2026, 12, 18), date(2027, 1, 4))]
    before = standard(service, answers, day="2026-12-17", start="22:00", end="23:00")
    assert shown(month(service, month="2026-12"))[before.number][1] == []


def test_pending_changes_are_marked_and_rejected_ones_left_out(service, answers, sessions):
    ci = server(service, "crm01")
    waiting = service.submit("normal-change", "heidi", {**answers["normal-change"],
                                                        "affected_server": ci})
    rejected = service.submit("normal-change", "heidi", answers["normal-change"])
    while reload(sessions, rejected.number).status == "open":
        appr = pending(sessions, rejected)[0]
        service.reject(appr.id, appr.approver_id, "not now")
    view = shown(month(service, month="2026-12"))
    assert view == {waiting.number: ([], [], True)}


def test_the_week_view_shows_the_iso_week(service, answers):
    a = standard(service, answers, day="2026-11-30")   # Monday of week 49
    standard(service, answers, day="2026-12-07")       # week 50
    view = month(service, week="2026-W49")
    assert (view.period.first, view.period.last, view.period.previous, view.period.next) == (
        date(2026, 11, 30), date(2026, 12, 6), "2026-W48", "2026-W50")
    assert list(shown(view)) == [a.number]


def test_the_default_is_this_month_in_the_desks_time_zone(service, answers):
    assert month(service).period.key == "2026-11"


@pytest.mark.parametrize(("kw", "field", "message"), [
    ({"month": "2026-13"}, "month", "2026-13 is not a month (YYYY-MM, e.g. 2026-12)."),
    ({"month": "december"}, "month", "december is not a month (YYYY-MM, e.g. 2026-12)."),
    ({"week": "2026-W54"}, "week", "2026-W54 is not a week (YYYY-Www, e.g. 2026-W49)."),
    ({"week": "2026-49"}, "week", "2026-49 is not a week (YYYY-Www, e.g. 2026-W49)."),
    ({"month": "2026-12", "week": "2026-W49"}, "week", "Give a month or a week, not both."),
])
def test_bad_calendar_parameters_are_refused(service, kw, field, message):
    with pytest.raises(InvalidInput) as exc:
        month(service, **kw)
    assert exc.value.fields == {field: [message]}


def test_the_calendar_is_for_agents_and_the_board(service):
    assert month(service, "carol").period.key == "2026-11"  # on the change board
    with pytest.raises(NotAllowed, match="^only agents and the change board see the change calendar$"):
        month(service, "alice")


def test_the_record_warns_of_its_conflicts_and_freezes(service, answers):
    ci = server(service, "erp01")
    a = standard(service, answers, ci, day="2026-12-18", start="20:00", end="22:00")
    b = standard(service, answers, ci, day="2026-12-18", start="21:00", end="23:00")
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == a.number))
        assert warnings_of(s, service.catalog(), req) == [
            f"Conflict with {b.number}: its planned window overlaps this one on a shared "
            "configuration item.", "Planned inside the change freeze Year-end freeze."]


# ---------------------------------------------------------------- the calendar's query


#: (planned start, planned end, on the calendar of March 2027?)
WINDOWS = [((2027, 3, 10), (2027, 3, 11), True),
           ((2027, 2, 20), (2027, 3, 1), False),            # ends as March starts
           ((2027, 2, 20), (2027, 3, 1, 0, 0, 0, 1), True),
           ((2027, 4, 1), (2027, 4, 2), False),             # starts as April starts
           ((2027, 3, 31, 23, 59, 59, 999999), (2027, 4, 2), True),
           ((2027, 1, 1), (2027, 6, 1), True),              # the whole month and more
           ((2027, 3, 10), (2027, 3, 10), True),            # empty, but the comparisons hold
           ((2027, 3, 20), (2027, 3, 10), True),            # the wrong way round, likewise
           ((2027, 3, 20), (2027, 2, 10), False),
           ((2027, 3, 10), None, False), (None, (2027, 3, 10), False), (None, None, False)]


def bare_requests(conn, n: int) -> None:
    """Requests 1..n of one person on one workflow version, with nothing else: rows for changes."""
    now = utc(2026, 1, 1)
    conn.execute(insert(Person), [{"id": "p", "name": "P", "email": "p@x.example", "title": "",
                                   "department": "", "location": "", "active": True}])
    conn.execute(insert(WorkflowVersion), [{"id": 1, "workflow_id": "w", "version": "v",
                                            "definition": {}, "created_at": now}])
    conn.execute(insert(Request), [
        {"id": i + 1, "number": f"REQ-{i + 1:06d}", "item_id": "x", "item_name": "X",
         "workflow_version_id": 1, "state": "s", "status": "open", "answers": {},
         "requester_id": "p", "requested_for_id": "p", "visit": 1,
         "waiting_on_requester": False, "created_at": now, "updated_at": now,
         "sla_state": "ok", "lock_version": 1} for i in range(n)])


def test_the_calendar_query_finds_the_windows_overlapping_the_period_half_open(engine):
    with engine.begin() as conn:
        bare_requests(conn, len(WINDOWS))
        conn.execute(insert(Change), [
            {"request_id": i + 1, "change_type": "normal", "risk": "low",
             "planned_start": start and utc(*start), "planned_end": end and utc(*end)}
            for i, (start, end, _) in enumerate(WINDOWS)])
        found = conn.scalars(calendar_query(utc(2027, 3, 1), utc(2027, 4, 1))).all()
    assert found == [i + 1 for i, w in sorted(enumerate(WINDOWS), key=lambda w: w[1][0] or ())
                     if w[2]]


def test_the_calendar_query_uses_the_planned_start_index(engine):
    with engine.begin() as conn:
        bare_requests(conn, 3000)
        conn.execute(insert(Change), [
            {"request_id": i + 1, "change_type": "normal", "risk": "low",
             "planned_start": utc(2026, 1, 1) + (utc(2028, 1, 1) - utc(2026, 1, 1)) * i / 3000,
             "planned_end": utc(2026, 1, 1) + (utc(2028, 1, 1) - utc(2026, 1, 1)) * i / 3000
             + (utc(2026, 1, 1, 4) - utc(2026, 1, 1))} for i in range(3000)])
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    query = calendar_query(utc(2026, 3, 1), utc(2026, 4, 1))
    compiled = query.compile(engine, compile_kwargs={"render_postcompile": True})
    prefix = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    with engine.connect() as conn:
        params = (tuple(compiled.params[k] for k in compiled.positiontup or ())
                  if compiled.positional else compiled.params)
        rows = conn.exec_driver_sql(f"{prefix} {compiled}", params).all()
    assert "ix_changes_planned_start" in "\n".join(str(r[-1]) for r in rows)


def test_a_workflow_setting_a_risk_answer_recomputes_the_risk(acme_path, tmp_path, sessions, clock):
    root = copy_acme(acme_path, tmp_path)
    item = root / "items" / "standard-change.yaml"
    item.write_text(item.read_text().replace(
        "  risk: low\n", "  risk: \"'high' if form.details == 'touches payroll' else 'low'\"\n"))
    wf = root / "workflows" / "standard-change.yaml"
    wf.write_text(wf.read_text().replace("start: implement\n", "start: assess\n").replace(
        "states:\n", "states:\n  assess:\n    actions:\n"
        "      - set: {field: details, value: touches payroll}\n    next: implement\n\n"))
    cat = load_catalog(root)
    assert cat.ok, [str(e) for e in cat.errors]
    with sessions.begin() as s:
        sync_directory(s, cat.directory)
    service = RequestService(sessions, lambda: cat, clock)
    req = service.submit("standard-change", "heidi", ACME_ANSWERS["standard-change"])
    assert data(service, req.number).risk == "high"
    with sessions() as s:
        [row] = s.scalars(select(AuditEvent).where(AuditEvent.event == "change_changed"))
    assert row.detail == {"changes": {"risk": ["low", "high"]}}


def test_an_admin_cannot_route_a_halted_emergency_change_to_its_end_before_the_review(
        acme_path, tmp_path, sessions, clock):
    root = copy_acme(acme_path, tmp_path)
    wf = root / "workflows" / "emergency-change.yaml"
    # entering the review fails (10 / 0), so the change halts there for an admin
    wf.write_text(wf.read_text().replace('title: "Review emergency change: {{ form.change_title }}"',
                                         'title: "Review {{ 10 / (len(form.start_time) - 5) }}"'))
    cat = load_catalog(root)
    assert cat.ok, [str(e) for e in cat.errors]
    with sessions.begin() as s:
        sync_directory(s, cat.directory)
    service = RequestService(sessions, lambda: cat, clock)
    req = service.submit("emergency-change", "heidi", ACME_ANSWERS["emergency-change"])
    [appr] = pending(sessions, req)
    service.approve(appr.id, "oscar", "go")
    finish_task(service, sessions, req, "implemented",
                {"implementation_notes": "Patched the gateway to the fixed release."})
    halted = reload(sessions, req.number)
    assert (halted.state, halted.attention_at is not None) == ("review", True)
    with pytest.raises(Conflict, match=f"^{REFUSED.format(req.number)}$"):
        service.route(req.number, "oscar", "the review is a formality", outcome="implemented")
    service.route(req.number, "oscar", "review the rollback instead", to_state="review_rollback")
    assert reload(sessions, req.number).state == "review_rollback"
