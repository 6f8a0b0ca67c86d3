"""Problems and known errors through the request service: from incidents, the known-error rule,
resolving a problem with its incidents, callers told."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from catalog.loader import load_catalog
from engine import problems
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.models import AuditEvent, Notification, OutboxMessage, ProblemRecord, RecordLink, Request, Task
from tests.acme import ACME
from tests.stored import reload

WORKAROUND = "Connect to the wired network, or use the VPN client 5.2 beta."
VPN = {"short_description": "VPN drops every 30 minutes", "affected_service": "network",
       "description": "The VPN disconnects every half hour while on the office Wi-Fi.",
       "impact": "low", "urgency": "medium", "contact_email": "alice@acme.example"}


def incident(service, actor="alice", **answers) -> str:
    return service.submit("report-incident", actor, {**VPN, **answers}).number


def record(sessions, number) -> ProblemRecord:
    with sessions() as s:
        row = s.get(ProblemRecord, reload(sessions, number).id)
        s.expunge(row)
        return row


def events(sessions, number, event) -> list[AuditEvent]:
    req = reload(sessions, number)
    with sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.request_id == req.id,
                                                       AuditEvent.event == event)))


def links(sessions, number) -> list[tuple[str, str]]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return [(link.kind, other.number) for link, other in s.execute(
            select(RecordLink, Request).join(Request, Request.id == RecordLink.target_id)
            .where(RecordLink.source_id == req.id).order_by(RecordLink.id))]


def known(service, sessions, number, actor="heidi") -> None:
    service.edit_problem(number, actor, {"workaround": WORKAROUND, "known_error": "yes"})


def test_a_problem_from_one_incident_takes_its_title_and_service_and_is_linked(service, sessions):
    inc = incident(service)
    cat = service.catalog()
    answers = problems.prefill(cat, cat.item("problem"), [reload(sessions, inc)])
    assert answers == {"short_description": "VPN drops every 30 minutes", "service": "network",
                       "description": f"Created from {inc}."}
    number = service.create_problem("frank", [inc], answers).number
    req = reload(sessions, number)
    assert (req.record_type, req.title, req.assignment_group_id) == (
        "problem", "VPN drops every 30 minutes", "it-ops")
    assert record(sessions, number).service == "network"
    assert links(sessions, number) == [("problem_of", inc)]
    assert [e.detail["other"] for e in events(sessions, inc, "linked")] == [number]


def test_a_problem_from_several_incidents_links_every_one_in_one_unit(service, sessions):
    incs = [incident(service), incident(service, "bob"), incident(service, "carol")]
    number = service.create_problem("frank", incs, {"short_description": "VPN drops",
                                                    "service": "network"}).number
    assert links(sessions, number) == [("problem_of", i) for i in incs]


def test_a_request_among_the_incidents_is_refused_and_nothing_is_created(service, sessions, answers):
    inc = incident(service)
    other = service.submit("vpn-access", "frank", answers["vpn-access"]).number
    with pytest.raises(InvalidInput) as exc:
        service.create_problem("frank", [inc, other], {"short_description": "VPN drops",
                                                       "service": "network"})
    assert exc.value.fields == {"incidents": [
        f"{other} is a request; a problem is created from incidents."]}
    with sessions() as s:
        assert s.scalars(select(Request).where(Request.record_type == "problem")).all() == []


def test_bad_problem_answers_write_nothing_not_even_links(service, sessions):
    inc = incident(service)
    with pytest.raises(InvalidInput):
        service.create_problem("frank", [inc], {"short_description": "VPN drops", "service": "moon"})
    assert events(sessions, inc, "linked") == []


def test_only_agents_of_the_incidents_create_a_problem_from_them(service):
    inc = incident(service)
    with pytest.raises(NotAllowed, match=f"only agents of {inc} can create a problem from it"):
        service.create_problem("alice", [inc], {"short_description": "VPN drops", "service": "network"})


def test_a_known_error_needs_a_workaround(service, sessions, answers):
    number = service.submit("problem", "heidi", answers["problem"]).number
    with pytest.raises(InvalidInput) as exc:
        service.edit_problem(number, "heidi", {"known_error": "yes"})
    assert exc.value.fields == {"workaround": ["Write the workaround before marking this a known error."]}
    assert record(sessions, number).known_error is False


def test_marking_a_known_error_moves_the_workflow_and_audits_old_and_new(service, sessions, answers, clock):
    number = service.submit("problem", "heidi", answers["problem"]).number
    service.edit_problem(number, "heidi", {"root_cause": "The Wi-Fi controller drops idle leases.",
                                           "workaround": WORKAROUND, "known_error": "yes"})
    row = record(sessions, number)
    assert (row.known_error, row.known_error_at, row.workaround) == (True, clock.now, WORKAROUND)
    assert reload(sessions, number).state == "known_error"
    [changed] = events(sessions, number, "problem_changed")
    assert changed.detail["changes"] == {
        "root_cause": ["", "The Wi-Fi controller drops idle leases."],
        "workaround": ["", WORKAROUND], "known_error": [False, True]}
    with pytest.raises(InvalidInput) as exc:
        service.edit_problem(number, "heidi", {"known_error": ""})
    assert exc.value.fields == {"known_error": ["A known error stays one until its problem is resolved."]}
    with pytest.raises(InvalidInput) as exc:
        service.edit_problem(number, "heidi", {"workaround": " "})
    assert exc.value.fields == {"workaround": ["A known error keeps its workaround."]}


def test_completing_the_known_error_outcome_on_the_task_page_keeps_the_rule(service, sessions, answers):
    number = service.submit("problem", "heidi", answers["problem"]).number
    task_id = _open_task(sessions, number)
    with pytest.raises(InvalidInput):
        service.complete_task(task_id, "heidi", "known_error")
    service.edit_problem(number, "heidi", {"workaround": WORKAROUND})
    service.complete_task(task_id, "heidi", "known_error")
    assert record(sessions, number).known_error is True


def _open_task(sessions, number) -> int:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return s.scalar(select(Task.id).where(Task.request_id == req.id, Task.status == "open"))


def test_bad_problem_fields_are_refused_per_field(service, answers):
    number = service.submit("problem", "heidi", answers["problem"]).number
    with pytest.raises(InvalidInput) as exc:
        service.edit_problem(number, "heidi", {"service": "moon", "ci": "999", "colour": "red"})
    assert exc.value.fields == {"service": ["moon is not one of the choices."],
                                "ci": ["There is no laptop 999."], "_unknown": ["Unknown field colour."]}
    with pytest.raises(NotFound):
        service.edit_problem(number, "alice", {"root_cause": "x"})


def test_known_errors_list_open_ones_and_match_service_or_ci(service, sessions, answers):
    number = service.create_problem("frank", [incident(service)], {
        "short_description": "VPN drops", "service": "network"}).number
    with sessions() as s:
        assert problems.known_errors(s) == []
    known(service, sessions, number)
    with sessions() as s:
        [ke] = problems.known_errors(s)
    assert (ke.number, ke.title, ke.workaround, ke.service) == (number, "VPN drops", WORKAROUND, "network")
    assert problems.matching([ke], "network", "") == [ke]
    assert problems.matching([ke], "email", "") == []


def test_resolving_a_problem_resolves_its_open_incidents_and_tells_their_callers(service, sessions):
    incs = [incident(service), incident(service, "bob")]
    number = service.create_problem("frank", incs, {"short_description": "VPN drops",
                                                    "service": "network"}).number
    known(service, sessions, number)
    service.resolve(number, "heidi", "fixed", "Replaced the Wi-Fi controller firmware.")
    assert service.resolve_linked_incidents(number, "heidi") == [(i, "resolved") for i in incs]
    for inc, caller in zip(incs, ("alice", "bob"), strict=True):
        req = reload(sessions, inc)
        assert (req.resolution_code, req.resolution_notes, req.state) == (
            "fixed", f"Resolved with problem {number}: Replaced the Wi-Fi controller firmware.",
            "confirm_window")
        with sessions() as s:
            [note] = s.scalars(select(Notification).where(Notification.request_id == req.id,
                                                          Notification.kind == "resolved"))
            assert note.person_id == caller
            assert s.scalar(select(OutboxMessage).where(OutboxMessage.request_id == req.id,
                                                        OutboxMessage.event == "record_resolved"))
    with sessions() as s:
        assert problems.known_errors(s) == []  # resolved: no longer published


def test_each_incident_is_reported_on_its_own_and_a_refusal_leaves_it_untouched(service, sessions):
    first, second = incident(service), incident(service, "bob")
    number = service.create_problem("frank", [first, second], {"short_description": "VPN drops",
                                                               "service": "network"}).number
    service.resolve(second, "frank", "workaround", "Told Bob to use the wired network.")
    service.resolve(number, "heidi", "fixed", "Replaced the Wi-Fi controller firmware.")
    assert service.resolve_linked_incidents(number, "heidi") == [(first, "resolved")]
    assert reload(sessions, second).resolution_code == "workaround"


def test_incidents_are_resolved_only_after_their_problem(service):
    number = service.create_problem("frank", [incident(service)], {"short_description": "VPN drops",
                                                                   "service": "network"}).number
    with pytest.raises(Conflict, match=f"{number} is not resolved; resolve it first"):
        service.resolve_linked_incidents(number, "heidi")


@pytest.mark.parametrize(("concerns", "at", "expected"), [
    ("{service: affected_servce}", "affected_servce", "concerns.service: unknown field "
     "affected_servce (did you mean affected_service?)"),
    ("{service: affected_service, ci: description}", "description", "concerns.ci: "
     "field description must be an asset field (known errors match on its values)"),
])
def test_concerns_must_name_a_choice_and_an_asset_field(tmp_path, concerns, at, expected):
    root = tmp_path / "acme"
    shutil.copytree(ACME, root)
    path = root / "items" / "report-incident.yaml"
    text = path.read_text().replace("concerns: {service: affected_service, ci: affected_device}",
                                    f"concerns: {concerns}")
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("concerns:"))
    col = text.splitlines()[line - 1].index(at) + 1
    assert [e.render() for e in load_catalog(root).errors] == [
        f"items/report-incident.yaml:{line}:{col}: {expected}"]
