"""Major incidents, tier routing by category and the article that solved it, through the
request service on acme (engine.major, engine.lifecycle, engine.tasks)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from catalog.expressions import compile_expression
from catalog.loader import load_catalog, load_valid_catalog
from catalog.models import MajorIncidentRule
from engine import worklist
from engine.directory import sync_directory
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.major import Attached
from engine.models import Notification, OutboxMessage, Request, Task
from engine.service import RequestService
from tests.catalog.test_loader import DIRECTORY, SETTINGS, WORKFLOW
from tests.stored import events, reload

NOTES = "Restarted the mail relay."
LOW = {"impact": "low", "urgency": "low"}
GROUP = ["erin", "oscar"]  # acme's major-incident group


def order(service, answers, actor="alice", item="report-incident", **changes) -> Request:
    return service.submit(item, actor, {**answers[item], **changes})


def told(sessions, kind="major_incident") -> list[tuple[str, str]]:
    with sessions() as s:
        return sorted((n.person_id, n.text) for n in s.scalars(
            select(Notification).where(Notification.kind == kind)))


def emails(sessions, number, template) -> list[list[str]]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return sorted(m.payload["to"] for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.request_id == req.id)) if m.payload.get("template") == template)


def open_task(sessions, number) -> Task:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return s.scalar(select(Task).where(Task.request_id == req.id, Task.status == "open"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------- the rule


def test_a_critical_incident_is_major_at_submit_and_the_group_is_told_in_app_and_by_email(
        service, answers, sessions):
    req = order(service, answers)  # high impact, high urgency: p1
    after = reload(sessions, req.number)
    assert (after.priority, after.major, after.major_at, after.major_by_id) == (
        "p1", True, utc(2026, 11, 23, 8, 30), None)
    [event] = events(sessions, req.number, "major_declared")
    assert (event.actor_id, event.detail) == (
        "alice", {"reason": "rule: request.priority == 'p1'", "by_rule": True})
    line = "REQ-000001 Mail is down is a major incident (rule: request.priority == 'p1')"
    assert told(sessions) == [(p, line) for p in GROUP]
    assert emails(sessions, req.number, "major_incident") == [
        ["erin.deboer@acme.example"], ["oscar.mulder@acme.example"]]


def test_a_lower_priority_incident_becomes_major_when_its_priority_is_raised_and_stays_so(
        service, answers, sessions):
    req = order(service, answers, **LOW)
    assert reload(sessions, req.number).major is False
    assert told(sessions) == []
    service.edit_record(req.number, "frank", {"impact": "high", "urgency": "high"})
    after = reload(sessions, req.number)
    assert (after.priority, after.major) == ("p1", True)
    assert [e.actor_id for e in events(sessions, req.number, "major_declared")] == ["frank"]
    assert [p for p, _ in told(sessions)] == GROUP
    service.edit_record(req.number, "frank", {"impact": "low"})
    assert reload(sessions, req.number).major is True  # the rule never unflags
    assert len(events(sessions, req.number, "major_declared")) == 1


def test_editing_other_fields_does_not_apply_the_rule(service, answers, sessions, acme, clock):
    req = order(service, answers, **LOW)
    wide = replace(acme, settings=replace(acme.settings, major_incident=MajorIncidentRule(
        "major-incident", compile_expression("request.category == 'Email'", {"request"}))))
    RequestService(sessions, lambda: wide, clock).edit_record(req.number, "frank",
                                                              {"category": "Email"})
    assert reload(sessions, req.number).major is False


def test_a_request_is_never_major_by_the_rule(service, answers, sessions, acme, clock):
    always = replace(acme, settings=replace(acme.settings, major_incident=MajorIncidentRule(
        "major-incident", compile_expression("true", {"request"}))))
    req = RequestService(sessions, lambda: always, clock).submit(
        "vpn-access", "alice", answers["vpn-access"])
    assert reload(sessions, req.number).major is False


# ---------------------------------------------------------------- by hand


def test_an_agent_declares_a_major_incident_by_hand_and_stands_it_down(service, answers, sessions):
    req = order(service, answers, **LOW)
    service.declare_major(req.number, "frank", "Half of sales cannot send mail.")
    after = reload(sessions, req.number)
    assert (after.major, after.major_by_id) == (True, "frank")
    assert told(sessions) == [(p, "Frank Smit declared REQ-000001 Mail is down a major incident: "
                                  "Half of sales cannot send mail.") for p in GROUP]
    service.stand_down_major(req.number, "frank", "Only two people, and mail works again.")
    after = reload(sessions, req.number)
    assert (after.major, after.major_at, after.major_by_id) == (False, None, None)
    [event] = events(sessions, req.number, "major_stood_down")
    assert (event.actor_id, event.detail) == ("frank", {"reason": "Only two people, and mail works again."})


def test_the_declarer_is_not_told_of_what_they_did(service, answers, sessions):
    req = order(service, answers, **LOW)
    service.declare_major(req.number, "erin", "Mail is down for everyone.")
    assert [p for p, _ in told(sessions)] == ["oscar"]


def test_declaring_by_hand_is_refused_with_reasons(service, answers, sessions):
    low = order(service, answers, **LOW)
    major = order(service, answers)
    vpn = order(service, answers, item="vpn-access")
    with pytest.raises(InvalidInput) as exc:
        service.declare_major(low.number, "frank", "  ")
    assert exc.value.fields == {"reason": ["This field is required."]}
    with pytest.raises(NotAllowed, match="^only agents of REQ-000001 can declare it a major incident$"):
        service.declare_major(low.number, "alice", "It is bad.")
    with pytest.raises(Conflict, match="^REQ-000002 is already a major incident$"):
        service.declare_major(major.number, "frank", "It is bad.")
    with pytest.raises(Conflict, match="^REQ-000003 is a request; only incidents can be major$"):
        service.declare_major(vpn.number, "oscar", "It is bad.")
    with pytest.raises(Conflict, match="^REQ-000001 is not a major incident$"):
        service.stand_down_major(low.number, "frank", "It is not.")
    assert reload(sessions, low.number).major is False


@pytest.mark.parametrize(("channel", "rows", "mails"), [("in_app", 1, 0), ("email", 0, 1)])
def test_the_group_members_preferences_choose_in_app_or_email(service, answers, sessions,
                                                              channel, rows, mails):
    service.set_notification_preferences("oscar", {"major_incident": channel})
    req = order(service, answers)
    assert len([p for p, _ in told(sessions) if p == "oscar"]) == rows
    assert emails(sessions, req.number, "major_incident").count(["oscar.mulder@acme.example"]) == mails


# ---------------------------------------------------------------- children


@pytest.fixture
def outage(service, answers):
    """Bob's p1 mail outage (major by the rule) with Alice's and Carol's incidents attached."""
    parent = order(service, answers, actor="bob")
    kids = [order(service, answers, actor=who, **LOW, short_description=f"No mail for {who}")
            for who in ("alice", "carol")]
    result = service.attach_incidents(parent.number, "frank", f"{kids[0].number}, {kids[1].number}")
    assert result == [Attached(kids[0].number), Attached(kids[1].number)]
    return parent.number, kids[0].number, kids[1].number


def test_resolving_the_parent_resolves_each_open_child_with_its_resolution(service, sessions, outage):
    parent, alice, carol = outage
    service.resolve(parent, "frank", "fixed", NOTES, solution_article="how-to-report-an-incident")
    text = f"Resolved with major incident {parent}: {NOTES}"
    for number in (alice, carol):
        child = reload(sessions, number)
        assert (child.state, child.resolution_code, child.resolution_notes, child.solution_article,
                child.resolved_at is not None) == (
            "confirm_window", "fixed", text, "how-to-report-an-incident", True)
        [event] = events(sessions, number, "resolved")
        assert (event.actor_id, event.detail["code"], event.detail["notes"]) == ("frank", "fixed", text)
        # the caller is told by the workflow's resolved path (acme: tell_requester)
        assert [e.to_state for e in events(sessions, number, "transition")][-2:] == [
            "tell_requester", "confirm_window"]
    [report] = events(sessions, parent, "children_resolved")
    assert report.detail == {"resolved": [alice, carol], "closed": [], "skipped": []}


PLAIN_WORKFLOW = """kind: Workflow
id: plain-incident
name: Plain incident
start: work
states:
  work:
    task: {queue: service-desk, title: Fix it}
    on: {done: done}
  done: {end: fulfilled}
"""
OUTAGE_ITEM = """kind: CatalogItem
id: report-outage
name: Report an outage
category: Support
summary: An incident whose workflow has no resolved outcome.
owner: service-desk
record_type: incident
workflow: plain-incident
form:
  - {name: short_description, label: What is wrong?, type: string, required: true}
"""


def test_a_child_without_a_resolving_task_is_closed_administratively_and_its_caller_emailed(
        tmp_path, acme_path, sessions, clock, answers):
    shutil.copytree(acme_path, tmp_path / "acme")
    (tmp_path / "acme" / "workflows" / "plain-incident.yaml").write_text(PLAIN_WORKFLOW)
    (tmp_path / "acme" / "items" / "report-outage.yaml").write_text(OUTAGE_ITEM)
    cat = load_valid_catalog(tmp_path / "acme")
    with sessions.begin() as s:
        sync_directory(s, cat.directory)
    service = RequestService(sessions, lambda: cat, clock)
    parent = order(service, answers, actor="bob").number
    alice = order(service, answers, **LOW).number
    carol = service.submit("report-outage", "carol", {"short_description": "No mail"}).number
    service.attach_incidents(parent, "frank", f"{alice} {carol}")
    service.resolve(parent, "frank", "fixed", NOTES)
    child = reload(sessions, carol)
    assert (child.status, child.outcome, child.resolution_code, child.resolution_notes) == (
        "closed", "resolved", "fixed", f"Resolved with major incident {parent}: {NOTES}")
    [event] = events(sessions, carol, "closed_administratively")
    assert (event.actor_id, event.detail["parent"], event.detail["outcome"]) == ("frank", parent, "resolved")
    assert open_task(sessions, carol) is None
    assert emails(sessions, carol, "major_incident_resolved") == [["carol.devries@acme.example"]]
    [report] = events(sessions, parent, "children_resolved")
    assert report.detail == {"resolved": [alice], "closed": [carol], "skipped": []}


def test_a_child_already_resolved_is_left_alone_and_reported(service, sessions, outage):
    parent, alice, carol = outage
    service.resolve(alice, "grace", "workaround", "Alice uses webmail for now.")
    service.resolve(parent, "frank", "fixed", NOTES)
    assert reload(sessions, alice).resolution_code == "workaround"
    [report] = events(sessions, parent, "children_resolved")
    assert report.detail == {"resolved": [carol], "closed": [],
                             "skipped": [f"{alice}: already resolved, waiting for its caller"]}


def test_a_refused_parent_resolution_resolves_no_child(service, sessions, outage):
    parent, alice, carol = outage
    with pytest.raises(InvalidInput):
        service.resolve(parent, "frank", "fixed", "short")  # acme: notes of at least 10 characters
    assert [reload(sessions, n).resolved_at for n in (parent, alice, carol)] == [None, None, None]


def test_attaching_refuses_itself_a_cycle_a_request_and_unknown_numbers(service, answers, sessions,
                                                                        outage):
    parent, alice, carol = outage
    vpn = order(service, answers, item="vpn-access")
    service.declare_major(alice, "frank", "Alice's whole team is out.")
    result = service.attach_incidents(alice, "frank", f"{parent} {alice} {vpn.number} REQ-999999")
    assert result == [
        Attached(parent, f"{parent} cannot be child of {alice}: {alice} is already child of "
                         f"{parent}, directly or through others."),
        Attached(alice, "A record cannot be linked to itself."),
        Attached(vpn.number, f"{vpn.number} is a request; only incidents can be attached."),
        Attached("REQ-999999", "There is no record REQ-999999."),
    ]


def test_attaching_needs_a_major_incident_and_some_numbers(service, answers, outage):
    parent, alice, carol = outage
    with pytest.raises(Conflict, match=f"^{alice} is not a major incident$"):
        service.attach_incidents(alice, "frank", carol)
    with pytest.raises(InvalidInput) as exc:
        service.attach_incidents(parent, "frank", " ,, ")
    assert exc.value.fields == {"numbers": ["This field is required."]}


def test_the_agents_list_filters_major_incidents(service, sessions, acme, outage):
    parent, alice, carol = outage
    with sessions() as s:
        for value, expected in (("yes", [parent]), ("no", [alice, carol])):
            f = worklist.parse_filters(s, acme, "frank", {"major": value})
            assert sorted(r.number for r in worklist.worklist(s, acme, "frank", f, 1).rows) == expected
        with pytest.raises(InvalidInput) as exc:
            worklist.parse_filters(s, acme, "frank", {"major": "maybe"})
    assert exc.value.fields == {"major": ["maybe is not one of: yes, no."]}


# ---------------------------------------------------------------- routing by category


@pytest.mark.parametrize(("service_answer", "tier3"), [
    ("network", "network-team"), ("business-system", "apps-team"), ("printing", "it-ops")])
def test_the_third_tier_is_picked_by_the_category(service, answers, sessions, service_answer, tier3):
    req = order(service, answers, **LOW, affected_service=service_answer)
    assert reload(sessions, req.number).category == service_answer
    task = open_task(sessions, req.number)
    service.escalate_task(task.id, "frank")
    service.escalate_task(task.id, "heidi")
    after = open_task(sessions, req.number)
    assert (after.queue, after.tier) == (tier3, 2)
    assert reload(sessions, req.number).assignment_group_id == tier3
    [_, escalated] = events(sessions, req.number, "task_escalated")
    assert (escalated.detail["from_queue"], escalated.detail["to_queue"]) == ("it-ops", tier3)


def test_the_group_follows_the_category_an_agent_set(service, answers, sessions):
    req = order(service, answers, **LOW, affected_service="other")
    task = open_task(sessions, req.number)
    service.escalate_task(task.id, "frank")
    service.edit_record(req.number, "heidi", {"category": "Network"})  # case does not matter
    service.escalate_task(task.id, "heidi")
    assert open_task(sessions, req.number).queue == "network-team"


def test_an_sla_breach_escalates_by_the_category(service, answers, sessions, clock):
    req = order(service, answers, affected_service="network")
    clock.now = reload(sessions, req.number).resolution_due
    service.run_due()  # response and resolution breached: two tiers up
    after = open_task(sessions, req.number)
    assert (after.queue, after.tier) == ("network-team", 2)
    assert reload(sessions, req.number).assignment_group_id == "network-team"


# ---------------------------------------------------------------- the article that solved it


def test_the_article_that_solved_it_is_stored_and_audited(service, answers, sessions):
    req = order(service, answers, **LOW)
    service.resolve(req.number, "frank", "fixed", NOTES, solution_article="reset-your-password")
    assert reload(sessions, req.number).solution_article == "reset-your-password"
    [event] = events(sessions, req.number, "resolved")
    assert event.detail["article"] == "reset-your-password"


def test_reopening_forgets_the_article(service, answers, sessions):
    req = order(service, answers, **LOW)
    service.resolve(req.number, "frank", "fixed", NOTES, solution_article="reset-your-password")
    service.reopen(req.number, "alice", "Still broken.")
    assert reload(sessions, req.number).solution_article is None


@pytest.mark.parametrize(("article", "who"), [("nope", "frank"), ("change-management-guide", "leo")])
def test_an_unknown_or_unreadable_article_is_refused_and_nothing_is_resolved(
        service, answers, sessions, article, who):
    req = order(service, answers, **LOW)
    if who == "leo":
        service.edit_record(req.number, "frank", {"assignment_group": "hr"})
    with pytest.raises(InvalidInput) as exc:
        service.resolve(req.number, who, "fixed", NOTES, solution_article=article)
    assert exc.value.fields == {"solution_article": [f"There is no article {article}."]}
    assert reload(sessions, req.number).resolved_at is None


# ---------------------------------------------------------------- configuration (file:line:col)

TIERED = ("kind: Workflow\nid: wf\nstart: work\nstates:\n  work:\n    task:\n      queue: team\n"
          "      escalate_to:\n{tiers}    on: {{done: done}}\n  done: {{end: fulfilled}}\n")
THING = ("kind: CatalogItem\nid: thing\nname: Thing\ncategory: Support\nsummary: A thing.\n"
         "workflow: wf\ncategory_from: {field}\nform:\n  - {{name: service, label: Service, type: string}}\n")


def _catalog(tmp_path, settings="", workflow=None, item=None):
    (tmp_path / "deskflow.yaml").write_text(SETTINGS + settings)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "wf.yaml").write_text(workflow or WORKFLOW)
    if item:
        (tmp_path / "items").mkdir()
        (tmp_path / "items" / "thing.yaml").write_text(item)
    return [str(e) for e in load_catalog(tmp_path).errors]


@pytest.mark.parametrize(("settings", "expected"), [
    ("major_incident:\n  group: majors\n  when: \"request.priority == 'p1'\"\n",
     "deskflow.yaml:6:10: major_incident.group: unknown group majors (known: team)"),
    ("major_incident:\n  group: team\n  when: \"request.priority ==\"\n",
     "deskflow.yaml:7:9: major_incident.when: expression 'request.priority ==' does not parse: "
     "invalid syntax (expressions look like form.model == 'pro16')"),
    ("major_incident:\n  group: team\n  when: \"form.x == 1\"\n",
     "deskflow.yaml:7:9: major_incident.when: expression 'form.x == 1' is invalid: unknown name "
     "form (names available here: request)"),
    ("major_incident:\n  when: \"true\"\n",
     "deskflow.yaml:5:1: major_incident: missing required key group"),
])
def test_a_bad_major_incident_setting_is_an_error_at_its_line(tmp_path, settings, expected):
    assert _catalog(tmp_path, settings) == [expected]


def test_a_good_major_incident_setting_loads(tmp_path, acme):
    assert _catalog(tmp_path, "major_incident: {group: team, when: \"request.impact == 'high'\"}\n") == []
    rule = acme.settings.major_incident
    assert (rule.group, rule.when.source) == ("major-incident", "request.priority == 'p1'")


@pytest.mark.parametrize(("tiers", "expected"), [
    ("        - team\n        - by_category: {network: netops}\n          otherwise: tema\n",
     ["workflows/wf.yaml:10:34: states.work.task.escalate_to[1].by_category.network: unknown "
      "group netops (known: team)",
      "workflows/wf.yaml:11:22: states.work.task.escalate_to[1].otherwise: unknown group tema "
      "(did you mean team?)"]),
    ("        - by_category: {network: team}\n",
     ["workflows/wf.yaml:9:11: states.work.task.escalate_to[0]: {\"by_category\": {\"network\": "
      "\"team\"}} is not a valid value here (A tier after the queue: a group id, or `{by_category: "
      "{CATEGORY: GROUP}, otherwise: GROUP}` to pick the group by the record's category "
      "(case-insensitive))"]),
])
def test_a_bad_tier_by_category_is_an_error_at_its_line(tmp_path, tiers, expected):
    assert _catalog(tmp_path, workflow=TIERED.format(tiers=tiers)) == expected


def test_category_from_names_a_field_of_the_form(tmp_path):
    assert _catalog(tmp_path, item=THING.format(field="servce")) == [
        "items/thing.yaml:7:16: category_from: unknown field servce (did you mean service?)"]


def test_acme_routes_its_third_incident_tier_by_category(acme):
    [task] = acme.workflow("incident").state("triage").tasks
    assert [task.tier_group(2, c) for c in ("network", "Business-System", "email", "other", None)] == [
        "network-team", "apps-team", "apps-team", "it-ops", "it-ops"]
    assert task.groups == ("service-desk", "it-ops", "network-team", "apps-team")
    assert task.tier_group(3, "network") is None
