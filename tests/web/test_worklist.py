"""The agents' list (/records): filters, 422s, saved and shared views, bulk actions."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from engine.models import Comment, Request, SavedView
from tests.acme import ACME_ANSWERS


def incident(service, who="alice", **answers) -> str:
    return service.submit("report-incident", who, {**ACME_ANSWERS["report-incident"], **answers}).number


def reload(service, number) -> Request:
    with service.sessions() as s:
        return s.scalar(select(Request).where(Request.number == number))


def listed(html: str) -> list[str]:
    return re.findall(r'name="numbers" value="([^"]+)"', html)


@pytest.fixture
def two(service):
    """Mail is down (alice), Printer on fire (bob, assigned to frank)."""
    mail = incident(service)
    printer = incident(service, "bob", short_description="Printer on fire", impact="low",
                       urgency="low")
    service.edit_record(printer, "frank", {"assignee": "frank"})
    return mail, printer


def test_an_agent_sees_every_record_with_its_columns(client, auth, two):
    mail, printer = two
    auth.login("grace")
    html = client.get("/records").get_data(as_text=True)
    assert listed(html) == [printer, mail]
    row = html[html.index(f'value="{printer}"'):html.index(f'value="{mail}"')]
    for text in ("Printer on fire", "Incident", "Service Desk", "Frank", "Bob Bakker", "On track"):
        assert text in row
    assert '<p class="text-body-secondary" id="count">2 records</p>' in html
    assert 'href="/records">Records</a>' in html


def test_someone_who_is_no_agent_is_refused(client, auth, two):
    auth.login("alice")
    response = client.get("/records")
    assert response.status_code == 403
    assert "only agents see the list of records" in response.get_data(as_text=True)


def test_filters_narrow_the_list(client, auth, two):
    mail, printer = two
    auth.login("frank")
    assert listed(client.get("/records?assignee=me").get_data(as_text=True)) == [printer]
    assert listed(client.get("/records?assignee=unassigned").get_data(as_text=True)) == [mail]
    assert listed(client.get("/records?q=fire&kind=incident").get_data(as_text=True)) == [printer]
    assert listed(client.get("/records?requester=alice&sort=number").get_data(as_text=True)) == [mail]
    assert listed(client.get("/records?sla=breached").get_data(as_text=True)) == []


def test_the_search_finds_what_was_written_on_the_record_page(client, auth, post, two):
    mail, printer = two
    auth.login("frank")
    page = f"/requests/{printer}"
    post(f"{page}/comment", {"body": "Replaced the fuser: 100%_fixed"}, page=page)
    post(f"{page}/comment", {"body": "Caller kicked the tray", "internal": "yes"}, page=page)
    assert listed(client.get("/records?q=100%25_FIX").get_data(as_text=True)) == [printer]
    assert listed(client.get("/records?q=0%25_").get_data(as_text=True)) == [printer]
    assert listed(client.get("/records?q=100__").get_data(as_text=True)) == []
    assert listed(client.get("/records?q=kicked").get_data(as_text=True)) == [printer]
    assert listed(client.get(f"/records?q={mail}").get_data(as_text=True)) == [mail]
    assert listed(client.get("/records?q=third+floor&kind=incident&status=open")
                  .get_data(as_text=True)) == [printer, mail]


def test_a_bad_filter_is_a_422_that_names_it(client, auth, two):
    auth.login("frank")
    response = client.get("/records?kind=bug&created_from=yesterday&colour=red")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert ("Some filters are not right: kind: bug is not one of: request, incident, problem, "
            "change.; created_from: yesterday is not a date (YYYY-MM-DD).; colour: Unknown filter "
            "colour.") in html
    assert listed(html) == []


def test_the_sidebar_shows_the_shared_views_with_their_counts(client, auth, two, service):
    mail, printer = two
    with service.sessions.begin() as s:
        s.execute(update(Request).where(Request.number == mail).values(sla_state="breached"))
    auth.login("frank")
    html = client.get("/records").get_data(as_text=True)
    shared = html[html.index('id="shared-views"'):html.index('id="my-views"')]
    assert re.search(r'>My open records</a> <span [^>]*>1</span>', shared)
    assert re.search(r'>Unassigned incidents</a> <span [^>]*>1</span>', shared)
    assert re.search(r'>Breached</a> <span [^>]*>1</span>', shared)
    breached = re.search(r'href="(/records\?[^"]*)">Breached<', shared).group(1)
    assert listed(client.get(breached.replace("&amp;", "&")).get_data(as_text=True)) == [mail]


def test_the_sidebar_counts_again_once_a_record_changed(client, auth, two, service):
    mail, printer = two
    auth.login("frank")

    def mine() -> str:
        html = client.get("/records").get_data(as_text=True)
        return re.search(r'>My open records</a> <span [^>]*>([^<]+)</span>', html).group(1)

    assert mine() == "1"
    with service.sessions.begin() as s:  # not through the service: no record changed for it
        s.execute(update(Request).where(Request.number == mail).values(assignee_id="frank"))
    assert mine() == "1"  # counted a moment ago (web.worklist.COUNTS_TTL)
    service.edit_record(mail, "frank", {"title": "Mail is down for the whole floor"})
    assert mine() == "2"


def test_an_agent_saves_opens_and_deletes_a_view(client, auth, post, two, service):
    mail, printer = two
    auth.login("frank")
    response = post("/records/views", {"name": "Mine", "query": "assignee=me&kind=incident"},
                    page="/records")
    assert response.status_code == 302
    assert response.headers["Location"] == "/records?assignee=me&kind=incident"
    html = client.get("/records").get_data(as_text=True)
    mine = html[html.index('id="my-views"'):]
    assert re.search(r'href="/records\?assignee=me&amp;kind=incident">Mine</a>\s*<span [^>]*>1</span>',
                     mine)
    again = post("/records/views", {"name": "Mine", "query": ""}, page="/records")
    assert again.status_code == 409
    assert "The view was not saved: You already have a view named Mine." in again.get_data(as_text=True)
    with service.sessions() as s:
        view_id = s.scalar(select(SavedView.id).where(SavedView.person_id == "frank"))
    auth.logout()
    auth.login("grace")
    assert post(f"/records/views/{view_id}/delete", page="/records").status_code == 404
    auth.logout()
    auth.login("frank")
    assert post(f"/records/views/{view_id}/delete", page="/records").status_code == 302
    with service.sessions() as s:
        assert s.scalar(select(SavedView.id)) is None


def test_a_view_with_a_bad_filter_is_not_saved(client, auth, post, two, service):
    auth.login("frank")
    response = post("/records/views", {"name": "Odd", "query": "sla=late"}, page="/records")
    assert response.status_code == 422
    assert ("The view was not saved: late is not one of: on_track, at_risk, breached, paused."
            in response.get_data(as_text=True))
    with service.sessions() as s:
        assert s.scalar(select(SavedView.id)) is None


def test_bulk_assign_reports_each_row_done_refused_or_conflict(client, auth, post, two, service):
    mail, printer = two
    other = incident(service, short_description="VPN flaps")
    seen = reload(service, other).lock_version
    service.edit_record(other, "grace", {"title": "VPN flaps hourly"})  # changed since the page
    auth.login("grace")
    response = post("/records/bulk", {
        "numbers": [mail, printer, other, "INC-999999"], "action": "assign",
        "assignee": "grace", f"seen-{other}": str(seen),
        f"seen-{mail}": str(reload(service, mail).lock_version)}, page="/records")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "2 of 4 done." in html
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>.*?badge[^>]*>(\w+)</span></td>\s*<td>(.*?)</td>",
                      html, re.S)
    results = {re.sub(r"<[^>]+>", "", n): (r, d) for n, r, d in rows}
    assert results[mail] == ("done", "Updated.")
    assert results[printer] == ("done", "Updated.")
    assert results[other] == (
        "conflict", f"{other} changed since you loaded it (it is now triage); reload and try again")
    assert results["INC-999999"] == ("refused", "no request INC-999999")
    assert reload(service, mail).assignee_id == "grace"
    assert reload(service, other).assignee_id is None


def test_bulk_priority_goes_through_edit_record_and_reranks(client, auth, post, two, service):
    mail, printer = two
    auth.login("frank")
    html = post("/records/bulk", {"numbers": [printer], "action": "priority", "impact": "high",
                                  "urgency": "high"}, page="/records").get_data(as_text=True)
    assert "1 of 1 done." in html
    req = reload(service, printer)
    assert (req.impact, req.urgency) == ("high", "high")
    assert f"Priority {req.priority}." in html


def test_bulk_comment_adds_an_internal_note_per_row(client, auth, post, two, service):
    mail, printer = two
    auth.login("grace")
    html = post("/records/bulk", {"numbers": [mail, printer], "action": "comment",
                                  "body": "Looking into it.", "visibility": "internal"},
                page="/records").get_data(as_text=True)
    assert "2 of 2 done." in html
    with service.sessions() as s:
        notes = s.scalars(select(Comment).where(Comment.body == "Looking into it.")).all()
    assert [c.internal for c in notes] == [True, True]


def test_bulk_refuses_rows_the_agent_may_not_edit(client, auth, post, two, service):
    mail, printer = two
    auth.login("judy")  # an identity and security agent: no part in service-desk records
    html = post("/records/bulk", {"numbers": [mail], "action": "assign",
                                  "assignee": "judy"}, page="/").get_data(as_text=True)
    assert "0 of 1 done." in html
    # acting follows the record's own permissions: judy takes no part in it, so it is not found
    assert re.search(rf"<td>{mail}</td>\s*<td></td>\s*<td><span [^>]*>refused</span></td>\s*"
                     rf"<td>no request {mail}</td>", html)
    assert reload(service, mail).assignee_id is None


def test_a_bulk_action_without_rows_or_values_changes_nothing(client, auth, post, two):
    auth.login("grace")
    response = post("/records/bulk", {"action": "assign"}, page="/records")
    assert response.status_code == 422
    assert "Select at least one record." in response.get_data(as_text=True)
    mail, printer = two
    response = post("/records/bulk", {"numbers": [mail], "action": "assign"}, page="/records")
    assert response.status_code == 422
    assert "Nothing was changed: Choose a group, an assignee or both." in response.get_data(as_text=True)
    response = post("/records/bulk", {"numbers": [mail], "action": "close"}, page="/records")
    assert response.status_code == 422
    assert "Nothing was changed: Choose assign, set priority or comment." in response.get_data(as_text=True)


def test_the_demo_gives_frank_a_view_of_his_crm_work_beside_the_shared_ones(app, client, auth):
    from web.demo import seed_demo

    state = app.extensions["deskflow"]
    created = seed_demo(state.service, state.sessions)
    auth.login("frank")
    html = client.get("/records").get_data(as_text=True)
    mine = html[html.index('id="my-views"'):]
    assert re.search(r">My CRM work</a>\s*<span [^>]*>1</span>", mine)
    crm = created["incident claimed by frank"]
    assert listed(client.get("/records?assignee=me&category=CRM").get_data(as_text=True)) == [crm]
