"""The change calendar and the change card on the record page, through the Flask test client."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine import cmdb
from engine.models import Approval, Request
from tests.acme import ACME_ANSWERS
from tests.web.world import Browser


def server(service, name: str) -> str:
    with service.sessions.begin() as s:
        ci = cmdb.create(s, service.catalog(), "oscar", "server",
                         cmdb.CIInput(name, {"hostname": name}, owner_group_id="it-ops"),
                         service.clock())
        return str(ci.id)


def standard(service, ci=None, day="2026-12-01", start="20:00", end="22:00") -> Request:
    return service.submit("standard-change", "heidi", {
        **ACME_ANSWERS["standard-change"], "planned_date": day, "start_time": start,
        "end_time": end, **({"affected_server": ci} if ci else {})})


def reload(service, number: str) -> Request:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        s.expunge(req)
        return req


def cards(page: str) -> dict[str, str]:
    """Each change's card on the calendar, by number (the first card of a change)."""
    found: dict[str, str] = {}
    for m in re.finditer(r'<div class="[^"]*df-change[^"]*" data-number="([^"]+)">(.*?)\n        </div>',
                         page, re.S):
        found.setdefault(m.group(1), m.group(2))
    return found


def test_the_month_view_shows_changes_with_conflicts_and_the_freeze(app, service):
    ci = server(service, "crm-db01")
    a = standard(service, ci, start="20:00", end="22:00")
    b = standard(service, ci, start="21:00", end="23:00")
    frozen = standard(service, day="2026-12-21")
    page = Browser(app, "erin").get("/changes/calendar?month=2026-12").get_data(as_text=True)
    assert "Change calendar · December 2026" in page
    shown = cards(page)
    assert f"conflict with {b.number}" in shown[a.number]
    assert f"conflict with {a.number}" in shown[b.number]
    assert "conflict with" not in shown[frozen.number]
    assert "inside freeze Year-end freeze" in shown[frozen.number]
    assert "Change freeze <strong>Year-end freeze</strong>: 18 Dec 2026 – 04 Jan 2027." in page
    assert "crm-db01" in shown[a.number] and "standard" in shown[a.number]
    assert "low risk" in shown[a.number] and "Being implemented by IT Operations" in shown[a.number]
    assert "3 changes planned; 2 in conflict on a configuration item; 1 inside a change freeze." in page


def test_the_week_view_shows_one_iso_week(app, service):
    inside = standard(service, day="2026-12-01")
    outside = standard(service, day="2026-12-08")
    page = Browser(app, "erin").get("/changes/calendar?week=2026-W49").get_data(as_text=True)
    assert "week 2026-W49 (30 Nov – 06 Dec 2026)" in page
    assert inside.number in cards(page) and outside.number not in cards(page)
    assert 'href="/changes/calendar?week=2026-W50"' in page


def test_a_pending_change_is_marked_awaiting_approval(app, service):
    req = service.submit("normal-change", "heidi", dict(ACME_ANSWERS["normal-change"]))
    page = Browser(app, "carol").get("/changes/calendar?month=2026-12").get_data(as_text=True)
    assert "awaiting approval" in cards(page)[req.number]


@pytest.mark.parametrize(("query", "message"), [
    ("month=2026-13", "2026-13 is not a month (YYYY-MM, e.g. 2026-12)."),
    ("week=W49", "W49 is not a week (YYYY-Www, e.g. 2026-W49)."),
    ("month=2026-12&week=2026-W49", "Give a month or a week, not both."),
])
def test_bad_calendar_parameters_are_a_422_with_our_message(app, query, message):
    response = Browser(app, "erin").get(f"/changes/calendar?{query}")
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("carol", 200), ("erin", 200),
                                             ("oscar", 200), (None, 302)])
def test_the_calendar_is_for_agents_the_board_and_admins(app, who, status):
    assert Browser(app, who).get("/changes/calendar?month=2026-12").status_code == status


def test_the_record_page_shows_the_change_its_warnings_and_caused_incidents(app, service):
    ci = server(service, "mail01")
    a = standard(service, ci, day="2026-12-18")
    b = standard(service, ci, day="2026-12-18", start="21:30", end="23:00")
    incident = service.submit("report-incident", "alice", dict(ACME_ANSWERS["report-incident"]))
    service.link(incident.number, "oscar", a.number, "caused_by")
    page = Browser(app, "erin").get(f"/requests/{a.number}").get_data(as_text=True)
    assert '<dd class="col-7 df-change-type">standard</dd>' in page
    assert '<dd class="col-7 df-change-window">18 Dec 2026 20:00 – 18 Dec 2026 22:00</dd>' in page
    assert (f"Conflict with {b.number}: its planned window overlaps this one on a shared "
            "configuration item.") in page
    assert "Planned inside the change freeze Year-end freeze." in page
    caused = re.search(r'<ul class="list-unstyled small df-caused">(.*?)</ul>', page, re.S)
    assert caused and incident.number in caused.group(1)
    incident_page = Browser(app, "frank").get(f"/requests/{incident.number}").get_data(as_text=True)
    assert '<option value="caused_by">Caused by</option>' in incident_page


def test_an_agent_moves_the_window_and_a_bad_one_is_a_422_on_the_field(app, service):
    ci = server(service, "mail01")
    req = standard(service, ci)
    erin = Browser(app, "erin")
    response = erin.post(f"/requests/{req.number}/change", data={
        "seen_version": req.lock_version, "planned_start": "2026-12-02T20:00",
        "planned_end": "2026-12-02T19:00", "affected": [ci]})
    assert response.status_code == 422
    assert "The planned end must be after the planned start." in response.get_data(as_text=True)
    response = erin.post(f"/requests/{req.number}/change", data={
        "seen_version": req.lock_version, "planned_start": "2026-12-02T20:00",
        "planned_end": "2026-12-02T21:00", "affected": [ci]})
    assert response.status_code == 302
    page = erin.get(f"/requests/{req.number}").get_data(as_text=True)
    assert "02 Dec 2026 20:00 – 02 Dec 2026 21:00" in page
    stale = erin.post(f"/requests/{req.number}/change", data={
        "seen_version": req.lock_version, "planned_start": "2026-12-03T20:00",
        "planned_end": "2026-12-03T21:00"})
    assert stale.status_code == 409


def test_someone_who_is_no_agent_cannot_edit_the_change(app, service):
    req = standard(service)
    response = Browser(app, "alice").post(
        f"/requests/{req.number}/change", data={"seen_version": req.lock_version,
                                                 "planned_start": "2026-12-02T20:00"})
    assert response.status_code == 404  # alice may not even see it


def test_the_board_is_warned_of_a_conflict_when_approving(app, service):
    ci = server(service, "erp01")
    standard(service, ci, start="20:00", end="22:00")
    req = service.submit("normal-change", "heidi", {**ACME_ANSWERS["normal-change"],
                                                    "start_time": "21:00", "end_time": "23:00",
                                                    "affected_server": ci})
    with service.sessions() as s:
        appr = s.scalar(select(Approval).where(Approval.request_id == req.id,
                                               Approval.approver_id == "carol"))
    carol = Browser(app, "carol")
    page = carol.get(f"/approvals/{appr.id}").get_data(as_text=True)
    assert "Conflict with REQ-000001: its planned window overlaps this one" in page
    response = carol.post(f"/approvals/{appr.id}/approve", data={
        "decision-seen_version": reload(service, req.number).lock_version,
        "decision-comment": "ok"}, follow_redirects=True)
    assert response.status_code == 200
    assert f"{req.number}: Conflict with REQ-000001" in response.get_data(as_text=True)
    with service.sessions() as s:
        assert s.get(Approval, appr.id).decision == "approved"
