"""schemathesis against the served OpenAPI description (/api/v1/openapi.json), on the Flask
app itself (WSGI, no server), with a seeded admin's bearer token: whatever it generates, no 5xx,
and every answer matches the schema the description gives for its status.

Bounded: 25 examples per operation, derandomized (a fixed seed), no example database.
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
from web.api.spec import openapi


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
    case.call_and_validate(app=fuzzed["app"], headers=fuzzed["headers"],
                           checks=[not_a_server_error, response_schema_conformance])
