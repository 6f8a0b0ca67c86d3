"""Major incidents, the agents' list filter and the article that solved it, through the pages."""

from __future__ import annotations

from markupsafe import escape
from sqlalchemy import select

from engine.models import Request
from tests.acme import ACME_ANSWERS
from tests.web.world import Browser

NOTES = "Restarted the mail relay."
LOW = {"impact": "low", "urgency": "low"}


def incident(service, actor: str = "alice", **changes) -> Request:
    return service.submit("report-incident", actor, {**ACME_ANSWERS["report-incident"], **changes})


def reload(service, number: str) -> Request:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        s.expunge(req)
        return req


def test_a_critical_incident_shows_the_banner_and_the_major_card(app, service):
    req = incident(service)
    page = Browser(app, "frank").get(f"/requests/{req.number}").get_data(as_text=True)
    assert 'id="major-banner-heading">Major incident</h2>' in page
    assert "by the rule." in page
    assert 'id="major-heading"' in page and 'name="numbers"' in page and "Stand down" in page
    caller = Browser(app, "alice").get(f"/requests/{req.number}").get_data(as_text=True)
    assert 'id="major-banner-heading"' in caller and 'id="major-heading"' not in caller


def test_the_agents_list_badges_and_filters_major_incidents(app, service):
    major = incident(service)
    minor = incident(service, **LOW)
    frank = Browser(app, "frank")
    page = frank.get("/records").get_data(as_text=True)
    assert page.count('class="badge text-bg-danger df-major-badge">Major</span>') == 1
    page = frank.get("/records?major=yes").get_data(as_text=True)
    assert major.number in page and minor.number not in page
    response = frank.get("/records?major=maybe")
    assert response.status_code == 422
    assert "maybe is not one of: yes, no." in response.get_data(as_text=True)


def test_an_agent_declares_a_major_incident_on_the_page(app, service):
    req = incident(service, **LOW)
    frank = Browser(app, "frank")
    assert "Declare major incident" in frank.get(f"/requests/{req.number}").get_data(as_text=True)
    response = frank.post(f"/requests/{req.number}/major/declare", data={
        "seen_version": req.lock_version, "reason": "Half of sales cannot send mail."})
    assert response.status_code == 302
    after = reload(service, req.number)
    assert (after.major, after.major_by_id) == (True, "frank")
    page = frank.get(f"/requests/{req.number}").get_data(as_text=True)
    assert "Declared" in page and "by Frank Smit." in page
    assert "Major incident declared" in page and "Half of sales cannot send mail." in page
    response = frank.post(f"/requests/{req.number}/major/stand-down", data={
        "seen_version": after.lock_version, "reason": "It was two people."})
    assert response.status_code == 302
    assert reload(service, req.number).major is False


def test_declaring_without_a_reason_is_a_422_on_the_field_and_saves_nothing(app, service):
    req = incident(service, **LOW)
    response = Browser(app, "frank").post(f"/requests/{req.number}/major/declare", data={
        "seen_version": req.lock_version, "reason": "  "})
    assert response.status_code == 422
    assert ('<div id="major-reason-error" class="invalid-feedback d-block" role="alert">'
            "This field is required.</div>") in response.get_data(as_text=True)
    assert reload(service, req.number).major is False


def test_a_caller_may_not_declare_a_major_incident(app, service):
    req = incident(service, **LOW)
    response = Browser(app, "alice").post(f"/requests/{req.number}/major/declare", data={
        "reason": "Everything is on fire."})
    assert response.status_code == 403
    assert reload(service, req.number).major is False


def test_incidents_are_attached_from_the_major_incident_page_and_listed_with_their_states(app, service):
    parent = incident(service, "bob")
    child = incident(service, "alice", **LOW, short_description="Outlook cannot connect")
    vpn = service.submit("vpn-access", "alice", dict(ACME_ANSWERS["vpn-access"]))
    frank = Browser(app, "frank")
    response = frank.post(f"/requests/{parent.number}/major/attach",
                          data={"numbers": f"{child.number} {vpn.number}"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert f"Attached to {parent.number}: {child.number}." in page
    assert str(escape(f"{vpn.number} was not attached: {vpn.number} is a request; only incidents "
                      "can be attached.")) in page
    assert f'<a href="/requests/{child.number}">{child.number}</a>' in page
    assert "Outlook cannot connect · <span" in page and "With the Service Desk" in page
    response = frank.post(f"/requests/{parent.number}/major/attach", data={"numbers": ""})
    assert response.status_code == 422
    assert ('<div id="major-numbers-error" class="invalid-feedback d-block" role="alert">'
            "This field is required.</div>") in response.get_data(as_text=True)


def test_resolving_the_major_incident_on_the_page_resolves_its_children(app, service):
    parent = incident(service, "bob")
    child = incident(service, "alice", **LOW)
    service.attach_incidents(parent.number, "frank", child.number or "")
    response = Browser(app, "frank").post(f"/requests/{parent.number}/resolve", data={
        "seen_version": reload(service, parent.number).lock_version, "resolution_code": "fixed",
        "resolution_notes": NOTES}, follow_redirects=True)
    assert f"Child incidents resolved with it: {child.number}." in response.get_data(as_text=True)
    after = reload(service, child.number)
    assert (after.resolution_code, after.resolution_notes) == (
        "fixed", f"Resolved with major incident {parent.number}: {NOTES}")


def test_the_article_that_solved_it_is_chosen_on_resolving_and_linked_on_the_page(app, service):
    req = incident(service, **LOW)
    frank = Browser(app, "frank")
    page = frank.get(f"/requests/{req.number}").get_data(as_text=True)
    assert "Knowledge article that solved it" in page
    # related articles first: the item links how-to-report-an-incident
    assert ('<optgroup label="Related"><option value="how-to-report-an-incident">'
            "How to report an incident") in page
    response = frank.post(f"/requests/{req.number}/resolve", data={
        "seen_version": req.lock_version, "resolution_code": "fixed", "resolution_notes": NOTES,
        "solution_article": "reset-your-password"})
    assert response.status_code == 302
    assert reload(service, req.number).solution_article == "reset-your-password"
    page = frank.get(f"/requests/{req.number}").get_data(as_text=True)
    assert '<dd class="col-7 df-solution-article"><a href="/kb/reset-your-password">' in page


def test_an_unknown_article_is_a_422_on_its_field(app, service):
    req = incident(service, **LOW)
    response = Browser(app, "frank").post(f"/requests/{req.number}/resolve", data={
        "seen_version": req.lock_version, "resolution_code": "fixed", "resolution_notes": NOTES,
        "solution_article": "nope"})
    assert response.status_code == 422
    assert ('<div id="solution-article-error" class="invalid-feedback d-block" role="alert">'
            "There is no article nope.</div>") in response.get_data(as_text=True)
    assert reload(service, req.number).resolved_at is None
