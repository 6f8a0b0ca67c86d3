"""Fulfiller queues and task actions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from engine.models import Approval, Comment, Request, Task
from tests.acme import ACME_ANSWERS

LAPTOP = dict(ACME_ANSWERS["new-laptop"])
INCIDENT = {"short_description": "Mail is down", "affected_service": "email",
            "description": "Nobody on the third floor can send or receive mail.",
            "impact": "high", "people_affected": 40, "urgency": "high",
            "contact_email": "alice@acme.example"}
RELOAD = "The page is out of date or incomplete; reload it and try again."


def reload(service, number: str) -> Request:
    with service.sessions() as s:
        return s.scalar(select(Request).where(Request.number == number))


def task_of(service, number: str) -> Task:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return s.scalars(select(Task).where(Task.request_id == req.id).order_by(Task.id)).all()[-1]


def approved_laptop(service, who: str = "alice") -> Request:
    req = service.submit("new-laptop", who, LAPTOP)
    with service.sessions() as s:
        appr = s.scalar(select(Approval).where(Approval.request_id == req.id))
    service.approve(appr.id, appr.approver_id)
    return reload(service, req.number)


def incident(service, who: str = "alice", **answers) -> Request:
    return service.submit("report-incident", who, {**INCIDENT, **answers})


def version(service, number: str) -> int:
    return reload(service, number).lock_version


@pytest.fixture
def laptop(service) -> Request:
    return approved_laptop(service)


# ---------------------------------------------------------------- queues

def test_queues_list_the_agents_groups_with_counts(client, auth, laptop, service):
    incident(service)
    auth.login("frank")
    html = client.get("/queues").get_data(as_text=True)
    assert re.search(r'<a href="/queues/it-hardware">IT Hardware</a>.*?</td>\s*<td>1</td>\s*<td>1</td>',
                     html, re.S)
    assert re.search(r'<a href="/queues/service-desk">Service Desk \(tier 1\)</a>.*?</td>\s*<td>1</td>',
                     html, re.S)
    assert "/queues/it-ops" not in html


def test_admins_see_every_queue(client, auth):
    auth.login("erin")
    html = client.get("/queues").get_data(as_text=True)
    assert '<a href="/queues/facilities">Facilities</a>' in html
    assert "/queues/employees" not in html


def test_someone_in_no_queue(client, auth):
    auth.login("bob")  # in the employees group, which gets no tasks
    assert "You are not in any queue." in client.get("/queues").get_data(as_text=True)


def test_frank_sees_the_laptop_task_after_approval(client, auth, laptop, service):
    task = task_of(service, laptop.number)
    auth.login("frank")
    html = client.get("/queues/it-hardware").get_data(as_text=True)
    assert '<a href="/requests/REQ-000001">REQ-000001</a>' in html
    assert f'<a href="/tasks/{task.id}">Laptop std14 for Alice Jansen</a>' in html
    assert "<td>New laptop</td>" in html
    assert "<td>Medium</td>" in html
    assert '<span class="text-body-secondary">unassigned</span>' in html
    assert f'name="claim-seen_version" value="{laptop.lock_version}"' in html
    assert "1 open task." in html


@pytest.mark.parametrize(("person", "url"), [
    ("alice", "/queues/it-hardware"), ("peter", "/queues/it-hardware"),
    ("frank", "/queues/it-ops"), ("frank", "/queues/nope"), ("frank", "/queues/" + "x" * 300),
])
def test_non_members_get_404_on_a_queue(client, auth, person, url):
    auth.login(person)
    assert client.get(url).status_code == 404


def test_sorting_filtering_and_paging_a_queue(client, auth, service):
    reqs = [incident(service, urgency="high" if i % 10 == 0 else "low") for i in range(30)]
    ids = [task_of(service, r.number).id for r in reqs]
    soon = datetime.now(UTC) + timedelta(hours=1)
    with service.sessions.begin() as s:  # the SLA clock of the 20th is closest
        s.execute(update(Task).where(Task.id == ids[19]).values(due_at=soon))
        s.execute(update(Task).where(Task.id == ids[5]).values(due_at=soon - timedelta(hours=3)))
    service.claim_task(ids[3], "frank")
    service.claim_task(ids[4], "grace")
    auth.login("frank")

    def numbers(url: str) -> list[str]:
        return re.findall(r'<td><a href="/requests/(REQ-\d+)">', client.get(url).get_data(as_text=True))

    first = numbers("/queues/service-desk")
    assert len(first) == 25
    assert first[:2] == [reqs[5].number, reqs[19].number]  # overdue first, then due soonest
    assert numbers("/queues/service-desk?page=2") == [reqs[i].number for i in (25, 26, 27, 28, 29)]
    assert numbers("/queues/service-desk?sort=new")[0] == reqs[29].number
    assert numbers("/queues/service-desk?sort=old")[:2] == [reqs[0].number, reqs[1].number]
    assert numbers("/queues/service-desk?priority=p1") == [reqs[i].number for i in (0, 10, 20)]
    assert numbers("/queues/service-desk?assignee=mine") == [reqs[3].number]
    assert len(numbers("/queues/service-desk?assignee=unassigned")) == 25
    assert len(numbers("/queues/service-desk?assignee=unassigned&page=2")) == 3
    html = client.get("/queues/service-desk?sort=new&priority=p1").get_data(as_text=True)
    assert "3 open tasks." in html
    assert 'class="page-link"' not in html
    html = client.get("/queues/service-desk?sort=new").get_data(as_text=True)
    assert ('<a class="page-link" href="/queues/service-desk?page=2&amp;sort=new&amp;priority=&amp;'
            'assignee=all">2</a>') in html
    assert '<span class="badge text-bg-danger">overdue</span>' in html
    assert html.count("overdue</span>") == 1
    # nonsense filters fall back to the defaults instead of failing
    assert numbers("/queues/service-desk?sort=evil&priority=p9&assignee=x&page=zz") == first
    assert numbers("/queues/service-desk?page=\u00b2") == first


# ---------------------------------------------------------------- one task

def test_the_task_page(client, auth, laptop, service):
    task = task_of(service, laptop.number)
    auth.login("frank")
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "<h1 class=\"h3\">Laptop std14 for Alice Jansen</h1>" in html
    assert "Image a std14 laptop with the standard Acme build" in html
    assert re.search(r"<dt[^>]*>Cost center</dt>\s*<dd[^>]*>\s*CC-1234\s*</dd>", html)
    assert '<label class="form-label" for="answer-serial_number">Serial number</label>' in html
    assert '<label class="form-label" for="reassign-to">Assign to</label>' in html
    assert '<label class="form-check-label" for="comment-internal">' in html
    assert "Escalate to the next tier" not in html  # it-hardware has no next tier
    assert 'for="complete-outcome"' not in html  # one outcome: no select


@pytest.mark.parametrize("person", ["alice", "peter", "grace", "carol"])
def test_non_members_get_404_on_task_pages_and_actions(client, auth, post, laptop, service, person):
    task = task_of(service, laptop.number)
    auth.login(person)
    assert client.get(f"/tasks/{task.id}").status_code == 404
    v = laptop.lock_version
    for action, data in (("claim", {"claim-seen_version": v}),
                         ("reassign", {"reassign-seen_version": v, "reassign-to": person}),
                         ("escalate", {"escalate-seen_version": v}),
                         ("ask", {"ask-seen_version": v, "ask-question": "Which colour?"}),
                         ("comment", {"comment-seen_version": v, "comment-body": "Hello"}),
                         ("complete", {"complete-seen_version": v, "answer-serial_number": "SN1"})):
        assert post(f"/tasks/{task.id}/{action}", data).status_code == 404, action
    assert task_of(service, laptop.number).assignee_id is None


def test_the_approver_who_decided_reads_the_task_but_may_not_act(client, auth, post, laptop, service):
    task = task_of(service, laptop.number)  # bob approved the laptop
    auth.login("bob")
    assert READ_ONLY in client.get(f"/tasks/{task.id}").get_data(as_text=True)
    response = post(f"/tasks/{task.id}/claim", {"claim-seen_version": laptop.lock_version})
    assert response.status_code == 403
    assert task_of(service, laptop.number).assignee_id is None


def test_claim_then_a_second_claim_conflicts(client, auth, post, laptop, service):
    task = task_of(service, laptop.number)
    auth.login("frank")
    response = post(f"/tasks/{task.id}/claim", {"claim-seen_version": laptop.lock_version},
                    page="/queues/it-hardware")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/tasks/{task.id}"
    assert task_of(service, laptop.number).assignee_id == "frank"
    html = client.get("/queues/it-hardware").get_data(as_text=True)
    assert "<td>Frank Smit</td>" in html
    assert '<span class="badge text-bg-success">yours</span>' in html
    auth.logout()
    auth.login("heidi")
    response = post(f"/tasks/{task.id}/claim", {"claim-seen_version": version(service, laptop.number)})
    assert response.status_code == 409
    assert f"task {task.id} is already claimed by frank" in response.get_data(as_text=True)
    stale = post(f"/tasks/{task.id}/claim", {"claim-seen_version": laptop.lock_version})
    assert stale.status_code == 409
    assert task_of(service, laptop.number).assignee_id == "frank"


def test_reassign_to_a_queue_member(client, auth, post, laptop, service):
    task = task_of(service, laptop.number)
    service.claim_task(task.id, "frank")
    auth.login("frank")
    url = f"/tasks/{task.id}/reassign"
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert '<option selected value="frank">Frank Smit</option>' in html
    assert '<option value="heidi">Heidi de Groot</option>' in html
    response = post(url, {"reassign-seen_version": version(service, laptop.number), "reassign-to": "peter"})
    assert response.status_code == 422
    assert ('<div id="reassign-to-error" class="invalid-feedback d-block" role="alert">'
            "Pick someone in it-hardware.</div>") in response.get_data(as_text=True)
    response = post(url, {"reassign-seen_version": version(service, laptop.number), "reassign-to": "heidi"})
    assert response.status_code == 302
    assert task_of(service, laptop.number).assignee_id == "heidi"
    assert "REQ-000001 is now assigned to Heidi de Groot." in client.get(
        f"/tasks/{task.id}").get_data(as_text=True)
    stale = post(url, {"reassign-seen_version": laptop.lock_version, "reassign-to": "frank"})
    assert stale.status_code == 409
    assert task_of(service, laptop.number).assignee_id == "heidi"


def test_escalate_a_tier_one_incident(client, auth, post, service):
    req = incident(service)
    task = task_of(service, req.number)
    auth.login("frank")
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Escalate to the next tier" in html
    assert '<label class="form-label" for="complete-outcome">Outcome</label>' in html
    response = post(f"/tasks/{task.id}/escalate",
                    {"escalate-seen_version": req.lock_version, "escalate-reason": "Needs a server"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/queues/service-desk"
    moved = task_of(service, req.number)
    assert (moved.queue, moved.tier, moved.assignee_id) == ("it-ops", 1, None)
    assert client.get(f"/tasks/{task.id}").status_code == 200  # he worked it: he may read it
    auth.logout()
    auth.login("heidi")
    html = client.get("/queues/it-ops").get_data(as_text=True)
    assert f'<a href="/tasks/{task.id}">Mail is down</a>' in html
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Escalate to the next tier" in html  # tier 3: picked by the category (email)
    response = post(f"/tasks/{task.id}/escalate",
                    {"escalate-seen_version": version(service, req.number)})
    assert response.status_code == 302
    assert task_of(service, req.number).queue == "apps-team"
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Escalate to the next tier" not in html  # apps-team is the last tier
    response = post(f"/tasks/{task.id}/escalate",
                    {"escalate-seen_version": version(service, req.number)})
    assert response.status_code == 409
    assert f"task {task.id} is already at its last tier (apps-team)" in response.get_data(as_text=True)


READ_ONLY = "You worked on this request before: you may read it, but not act on it."


def test_the_tier_one_agent_who_escalated_keeps_reading_but_may_not_act(client, auth, post, service):
    req = incident(service)
    task = task_of(service, req.number)
    service.claim_task(task.id, "frank")
    service.escalate_task(task.id, "frank", "Needs a server")
    service.comment(req.number, "heidi", "Rebooting the relay.", internal=True)
    v = version(service, req.number)
    auth.login("frank")
    page = client.get(f"/requests/{req.number}")
    assert page.status_code == 200
    assert READ_ONLY in page.get_data(as_text=True)
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert READ_ONLY in html
    assert "Mail is down" in html
    assert "Rebooting the relay." not in html  # internal notes are for who works it now
    assert 'id="complete-title"' not in html and 'id="comment-title"' not in html
    for action, data in (("claim", {"claim-seen_version": v}),
                         ("reassign", {"reassign-seen_version": v, "reassign-to": "frank"}),
                         ("escalate", {"escalate-seen_version": v}),
                         ("ask", {"ask-seen_version": v, "ask-question": "Still down?"}),
                         ("comment", {"comment-seen_version": v, "comment-body": "Hello"}),
                         ("complete", {"complete-seen_version": v, "complete-outcome": "resolved"})):
        response = post(f"/tasks/{task.id}/{action}", data)
        assert response.status_code == 403, action
        assert (f"frank may read task {task.id} but is not in the it-ops queue"
                in response.get_data(as_text=True)), action
    response = post(f"/requests/{req.number}/comment", {"body": "Any luck?"})
    assert response.status_code == 403
    assert (f"frank worked on {req.number} once and may read it, but no longer takes part in it"
            in response.get_data(as_text=True))
    assert version(service, req.number) == v
    moved = task_of(service, req.number)
    assert (moved.queue, moved.assignee_id, moved.status) == ("it-ops", None, "open")
    auth.logout()
    auth.login("grace")  # also tier 1, but never touched it
    assert client.get(f"/tasks/{task.id}").status_code == 404
    assert client.get(f"/requests/{req.number}").status_code == 404


def test_complete_with_the_fulfillers_form(client, auth, post, laptop, service):
    task = task_of(service, laptop.number)
    service.claim_task(task.id, "frank")
    auth.login("frank")
    url = f"/tasks/{task.id}/complete"
    response = post(url, {"complete-seen_version": version(service, laptop.number),
                          "answer-serial_number": ""})
    assert response.status_code == 422
    assert ('<div id="answer-serial_number-error" class="invalid-feedback d-block" role="alert">'
            "This field is required.</div>") in response.get_data(as_text=True)
    assert reload(service, laptop.number).status == "open"
    response = post(url, {"complete-seen_version": version(service, laptop.number),
                          "answer-serial_number": "x" * 41})
    assert response.status_code == 422
    assert "Must be at most 40 characters." in response.get_data(as_text=True)
    response = post(url, {"complete-seen_version": version(service, laptop.number),
                          "answer-serial_number": "SN-4711", "answer-shipped_with_dock": "y",
                          "complete-comment": "Shipped by courier"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/queues/it-hardware"
    done = reload(service, laptop.number)
    assert (done.status, done.outcome) == ("closed", "fulfilled")
    finished = task_of(service, laptop.number)
    assert finished.answers == {"serial_number": "SN-4711", "shipped_with_dock": True}
    assert (finished.status, finished.completed_by_id) == ("done", "frank")


def test_complete_with_an_outcome(client, auth, post, service):
    req = incident(service)
    task = task_of(service, req.number)
    auth.login("frank")
    url = f"/tasks/{task.id}/complete"
    response = post(url, {"complete-seen_version": req.lock_version, "complete-outcome": "bogus",
                          "answer-resolution_notes": "Restarted the mail relay."})
    assert response.status_code == 422
    assert ('<div id="complete-outcome-error" class="invalid-feedback d-block" role="alert">'
            "Choose one of: resolved, duplicate.</div>") in response.get_data(as_text=True)
    response = post(url, {"complete-seen_version": req.lock_version, "complete-outcome": "duplicate",
                          "answer-resolution_notes": "Same as REQ-000000."})
    assert response.status_code == 302
    done = reload(service, req.number)
    assert (done.status, done.outcome) == ("closed", "duplicate")


def test_ask_the_requester(client, auth, post, laptop, service):
    task = task_of(service, laptop.number)
    auth.login("frank")
    url = f"/tasks/{task.id}/ask"
    response = post(url, {"ask-seen_version": laptop.lock_version, "ask-question": "  "})
    assert response.status_code == 422
    assert ('<div id="ask-question-error" class="invalid-feedback d-block" role="alert">'
            "This field is required.</div>") in response.get_data(as_text=True)
    response = post(url, {"ask-seen_version": laptop.lock_version,
                          "ask-question": "Which floor exactly?"})
    assert response.status_code == 302
    waiting = reload(service, laptop.number)
    assert waiting.waiting_on_requester is True
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Waiting for the requester to answer a question." in html
    assert "Which floor exactly?" in html
    assert 'id="ask-title"' not in html
    again = post(url, {"ask-seen_version": waiting.lock_version, "ask-question": "And?"})
    assert again.status_code == 409


def test_public_comments_and_internal_notes(client, auth, post, laptop, service):
    task = task_of(service, laptop.number)
    auth.login("frank")
    url = f"/tasks/{task.id}/comment"
    assert post(url, {"comment-seen_version": laptop.lock_version,
                      "comment-body": "Imaging today."}).status_code == 302
    assert post(url, {"comment-seen_version": laptop.lock_version, "comment-body": "Old stock?",
                      "comment-internal": "y"}).status_code == 302
    with service.sessions() as s:
        rows = [(c.body, c.internal) for c in s.scalars(select(Comment).order_by(Comment.id))]
    assert rows == [("Imaging today.", False), ("Old stock?", True)]
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Internal note added." in html
    assert '<span class="badge text-bg-secondary">internal</span>' in html
    response = post(url, {"comment-seen_version": laptop.lock_version, "comment-body": ""})
    assert response.status_code == 422
    assert ('<div id="comment-body-error" class="invalid-feedback d-block" role="alert">'
            "This field is required.</div>") in response.get_data(as_text=True)


@pytest.mark.parametrize(("action", "data"), [
    ("claim", {}),
    ("claim", {"claim-seen_version": "-1"}),
    ("claim", {"claim-seen_version": "9" * 40}),
    ("claim", {"claim-seen_version": "\u00b2"}),
    ("reassign", {"reassign-to": "heidi"}),
    ("complete", {"complete-seen_version": "abc", "answer-serial_number": "SN1"}),
    ("ask", {"ask-seen_version": "1.5", "ask-question": "Why?"}),
])
def test_malformed_task_actions_are_422(client, auth, post, laptop, service, action, data):
    task = task_of(service, laptop.number)
    auth.login("frank")
    response = post(f"/tasks/{task.id}/{action}", data)
    assert response.status_code == 422
    assert RELOAD in response.get_data(as_text=True)
    assert task_of(service, laptop.number).assignee_id is None


def test_unknown_tasks_and_missing_csrf(client, auth, post, laptop, service):
    task = task_of(service, laptop.number)
    auth.login("frank")
    assert client.get("/tasks/999999").status_code == 404
    assert client.get(f"/tasks/{10**30}").status_code == 404
    assert post("/tasks/999999/claim", {"claim-seen_version": "1"}).status_code == 404
    response = client.post(f"/tasks/{task.id}/claim", data={"claim-seen_version": laptop.lock_version})
    assert response.status_code == 400
    assert task_of(service, laptop.number).assignee_id is None


def test_a_finished_task_offers_no_actions(client, auth, laptop, service):
    task = task_of(service, laptop.number)
    service.complete_task(task.id, "frank", answers={"serial_number": "SN1"})
    auth.login("frank")
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "This task is done (done)." in html
    assert f'action="/tasks/{task.id}/complete"' not in html
