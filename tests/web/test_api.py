"""The JSON API v1 (docs/api.md): tokens, problem+json errors, ordering, approvals, idempotency,
cursor pagination and the OpenAPI description, all through the test client and the CLI."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from engine.models import ApiToken, Approval, Comment, IdempotencyKey, Request
from forms.jsonschema import item_json_schema
from tests.acme import ACME, ACME_ANSWERS
from tests.web.conftest import csrf_token
from web import create_app
from web.api.downgrade import downgrade
from web.api.spec import BODIES, RESPONSES, openapi, schema_of
from web.cli import main

LAPTOP = dict(ACME_ANSWERS["new-laptop"])
ORDER = {"item": "new-laptop", "answers": LAPTOP}
PROBLEM = "application/problem+json"


# ---------------------------------------------------------------- helpers


def db_url(app) -> str:
    return str(app.config["SQLALCHEMY_DATABASE_URI"])


def cli_token(runner, app, user: str, name: str = "script") -> str:
    result = runner.invoke(main, ["token", "create", "--user", user, "--name", name, "--db", db_url(app)])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def token(runner, app):
    """A token for a person, made with `deskflow token create`."""
    made: dict[str, str] = {}

    def make(user: str = "alice") -> str:
        if user not in made:
            made[user] = cli_token(runner, app, user)
        return made[user]

    return make


class Api:
    """The API as one person sees it through their bearer token."""

    def __init__(self, client, secret: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, url: str, body: Any = None, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        if body is not None:
            kw["json"] = body
        return self.client.post(url, headers=headers, **kw)

    def patch(self, url: str, body: Any = None, **kw: Any) -> Any:
        return self.client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, json=body, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.client.delete(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)


@pytest.fixture
def api(client, token):
    def as_(user: str = "alice") -> Api:
        return Api(client, token(user))

    return as_


def problem(response, status: int, detail: str, errors: dict | None = None) -> dict:
    """Assert an RFC 9457 answer: status, media type, our detail (and the per-field map)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["type"] == "about:blank" and body["status"] == status and body["title"]
    assert body["detail"] == detail
    assert body.get("errors") == errors
    Draft202012Validator(schema_of("Problem")).validate(body)
    return body


def valid(response, name: str, status: int = 200) -> dict:
    """The JSON body, checked against the response schema the OpenAPI description names."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    errors = [e.message for e in Draft202012Validator(schema_of(name)).iter_errors(body)]
    assert errors == [], errors
    return body


def approval_of(service, number: str) -> Approval:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        found = s.scalar(select(Approval).where(Approval.request_id == req.id))
        assert found is not None
        return found


def reload(service, number: str) -> Request:
    with service.sessions() as s:
        found = s.scalar(select(Request).where(Request.number == number))
        assert found is not None
        return found


def count(service, model: Any) -> int:
    with service.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# ---------------------------------------------------------------- tokens: the CLI


def test_a_cli_token_is_printed_once_stored_hashed_and_acts_as_its_owner(runner, app, client, service):
    secret = cli_token(runner, app, "alice", "laptop script")
    assert re.fullmatch(r"dft_[A-Za-z0-9_-]{43}", secret)
    response = Api(client, secret).post("/api/v1/requests", ORDER)
    assert valid(response, "RequestDetail", 201)["requester"] == "alice"
    with service.sessions() as s:
        row = s.scalar(select(ApiToken))
        assert row.person_id == "alice" and row.name == "laptop script"
        assert secret not in (row.digest, row.prefix) and secret.startswith(row.prefix)
    listed = runner.invoke(main, ["token", "list", "--user", "alice", "--db", db_url(app)])
    assert listed.exit_code == 0
    assert f"{row.id}\t{row.prefix}…\tlaptop script\tcreated " in listed.output
    assert secret not in listed.output and "active" in listed.output


def test_a_revoked_token_is_refused_at_once(runner, app, client):
    secret = cli_token(runner, app, "alice")
    api = Api(client, secret)
    assert api.get("/api/v1/requests").status_code == 200
    result = runner.invoke(main, ["token", "revoke", "1", "--db", db_url(app)])
    assert result.exit_code == 0 and result.output == "token 1 (script) of alice is revoked\n"
    response = api.get("/api/v1/requests")
    problem(response, 401, "The token is not valid: unknown, revoked, or its owner is no longer active.")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="deskflow", error="invalid_token"'
    again = runner.invoke(main, ["token", "revoke", "1", "--db", db_url(app)])
    assert (again.exit_code, again.stderr) == (1, "deskflow: token 1 is already revoked\n")
    listed = runner.invoke(main, ["token", "list", "--user", "alice", "--db", db_url(app)])
    assert "\trevoked " in listed.output


@pytest.mark.parametrize(("args", "message"), [
    (["create", "--user", "nobody", "--name", "x"], "deskflow: no active person nobody\n"),
    (["create", "--user", "alice", "--name", "  "],
     "deskflow: a token needs a name (name: Give the token a name.)\n"),
    (["create", "--user", "alice", "--name", "x" * 81],
     "deskflow: the token's name is too long (name: At most 80 characters.)\n"),
    (["revoke", "99"], "deskflow: no token 99\n"),
])
def test_cli_token_mistakes_are_clear(runner, app, args, message):
    result = runner.invoke(main, ["token", *args, "--db", db_url(app)])
    assert (result.exit_code, result.stderr) == (1, message)


def test_the_last_use_is_recorded(runner, app, client, service):
    api = Api(client, cli_token(runner, app, "alice"))
    with service.sessions() as s:
        assert s.scalar(select(ApiToken.last_used_at)) is None
    api.get("/api/v1/catalog").close()  # the stamp is written once the response is done
    with service.sessions() as s:
        assert s.scalar(select(ApiToken.last_used_at)) is not None
    listed = runner.invoke(main, ["token", "list", "--user", "alice", "--db", db_url(app)])
    assert "last used never" not in listed.output


# ---------------------------------------------------------------- tokens: the profile page


def test_the_profile_page_creates_a_token_shown_once_and_revokes_it(client, auth, post, service):
    auth.login("alice")
    settings = client.get("/notifications/settings").get_data(as_text=True)
    assert 'href="/account/tokens">API tokens</a>' in settings
    response = post("/account/tokens", {"name": "my script"}, page="/account/tokens")
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    secret = re.search(r'<code id="new-token"[^>]*>(dft_[^<]+)</code>', html).group(1)
    again = client.get("/account/tokens").get_data(as_text=True)
    assert secret not in again and "my script" in again and secret[:10] in again
    api = Api(client.application.test_client(), secret)
    assert valid(api.get("/api/v1/requests"), "RequestList")["items"] == []
    with service.sessions() as s:
        token_id = s.scalar(select(ApiToken.id))
    response = post(f"/account/tokens/{token_id}/revoke", page="/account/tokens")
    assert response.status_code == 302
    assert "revoked" in client.get("/account/tokens").get_data(as_text=True)
    assert api.get("/api/v1/requests").status_code == 401
    assert post(f"/account/tokens/{token_id}/revoke", page="/account/tokens").status_code == 409


def test_the_profile_page_needs_a_name(client, auth, post, service):
    auth.login("alice")
    response = post("/account/tokens", {"name": " "}, page="/account/tokens")
    assert response.status_code == 422
    assert "Give the token a name." in response.get_data(as_text=True)
    assert count(service, ApiToken) == 0


def test_nobody_revokes_someone_elses_token(runner, app, client, auth, post):
    secret = cli_token(runner, app, "bob")
    auth.login("alice")
    assert post("/account/tokens/1/revoke", page="/account/tokens").status_code == 404
    assert "dft_" not in client.get("/account/tokens").get_data(as_text=True)
    assert Api(app.test_client(), secret).get("/api/v1/requests").status_code == 200


# ---------------------------------------------------------------- catalog


def test_the_catalog_lists_what_the_person_may_order(api):
    alice = valid(api("alice").get("/api/v1/catalog"), "CatalogList")["items"]
    frank = valid(api("frank").get("/api/v1/catalog"), "CatalogList")["items"]
    assert "new-laptop" in [i["id"] for i in alice]
    assert "normal-change" not in [i["id"] for i in alice]
    assert "normal-change" in [i["id"] for i in frank]


def test_catalog_search_is_the_portals_search(api, client, auth):
    found = valid(api("alice").get("/api/v1/catalog?q=laptop"), "CatalogList")["items"]
    auth.login("alice")
    page = client.get("/?q=laptop").get_data(as_text=True)
    portal = re.findall(r'class="stretched-link" href="/items/([a-z0-9-]+)"', page)
    assert [i["id"] for i in found] == portal == ["new-laptop", "new-hire-onboarding", "vpn-access"]


def test_an_item_comes_with_its_form_as_json_schema(api, app):
    item = valid(api("alice").get("/api/v1/catalog/new-laptop"), "CatalogItem")
    cat = app.extensions["deskflow"].catalog
    assert item["schema"] == item_json_schema(cat.item("new-laptop"), cat)
    Draft202012Validator.check_schema(item["schema"])
    assert list(Draft202012Validator(item["schema"]).iter_errors(LAPTOP)) == []


def test_an_item_one_may_not_order_is_404(api):
    problem(api("alice").get("/api/v1/catalog/normal-change"), 404,
            "There is no catalog item normal-change you may order.")
    problem(api("alice").get("/api/v1/catalog/no-such-item"), 404,
            "There is no catalog item no-such-item you may order.")


# ---------------------------------------------------------------- ordering and approving


def test_ordered_through_the_api_and_approved_in_the_portal(api, auth, post, service):
    response = api("alice").post("/api/v1/requests", ORDER)
    order = valid(response, "RequestDetail", 201)
    number = order["number"]
    assert response.headers["Location"] == f"/api/v1/requests/{number}"
    assert (order["state"], order["approvals"][0]["approver"]) == ("manager_approval", "bob")
    appr = approval_of(service, number)
    auth.login("bob")
    page = f"/approvals/{appr.id}"
    assert post(f"/approvals/{appr.id}/approve", {"decision-seen_version": order["version"]},
                page=page).status_code == 302
    seen = valid(api("alice").get(f"/api/v1/requests/{number}"), "RequestDetail")
    assert seen["approvals"][0]["decision"] == "approved"
    assert seen["state"] == reload(service, number).state != "manager_approval"
    assert "approval_approved" in [e.get("event") for e in seen["timeline"]]


def test_ordered_in_the_portal_and_approved_through_the_api(api, auth, post, service):
    auth.login("alice")
    response = post("/items/new-laptop", {k: str(v) for k, v in LAPTOP.items()}, page="/items/new-laptop")
    assert response.status_code == 302
    number = re.search(r"REQ-\d{6}", response.headers["Location"]).group(0)
    bob = api("bob")
    inbox = valid(bob.get("/api/v1/approvals"), "ApprovalList")
    assert [(a["request"], a["decision"]) for a in inbox["items"]] == [(number, "pending")]
    appr = inbox["items"][0]["id"]
    version = reload(service, number).lock_version
    done = valid(bob.post(f"/api/v1/approvals/{appr}/approve", {"comment": "Fine.", "version": version}),
                 "Approval")
    assert (done["decision"], done["decided_by"], done["comment"]) == ("approved", "bob", "Fine.")
    assert valid(bob.get("/api/v1/approvals"), "ApprovalList")["items"] == []
    assert approval_of(service, number).decision == "approved"
    assert reload(service, number).state != "manager_approval"


def test_the_same_rules_apply_in_the_api(api, service):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    appr = approval_of(service, number).id
    # segregation of duties: the requester may not approve her own request
    problem(api("alice").post(f"/api/v1/approvals/{appr}/approve", {}), 403,
            f"alice cannot decide on their own request {number}")
    # someone with no part in it: the same 404 as for an approval that does not exist
    problem(api("peter").post(f"/api/v1/approvals/{appr}/approve", {}), 404, f"no approval {appr}")
    problem(api("peter").post("/api/v1/approvals/999999/approve", {}), 404, "no approval 999999")
    # a rejection needs a comment: the service's per-field message
    problem(api("bob").post(f"/api/v1/approvals/{appr}/reject", {"comment": " "}), 422,
            "a rejection needs a comment", {"comment": ["Say why the request is rejected."]})


def test_a_stale_version_is_409_and_decides_nothing(api, service):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    req = reload(service, number)
    appr = approval_of(service, number).id
    bob = api("bob")
    problem(bob.post(f"/api/v1/approvals/{appr}/approve", {"version": req.lock_version + 1}), 409,
            f"{number} changed since you loaded it (it is now manager_approval); reload and try again")
    assert approval_of(service, number).decision == "pending"
    assert bob.post(f"/api/v1/approvals/{appr}/approve", {"version": req.lock_version}).status_code == 200
    problem(bob.post(f"/api/v1/approvals/{appr}/approve"), 409,
            f"approval {appr} was already approved; {number} is now "
            f"{reload(service, number).state}")


def test_someone_elses_request_looks_exactly_like_no_request(api):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    theirs = api("peter").get(f"/api/v1/requests/{number}")
    missing = api("peter").get("/api/v1/requests/REQ-999999")
    problem(theirs, 404, f"no request {number}")
    assert theirs.get_json()["detail"].replace(number, "N") == missing.get_json()["detail"].replace(
        "REQ-999999", "N")
    assert valid(api("peter").get("/api/v1/requests"), "RequestList")["items"] == []


def test_ordering_for_someone_else(api):
    order = valid(api("alice").post("/api/v1/requests", {**ORDER, "requested_for": "peter"}),
                  "RequestDetail", 201)
    assert (order["requester"], order["requested_for"]) == ("alice", "peter")
    mine = api("peter").get("/api/v1/requests").get_json()["items"]
    assert [r["number"] for r in mine] == [order["number"]]
    problem(api("alice").post("/api/v1/requests", {**ORDER, "requested_for": "nobody"}), 422,
            "no active person nobody", {"requested_for": ["nobody is not an active person."]})


def test_comments_and_internal_notes(api, service):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    said = valid(api("alice").post(f"/api/v1/requests/{number}/comments", {"body": " Any news? "}),
                 "CommentResult", 201)
    assert (said["author"], said["body"], said["internal"]) == ("alice", "Any news?", False)
    problem(api("alice").post(f"/api/v1/requests/{number}/comments", {"body": "psst", "internal": True}),
            403, "only people working on the request can write internal notes")
    note = {"body": "Budget checked.", "internal": True}
    assert api("frank").post(f"/api/v1/requests/{number}/comments", note).status_code == 201
    mine = [e.get("body") for e in api("alice").get(f"/api/v1/requests/{number}").get_json()["timeline"]]
    theirs = [e.get("body") for e in api("frank").get(f"/api/v1/requests/{number}").get_json()["timeline"]]
    assert "Any news?" in mine and "Budget checked." not in mine and "Budget checked." in theirs
    problem(api("peter").post(f"/api/v1/requests/{number}/comments", {"body": "hi"}), 404,
            f"no request {number}")
    problem(api("alice").post(f"/api/v1/requests/{number}/comments", {"body": ""}), 422,
            "The body does not match the schema.", {"body": ["Must not be empty."]})


def test_cancelling_my_request(api, service):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    version = reload(service, number).lock_version
    problem(api("bob").post(f"/api/v1/requests/{number}/cancel", {}), 403,
            f"only the requester can cancel {number}")
    problem(api("alice").post(f"/api/v1/requests/{number}/cancel", {"version": version + 1}), 409,
            f"{number} changed since you loaded it (it is now manager_approval); reload and try again")
    done = valid(api("alice").post(f"/api/v1/requests/{number}/cancel",
                                   {"reason": "Not needed.", "version": version}), "RequestDetail")
    assert (done["status"], done["outcome"]) == ("closed", "cancelled")
    problem(api("alice").post(f"/api/v1/requests/{number}/cancel"), 409, f"{number} is already cancelled")


# ---------------------------------------------------------------- fulfilling


def test_order_approve_and_fulfil_through_the_api_alone(api, service):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    appr = approval_of(service, number).id
    assert api("bob").post(f"/api/v1/approvals/{appr}/approve").status_code == 200
    frank = api("frank")
    queue = valid(frank.get("/api/v1/queues/it-hardware/tasks"), "QueueTasks")
    assert [(t["request"], t["assignee"]) for t in queue["items"]] == [(number, None)]
    task_id = queue["items"][0]["id"]
    task = valid(frank.get(f"/api/v1/tasks/{task_id}"), "TaskDetail")
    assert task["outcomes"] == ["done"] and "serial_number" in task["schema"]["required"]
    Draft202012Validator.check_schema(task["schema"])
    claimed = valid(frank.post(f"/api/v1/tasks/{task_id}/claim", {"version": task["version"]}), "QueueTask")
    assert claimed["assignee"] == "frank"
    mine = valid(frank.get("/api/v1/queues/it-hardware/tasks?assignee=mine"), "QueueTasks")
    assert [t["id"] for t in mine["items"]] == [task_id]
    problem(frank.post(f"/api/v1/tasks/{task_id}/complete", {"answers": {}}), 422,
            "The answers have errors.", {"answers.serial_number": ["This field is required."]})
    problem(frank.post(f"/api/v1/tasks/{task_id}/complete", {"answers": {"serial_number": "SN-1"},
                                                            "outcome": "lost"}), 422,
            "lost is not an outcome of this task", {"outcome": ["Choose one of: done."]})
    done = valid(frank.post(f"/api/v1/tasks/{task_id}/complete",
                            {"answers": {"serial_number": "SN-1"}, "comment": "Shipped."}), "QueueTask")
    assert (done["status"], done["outcome"]) == ("done", "done")
    seen = valid(api("alice").get(f"/api/v1/requests/{number}"), "RequestDetail")
    assert seen["status"] == "closed" and seen["tasks"][0]["status"] == "done"
    problem(frank.post(f"/api/v1/tasks/{task_id}/claim"), 409,
            f"task {task_id} is done; {number} is now {seen['state']}")


def test_tasks_are_for_their_queue(api, service):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    api("bob").post(f"/api/v1/approvals/{approval_of(service, number).id}/approve")
    task_id = api("frank").get("/api/v1/queues/it-hardware/tasks").get_json()["items"][0]["id"]
    problem(api("grace").get("/api/v1/queues/it-hardware/tasks"), 404,
            "There is no queue it-hardware you work in.")
    problem(api("grace").get(f"/api/v1/tasks/{task_id}"), 404, f"no task {task_id}")
    problem(api("grace").post(f"/api/v1/tasks/{task_id}/claim"), 404, f"no task {task_id}")
    # bob decided the approval, so he reads the task; acting on it is refused before the body
    assert api("bob").get(f"/api/v1/tasks/{task_id}").status_code == 200
    problem(api("bob").post(f"/api/v1/tasks/{task_id}/complete", data="x", content_type="text/plain"),
            403, f"bob may read task {task_id} but is not in the it-hardware queue")
    response = api("frank").get("/api/v1/queues/it-hardware/tasks?assignee=everyone")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"assignee": ["One of: mine, unassigned."]}


# ---------------------------------------------------------------- 422: the form's validation


def test_answers_are_checked_by_the_order_forms_pipeline(api, service):
    answers = {**LAPTOP, "floor": "high", "colour": "red"}
    response = api("alice").post("/api/v1/requests", {"item": "new-laptop", "answers": answers})
    problem(response, 422, "The answers have errors.",
            {"answers.floor": ["Must be a whole number."], "answers": ["Unknown field colour."]})
    assert count(service, Request) == 0


def test_the_api_and_the_html_form_give_the_same_messages(api, auth, post):
    response = api("alice").post("/api/v1/requests", {"item": "new-laptop", "answers": {}})
    errors = problem(response, 422, "The answers have errors.", response.get_json()["errors"])["errors"]
    auth.login("alice")
    html = post("/items/new-laptop", {}, page="/items/new-laptop").get_data(as_text=True)
    for messages in errors.values():
        for message in messages:
            assert message in html


@pytest.mark.parametrize(("body", "errors"), [
    ({}, {"item": ["This field is required."], "answers": ["This field is required."]}),
    ({**ORDER, "state": "approved"}, {"state": ["Unknown field."]}),
    ({**ORDER, "requester": "bob", "item": 3},
     {"requester": ["Unknown field."], "item": ["Must be a string."]}),
    ({"item": "new-laptop", "answers": []}, {"answers": ["Must be an object."]}),
    ([ORDER], {"_body": ["Must be an object."]}),
    ({**ORDER, "requested_for": "x" * 65}, {"requested_for": ["At most 64 characters."]}),
])
def test_a_body_that_does_not_match_the_schema_is_422(api, service, body, errors):
    problem(api("alice").post("/api/v1/requests", body), 422, "The body does not match the schema.", errors)
    assert count(service, Request) == 0


def test_a_decision_body_is_checked_too(api, service):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    appr = approval_of(service, number).id
    problem(api("bob").post(f"/api/v1/approvals/{appr}/approve", {"version": "7", "decision": "x"}), 422,
            "The body does not match the schema.",
            {"decision": ["Unknown field."], "version": ["Must be a whole number."]})
    assert approval_of(service, number).decision == "pending"


# ---------------------------------------------------------------- every other error status


@pytest.mark.parametrize(("data", "detail"), [
    (b'{"item": ', "The body is not valid JSON (line 1, column 10)."),
    (b'{"item": NaN}', "The body is not valid JSON."),
    (b"\xff\xfe", "The body is not UTF-8 text."),
    (b"[" * 5000 + b"]" * 5000, "The body is not valid JSON."),
    (b"[" * 40 + b"]" * 40, "The JSON body is nested more than 32 levels deep."),
    (b'{"item": "new-\\u0000laptop", "answers": {}}', "The request contains a NUL character."),
])
def test_malformed_json_is_400(api, service, data, detail):
    response = api("alice").post("/api/v1/requests", data=data, content_type="application/json")
    problem(response, 400, detail)
    assert count(service, Request) == 0


@pytest.mark.parametrize("header", ["Basic YWxpY2U6eA==", "Bearer", "Bearer  "])
def test_a_malformed_authorization_header_is_401(client, header):
    response = client.get("/api/v1/catalog", headers={"Authorization": header})
    problem(response, 401, "The Authorization header must be 'Bearer <token>'.")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="deskflow", error="invalid_request"'


@pytest.mark.parametrize("secret", ["dft_" + "A" * 43, "not-a-token", "dft_" + "x" * 500])
def test_an_unknown_token_is_401(client, secret):
    response = client.get("/api/v1/requests", headers={"Authorization": f"Bearer {secret}"})
    problem(response, 401, "The token is not valid: unknown, revoked, or its owner is no longer active.")


@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/api/v1/catalog"), ("GET", "/api/v1/catalog/new-laptop"), ("GET", "/api/v1/requests"),
    ("POST", "/api/v1/requests"), ("GET", "/api/v1/requests/REQ-000001"), ("GET", "/api/v1/approvals"),
    ("POST", "/api/v1/approvals/1/approve"), ("POST", "/api/v1/approvals/1/reject"),
])
def test_no_token_and_no_session_is_401_with_a_challenge(client, method, url):
    response = client.open(url, method=method, json={})
    problem(response, 401, "Send 'Authorization: Bearer <token>' (a personal API token) or sign in.")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="deskflow"'


def test_a_wrong_method_is_405_with_allow(api):
    response = api().client.delete("/api/v1/requests", headers=api().headers)
    problem(response, 405, "This method is not allowed here.")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_an_unknown_api_path_is_a_404_problem(api):
    problem(api().get("/api/v1/nothing-here"), 404, "There is nothing here, or nothing you may see.")
    problem(api().client.get("/api/v2/catalog"), 404, "There is nothing here, or nothing you may see.")


def test_a_body_over_the_limit_is_413(api, service):
    # (an order's own limit makes room for files in base64: tests/web/test_file_fields.py)
    number = service.submit("new-laptop", "alice", LAPTOP).number
    big = json.dumps({"body": "y" * (3 * 1024 * 1024)})
    response = api().post(f"/api/v1/requests/{number}/comments", data=big,
                          content_type="application/json")
    problem(response, 413, "What you sent is too large.")
    assert count(service, Comment) == 0


@pytest.mark.parametrize(("data", "content_type"), [
    ("item=new-laptop", "application/x-www-form-urlencoded"),
    (json.dumps(ORDER), "text/plain"),
    ("", None),
])
def test_a_body_that_is_not_json_is_415(api, data, content_type):
    response = api().post("/api/v1/requests", data=data, content_type=content_type)
    problem(response, 415, "Send the body as JSON, with 'Content-Type: application/json'.")


def test_a_decision_may_come_without_a_body_but_not_with_a_form(api, service):
    number = valid(api("alice").post("/api/v1/requests", ORDER), "RequestDetail", 201)["number"]
    appr = approval_of(service, number).id
    problem(api("bob").post(f"/api/v1/approvals/{appr}/approve", data="comment=ok",
                            content_type="application/x-www-form-urlencoded"), 415,
            "Send the body as JSON, with 'Content-Type: application/json'.")
    assert valid(api("bob").post(f"/api/v1/approvals/{appr}/approve"), "Approval")["decision"] == "approved"


def test_an_unexpected_error_is_a_500_problem_without_a_traceback(app, api, caplog):
    def boom() -> Any:
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    response = api().get("/api/v1/boom")
    problem(response, 500, "Something went wrong on our side. It has been logged; please try again.")
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_too_many_requests_is_429(tmp_path, template_db, runner):
    import shutil

    db_file = tmp_path / "deskflow.sqlite"
    shutil.copy(template_db, db_file)
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "DESKFLOW_DATABASE_URL": f"sqlite:///{db_file}",
                      "DESKFLOW_CATALOG": str(ACME), "DESKFLOW_SECURE_COOKIES": False,
                      "RATELIMIT_ENABLED": True, "DESKFLOW_PASSWORD_HASHING": "fast",
                      "DESKFLOW_API_RATE_LIMIT": "3/minute"}, instance_path=str(tmp_path / "instance"))
    try:
        api = Api(app.test_client(), cli_token(runner, app, "alice"))
        assert [api.get("/api/v1/catalog").status_code for _ in range(3)] == [200, 200, 200]
        response = api.get("/api/v1/catalog")
        problem(response, 429, "Too many attempts. Wait a minute and try again.")
        assert int(response.headers["Retry-After"]) > 0
        # the limit is per token: another person's token is counted apart
        assert Api(app.test_client(), cli_token(runner, app, "bob")).get("/api/v1/catalog").status_code == 200
    finally:
        from web.extensions import limiter

        limiter.enabled = False  # the limiter is shared by every app in this process


# ---------------------------------------------------------------- the session cookie and CSRF


def test_a_session_reads_and_its_writes_need_the_csrf_token(client, auth, service):
    auth.login("alice")
    assert valid(client.get("/api/v1/requests"), "RequestList")["items"] == []
    response = client.post("/api/v1/requests", json=ORDER)
    problem(response, 400, "The form expired or did not come from this site. Reload the page and try again.")
    assert count(service, Request) == 0
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.post("/api/v1/requests", json=ORDER, headers={"X-CSRFToken": token})
    assert valid(response, "RequestDetail", 201)["requester"] == "alice"


def test_a_bearer_token_needs_no_csrf_token_and_sets_no_cookie(api):
    response = api().post("/api/v1/requests", ORDER)
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers


# ---------------------------------------------------------------- idempotency


def test_the_same_key_and_body_give_the_first_result(api, service):
    alice = api("alice")
    key = {"Idempotency-Key": "order-7f3a"}
    first = alice.post("/api/v1/requests", ORDER, headers=key)
    number = valid(first, "RequestDetail", 201)["number"]
    again = alice.post("/api/v1/requests", {"answers": LAPTOP, "item": "new-laptop"}, headers=key)
    assert valid(again, "RequestDetail")["number"] == number
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert count(service, Request) == 1 and count(service, IdempotencyKey) == 1
    # another person's key of the same name is theirs alone
    peter = valid(api("peter").post("/api/v1/requests", ORDER, headers=key), "RequestDetail", 201)
    assert peter["number"] != number and count(service, Request) == 2


def test_the_same_key_with_another_body_is_422(api, service):
    alice = api("alice")
    key = {"Idempotency-Key": "order-1"}
    assert alice.post("/api/v1/requests", ORDER, headers=key).status_code == 201
    other = {"item": "new-laptop", "answers": {**LAPTOP, "floor": 5}}
    message = "This Idempotency-Key was used with a different request body."
    problem(alice.post("/api/v1/requests", other, headers=key), 422, message,
            {"Idempotency-Key": [message]})
    assert count(service, Request) == 1


@pytest.mark.parametrize("key", ["", "a b", "k" * 256, "clé"])
def test_a_malformed_key_is_422_and_orders_nothing(api, service, key):
    response = api().post("/api/v1/requests", ORDER, headers={"Idempotency-Key": key})
    problem(response, 422, "the Idempotency-Key header is malformed",
            {"Idempotency-Key": ["1 to 255 visible ASCII characters."]})
    assert count(service, Request) == 0


def test_a_refused_order_keeps_its_key_free(api, service):
    alice = api("alice")
    key = {"Idempotency-Key": "retry-me"}
    refused = alice.post("/api/v1/requests", {**ORDER, "requested_for": "nobody"}, headers=key)
    assert refused.status_code == 422
    assert alice.post("/api/v1/requests", ORDER, headers=key).status_code == 201
    assert count(service, IdempotencyKey) == 1


# ---------------------------------------------------------------- my requests, page by page


def test_my_requests_come_newest_first_by_cursor(api):
    alice = api("alice")
    numbers = [alice.post("/api/v1/requests", ORDER).get_json()["number"] for _ in range(3)]
    first = valid(alice.get("/api/v1/requests?limit=2"), "RequestList")
    assert [r["number"] for r in first["items"]] == numbers[:0:-1]
    rest = valid(alice.get(f"/api/v1/requests?limit=2&cursor={first['next_cursor']}"), "RequestList")
    assert ([r["number"] for r in rest["items"]], rest["next_cursor"]) == ([numbers[0]], None)
    assert valid(alice.get("/api/v1/requests?status=closed"), "RequestList")["items"] == []


@pytest.mark.parametrize(("query", "errors"), [
    ("limit=0", {"limit": ["A whole number from 1 to 100."]}),
    ("limit=101", {"limit": ["A whole number from 1 to 100."]}),
    ("limit=%C2%B2", {"limit": ["A whole number from 1 to 100."]}),
    ("cursor=garbage", {"cursor": ["Not a cursor this API gave out."]}),
    ("cursor=" + "A" * 500, {"cursor": ["Not a cursor this API gave out."]}),
    ("status=lost", {"status": ["One of: open, closed."]}),
])
def test_bad_list_parameters_are_422(api, query, errors):
    response = api().get(f"/api/v1/requests?{query}")
    assert response.status_code == 422 and response.get_json()["errors"] == errors


# ---------------------------------------------------------------- OpenAPI and the docs page


def test_the_openapi_description_is_built_from_the_schemas_the_api_validates_with(client):
    doc = valid_openapi(client.get("/api/v1/openapi.json"))
    for name, schema in BODIES.items():
        assert doc["components"]["schemas"][name] == schema
    assert doc["paths"]["/api/v1/requests"]["post"]["requestBody"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/Order"}
    for name in (*BODIES, *RESPONSES):
        Draft202012Validator.check_schema(schema_of(name))


def valid_openapi(response) -> dict:
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc == openapi()
    assert doc["openapi"] == "3.1.0"
    try:
        from openapi_spec_validator import validate
    except ImportError:  # not a dependency: check the shape that matters here by hand
        refs = re.findall(r'"\$ref": "#/components/(schemas|responses)/([A-Za-z0-9]+)"', json.dumps(doc))
        assert refs and all(name in doc["components"][kind] for kind, name in refs)
        for path, operations in doc["paths"].items():
            assert path.startswith("/api/v1/")
            for op in operations.values():
                assert op["operationId"] and op["responses"]
                named = set(re.findall(r"{([a-z_]+)}", path))
                assert named == {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
    else:
        validate(doc)
    return doc


def test_every_api_route_is_described(app):
    described = {re.sub(r"{(\w+)}", r"<\1>", p) for p in openapi()["paths"]}
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", r.rule) for r in app.url_map.iter_rules()
              if r.rule.startswith("/api/v1/") and r.endpoint != "api.openapi_json"}
    assert routes == described


def test_the_docs_page_is_served_from_the_installed_package_without_inline_script(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/api/docs/swagger-ui-bundle.js">',
        '<script src="/api/docs/swagger-ui-standalone-preset.js">',
        '<script src="/static/api-docs.js">']
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        with client.get(f"/api/docs/{asset}") as response:
            assert response.status_code == 200 and len(response.get_data()) > 1000
    with client.get("/static/api-docs.js") as response:
        assert 'url: "/api/docs/openapi-3.0.json"' in response.get_data(as_text=True)
    problem(client.get("/api/docs/index.html"), 404, "There is nothing here, or nothing you may see.")


def test_the_docs_page_reads_a_3_0_copy_derived_from_the_3_1_description(client):
    """The packaged Swagger UI (4.15) renders OpenAPI 3.0 only; the copy is derived, not kept."""
    copy = client.get("/api/docs/openapi-3.0.json").get_json()
    assert copy == downgrade(openapi())
    assert copy["openapi"] == "3.0.3" and "jsonSchemaDialect" not in copy
    assert copy["paths"].keys() == openapi()["paths"].keys()
    text = json.dumps(copy)
    assert '"const"' not in text and '"$schema"' not in text
    assert not re.search(r'"type": \[', text), "3.0 has no type lists"
    assert copy["components"]["schemas"]["Approval"]["properties"]["decided_at"] == {
        "type": "string", "format": "date-time", "nullable": True}


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": ["string", "null"], "maxLength": 3}, {"type": "string", "maxLength": 3, "nullable": True}),
    ({"type": "boolean", "const": True}, {"type": "boolean", "enum": [True]}),
    ({"type": ["string", "integer"], "pattern": "^[0-9]+$"},
     {"anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "pattern": "^[0-9]+$"}]}),
    ({"anyOf": [{"type": "string"}, {"enum": [None, ""]}]},
     {"anyOf": [{"type": "string"}, {"enum": [""], "nullable": True}]}),
    ({"properties": {"type": {"type": "string"}, "const": {"const": 1}}},
     {"properties": {"type": {"type": "string"}, "const": {"enum": [1]}}}),
])
def test_downgrading_a_schema(schema, expected):
    doc = downgrade({"openapi": "3.1.0", "components": {"schemas": {"S": schema}}})
    assert doc == {"openapi": "3.0.3", "components": {"schemas": {"S": expected}}}
