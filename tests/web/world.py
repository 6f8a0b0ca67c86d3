"""One app and a few requests in known states, built once per test module (the matrix is big).

Used by test_authorization.py and test_malformed.py. Everything is created through the
request service, as a person would through the portal.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from engine.models import Approval, Notification, OutboxMessage, Request, Task
from tests.acme import ACME_ANSWERS
from tests.web.conftest import PASSWORD, csrf_token

LAPTOP = dict(ACME_ANSWERS["new-laptop"])
MISSING_NUMBER = "REQ-999999"
MISSING_ID = 999_999
#: `<name>` and `<converter:name>` parts of a Flask rule
RULE_ARG = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
#: endpoints that serve files, not pages: outside the matrix
FILE_ENDPOINTS = frozenset({"static", "bootstrap.static"})


@dataclass
class World:
    """The app and what the tests point at.

    r1: alice's laptop, waiting for bob (a1, pending).
    r2: alice's laptop, approved by bob (a2), its task t2 open in it-hardware; frank asked
        alice a question, so r2 waits for her answer.
    bob is away: leo decides bob's approvals (a delegation set through the service).
    """

    app: Flask
    r1: str
    a1: int
    r2: str
    a2: int
    t2: int
    message: int
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def service(self) -> Any:
        return self.app.extensions["deskflow"].service


def build_world(app: Flask) -> World:
    service = app.extensions["deskflow"].service
    r1 = service.submit("new-laptop", "alice", dict(LAPTOP))
    r2 = service.submit("new-laptop", "alice", {**LAPTOP, "keyboard_layout": "nl"})
    with service.sessions() as s:
        a1 = s.scalar(select(Approval.id).where(Approval.request_id == r1.id))
        a2 = s.scalar(select(Approval.id).where(Approval.request_id == r2.id))
    service.approve(a2, "bob", "Fine.")
    with service.sessions() as s:
        t2 = s.scalar(select(Task.id).where(Task.request_id == r2.id, Task.status == "open"))
        message = s.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id))
    service.ask_requester(r2.number, "frank", "Do you need a docking station too?")
    now = datetime.now(UTC)
    service.set_delegation("bob", "leo", now - timedelta(hours=1), now + timedelta(days=30))
    assert a1 and a2 and t2 and message
    ci1 = _server(service)
    f1 = service.attach(r1.number, "alice", "screen.png", _png()).id  # web/attachments.py
    world = World(app, r1.number, a1, r2.number, a2, t2, message)
    world.targets = {
        # what a rule's <...> parts become, per named target
        "-": {},
        "r1": {"number": r1.number, "kind": "related_to", "other": r2.number},
        "r2": {"number": r2.number},
        "a1": {"approval_id": a1},
        "a2": {"approval_id": a2},
        "t2": {"task_id": t2},
        "laptop": {"item_id": "new-laptop", "article_id": "laptop-policy",
                   "workflow_id": "laptop-request"},
        "change": {"item_id": "normal-change", "article_id": "change-management-guide"},
        "it-hardware": {"group_id": "it-hardware"},
        "message": {"message_id": message},
        "volume": {"name": "volume"},  # a figure of /reports
        "swagger": {"name": "swagger-ui.css"},  # a file of /api/docs
        "k1": {"token_id": _token(service, "bob")},  # bob's API token (web/tokens.py)
        "f1": {"number": r1.number, "attachment_id": f1},  # alice's screenshot on r1
        # a server owned by it-hardware (frank manages it; grace, an agent, only reads it)
        "ci1": {"ci_id": ci1, "type_id": "server"},
        # bob's first in-app notification: r1's approval waits for him
        "n1": {"notification_id": _first_notification(service, "bob")},
        "missing": {"number": MISSING_NUMBER, "approval_id": MISSING_ID, "task_id": MISSING_ID,
                    "item_id": "no-such-item", "article_id": "no-such-article",
                    "group_id": "no-such-group", "workflow_id": "no-such-workflow",
                    "message_id": MISSING_ID, "notification_id": MISSING_ID,
                    "ci_id": MISSING_ID, "type_id": "no-such-type", "view_id": MISSING_ID,
                    "name": "no-such-report", "token": "not-a-signed-token",
                    "token_id": MISSING_ID, "attachment_id": MISSING_ID,
                    "kind": "related_to", "other": MISSING_NUMBER, "guide_id": "no-such-guide"},
        "guide": {"guide_id": "new-hire"},  # an order guide (web/orders.py)
    }
    # alice's order through the new-hire guide: a laptop and system access (web/orders.py)
    world.targets["o1"] = {"number": _order(service)}
    return world


def _order(service: Any) -> str:
    order = service.order_guide(
        "new-hire", "alice", {"cost_center": "CC-1234", "needed_by": "2027-01-04", "team": "engineer"},
        {"new-laptop": {"model": "std14", "building": "ams-hq", "floor": 4},
         "system-access": {"system": "crm", "role": "crm-read",
                           "reason": "I support the sales team with their pipeline."}})
    return str(order.number)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "navy").save(out, "PNG")
    return out.getvalue()


def _server(service: Any) -> int:
    from engine import cmdb

    with service.sessions.begin() as s:
        ci = cmdb.create(s, service.catalog(), "oscar", "server", cmdb.CIInput(
            name="db01", owner_group_id="it-hardware", fields={"hostname": "db01"}),
            datetime.now(UTC))
        return int(ci.id)


def _token(service: Any, person_id: str) -> int:
    from engine import tokens

    with service.sessions.begin() as s:
        row, _ = tokens.create_token(s, person_id, "matrix", datetime.now(UTC))
        return int(row.id)


def _first_notification(service: Any, person_id: str) -> int:
    with service.sessions() as s:
        found = s.scalar(select(Notification.id).where(Notification.person_id == person_id)
                         .order_by(Notification.id))
    assert found is not None, f"{person_id} has no notification"
    return int(found)


def rule_args(rule: str) -> list[str]:
    return RULE_ARG.findall(rule)


def url_for_rule(rule: str, values: dict[str, Any]) -> str:
    """The rule with its <...> parts replaced by `values` (KeyError when one is missing)."""
    return RULE_ARG.sub(lambda m: str(values[m.group(1)]), rule)


def routes(app: Flask) -> Iterator[tuple[str, str, str]]:
    """(method, rule, endpoint) for every page route and method, HEAD and OPTIONS aside."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FILE_ENDPOINTS:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, rule.endpoint


class Browser:
    """A test client signed in as one person (or nobody), with a CSRF token at hand."""

    def __init__(self, app: Flask, who: str | None) -> None:
        self.app, self.who = app, who
        self.client: FlaskClient = app.test_client()
        self.token = ""
        self.sign_in()

    def sign_in(self) -> None:
        self.client = self.app.test_client()
        if self.who is None:
            self.token = csrf_token(self.client.get("/login").get_data(as_text=True))
            return
        page = self.client.get("/login").get_data(as_text=True)
        response = self.client.post("/login", data={"username": self.who, "password": PASSWORD,
                                                   "csrf_token": csrf_token(page)})
        assert response.status_code == 302, f"{self.who} could not sign in"
        self.token = csrf_token(self.client.get("/").get_data(as_text=True))

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, data: Any = None, csrf: bool = True, **kw: Any) -> Any:
        if data is None:
            data = {}
        if csrf and isinstance(data, dict):
            data = {"csrf_token": self.token, **data}
        return self.client.post(url, data=data, **kw)


def lock_version(world: World, number: str) -> int:
    with world.service.sessions() as s:
        return int(s.scalar(select(Request.lock_version).where(Request.number == number)))


def snapshot(app: Flask, skip: frozenset[str] = frozenset({"login_sessions"})) -> dict[str, list[tuple]]:
    """Every row of every table (but `skip`), as text, in a stable order."""
    from sqlalchemy import MetaData

    from web.extensions import db

    with app.app_context():
        meta = MetaData()
        meta.reflect(bind=db.engine)
        out: dict[str, list[tuple]] = {}
        with db.engine.connect() as conn:
            for table in meta.sorted_tables:
                if table.name in skip:
                    continue
                rows = conn.execute(select(table)).all()
                out[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
        return out


def row_counts(state: dict[str, list[tuple]]) -> dict[str, int]:
    return {name: len(rows) for name, rows in state.items()}
