"""Resolve, confirm, reopen and merge on the request page, through the Flask test client."""

from __future__ import annotations

from sqlalchemy import select

from engine.models import Request
from tests.acme import ACME_ANSWERS
from tests.web.world import Browser

NOTES = "Restarted the mail relay."


def incident(service, actor: str = "alice") -> Request:
    return service.submit("report-incident", actor, dict(ACME_ANSWERS["report-incident"]))


def reload(service, number: str) -> Request:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        s.expunge(req)
        return req


def test_an_agent_resolves_with_a_code_from_the_settings(app, service):
    req = incident(service)
    frank = Browser(app, "frank")
    page = frank.get(f"/requests/{req.number}").get_data(as_text=True)
    assert 'id="resolution-heading"' in page and '<option value="user-error">user-error</option>' in page
    response = frank.post(f"/requests/{req.number}/resolve", data={
        "seen_version": req.lock_version, "resolution_code": "fixed", "resolution_notes": NOTES})
    assert response.status_code == 302
    after = reload(service, req.number)
    assert (after.state, after.resolution_code, after.resolution_notes) == ("confirm_window", "fixed", NOTES)
    page = frank.get(f"/requests/{req.number}").get_data(as_text=True)
    assert '<dd class="col-7 df-resolution-code">fixed</dd>' in page


def test_a_bad_resolution_code_comes_back_as_422_on_the_field(app, service):
    req = incident(service)
    response = Browser(app, "frank").post(f"/requests/{req.number}/resolve", data={
        "seen_version": req.lock_version, "resolution_code": "magic", "resolution_notes": NOTES})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<div id="resolution-code-error" class="invalid-feedback d-block" role="alert">' \
           "Choose one of: fixed, workaround, no-fault-found, duplicate, user-error.</div>" in page
    assert reload(service, req.number).resolved_at is None


def test_the_requester_sees_no_resolve_form(app, service):
    req = incident(service)
    page = Browser(app, "alice").get(f"/requests/{req.number}").get_data(as_text=True)
    assert 'name="resolution_code"' not in page
    response = Browser(app, "alice").post(f"/requests/{req.number}/resolve", data={
        "resolution_code": "fixed", "resolution_notes": NOTES})
    assert response.status_code == 403


def test_the_caller_confirms_the_fix_and_the_record_closes(app, service):
    req = incident(service)
    service.resolve(req.number, "frank", "fixed", NOTES)
    alice = Browser(app, "alice")
    page = alice.get(f"/requests/{req.number}").get_data(as_text=True)
    assert ">Yes, it is fixed</button>" in page and ">Reopen</button>" in page
    assert alice.post(f"/requests/{req.number}/confirm").status_code == 302
    after = reload(service, req.number)
    assert (after.status, after.outcome, after.resolution_code) == ("closed", "resolved", "fixed")


def test_the_caller_reopens_with_a_reason_and_it_goes_back_to_the_desk(app, service):
    req = incident(service)
    service.resolve(req.number, "frank", "fixed", NOTES)
    alice = Browser(app, "alice")
    assert alice.post(f"/requests/{req.number}/reopen", data={"reason": "Still down."}).status_code == 302
    after = reload(service, req.number)
    assert (after.state, after.reopen_count, after.resolved_at) == ("triage", 1, None)
    page = alice.get(f"/requests/{req.number}").get_data(as_text=True)
    assert '<dd class="col-7 df-reopen-count">1 ×</dd>' in page


def test_a_reopen_without_a_reason_is_422(app, service):
    req = incident(service)
    service.resolve(req.number, "frank", "fixed", NOTES)
    response = Browser(app, "alice").post(f"/requests/{req.number}/reopen", data={"reason": ""})
    assert response.status_code == 422
    assert '<div id="reopen-reason-error" class="invalid-feedback d-block" role="alert">' \
           "This field is required.</div>" in response.get_data(as_text=True)
    assert reload(service, req.number).state == "confirm_window"


def test_a_closed_record_cannot_be_reopened_and_says_why(app, service):
    req = incident(service)
    service.resolve(req.number, "frank", "fixed", NOTES)
    service.confirm_resolution(req.number, "alice")
    response = Browser(app, "alice").post(f"/requests/{req.number}/reopen", data={"reason": "Again."})
    assert response.status_code == 409
    assert "open a new incident and mention it" in response.get_data(as_text=True)


def test_an_agent_merges_a_duplicate_into_another_incident(app, service):
    survivor = incident(service)
    dup = incident(service, actor="bob")
    frank = Browser(app, "frank")
    assert 'name="survivor"' in frank.get(f"/requests/{dup.number}").get_data(as_text=True)
    response = frank.post(f"/requests/{dup.number}/merge", data={"survivor": survivor.number.lower()})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/requests/{survivor.number}")
    assert (reload(service, dup.number).outcome, reload(service, survivor.number).status) == (
        "duplicate", "open")


def test_merging_into_itself_is_422_on_the_field(app, service):
    dup = incident(service)
    response = Browser(app, "frank").post(f"/requests/{dup.number}/merge", data={"survivor": dup.number})
    assert response.status_code == 422
    assert '<div id="merge-survivor-error" class="invalid-feedback d-block" role="alert">' \
           "A record cannot be merged into itself.</div>" in response.get_data(as_text=True)
    assert reload(service, dup.number).status == "open"
