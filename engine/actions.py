"""The registry of automated actions a workflow may name (never imported by name from YAML)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from catalog.expressions import Template
from catalog.workflow import Action
from engine import people
from engine.models import Asset, Request, Task
from engine.outbox import webhook_row
from engine.tasks import escalate_open_tasks
from engine.unit import UnitOfWork, approvals_of_visit, audit, fill, short_key, tasks_of_visit

ActionFn = Callable[[UnitOfWork, Request, Action, str], None]


def _render(unit: UnitOfWork, req: Request, value: Any) -> Any:
    """Fill in a template parameter; a failure fails the action (the request needs attention)."""
    return fill(unit, req, value) if isinstance(value, Template) else value


def recipients(unit: UnitOfWork, req: Request, to: str) -> list[str]:
    """Person ids for a notify target: requester, requested_for, approvers, assignee, owner, refs."""
    s = unit.session
    if to == "requester":
        return [req.requester_id]
    if to == "requested_for":
        return [req.requested_for_id]
    if to == "approvers":
        return [a.approver_id for a in approvals_of_visit(s, req) if a.decision == "pending"]
    if to == "assignee":
        return [t.assignee_id for t in tasks_of_visit(s, req) if t.assignee_id] or \
            [t.assignee_id for t in _last_tasks(unit, req) if t.assignee_id]
    if to == "owner":
        item = unit.catalog.item(req.item_id)
        return people.members(s, item.owner) if item and item.owner else []
    kind, _, ident = to.partition(":")
    if kind == "person":
        return [ident]
    if kind == "group":
        return people.members(s, ident)
    return []


def _last_tasks(unit: UnitOfWork, req: Request) -> list[Task]:
    return list(unit.session.scalars(select(Task).where(Task.request_id == req.id)
                                     .order_by(Task.id.desc()).limit(5)))


def notify(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    p = action.params
    unit.queue_email(req, p.get("template") or "request_update",
                     recipients(unit, req, p["to"]), key=f"action:{key}",
                     subject=_render(unit, req, p.get("subject")),
                     message=_render(unit, req, p.get("message")))


def webhook(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    p = action.params
    body = {k: _render(unit, req, v) for k, v in p["body"]}
    body.setdefault("request", {"number": req.number, "item": req.item_id, "state": req.state})
    json.dumps(body)  # fail here, inside the transaction, rather than in the worker
    unit.outbox_rows.append(webhook_row(
        request_id=req.id, event=f"state.{req.state}", url=_render(unit, req, p["url"]), body=body,
        secret_env=p.get("secret", ""), key=short_key(f"{req.id}:webhook:{key}"), now=unit.now))


def set_answer(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    answers = dict(req.answers)
    answers[action.params["field"]] = _render(unit, req, action.params["value"])
    req.answers = answers


def create_asset(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    p = action.params
    asset = Asset(request_id=req.id, owner_id=req.requested_for_id, type=p["type"],
                  name=str(_render(unit, req, p.get("name")) or "")[:200],
                  model=str(_render(unit, req, p.get("model")) or "")[:200],
                  serial=str(_render(unit, req, p.get("serial")) or "")[:200], created_at=unit.now)
    unit.session.add(asset)
    unit.session.flush()
    audit(unit, req, "asset_created", actor=False, asset=asset.id, type=asset.type,
          model=asset.model)


def escalate(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    escalate_open_tasks(unit, req)


ACTIONS: dict[str, ActionFn] = {
    "notify": notify, "webhook": webhook, "set": set_answer, "create_asset": create_asset,
    "escalate": escalate,
}
