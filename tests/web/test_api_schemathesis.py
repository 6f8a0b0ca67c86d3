"""schemathesis against the served OpenAPI description (/api/v1/openapi.json), on the Flask
app itself (WSGI, no server), with a seeded admin's bearer token: whatever it generates, no 5xx,
and every answer matches the schema the description gives for its status.

Bounded: 25 examples per operation, derandomized (a fixed seed), no example database.

Stateful too: the description's OpenAPI links (web.api.spec.LINKS) chain calls — an order or a
listed record leads to its page, comments, cancel, reopen; a record's approvals and tasks to
approve, claim, complete... — and schemathesis's state machine walks those chains (bounded:
MACHINE_RUNS scenarios of at most MACHINE_STEPS calls), with the same two checks at each step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.web.conftest import make_app
from tests.web.world import build_world
from web.api.spec import LINKS, openapi

MACHINE_RUNS = 25
MACHINE_STEPS = 10
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, template_db) -> dict[str, Any]:
    """An app with the authorization matrix's world (requests, approvals, a task, a CI)."""
    from engine import tokens

    app = make_app(tmp_path_factory.mktemp("schemathesis"), template_db)
    world = build_world(app)
    with world.service.sessions.begin() as s:
        _, secret = tokens.create_token(s, "oscar", "schemathesis", datetime.now(UTC))
    return {"app": app, "headers": {"Authorization": f"Bearer {secret}"}}


# the description the app serves (test_api.py checks /api/v1/openapi.json is exactly this dict);
# the calls go to the app itself through `app=`
schema = schemathesis.openapi.from_dict(openapi())


@schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_generated_call_is_answered_as_described(case, fuzzed):
    case.call_and_validate(app=fuzzed["app"], headers=fuzzed["headers"], checks=CHECKS)


def test_every_link_leads_to_an_operation_and_fills_its_parameters():
    description = openapi()
    operations = {op["operationId"]: op for path in description["paths"].values()
                  for op in path.values()}
    for (source, status), links in LINKS.items():
        assert "links" in operations[source]["responses"][status], (source, status)
        for link in links.values():
            target = operations[link["operationId"]]
            names = {p["name"] for p in target.get("parameters", ())}
            assert set(link["parameters"]) <= names, link


@pytest.fixture(scope="module")
def linked(tmp_path_factory, template_db) -> dict[str, Any]:
    """A world of its own (the state machine cancels, comments, approves...), and a token for
    each person whose calls have ids to follow."""
    from engine import tokens

    app = make_app(tmp_path_factory.mktemp("stateful"), template_db)
    world = build_world(app)
    headers = {}
    with world.service.sessions.begin() as s:
        for who in MACHINE_PEOPLE:
            _, secret = tokens.create_token(s, who, "schemathesis-stateful", datetime.now(UTC))
            headers[who] = {"Authorization": f"Bearer {secret}"}
    return {"app": app, "headers": headers}


#: bob decides a1, frank works t2 in his queue, alice has r1 and r2 (and a question to answer),
#: oscar is an admin; in that order, so alice's cancelling comes after the others' turns
MACHINE_PEOPLE = ("bob", "frank", "alice", "oscar")


@pytest.mark.parametrize("who", MACHINE_PEOPLE)
def test_linked_calls_are_answered_as_described(linked, who):
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": linked["app"], "headers": linked["headers"][who]}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None,
                                   recorder=self.recorder)

    Workflow.run(settings=settings(max_examples=MACHINE_RUNS, stateful_step_count=MACHINE_STEPS,
                                   derandomize=True, deadline=None, database=None,
                                   suppress_health_check=list(HealthCheck)))
