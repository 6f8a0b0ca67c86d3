"""Outgoing webhooks subscribed per event kind in deskflow.yaml (`webhooks`, docs/api.md).

Each audit event of a subscribed kind becomes an outbox webhook row in the transaction that
records the event: the worker delivers it with the usual signing, retries and SSRF guard
(engine.delivery). Its idempotency key is the audit event's id (and the subscription's place).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from catalog.models import WebhookSubscription
from engine.models import Request
from engine.outbox import webhook_row


def wanted(hooks: Sequence[WebhookSubscription], events: Sequence[str]) -> bool:
    """Whether any of these audit events goes to a webhook."""
    return any(e in h.events for h in hooks for e in events)


def payload(event_id: int, row: dict[str, Any], req: Request | None) -> dict[str, Any]:
    """The JSON body: the event, its record (number and state), when, who, and its detail."""
    detail = json.loads(json.dumps(row["detail"], default=str))
    return {"id": event_id, "event": row["event"],
            "request": str(req.number) if req is not None else None,
            "state": (row["to_state"] or req.state) if req is not None else None,
            "at": row["at"].isoformat(), "actor": row["actor_id"], "detail": detail}


def outbox_rows(hooks: Sequence[WebhookSubscription], rows: Sequence[dict[str, Any]],
                requests: Sequence[Request | None], ids: Sequence[int],
                now: datetime) -> list[dict[str, Any]]:
    """One webhook row per subscribed audit event and subscription."""
    out = []
    for row, req, event_id in zip(rows, requests, ids, strict=True):
        for i, hook in enumerate(hooks):
            if row["event"] in hook.events:
                out.append(webhook_row(
                    request_id=req.id if req is not None else None, event=row["event"],
                    url=hook.url, body=payload(event_id, row, req), secret_env=hook.secret,
                    key=f"audit:{event_id}:{i}", now=now))
    return out
