"""Problems and known errors on the pages, through the Flask test client: the problem card, a
problem from one or several incidents, the knowledge base's section, the search box, the
incident form and resolving a problem with its incidents."""

from __future__ import annotations

from html import escape

from sqlalchemy import select

from engine.models import ProblemRecord, RecordLink, Request
from tests.acme import ACME_ANSWERS
from tests.web.world import Browser

WORKAROUND = "Connect to the wired network until the controller is patched."
VPN = {**ACME_ANSWERS["report-incident"], "short_description": "VPN drops every 30 minutes",
       "affected_service": "network", "impact": "low"}


def incident(service, actor: str = "alice", **answers) -> Request:
    return service.submit("report-incident", actor, {**VPN, **answers})


def reload(service, number: str) -> Request:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        s.expunge(req)
        return req


def known_error(service, title: str = "VPN drops on Wi-Fi", service_value: str = "network") -> str:
    """A problem behind one of Alice's incidents, made a known error by Heidi (it-ops)."""
    inc = incident(service)
    number = service.create_problem("frank", [inc.number], {
        "short_description": title, "service": service_value}).number
    service.edit_problem(number, "heidi", {"workaround": WORKAROUND, "known_error": "yes"})
    return number


def test_an_incident_agent_creates_a_problem_from_the_incident_page(app, service):
    inc = incident(service)
    frank = Browser(app, "frank")
    page = frank.get(f"/requests/{inc.number}").get_data(as_text=True)
    assert f'href="/problems/new?incidents={inc.number}">Create problem</a>' in page
    form = frank.get(f"/problems/new?incidents={inc.number}").get_data(as_text=True)
    assert 'value="VPN drops every 30 minutes"' in form
    assert '<option selected value="network">' in form
    assert f'<input type="hidden" name="incidents" value="{inc.number}">' in form
    response = frank.post("/problems/new", data={
        "incidents": inc.number, "short_description": "VPN drops every 30 minutes",
        "service": "network", "description": ""})
    assert response.status_code == 302
    with service.sessions() as s:
        problem = s.scalar(select(Request).where(Request.record_type == "problem"))
        assert s.scalar(select(RecordLink.kind).where(RecordLink.source_id == problem.id)) == "problem_of"
    page = Browser(app, "heidi").get(f"/requests/{problem.number}").get_data(as_text=True)
    assert 'id="problem-heading"' in page and 'name="workaround"' in page
    assert 'Problem behind' in page and inc.number in page


def test_the_caller_sees_no_create_problem_button(app, service):
    inc = incident(service)
    page = Browser(app, "alice").get(f"/requests/{inc.number}").get_data(as_text=True)
    assert "Create problem" not in page
    assert Browser(app, "alice").get(f"/problems/new?incidents={inc.number}").status_code == 404


def test_create_problem_from_selected_rows_of_the_agents_list(app, service):
    first, second = incident(service), incident(service, "bob")
    frank = Browser(app, "frank")
    assert "Create problem from selected" in frank.get("/records").get_data(as_text=True)
    form = frank.get(f"/problems/new?numbers={first.number}&numbers={second.number}")
    assert form.status_code == 200
    response = frank.post("/problems/new", data={
        "incidents": [first.number, second.number], "short_description": "VPN drops",
        "service": "network"})
    assert response.status_code == 302
    for inc in (first, second):
        page = Browser(app, "heidi").get(response.headers["Location"]).get_data(as_text=True)
        assert inc.number in page


def test_a_bad_problem_form_is_a_422_and_nothing_is_linked(app, service):
    inc = incident(service)
    response = Browser(app, "frank").post("/problems/new", data={
        "incidents": inc.number, "short_description": "VPN", "service": "network"})
    assert response.status_code == 422
    with service.sessions() as s:
        assert s.scalars(select(RecordLink)).all() == []


def test_marking_a_known_error_without_a_workaround_is_a_422_on_the_field(app, service):
    number = service.submit("problem", "heidi", dict(ACME_ANSWERS["problem"])).number
    req = reload(service, number)
    response = Browser(app, "heidi").post(f"/requests/{number}/problem", data={
        "seen_version": req.lock_version, "root_cause": "", "workaround": "",
        "known_error_shown": "yes", "known_error": "yes"})
    assert response.status_code == 422
    assert '<div id="problem-workaround-error" class="invalid-feedback d-block" role="alert">' \
           "Write the workaround before marking this a known error.</div>" in response.get_data(as_text=True)
    with service.sessions() as s:
        assert s.get(ProblemRecord, req.id).known_error is False


def test_an_agent_marks_a_known_error_and_the_timeline_says_so(app, service):
    number = service.submit("problem", "heidi", dict(ACME_ANSWERS["problem"])).number
    req = reload(service, number)
    heidi = Browser(app, "heidi")
    response = heidi.post(f"/requests/{number}/problem", data={
        "seen_version": req.lock_version, "root_cause": "", "workaround": WORKAROUND,
        "known_error_shown": "yes", "known_error": "yes"})
    assert response.status_code == 302
    page = heidi.get(f"/requests/{number}").get_data(as_text=True)
    assert "df-known-error-badge" in page
    assert "Known error: no → yes" in page


def test_the_knowledge_base_lists_known_errors_with_the_problem_number_for_agents(app, service):
    number = known_error(service)
    alice = Browser(app, "alice").get("/kb").get_data(as_text=True)
    assert 'id="known-errors-heading"' in alice and "VPN drops on Wi-Fi" in alice
    assert escape(WORKAROUND) in alice and "Wi-Fi, VPN or network" in alice
    assert f">{number}</a>" not in alice
    assert f">{number}</a>" in Browser(app, "frank").get("/kb").get_data(as_text=True)


def test_the_search_box_finds_known_errors_among_items_and_articles(app, service):
    known_error(service)
    page = Browser(app, "alice").get("/?q=wi-fi+drops").get_data(as_text=True)
    assert "df-hit-known_error" in page and "VPN drops on Wi-Fi" in page
    assert "df-hit-known_error" not in Browser(app, "alice").get("/?q=printer").get_data(as_text=True)


def test_the_incident_form_lists_known_errors_for_the_browser_to_filter(app, service):
    known_error(service)
    known_error(service, "Printers offline on floor 3", "printing")
    page = Browser(app, "bob").get("/items/report-incident").get_data(as_text=True)
    assert 'data-df-known-errors data-service-field="affected_service"' in page
    assert f"Known error: VPN drops on Wi-Fi — Workaround: {escape(WORKAROUND)}" in page
    assert 'data-service="printing"' in page and 'data-service="network"' in page


def test_a_form_that_comes_back_shows_only_the_matching_known_errors(app, service):
    known_error(service)
    known_error(service, "Printers offline on floor 3", "printing")
    response = Browser(app, "bob").post("/items/report-incident", data={
        **{k: v for k, v in VPN.items() if k != "people_affected"}, "short_description": "x"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Known error: VPN drops on Wi-Fi" in page
    assert "Printers offline on floor 3" not in page


def test_resolving_a_problem_offers_and_resolves_its_open_incidents(app, service):
    first, second = incident(service), incident(service, "bob")
    number = service.create_problem("frank", [first.number, second.number], {
        "short_description": "VPN drops", "service": "network"}).number
    heidi = Browser(app, "heidi")
    page = heidi.get(f"/requests/{number}").get_data(as_text=True)
    assert "Also resolve these 2 incidents with this resolution" in page
    response = heidi.post(f"/requests/{number}/resolve", data={
        "resolution_code": "fixed", "resolution_notes": "Patched the Wi-Fi controller.",
        "also_resolve_incidents": "yes"})
    assert response.status_code == 302
    page = heidi.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{first.number}: resolved." in page and f"{second.number}: resolved." in page
    assert reload(service, second.number).resolution_code == "fixed"
