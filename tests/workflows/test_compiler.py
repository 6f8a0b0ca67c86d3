"""Compiling workflows to shared transitions machines and firing their events."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from catalog.expressions import ExpressionError, compile_expression
from catalog.loader import load_catalog
from catalog.workflow import Route, State, StateKind, Trigger, Workflow
from workflows.compiler import (
    RouteCondition,
    StateHolder,
    build_machine,
    fire,
    machine_config,
    machine_for,
)
from workflows.errors import InvalidTrigger, UnknownState

ACME_WORKFLOWS = ["access-request", "automated-unlock", "emergency-change", "facilities-request",
                  "hardware-request",
                  "identity-request", "incident", "laptop-request", "licence-request",
                  "normal-change", "offboarding", "onboarding", "owner-approval", "problem",
                  "standard-change"]

TINY = """\
kind: Workflow
id: tiny
start: check
states:
  check:
    decide:
      - {when: "form.n > 1", goto: big}
      - {goto: small}
  big: {end: fulfilled}
  small: {end: rejected}
"""


def _decision_without_default() -> Workflow:
    """A hand-built workflow the loader would reject: its only route has a condition."""
    return Workflow(id="no-default", start="check", version="no-default-1", states=(
        State("check", StateKind.DECISION, routes=(Route("big", compile_expression("form.n > 1")),)),
        State("big", StateKind.END, outcome="fulfilled"),
        State("cancelled", StateKind.END, outcome="cancelled"),
    ))


def _fire_until_waiting(wf: Workflow, state: str, context: dict) -> list[str]:
    """Fire route on decisions and next on action steps; return the states entered."""
    automatic = {StateKind.DECISION: Trigger.ROUTE.value, StateKind.ACTION: Trigger.NEXT.value}
    entered: list[str] = []
    for _ in range(100):
        trigger = automatic.get(wf.state(state).kind)
        if trigger is None:
            return entered
        state = fire(wf, state, trigger, context)
        entered.append(state)
    raise AssertionError(f"{wf.id} never waits: {entered[-6:]}")


def test_acme_is_the_catalog_under_test(acme):
    assert acme.ok, [str(e) for e in acme.errors]
    assert sorted(w.id for w in acme.workflows) == ACME_WORKFLOWS


@pytest.mark.parametrize("wf_id", ACME_WORKFLOWS)
def test_every_acme_workflow_compiles(acme, wf_id):
    wf = acme.workflow(wf_id)
    machine = build_machine(wf)
    assert list(machine.states) == list(wf.state_names)
    assert machine.initial == wf.start
    assert machine.models == []
    for state in wf.states:
        expected = {t.trigger for t in wf.transitions() if t.source == state.name}
        assert set(machine.get_triggers(state.name)) == expected
        assert ("cancel" in expected) is not state.is_end


def test_machine_config_routes_in_order_with_the_default_last(acme):
    config = machine_config(acme.workflow("laptop-request"))
    assert config["initial"] == "manager_approval"
    assert config["states"] == ["manager_approval", "check_model", "director_approval", "prepare",
                                "delivered", "rejected", "cancelled"]
    routes = [t for t in config["transitions"] if t["trigger"] == "route"]
    assert [(t["source"], t["dest"]) for t in routes] == [("check_model", "director_approval"),
                                                          ("check_model", "prepare")]
    (condition,) = routes[0]["conditions"]
    assert isinstance(condition, RouteCondition)
    assert str(condition) == "form.model == 'pro16'"
    assert "conditions" not in routes[1]
    assert {"trigger": "approved", "source": "manager_approval", "dest": "check_model"} \
        in config["transitions"]
    assert {"trigger": "cancel", "source": "prepare", "dest": "cancelled"} in config["transitions"]


def test_a_default_route_declared_first_is_still_tried_last():
    wf = Workflow(id="odd", start="check", version="odd-1", states=(
        State("check", StateKind.DECISION, routes=(
            Route("small"), Route("big", compile_expression("form.n > 1")))),
        State("big", StateKind.END, outcome="fulfilled"),
        State("small", StateKind.END, outcome="rejected"),
        State("cancelled", StateKind.END, outcome="cancelled"),
    ))
    routes = [t for t in machine_config(wf)["transitions"] if t["trigger"] == "route"]
    assert [t["dest"] for t in routes] == ["big", "small"]
    assert fire(wf, "check", "route", {"form": {"n": 2}}) == "big"
    assert fire(wf, "check", "route", {"form": {"n": 0}}) == "small"


@pytest.mark.parametrize("when", ["form.n > 1", "form.n * 2 > 2", "not form.n <= 1"])
def test_an_empty_answer_compared_with_an_ordering_takes_no_route_but_does_not_strand(when):
    wf = Workflow(id="odd", start="check", version=f"odd-{when}", states=(
        State("check", StateKind.DECISION, routes=(
            Route("big", compile_expression(when)), Route("small"))),
        State("big", StateKind.END, outcome="fulfilled"),
        State("small", StateKind.END, outcome="rejected"),
        State("cancelled", StateKind.END, outcome="cancelled"),
    ))
    expected = "big" if when.startswith("not") else "small"  # an ordering with null is false
    assert fire(wf, "check", "route", {"form": {"n": None}}) == expected


def test_machines_are_built_once_per_version(acme):
    wf = acme.workflow("laptop-request")
    assert machine_for(wf) is machine_for(wf)
    assert machine_for(load_catalog(acme.root).workflow("laptop-request")) is machine_for(wf)
    assert build_machine(wf) is not machine_for(wf)


def test_a_changed_workflow_gets_a_new_machine(make_catalog):
    path = make_catalog(TINY)
    before = load_catalog(path).workflow("tiny")
    (path / "workflows" / "tiny.yaml").write_text(TINY.replace("form.n > 1", "form.n > 5"))
    after = load_catalog(path).workflow("tiny")
    assert after.version != before.version
    assert machine_for(after) is not machine_for(before)
    assert fire(before, "check", "route", {"form": {"n": 3}}) == "big"
    assert fire(after, "check", "route", {"form": {"n": 3}}) == "small"


def test_reformatting_a_workflow_keeps_its_machine(make_catalog):
    path = make_catalog(TINY)
    before = load_catalog(path).workflow("tiny")
    (path / "workflows" / "tiny.yaml").write_text("# reformatted\n" + TINY.replace(": ", ":  "))
    after = load_catalog(path).workflow("tiny")
    assert after.version == before.version
    assert machine_for(after) is machine_for(before)


@pytest.mark.parametrize(("wf_id", "state", "trigger", "expected"), [
    ("laptop-request", "manager_approval", "approved", "check_model"),
    ("laptop-request", "manager_approval", "rejected", "rejected"),
    ("laptop-request", "director_approval", "approved", "prepare"),
    ("laptop-request", "prepare", "done", "delivered"),
    ("laptop-request", "prepare", "cancel", "cancelled"),
    ("incident", "triage", "resolved", "tell_requester"),
    ("incident", "triage", "duplicate", "closed_duplicate"),
    ("incident", "tell_requester", "next", "confirm_window"),
    ("incident", "confirm_window", "timer", "closed"),
    ("offboarding", "wrap_up", "done", "completed"),
    ("normal-change", "implement", "rolled_back", "rolled_back"),
])
def test_fire_follows_approvals_tasks_actions_and_timers(acme, wf_id, state, trigger, expected):
    assert fire(acme.workflow(wf_id), state, trigger, {}) == expected


@pytest.mark.parametrize(("model", "expected"), [("pro16", "director_approval"),
                                                  ("std14", "prepare")])
def test_the_laptop_model_decides_whether_a_director_approves(acme, model, expected):
    wf = acme.workflow("laptop-request")
    after_manager = fire(wf, "manager_approval", "approved", {"form": {"model": model}})
    assert fire(wf, after_manager, "route", {"form": {"model": model}}) == expected


@pytest.mark.parametrize(("context", "expected"), [
    ({"form": {"level": "admin"}}, "admin_approvals"),
    ({"form": {"level": "read"}}, "manager_approval"),
])
def test_access_level_routes(acme, context, expected):
    assert fire(acme.workflow("access-request"), "check_level", "route", context) == expected


@pytest.mark.parametrize(("software", "expected"), [("adobe-creative-cloud", "budget_approval"),
                                                    ("figma-professional", "assign")])
def test_conditions_call_catalog_functions(acme, software, expected):
    wf = acme.workflow("licence-request")
    context = {"form": {"software": software}}
    assert fire(wf, "check_cost", "route", context, acme.functions()) == expected


@pytest.mark.parametrize(("state", "trigger", "message"), [
    ("manager_approval", "done",
     "state manager_approval has no trigger done (its triggers: approved, rejected, cancel)"),
    ("check_model", "approved", "state check_model has no trigger approved "
                                "(its triggers: route, cancel)"),
    ("delivered", "approved", "state delivered has no trigger approved (it is an end state)"),
    ("cancelled", "cancel", "state cancelled has no trigger cancel (it is an end state)"),
])
def test_a_trigger_the_state_does_not_have_is_refused(acme, state, trigger, message):
    with pytest.raises(InvalidTrigger) as info:
        fire(acme.workflow("laptop-request"), state, trigger, {})
    assert str(info.value) == message


def test_an_unknown_state_is_refused(acme):
    with pytest.raises(UnknownState) as info:
        fire(acme.workflow("laptop-request"), "manager_aproval", "approved", {})
    assert str(info.value) == ("workflow laptop-request has no state manager_aproval "
                               "(did you mean manager_approval?)")


def test_a_decision_where_no_route_applies_is_refused():
    with pytest.raises(InvalidTrigger) as info:
        fire(_decision_without_default(), "check", "route", {"form": {"n": 0}})
    assert str(info.value) == ("state check has no route for this request "
                               "(no condition holds; add a last route without when)")


def test_expression_errors_propagate(acme):
    with pytest.raises(ExpressionError):
        fire(acme.workflow("laptop-request"), "check_model", "route", {})


def test_the_state_holder_holds_only_the_state():
    holder = StateHolder("review")
    assert holder.state == "review"
    with pytest.raises(AttributeError):
        holder.other = 1  # type: ignore[attr-defined]


def test_one_machine_serves_many_requests_at_once(acme):
    wf = acme.workflow("laptop-request")
    models = ["pro16", "std14"] * 200

    def route(model: str) -> str:
        return fire(wf, "check_model", "route", {"form": {"model": model}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(route, models))
    assert results == ["director_approval" if m == "pro16" else "prepare" for m in models]


@pytest.mark.parametrize(("suspicious", "path"), [
    (True, ["check_suspicious", "alert_security", "tell_user", "done"]),
    (False, ["check_suspicious", "tell_user", "done"]),
])
def test_actions_and_decisions_fire_through_to_the_end(acme, suspicious, path):
    wf = acme.workflow("automated-unlock")
    assert _fire_until_waiting(wf, "unlock", {"form": {"suspicious": suspicious}}) == path


@pytest.mark.parametrize(("wf_id", "state", "context", "path"), [
    ("laptop-request", "check_model", {"form": {"model": "pro16"}}, ["director_approval"]),
    ("laptop-request", "check_model", {"form": {"model": "std14"}}, ["prepare"]),
    ("laptop-request", "manager_approval", {}, []),
    ("laptop-request", "delivered", {}, []),
    ("incident", "tell_requester", {}, ["confirm_window"]),
    ("onboarding", "check_requester", {"requester": {"department": "Human Resources"}},
     ["prepare"]),
    ("offboarding", "schedule_removal", {}, ["wrap_up"]),
])
def test_decisions_and_actions_lead_to_where_the_workflow_waits(acme, wf_id, state, context,
                                                                  path):
    assert _fire_until_waiting(acme.workflow(wf_id), state, context) == path


def test_a_loop_leads_back_to_a_task(desk):
    wf = desk.workflow("review-loop")
    assert _fire_until_waiting(wf, "check", {"form": {"rounds": 2}}) == ["review"]
    assert _fire_until_waiting(wf, "check", {"form": {"rounds": 0}}) == ["finished"]
