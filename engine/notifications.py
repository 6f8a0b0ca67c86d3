"""Emails about a request: rendered now, written to the outbox, sent later by the worker."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.models import Request
from engine.outbox import email_row

if TYPE_CHECKING:
    from engine.runtime import Step


def notify(step: Step, req: Request, event: str, person_ids: list[str], *, key: str,
           **extra: Any) -> None:
    """Queue `event` for each person (once per person and key, whatever retries happen)."""
    from engine.runtime import workflow

    state = workflow(req).state(req.state)
    base = {
        "site_name": step.catalog.settings.name,
        "request": {"number": req.number, "item_name": req.item_name, "state": req.state,
                    "state_label": (state.label if state and state.label else req.state),
                    "outcome": req.outcome, "url": f"{step.base_url}/requests/{req.number}"},
        **{k: _plain(v) for k, v in extra.items()},
    }
    for pid in dict.fromkeys(person_ids):
        person = step.active_person(pid)
        if person is None or not person.email:
            continue
        step.outbox_rows.append(email_row(
            request_id=req.id, event=event, to=[person.email], template=event,
            context={**base, "person": {"name": person.name}},
            key=short_key(f"{req.id}:{event}:{key}:{pid}"), now=step.now))


def short_key(key: str, limit: int = 80) -> str:
    """An idempotency key that fits its column: long ones keep a readable head and a hash."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: limit - 33]}~{digest}"


def _plain(value: Any) -> Any:
    """Database rows become plain dicts before they reach a template."""
    if hasattr(value, "__table__"):
        return {c.name: _plain(getattr(value, c.name)) for c in value.__table__.columns}
    if isinstance(value, datetime):
        return value.isoformat()
    return value
