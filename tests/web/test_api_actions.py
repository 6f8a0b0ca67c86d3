"""The JSON API v1's record, task and approval actions, configuration items, knowledge and
the admin's catalog endpoints (docs/api.md), through the test client with bearer tokens."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from engine.models import Approval, Request, Task
from tests.acme import ACME, ACME_ANSWERS
from tests.web.test_api import ORDER, Api, approval_of, cli_token, problem, reload, valid

INCIDENT = {"item": "report-incident", "answers": dict(ACME_ANSWERS["report-incident"])}


@pytest.fixture
def api(client, runner, app):
    """The API as a person sees it through their bearer token (`deskflow token create`)."""
    made: dict[str, str] = {}

    def as_(user: str = "alice") -> Api:
        if user not in made:
            made[user] = cli_token(runner, app, user)
        return Api(client, made[user])

    return as_


def ordered(api, who: str = "alice", body: dict | None = None) -> str:
    return str(valid(api(who).post("/api/v1/requests", body or ORDER), "RequestDetail", 201)["number"])


def task_of(service, number: str) -> Task:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        found = s.scalar(select(Task).where(Task.request_id == req.id, Task.status == "open"))
        assert found is not None
        return found


# ---------------------------------------------------------------- approvals: delegate


def test_an_approver_delegates_and_the_delegate_decides(api, service):
    number = ordered(api)
    appr = approval_of(service, number).id
    version = reload(service, number).lock_version
    problem(api("alice").post(f"/api/v1/approvals/{appr}/delegate", {"to": "carol"}), 403,
            f"alice cannot choose who approves their own request {number}")
    problem(api("peter").post(f"/api/v1/approvals/{appr}/delegate", {"to": "carol"}), 404,
            f"no approval {appr}")
    problem(api("bob").post(f"/api/v1/approvals/{appr}/delegate", {}), 422,
            "The body does not match the schema.", {"to": ["This field is required."]})
    problem(api("bob").post(f"/api/v1/approvals/{appr}/delegate", {"to": "carol", "version": version + 1}),
            409, f"{number} changed since you loaded it (it is now manager_approval); reload and try again")
    handed = valid(api("bob").post(f"/api/v1/approvals/{appr}/delegate",
                                   {"to": "carol", "comment": "Away.", "version": version}), "Approval")
    assert handed["approver"] == "carol" and handed["decision"] == "pending"
    inbox = valid(api("carol").get("/api/v1/approvals"), "ApprovalList")
    assert [a["request"] for a in inbox["items"]] == [number]
    assert api("carol").post(f"/api/v1/approvals/{handed['id']}/approve").status_code == 200
    with service.sessions() as s:
        assert s.get(Approval, handed["id"]).decision == "approved"


# ---------------------------------------------------------------- tasks: escalate, reassign


def test_a_task_is_reassigned_within_its_queue(api, service):
    number = ordered(api)
    api("bob").post(f"/api/v1/approvals/{approval_of(service, number).id}/approve")
    task = task_of(service, number)
    frank = api("frank")
    problem(frank.post(f"/api/v1/tasks/{task.id}/reassign", {"to": "peter"}), 422,
            "peter is not in the it-hardware queue", {"to": ["Pick someone in it-hardware."]})
    stale = reload(service, number).lock_version + 1
    problem(frank.post(f"/api/v1/tasks/{task.id}/reassign", {"to": "heidi", "version": stale}), 409,
            f"{number} changed since you loaded it (it is now {reload(service, number).state}); "
            "reload and try again")
    done = valid(frank.post(f"/api/v1/tasks/{task.id}/reassign", {"to": "heidi"}), "QueueTask")
    assert done["assignee"] == "heidi" == task_of(service, number).assignee_id
    problem(api("grace").post(f"/api/v1/tasks/{task.id}/reassign", {"to": "frank"}), 404,
            f"no task {task.id}")


def test_a_task_is_escalated_to_its_next_tier(api, service):
    number = ordered(api, body=INCIDENT)
    task = task_of(service, number)
    moved = valid(api("frank").post(f"/api/v1/tasks/{task.id}/escalate", {"reason": "Needs a server"}),
                  "QueueTask")
    assert (moved["queue"], moved["assignee"]) == ("it-ops", None)
    for _ in range(5):  # up the tiers (an admin acts on any task) until the last refuses
        again = api("oscar").post(f"/api/v1/tasks/{task.id}/escalate")
        if again.status_code != 200:
            break
    last = task_of(service, number).queue
    problem(again, 409, f"task {task.id} is already at its last tier ({last})")


# ---------------------------------------------------------------- records


def test_an_agent_edits_a_record_and_a_stale_version_is_409(api, service):
    number = ordered(api)
    version = reload(service, number).lock_version
    problem(api("alice").patch(f"/api/v1/requests/{number}", {"title": "Mine"}), 403,
            f"only agents of {number} can edit its record")
    problem(api("peter").patch(f"/api/v1/requests/{number}", {"title": "Mine"}), 404,
            f"no request {number}")
    problem(api("frank").patch(f"/api/v1/requests/{number}", {"title": "x", "version": version + 1}), 409,
            f"{number} changed since you loaded it (it is now manager_approval); reload and try again")
    problem(api("frank").patch(f"/api/v1/requests/{number}", {"version": version}), 422,
            "nothing to change", {"_body": ["Send at least one field to change."]})
    problem(api("frank").patch(f"/api/v1/requests/{number}", {"colour": "red"}), 422,
            "The body does not match the schema.", {"colour": ["Unknown field."]})
    changed = valid(api("frank").patch(f"/api/v1/requests/{number}",
                                       {"title": "Laptop for the new hire", "assignee": "frank",
                                        "version": version}), "RequestDetail")
    assert (changed["title"], changed["assignee"]) == ("Laptop for the new hire", "frank")
    assert changed["version"] > version
    assert "record_changed" in [e.get("event") for e in changed["timeline"]]


def test_records_are_linked_and_unlinked_by_their_agents(api, service):
    first, second = ordered(api), ordered(api)
    url = f"/api/v1/requests/{first}/links"
    problem(api("alice").post(url, {"other": second, "kind": "related_to"}), 403,
            f"only agents of {first} can link it")
    problem(api("frank").post(url, {"other": second, "kind": "cousin_of"}), 422,
            "The body does not match the schema.",
            {"kind": ["Must be one of: related_to, child_of, duplicate_of, caused_by, problem_of."]})
    problem(api("frank").post(url, {"other": first, "kind": "related_to"}), 422,
            f"{first} cannot be linked to itself", {"other": ["A record cannot be linked to itself."]})
    linked = valid(api("frank").post(url, {"other": second, "kind": "child_of"}), "RequestDetail", 201)
    assert linked["links"] == [{"kind": "child_of", "words": "Child of", "side": "source",
                                "other": second}]
    theirs = valid(api("alice").get(f"/api/v1/requests/{second}"), "RequestDetail")
    assert theirs["links"] == [{"kind": "child_of", "words": "Parent of", "side": "target",
                                "other": first}]
    problem(api("frank").post(url, {"other": second, "kind": "child_of"}), 409,
            f"{first} is already linked to {second} as child of")
    gone = valid(api("frank").delete(f"{url}/child_of/{second}"), "RequestDetail")
    assert gone["links"] == []
    problem(api("frank").delete(f"{url}/child_of/{second}"), 404,
            f"{first} has no child of link with {second}")


def test_the_caller_reopens_a_resolved_incident(api, service):
    number = ordered(api, body=INCIDENT)
    problem(api("alice").post(f"/api/v1/requests/{number}/reopen", {"reason": "Still down."}), 409,
            f"{number} is not resolved; there is nothing to reopen")
    service.resolve(number, "frank", "fixed", "Restarted the mail relay.")
    problem(api("alice").post(f"/api/v1/requests/{number}/reopen", {}), 422,
            "The body does not match the schema.", {"reason": ["This field is required."]})
    problem(api("peter").post(f"/api/v1/requests/{number}/reopen", {"reason": "x"}), 404,
            f"no request {number}")
    back = valid(api("alice").post(f"/api/v1/requests/{number}/reopen", {"reason": "Still down."}),
                 "RequestDetail")
    assert (back["state"], back["status"]) == ("triage", "open")


def test_the_requester_answers_an_agents_question(api, service):
    number = ordered(api)
    problem(api("alice").post(f"/api/v1/requests/{number}/answer", {"answer": "Yes"}), 409,
            f"{number} is not waiting for an answer")
    service.ask_requester(number, "frank", "Do you need a docking station too?")
    problem(api("frank").post(f"/api/v1/requests/{number}/answer", {"answer": "Yes"}), 403,
            "only the requester can answer")
    problem(api("alice").post(f"/api/v1/requests/{number}/answer", {"answer": ""}), 422,
            "The body does not match the schema.", {"answer": ["Must not be empty."]})
    said = valid(api("alice").post(f"/api/v1/requests/{number}/answer", {"answer": " Yes, please. "}),
                 "CommentResult", 201)
    assert (said["author"], said["body"]) == ("alice", "Yes, please.")
    assert reload(service, number).waiting_on_requester is False


def test_my_groups_records_are_filtered_and_paged_by_cursor(api, service):
    numbers = [ordered(api) for _ in range(3)] + [ordered(api, body=INCIDENT)]
    problem(api("alice").get("/api/v1/records"), 403, "only agents see the list of records")
    frank = api("frank")
    first = valid(frank.get("/api/v1/records?kind=request&limit=2"), "RequestList")
    assert [r["number"] for r in first["items"]] == numbers[2:0:-1] and first["next_cursor"]
    rest = valid(frank.get(f"/api/v1/records?kind=request&limit=2&cursor={first['next_cursor']}"),
                 "RequestList")
    assert [r["number"] for r in rest["items"]] == numbers[:1] and rest["next_cursor"] is None
    incidents = valid(frank.get("/api/v1/records?kind=incident"), "RequestList")
    assert [r["number"] for r in incidents["items"]] == numbers[3:]
    bad = frank.get("/api/v1/records?kind=rumour&sort=-updated&colour=red&cursor=zz")
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"sort"}
    bad = frank.get("/api/v1/records?kind=rumour&colour=red")
    assert set(bad.get_json()["errors"]) == {"kind", "colour"}
    assert bad.get_json()["errors"]["colour"] == ["Unknown filter colour."]


# ---------------------------------------------------------------- configuration items, knowledge


def test_agents_list_and_read_configuration_items(api, service):
    from datetime import UTC, datetime

    from engine import cmdb

    with service.sessions.begin() as s:
        ci = cmdb.create(s, service.catalog(), "oscar", "server", cmdb.CIInput(
            name="db01", owner_group_id="it-hardware", fields={"hostname": "db01"}), datetime.now(UTC))
        ci_id = ci.id
    problem(api("alice").get("/api/v1/cis"), 403, "only agents see configuration items")
    found = valid(api("frank").get("/api/v1/cis?type=server&q=db0"), "ConfigurationItemList")
    assert [(c["id"], c["name"], c["owner_group"]) for c in found["items"]] == [
        (ci_id, "db01", "it-hardware")]
    assert valid(api("frank").get("/api/v1/cis?q=nothing-like-it"), "ConfigurationItemList")["items"] == []
    one = valid(api("frank").get(f"/api/v1/cis/{ci_id}"), "ConfigurationItem")
    assert one["data"]["hostname"] == "db01"
    problem(api("frank").get("/api/v1/cis/999999"), 404, "no configuration item 999999")
    problem(api("frank").get("/api/v1/cis?type=spaceship"), 422, "unknown type",
            {"type": ["spaceship is not a configuration item type."]})


def test_knowledge_search_finds_only_what_the_viewer_may_read(api, app):
    cat = app.extensions["deskflow"].catalog
    everyone = valid(api("alice").get("/api/v1/knowledge"), "ArticleList")
    assert {a["id"] for a in everyone["items"]} == {a.id for a in cat.articles
                                                    if "everyone" in a.visible_to}
    agents = valid(api("frank").get("/api/v1/knowledge"), "ArticleList")
    assert "change-management-guide" in {a["id"] for a in agents["items"]}
    assert "change-management-guide" not in {a["id"] for a in everyone["items"]}
    found = valid(api("alice").get("/api/v1/knowledge?q=laptop"), "ArticleList")
    assert found["items"] and found["items"][0]["id"] == "laptop-policy"


# ---------------------------------------------------------------- admin: the catalog


def test_admins_see_the_catalog_status_and_reload_it(api, app, tmp_path):
    state = app.extensions["deskflow"]
    problem(api("alice").get("/api/v1/admin/catalog"), 403, "only admins manage the catalog")
    problem(api("alice").post("/api/v1/admin/catalog/reload"), 403, "only admins manage the catalog")
    status = valid(api("oscar").get("/api/v1/admin/catalog"), "CatalogStatus")
    old = status["version"]
    assert (status["version"], status["last_refused"]) == (state.catalog.version, [])
    copy = tmp_path / "catalog"
    shutil.copytree(ACME, copy)
    state.path = copy
    item = copy / "items" / "new-laptop.yaml"
    item.write_text(item.read_text().replace("id: new-laptop", "id: New-Laptop"))
    response = api("oscar").post("/api/v1/admin/catalog/reload")
    errors = valid(api("oscar").get("/api/v1/admin/catalog"), "CatalogStatus")["last_refused"]
    refused = problem(response, 422, f"The catalog has {len(errors)} errors; version {old} keeps "
                      "serving.", {"catalog": errors})
    assert any(e.startswith("items/new-laptop.yaml:2:5: ") for e in refused["errors"]["catalog"])
    assert state.catalog.version == old
    item.write_text(item.read_text().replace("id: New-Laptop", "id: new-laptop").replace(
        "name: New laptop", "name: Shiny new laptop"))
    fresh = valid(api("oscar").post("/api/v1/admin/catalog/reload"), "CatalogStatus")
    assert fresh["previous_version"] == old != fresh["version"] == state.catalog.version
    # what changed, as `deskflow diff --format json` says it
    assert fresh["diff"] == {"shape": 1, "old": old, "new": fresh["version"], "changes": [
        {"kind": "property_changed", "sign": "~", "subject": "item", "id": "new-laptop",
         "message": "name: New laptop → Shiny new laptop", "file": "items/new-laptop.yaml",
         "line": 3, "side": "new", "before": "New laptop", "after": "Shiny new laptop",
         "open_requests": None}]}
