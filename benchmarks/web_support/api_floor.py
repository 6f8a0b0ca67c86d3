"""The floor for benchmarks/api.py: hand-written Flask views doing the API's work, nothing more.

    gunicorn -w 2 'benchmarks.web_support.api_floor:create_app()'
    (DESKFLOW_DATABASE_URL and DESKFLOW_CATALOG set, as for Deskflow)

Both views first look the bearer token up the way engine.tokens does: its SHA-256 in
`api_tokens`, not revoked, its owner active (one query here, with a join).

- GET /catalog: the owner's groups and roles (two queries), then the catalog's items whose
  `visible_to` includes them, sorted by category and name, as JSON — what GET /api/v1/catalog
  answers, from the catalog loaded once at start-up.
- POST /requests: the JSON body {"item": "report-incident", "answers": {...}} read, then in
  ONE write transaction with SQLAlchemy Core the rows POST /api/v1/requests writes for that
  item (benchmarks/api.py checks the tables and counts match before measuring): the request
  (inserted, then its number set from its id, as the service does), its triage task, three
  SLA timers, two audit events (`submitted`, `task_created`), one outbox email per member of
  the service desk, and its record_facts row; the answer is the new request's number, state
  and time. It validates nothing and decides nothing: priority, due times and the queue are
  the ones the real workflow gives these answers.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy import Connection, insert, select, update

from catalog.loader import load_valid_catalog
from engine.db import make_engine, writer
from engine.models import (
    ApiToken,
    AuditEvent,
    Membership,
    OutboxMessage,
    Person,
    PersonRole,
    RecordFact,
    Task,
    Timer,
    WorkflowVersion,
)
from engine.models import Request as RequestRow

ITEM = "report-incident"
QUEUE = "service-desk"
ADMIN_ROLE = "admin"


def _refused() -> Response:
    response = jsonify({"status": 401, "detail": "The token is not valid."})
    response.status_code = 401
    return response


def _owner(conn: Connection) -> str | None:
    """The active owner of the request's bearer token, or None."""
    scheme, _, secret = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.startswith("dft_"):
        return None
    digest = hashlib.sha256(secret.encode()).hexdigest()
    row = conn.execute(select(ApiToken.person_id).join(Person, Person.id == ApiToken.person_id)
                       .where(ApiToken.digest == digest, ApiToken.revoked_at.is_(None),
                              Person.active.is_(True))).first()
    return row.person_id if row is not None else None


def _sees(visible_to: tuple[str, ...], me: str, groups: set[str], roles: set[str]) -> bool:
    for who in visible_to:
        kind, _, ident = who.partition(":")
        if who == "everyone" or (kind == "person" and ident == me) or \
                (kind == "group" and ident in groups) or (kind == "role" and ident in roles):
            return True
    return ADMIN_ROLE in roles


def create_app() -> Flask:
    reads = make_engine(os.environ["DESKFLOW_DATABASE_URL"])
    writes = writer(reads)
    catalog = load_valid_catalog(os.environ["DESKFLOW_CATALOG"])
    items = sorted(catalog.items, key=lambda i: (i.category.casefold(), i.name.casefold()))
    item = catalog.item(ITEM)
    assert item is not None, f"the catalog has no {ITEM}"
    fields = [f.name for f in item.fields]
    app = Flask(__name__)

    @app.get("/health")
    def health() -> Any:
        return "ok"

    @app.get("/catalog")
    def catalog_list() -> Any:
        with reads.connect() as conn:
            me = _owner(conn)
            if me is None:
                return _refused()
            groups = set(conn.scalars(select(Membership.group_id).where(Membership.person_id == me)))
            roles = set(conn.scalars(select(PersonRole.role_id).where(PersonRole.person_id == me)))
        return jsonify({"items": [
            {"id": i.id, "name": i.name, "summary": i.summary, "category": i.category,
             "record_type": i.record_type, "order_for_others": i.order_for_others}
            for i in items if _sees(i.visible_to, me, groups, roles)]})

    @app.post("/requests")
    def order() -> Any:
        with reads.connect() as conn:
            me = _owner(conn)
        if me is None:
            return _refused()
        body = json.loads(request.get_data())
        given = body["answers"]
        answers = {name: given.get(name) for name in fields}
        now = datetime.now(UTC)
        response_due, resolution_due = now + timedelta(days=3), now + timedelta(days=7)
        with writes.begin() as conn:
            version = conn.scalar(select(WorkflowVersion.id).where(
                WorkflowVersion.workflow_id == item.workflow).order_by(WorkflowVersion.id.desc()))
            request_id = conn.execute(insert(RequestRow).values(
                item_id=item.id, item_name=item.name, workflow_version_id=version, state="triage",
                answers=answers, requester_id=me, requested_for_id=me, priority="p4",
                created_at=now, updated_at=now, response_due=response_due,
                resolution_due=resolution_due, sla_state="ok", lock_version=2,
                record_type=item.record_type, title=given.get("short_description") or "",
                impact=given.get("impact"), urgency=given.get("urgency"),
                category=given.get("affected_service") or "", assignment_group_id=QUEUE,
                channel="portal")).inserted_primary_key[0]
            number = f"REQ-{request_id:06d}"
            conn.execute(update(RequestRow).where(RequestRow.id == request_id).values(number=number))
            task = {"request_id": request_id, "visit": 1, "state": "triage", "name": "triage",
                    "title": given.get("short_description") or "", "queue": QUEUE,
                    "instructions": f"Priority p4. Affected: {given.get('affected_service')}.",
                    "status": "open", "answers": {}, "due_at": resolution_due, "created_at": now,
                    "lock_version": 1}
            task_id = conn.execute(insert(Task).values(**task)).inserted_primary_key[0]
            conn.execute(insert(Timer), [
                {"request_id": request_id, "kind": kind, "visit": -1, "ref": ref, "due_at": due,
                 "status": "pending", "lock_version": 1}
                for kind, ref, due in (("sla_breach", "response", response_due),
                                       ("sla_warning", "resolution", resolution_due - timedelta(days=1)),
                                       ("sla_breach", "resolution", resolution_due))])
            conn.execute(insert(AuditEvent), [
                {"request_id": request_id, "actor_id": me, "event": "submitted", "from_state": None,
                 "to_state": "triage", "detail": {"item": item.id, "requested_for": me}, "at": now},
                {"request_id": request_id, "actor_id": None, "event": "task_created",
                 "from_state": None, "to_state": None,
                 "detail": {"task": task_id, "queue": QUEUE, "assignee": None}, "at": now}])
            members = conn.execute(select(Person.id, Person.name, Person.email)
                                   .join(Membership, Membership.person_id == Person.id)
                                   .where(Membership.group_id == QUEUE, Person.active.is_(True))
                                   .order_by(Person.id)).all()
            context = {"request": {"number": number, "item_name": item.name, "state": "triage"},
                       "task": {**task, "id": task_id, "due_at": resolution_due.isoformat(),
                                "created_at": now.isoformat()}}
            conn.execute(insert(OutboxMessage), [
                {"request_id": request_id, "kind": "email", "event": "task_assigned",
                 "idempotency_key": f"{request_id}:task_assigned:{task_id}:triage:0:{m.id}",
                 "payload": {"to": [m.email], "template": "task_assigned",
                             "context": {**context, "person": {"name": m.name}}},
                 "status": "pending", "attempts": 0, "next_attempt_at": now, "last_error": "",
                 "created_at": now,
                 "message_digest": hashlib.sha256(f"{request_id}:{m.id}".encode()).hexdigest()[:32]}
                for m in members if m.email])
            conn.execute(insert(RecordFact).values(
                request_id=request_id, record_type=item.record_type, item_id=item.id, priority="p4",
                group_id=QUEUE, state="triage", open=True, opened_at=now,
                opened_day=now.toordinal(), duration_h=0.0, ever_resolved=False, reopened=False,
                reassignments=0, ping_pong=0, groups=QUEUE))
        response = jsonify({"number": number, "state": "triage", "created_at": now.isoformat()})
        response.status_code = 201
        return response

    return app
