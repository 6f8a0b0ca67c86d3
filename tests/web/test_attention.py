"""A request a workflow step failed on: the approver's click goes through, admins see why.

The app runs the `attention` test catalog, whose `fragile` workflow divides by a lookup
value of 0 in the state the `step` answer picks (see tests/engine/test_attention.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import select, update

from engine.db import make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.migrate import upgrade
from engine.models import Approval, Person, Request
from tests.web.conftest import PASSWORD
from tests.web.world import Browser
from web import create_app
from web.passwords import FAST_HASHER, hash_password

CATALOG = Path(__file__).resolve().parents[1] / "data" / "workflows" / "attention"
ERROR = "decision: decision: 10 / lookup('limits', 'divisor').data.value > 100: division by zero"


@pytest.fixture
def app(tmp_path):
    from catalog.loader import load_catalog

    url = f"sqlite:///{tmp_path / 'deskflow.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:
        sync_directory(s, load_catalog(CATALOG).directory)
        s.execute(update(Person).values(password_hash=hash_password(PASSWORD, using=FAST_HASHER)))
    engine.dispose()
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test", "DESKFLOW_DATABASE_URL": url,
        "DESKFLOW_CATALOG": str(CATALOG), "DESKFLOW_SECURE_COOKIES": False,
        "RATELIMIT_ENABLED": False, "DESKFLOW_PASSWORD_HASHING": "fast",
    })
    app.instance_path = str(tmp_path / "instance")
    return app


@pytest.fixture
def flagged(app) -> str:
    """Alice's request, approved by bob through the approval page: the decision after fails."""
    service = app.extensions["deskflow"].service
    number = service.submit("fragile", "alice", {"step": "decision"}).number
    with service.sessions() as s:
        appr = s.scalar(select(Approval).where(Approval.decision == "pending"))
        version = s.scalar(select(Request.lock_version).where(Request.number == number))
    response = Browser(app, "bob").post(f"/approvals/{appr.id}/approve",
                                        {"decision-seen_version": str(version)})
    assert response.status_code == 302  # not a 409: bob's approval is recorded
    with service.sessions() as s:
        assert s.get(Approval, appr.id).decision == "approved"
    return number


def version_of(app, number: str) -> str:
    with app.extensions["deskflow"].service.sessions() as s:
        return str(s.scalar(select(Request.lock_version).where(Request.number == number)))


def test_an_admin_sees_the_error_on_the_request_and_in_the_admin_list(app, flagged):
    root = Browser(app, "root")
    page = root.get(f"/requests/{flagged}").get_data(as_text=True)
    assert '<h2 class="h5" id="attention-heading">Needs attention</h2>' in page
    assert f'<code class="df-attention-error">{escape(ERROR)}</code>' in page
    assert "Retry the step" in page and "Move it by hand" in page
    listing = root.get("/admin/attention").get_data(as_text=True)
    assert f'<a href="/requests/{flagged}#attention">{flagged}</a>' in listing
    assert f"<small>{escape(ERROR)}</small>" in listing
    assert 'href="/admin/attention">Needs attention</a>' in listing


def test_the_owner_groups_agent_sees_the_error_but_cannot_retry(app, flagged):
    page = Browser(app, "bob").get(f"/requests/{flagged}").get_data(as_text=True)
    assert f'<code class="df-attention-error">{escape(ERROR)}</code>' in page
    assert "Retry the step" not in page


def test_the_requester_is_told_it_is_held_up_without_the_error(app, flagged):
    page = Browser(app, "alice").get(f"/requests/{flagged}").get_data(as_text=True)
    assert '<h2 class="h5" id="attention-heading">Held up</h2>' in page
    assert "division by zero" not in page
    assert "df-attention-error" not in page


def test_an_admin_retries_and_then_routes_the_request_by_hand(app, flagged):
    root = Browser(app, "root")
    response = root.post(f"/requests/{flagged}/retry",
                         {"seen_version": version_of(app, flagged), "reason": "Once more."})
    assert response.status_code == 302
    page = root.get(f"/requests/{flagged}").get_data(as_text=True)
    assert f"{flagged} needs attention again: {escape(ERROR)}" in page

    response = root.post(f"/requests/{flagged}/route", {"seen_version": version_of(app, flagged),
                                                        "reason": "", "target": "state:work"})
    assert response.status_code == 422
    assert "reason is empty" not in response.get_data(as_text=True)
    assert "This field is required." in response.get_data(as_text=True)

    response = root.post(f"/requests/{flagged}/route", {"seen_version": version_of(app, flagged),
                                                        "reason": "Skip it.", "target": "state:work"})
    assert response.status_code == 302
    page = root.get(f"/requests/{flagged}").get_data(as_text=True)
    assert f"Moved by hand: {flagged} is now Being worked on." in page
    assert 'id="attention-heading"' not in page
    assert "No request needs attention" in root.get("/admin/attention").get_data(as_text=True)
