"""The registry of automated actions a workflow may name (never imported by name from YAML)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from catalog.expressions import Template
from catalog.workflow import Action
from engine import change_risk, cmdb, people
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
    change_risk.recompute_risk(unit, req, action.params["field"])


def create_asset(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    """Record a CI for the requested-for person; its fields from the params, then the answers.

    A CI type field the action does not set takes the answer of the same name: from
    the latest done task (the fulfiller's serial number), else from the order form.
    A CI with the same type and key value is updated, never duplicated.
    """
    p = action.params
    ci_type = unit.catalog.ci_type(p["type"])
    data = {k: str(_render(unit, req, v) or "")[:200] for k, v in p.items()
            if k not in ("type", "name")}
    if ci_type is not None:
        unit.session.flush()  # the task completing this step is done in this transaction
        done = unit.session.scalars(select(Task).where(
            Task.request_id == req.id, Task.status == "done").order_by(Task.id.desc()))
        found = [dict(t.answers or {}) for t in done] + [dict(req.answers)]
        for f in ci_type.fields:
            value = next((a[f.name] for a in found if a.get(f.name) not in (None, "", [])), None)
            if not data.get(f.name) and value is not None:
                data[f.name] = value
    data = {k: v for k, v in data.items() if v not in (None, "")}
    ci_key = str(data.get(ci_type.key if ci_type and ci_type.key else "serial") or "")[:200]
    name = str(_render(unit, req, p.get("name")) or "")[:200]
    asset = unit.session.scalars(select(Asset).where(
        Asset.type == p["type"], Asset.key == ci_key)).first() if ci_key else None
    if asset is None:
        asset = Asset(request_id=req.id, type=p["type"], created_at=unit.now)
        unit.session.add(asset)
    asset.owner_id, asset.name, asset.status = req.requested_for_id, name, "in_use"
    asset.data, asset.key, asset.updated_at = data, ci_key or None, unit.now
    unit.session.flush()
    audit(unit, req, "asset_created", actor=False, asset=asset.id, type=asset.type,
          model=str(data.get("model", "")))


def list_assets(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    """Store what a person has in use, one item a line, for later instructions to read."""
    person = str(_render(unit, req, action.params["person"]) or "")
    items = [a for a in cmdb.my_assets(unit.session, person) if a.status == "in_use"]
    answers = dict(req.answers)
    answers[action.params["field"]] = "; ".join(
        f"{a.name} ({a.key})" if a.key else a.name for a in items) or "no recorded assets"
    req.answers = answers


def recover_assets(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    """Take a person's items in use back into stock, owned by no one."""
    person = str(_render(unit, req, action.params["person"]) or "")
    for asset in cmdb.my_assets(unit.session, person):
        if asset.status == "in_use":
            cmdb.set_status(unit.session, asset, "in_stock", unit.now, request_id=req.id)
            asset.owner_id = None


def escalate(unit: UnitOfWork, req: Request, action: Action, key: str) -> None:
    escalate_open_tasks(unit, req)


ACTIONS: dict[str, ActionFn] = {
    "notify": notify, "webhook": webhook, "set": set_answer, "create_asset": create_asset,
    "escalate": escalate, "list_assets": list_assets, "recover_assets": recover_assets,
}
