"""My requests and the request page: answers, state, timeline, approvals, diagram and actions."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.models import Request
from tests.acme import ACME_ANSWERS
from tests.web.conftest import csrf_token

LAPTOP = {**ACME_ANSWERS["new-laptop"], "floor": 3}


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def laptop(service):
    """Alice's laptop request, waiting for Bob (her manager)."""
    return service.submit("new-laptop", "alice", dict(LAPTOP)).number


def version(client, number: str) -> str:
    match = re.search(r'name="seen_version" value="(\d+)"', text(client.get(f"/requests/{number}")))
    assert match, "no seen_version on the page"
    return match.group(1)


def lock_version(app, number: str) -> int:
    with app.app_context():
        from web.extensions import db

        return db.session.scalar(select(Request.lock_version).where(Request.number == number))


def act(client, number: str, action: str, data: dict | None = None):
    """POST an action from the request page, with the page's CSRF token."""
    token = csrf_token(text(client.get("/requests")))
    return client.post(f"/requests/{number}/{action}", data={"csrf_token": token, **(data or {})})


# ---------------------------------------------------------------- my requests


def rows(page: str) -> list[str]:
    return re.findall(r'<td><a href="/requests/(REQ-\d+)">', page)


def test_my_requests_lists_what_i_asked_for_and_what_was_asked_for_me(client, auth, service):
    mine = service.submit("new-laptop", "alice", dict(LAPTOP)).number
    for_me = service.submit("new-laptop", "bob", dict(LAPTOP), requested_for="alice").number
    other = service.submit("new-laptop", "bob", dict(LAPTOP)).number
    auth.login("alice")
    page = text(client.get("/requests"))
    assert rows(page) == [for_me, mine]
    assert other not in page
    assert "2 requests" in page
    assert "<td>Alice Jansen</td>" in page
    assert '<span class="ms-1">Waiting for your manager</span>' in page


def test_my_requests_filter_by_status(client, auth, service):
    open_one = service.submit("new-laptop", "alice", dict(LAPTOP)).number
    closed = service.submit("new-laptop", "alice", dict(LAPTOP)).number
    service.cancel(closed, "alice", "changed my mind")
    auth.login("alice")
    assert rows(text(client.get("/requests?status=open"))) == [open_one]
    assert rows(text(client.get("/requests?status=closed"))) == [closed]
    assert rows(text(client.get("/requests?status=all"))) == [closed, open_one]
    assert rows(text(client.get("/requests?status=bogus"))) == [closed, open_one]
    page = text(client.get("/requests?status=closed"))
    assert '<option value="closed" selected>Closed</option>' in page


def test_my_requests_search_by_number_or_item(client, auth, service):
    laptop = service.submit("new-laptop", "alice", dict(LAPTOP)).number
    unlock = service.submit("password-unlock", "alice", {"account": "acme"}).number
    auth.login("alice")
    assert rows(text(client.get(f"/requests?q={laptop}"))) == [laptop]
    assert rows(text(client.get("/requests?q=UNLOCK"))) == [unlock]
    page = text(client.get("/requests?q=submarine"))
    assert rows(page) == []
    assert "No requests match." in page


def test_my_requests_pages(client, auth, service):
    numbers = [service.submit("password-unlock", "alice", {"account": "acme"}).number
               for _ in range(27)]
    auth.login("alice")
    first = text(client.get("/requests?status=closed&q=unlock"))
    assert rows(first) == numbers[::-1][:25]
    assert '<a class="page-link" href="/requests?page=2&amp;status=closed&amp;q=unlock">2</a>' in first
    second = text(client.get("/requests?page=2&status=closed&q=unlock"))
    assert rows(second) == numbers[::-1][25:]
    assert rows(text(client.get("/requests?page=abc"))) == numbers[::-1][:25]
    assert rows(text(client.get("/requests?page=999"))) == numbers[::-1][25:]


# ---------------------------------------------------------------- the request page


def test_the_request_page_shows_answers_state_timeline_and_approvals(client, auth, laptop):
    auth.login("alice")
    response = client.get(f"/requests/{laptop}")
    page = text(response)
    assert response.status_code == 200
    assert f"<h1 class=\"h3 mb-1\">{laptop} · New laptop</h1>" in page
    assert '<span class="df-state">Waiting for your manager</span>' in page
    assert ('<dt class="col-sm-4">Model</dt>\n          <dd class="col-sm-8">\n            '
            '<span class="df-answer">Standard 14-inch (16 GB RAM, 512 GB SSD)</span>') in page
    answers = re.findall(r'<dt class="col-sm-4">([^<]+)</dt>', page)
    assert answers == ["Model", "Cost center", "Deliver to", "Floor"]  # empty and hidden ones left out
    assert '<span class="df-answer">Amsterdam HQ (Zuidas)</span>' in page
    assert "<strong>Submitted</strong>" in page
    assert "<strong>Approval requested</strong>" in page
    assert '<div class="small">From Bob Bakker</div>' in page
    assert ('<span class="fw-semibold">Bob Bakker</span>\n              '
            '<span class="badge text-bg-warning">pending</span>') in page
    assert "<dt class=\"col-6\">Resolution due</dt>" in page
    assert '<span class="badge text-bg-success">On track</span>' in page


def test_the_request_page_draws_the_workflow_with_the_current_state(client, auth, laptop):
    auth.login("alice")
    page = text(client.get(f"/requests/{laptop}"))
    figure = re.search(r'<figure class="df-diagram[^"]*">(.*?)</figure>', page, re.S)
    assert figure and figure.group(1).startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "current state: Waiting for your manager</desc>" in figure.group(1)
    assert 'style="' not in page  # CSP: no inline styles
    response = client.get(f"/requests/{laptop}/diagram.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Content-Disposition"] == f'inline; filename="{laptop}.svg"'
    assert "current state: Waiting for your manager" in text(response)


def test_a_table_answer_is_shown_as_a_table(client, auth, service):
    number = service.submit("monitor-peripherals", "alice", {
        "accessories": [{"accessory": "dock", "quantity": 1}, {"accessory": "mouse", "quantity": 2}],
        "building": "home", "home_address": "Damrak 1, Amsterdam"}).number
    auth.login("alice")
    page = text(client.get(f"/requests/{number}"))
    assert ("<thead><tr><th scope=\"col\">Accessory</th><th scope=\"col\">Quantity</th></tr></thead>\n"
            "                <tbody><tr><td>USB-C docking station</td><td>1</td></tr>"
            "<tr><td>Mouse</td><td>2</td></tr></tbody>") in page
    assert "Floor" not in re.findall(r'<dt class="col-sm-4">([^<]+)</dt>', page)


def test_the_approver_sees_the_request_but_cannot_cancel_it(client, auth, laptop):
    auth.login("bob")
    page = text(client.get(f"/requests/{laptop}"))
    assert "Cancel request" not in page
    # the cancel form is not there; send the request's real version, as a crafted POST would
    response = act(client, laptop, "cancel", {"seen_version": str(lock_version(client.application, laptop))})
    assert response.status_code == 403


# ---------------------------------------------------------------- cancel


def test_cancel_and_cancel_again(client, auth, laptop):
    auth.login("alice")
    page = text(client.get(f"/requests/{laptop}"))
    assert 'data-confirm="Cancel ' + laptop + '? This cannot be undone.">Cancel request</button>' in page
    seen = version(client, laptop)
    response = act(client, laptop, "cancel", {"seen_version": seen, "reason": "Found a spare one"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/requests/{laptop}"
    page = text(client.get(f"/requests/{laptop}"))
    assert f"{laptop} is cancelled." in page
    assert '<span class="df-state">Cancelled</span>' in page
    assert "Reason: Found a spare one" in page
    assert "Cancel request" not in page
    again = act(client, laptop, "cancel", {"seen_version": seen})
    assert again.status_code == 409
    assert "changed since you loaded it" in text(again)
    fresh = act(client, laptop, "cancel", {"seen_version": str(lock_version(client.application, laptop))})
    assert fresh.status_code == 409
    assert f"{laptop} is already cancelled" in text(fresh)


def test_cancel_from_a_stale_page_is_a_conflict(client, auth, service, laptop):
    auth.login("alice")
    seen = version(client, laptop)
    service.comment(laptop, "alice", "touching the request")
    response = act(client, laptop, "cancel", {"seen_version": seen})
    assert response.status_code == 409
    assert "Something changed" in text(response)


@pytest.mark.parametrize("seen", ["", "abc", "-1", "1" * 40])
def test_cancel_needs_the_version_it_was_loaded_with(client, auth, laptop, seen):
    auth.login("alice")
    response = act(client, laptop, "cancel", {"seen_version": seen})
    assert response.status_code == 422
    assert '<div id="cancel-error" class="invalid-feedback d-block" role="alert">' \
           "Reload the page and try again.</div>" in text(response)


# ---------------------------------------------------------------- comments


def test_comment(client, auth, laptop):
    auth.login("alice")
    response = act(client, laptop, "comment", {"body": "Please <b>hurry</b>", "surprise": "x"})
    assert response.status_code == 302
    page = text(client.get(f"/requests/{laptop}"))
    assert "Your comment is added." in page
    assert '<div class="df-comment-body">Please &lt;b&gt;hurry&lt;/b&gt;</div>' in page
    assert 'id="internal"' not in page  # requesters write no internal notes


def test_an_empty_or_huge_comment_is_an_inline_error(client, auth, laptop):
    auth.login("alice")
    response = act(client, laptop, "comment", {"body": "   "})
    assert response.status_code == 422
    assert '<div id="body-error" class="invalid-feedback d-block" role="alert">' \
           "This field is required.</div>" in text(response)
    response = act(client, laptop, "comment", {"body": "x" * 10_001})
    assert response.status_code == 422
    assert "Must be at most 10000 characters." in text(response)
    response = act(client, laptop, "comment", {"body": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413


def test_an_internal_note_is_hidden_from_the_requester(client, auth, laptop):
    auth.login("erin")  # an admin works on every request
    page = text(client.get(f"/requests/{laptop}"))
    assert '<input class="form-check-input" type="checkbox" id="internal" name="internal" value="y">' in page
    assert act(client, laptop, "comment", {"body": "Budget is tight", "internal": "y"}).status_code == 302
    page = text(client.get(f"/requests/{laptop}"))
    assert "Your internal note is added." in page
    assert "Budget is tight" in page and '<span class="badge text-bg-warning ms-1">Internal</span>' in page
    auth.logout()
    auth.login("alice")
    assert "Budget is tight" not in text(client.get(f"/requests/{laptop}"))
    assert act(client, laptop, "comment", {"body": "sneaky", "internal": "y"}).status_code == 403


# ---------------------------------------------------------------- questions


def test_answer_a_question_from_an_agent(client, auth, service, laptop):
    auth.login("alice")
    assert 'name="answer"' not in text(client.get(f"/requests/{laptop}"))
    service.ask_requester(laptop, "erin", "Which desk exactly?")
    page = text(client.get(f"/requests/{laptop}"))
    assert '<p class="mb-2 df-question">Which desk exactly?</p>' in page
    assert '<label class="form-label" for="answer">Your answer</label>' in page
    assert '<span class="badge text-bg-secondary">Paused</span>' in page
    response = act(client, laptop, "answer", {"answer": "Desk 4.12"})
    assert response.status_code == 302
    page = text(client.get(f"/requests/{laptop}"))
    assert "Thank you. Your answer is sent and the work continues." in page
    assert 'name="answer"' not in page
    assert "<strong>Answered</strong>" in page and "Desk 4.12" in page
    assert act(client, laptop, "answer", {"answer": "again"}).status_code == 409


def test_an_empty_answer_is_an_inline_error(client, auth, service, laptop):
    service.ask_requester(laptop, "erin", "Which desk exactly?")
    auth.login("alice")
    response = act(client, laptop, "answer", {"answer": ""})
    assert response.status_code == 422
    assert '<div id="answer-error" class="invalid-feedback d-block" role="alert">' \
           "This field is required.</div>" in text(response)


# ---------------------------------------------------------------- other people's requests


@pytest.mark.parametrize(("method", "path"), [
    ("get", ""), ("get", "/diagram.svg"), ("get", "/submitted"), ("post", "/cancel"),
    ("post", "/comment"), ("post", "/answer")])
def test_another_persons_request_is_not_found(client, auth, service, laptop, method, path):
    service.ask_requester(laptop, "erin", "Which desk exactly?")
    auth.login("grace")
    if method == "get":
        response = client.get(f"/requests/{laptop}{path}")
    else:
        response = act(client, laptop, path[1:], {"seen_version": "1", "body": "hi", "answer": "hi",
                                                  "internal": "y"})
    assert response.status_code == 404
    assert f"<p class=\"lead\">no request {laptop}</p>" in text(response)
    if method == "get":  # the same answer as for a request that does not exist
        missing = client.get(f"/requests/REQ-999999{path}")
        assert missing.status_code == 404 and "<p class=\"lead\">no request REQ-999999</p>" in text(missing)


def test_actions_without_a_csrf_token_are_refused(client, auth, laptop):
    auth.login("alice")
    for action in ("cancel", "comment", "answer"):
        response = client.post(f"/requests/{laptop}/{action}", data={"body": "hi", "seen_version": "1"})
        assert response.status_code == 400
    assert "Cancelled" not in text(client.get(f"/requests/{laptop}"))


def test_actions_need_a_post(client, auth, laptop):
    auth.login("alice")
    assert client.get(f"/requests/{laptop}/cancel").status_code == 405


def test_pages_need_a_sign_in(client, laptop):
    assert client.get(f"/requests/{laptop}").status_code == 302
    assert client.get("/requests").status_code == 302


# ---------------------------------------------------------------- cascading labels

#: role values unique per system only, as lookups allow: `admin` of the CRM is not the ERP's
ROLES_PER_SYSTEM = """\
kind: Lookup
id: system-roles
name: Roles in each business system
values:
  - {value: read, label: "CRM: view accounts", parent: crm}
  - {value: admin, label: "CRM: administrator", parent: crm}
  - {value: read, label: "ERP: view orders", parent: erp}
  - {value: admin, label: "ERP: administrator", parent: erp}
"""


@pytest.fixture
def roles_app(tmp_path, template_db):
    """The app on a copy of acme whose system roles repeat their values under each system."""
    import shutil

    from tests.web.conftest import ACME
    from web import create_app

    catalog = tmp_path / "acme"
    shutil.copytree(ACME, catalog)
    (catalog / "lookups" / "system-roles.yaml").write_text(ROLES_PER_SYSTEM)
    shutil.copy(template_db, tmp_path / "deskflow.sqlite")
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test", "DESKFLOW_CATALOG": str(catalog),
        "DESKFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'deskflow.sqlite'}",
        "DESKFLOW_SECURE_COOKIES": False, "RATELIMIT_ENABLED": False,
        "DESKFLOW_PASSWORD_HASHING": "fast",
    })
    app.instance_path = str(tmp_path / "instance")
    return app


def shown_role(page: str) -> str:
    match = re.search(r"<dt[^>]*>Role</dt>\s*<dd[^>]*>\s*(?:<span[^>]*>)?([^<]*)<", page)
    assert match, "no Role answer on the page"
    return match.group(1).strip()


def test_a_cascading_answer_is_labelled_through_its_parent_on_every_page(roles_app):
    from engine.models import Approval, Task
    from tests.web.conftest import Auth

    service = roles_app.extensions["deskflow"].service
    req = service.submit("system-access", "alice", {
        "system": "crm", "role": "admin", "level": "read",
        "reason": "I look after the CRM for the sales team."})
    with service.sessions() as s:
        approval = s.scalar(select(Approval.id).where(Approval.request_id == req.id))
    client = roles_app.test_client()
    Auth(client).login("alice")
    assert shown_role(text(client.get(f"/requests/{req.number}"))) == "CRM: administrator"
    client = roles_app.test_client()
    Auth(client).login("bob")
    assert shown_role(text(client.get(f"/approvals/{approval}"))) == "CRM: administrator"
    service.approve(approval, "bob", "Fine.")
    with service.sessions() as s:
        task = s.scalar(select(Task.id).where(Task.request_id == req.id))
    client = roles_app.test_client()
    Auth(client).login("heidi")
    assert shown_role(text(client.get(f"/tasks/{task}"))) == "CRM: administrator"
