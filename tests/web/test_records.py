"""The record panel and logging for a caller, through the Flask test client."""

from __future__ import annotations

from markupsafe import escape
from sqlalchemy import select

from engine.models import AuditEvent, Request
from tests.acme import ACME_ANSWERS
from tests.web.world import Browser


def incident(service, actor: str = "alice") -> Request:
    return service.submit("report-incident", actor, dict(ACME_ANSWERS["report-incident"]))


def reload(service, number: str) -> Request:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        s.expunge(req)
        return req


def test_an_agent_sees_the_record_panel_with_its_fields(app, service):
    req = incident(service)
    page = Browser(app, "frank").get(f"/requests/{req.number}").get_data(as_text=True)
    assert 'id="record-heading"' in page and "Incident" in page
    assert 'name="title"' in page and 'value="Mail is down"' in page
    assert '<option value="service-desk" selected>Service Desk (tier 1)</option>' in page


def test_the_requester_sees_the_record_but_cannot_edit_it(app, service):
    req = incident(service)
    page = Browser(app, "alice").get(f"/requests/{req.number}").get_data(as_text=True)
    assert 'id="record-heading"' in page and "Service Desk (tier 1)" in page
    assert 'name="title"' not in page and ">Watch</button>" in page


def test_an_agent_saves_the_record_and_the_timeline_says_what_changed(app, service):
    req = incident(service)
    frank = Browser(app, "frank")
    response = frank.post(f"/requests/{req.number}/record", data={
        "seen_version": req.lock_version, "title": "Mail down on floor 3", "impact": "medium",
        "urgency": "high", "category": "Email", "assignment_group": "service-desk", "assignee": "grace"})
    assert response.status_code == 302
    after = reload(service, req.number)
    assert (after.title, after.impact, after.priority, after.assignee_id) == (
        "Mail down on floor 3", "medium", "p2", "grace")
    page = frank.get(f"/requests/{req.number}").get_data(as_text=True)
    assert "Record changed" in page
    assert str(escape("Impact: high → medium; Category: email → Email; Assignee: — → Grace")) in page


def test_bad_values_come_back_as_422_with_the_message_on_the_field(app, service):
    req = incident(service)
    response = Browser(app, "frank").post(f"/requests/{req.number}/record", data={
        "seen_version": req.lock_version, "title": "", "impact": "huge", "assignee": "heidi"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<div id="record-title-error" class="invalid-feedback d-block" role="alert">' \
           "This field is required.</div>" in page
    assert "huge is not one of the choices." in page
    assert "heidi is not a member of the assignment group." in page
    assert reload(service, req.number).title == "Mail is down"


def test_a_stale_record_form_gets_409(app, service):
    req = incident(service)
    service.edit_record(req.number, "grace", {"category": "Email"})
    response = Browser(app, "frank").post(f"/requests/{req.number}/record", data={
        "seen_version": req.lock_version, "category": "Network"})
    assert response.status_code == 409


def test_the_requester_cannot_post_the_record_form(app, service):
    req = incident(service)
    response = Browser(app, "alice").post(f"/requests/{req.number}/record", data={
        "seen_version": req.lock_version, "title": "Mine"})
    assert response.status_code == 403


def test_an_agent_links_and_unlinks_records_from_the_panel(app, service):
    major, child = incident(service), incident(service)
    frank = Browser(app, "frank")
    assert frank.post(f"/requests/{child.number}/links",
                      data={"other": major.number, "kind": "child_of"}).status_code == 302
    page = frank.get(f"/requests/{major.number}").get_data(as_text=True)
    assert f'Parent of <a href="/requests/{child.number}">{child.number}</a> · Mail is down' in page
    refused = frank.post(f"/requests/{major.number}/links",
                         data={"other": major.number, "kind": "related_to"})
    assert refused.status_code == 422
    assert "A record cannot be linked to itself." in refused.get_data(as_text=True)
    assert frank.post(f"/requests/{major.number}/links/remove",
                      data={"other": child.number, "kind": "child_of"}).status_code == 302
    assert "No links." in frank.get(f"/requests/{major.number}").get_data(as_text=True)


def test_a_cycle_is_refused_with_409(app, service):
    a, b = incident(service), incident(service)
    frank = Browser(app, "frank")
    frank.post(f"/requests/{a.number}/links", data={"other": b.number, "kind": "duplicate_of"})
    response = frank.post(f"/requests/{b.number}/links", data={"other": a.number, "kind": "duplicate_of"})
    assert response.status_code == 409
    assert f"{b.number} cannot be duplicate of {a.number}" in response.get_data(as_text=True)


def test_the_requester_watches_and_stops_watching(app, service):
    req = incident(service)
    alice = Browser(app, "alice")
    assert alice.post(f"/requests/{req.number}/watchers", data={"person": "alice"}).status_code == 302
    assert ">Stop watching</button>" in alice.get(f"/requests/{req.number}").get_data(as_text=True)
    assert alice.post(f"/requests/{req.number}/watchers/remove", data={"person": "alice"}).status_code == 302
    with service.sessions() as s:
        rows = s.scalars(select(AuditEvent.event).where(AuditEvent.event.like("watcher_%"))
                         .order_by(AuditEvent.id)).all()
    assert rows == ["watcher_added", "watcher_removed"]


def test_only_agents_add_someone_else_as_a_watcher(app, service):
    req = incident(service)
    assert Browser(app, "alice").post(f"/requests/{req.number}/watchers",
                                      data={"person": "carol"}).status_code == 403
    assert Browser(app, "frank").post(f"/requests/{req.number}/watchers",
                                      data={"person": "carol"}).status_code == 302
    # carol now sees the record she watches
    assert Browser(app, "carol").get(f"/requests/{req.number}").status_code == 200


def test_an_agent_logs_an_incident_for_a_caller_by_phone(app, service):
    frank = Browser(app, "frank")
    listing = frank.get("/log").get_data(as_text=True)
    assert '<a href="/items/report-incident?log=1">Report an incident</a>' in listing
    form = frank.get("/items/report-incident?log=1").get_data(as_text=True)
    assert '<option value="phone" selected>Phone</option>' in form
    response = frank.post("/items/report-incident", data={
        **ACME_ANSWERS["report-incident"], "requested_for": "alice", "channel": "phone"})
    assert response.status_code == 302
    with service.sessions() as s:
        req = s.scalar(select(Request).order_by(Request.id.desc()))
        assert (req.requester_id, req.requested_for_id, req.channel) == ("frank", "alice", "phone")


def test_someone_who_is_no_agent_has_no_log_page_and_no_channel(app, service):
    alice = Browser(app, "alice")
    assert alice.get("/log").status_code == 403
    assert 'name="channel"' not in alice.get("/items/report-incident").get_data(as_text=True)
    response = alice.post("/items/report-incident",
                          data={**ACME_ANSWERS["report-incident"], "channel": "phone"})
    assert response.status_code == 403
