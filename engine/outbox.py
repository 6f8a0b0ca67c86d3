"""The transactional outbox: side effects written in the caller's transaction, delivered later.

The request service calls `enqueue_email` / `enqueue_webhook` inside the transaction that
changes a request, so the change, its audit row and its side effects commit or roll back
together. Nothing here does network I/O; `engine.delivery` sends the rows afterwards.

Each row carries an idempotency key chosen by the caller and derived from the logical side
effect (for example ``f"{request.number}:approved:email:{person.id}"``), so running the same
step twice — a retry after a crash between send and commit — enqueues it once.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import AuditEvent, Base, OutboxMessage

KEY_MAX = 80  # the column's length
EVENT_MAX = 64


def enqueue_email(session: Session, *, request_id: int | None, event: str, to: Sequence[str],
                  subject: str, text: str, html: str | None, key: str,
                  now: datetime) -> OutboxMessage:
    """Add an email to the outbox in the caller's transaction; an existing `key` is a no-op."""
    recipients = [str(a).strip() for a in to]
    if not recipients or any(not a or any(c in a for c in "\r\n,") for a in recipients):
        raise InvalidInput(f"email {key}: each recipient must be one address, got: {', '.join(recipients)}")
    payload = {"to": recipients, "subject": subject, "text": text, "html": html}
    return _enqueue(session, kind="email", request_id=request_id, event=event, key=key,
                    payload=payload, now=now)


def enqueue_webhook(session: Session, *, request_id: int | None, event: str, url: str,
                    body: dict[str, Any], secret_env: str, key: str,
                    now: datetime) -> OutboxMessage:
    """Add a webhook call to the outbox in the caller's transaction; an existing `key` is a no-op.

    `secret_env` names the environment variable holding the signing secret, so the secret
    itself never lands in the database. The URL and the secret are checked at send time (a
    bad one dead-letters the message), so a broken webhook never blocks the state change.
    """
    try:
        body = json.loads(json.dumps(body))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"webhook {key}: body is not JSON-serialisable ({exc})") from exc
    payload = {"url": url, "body": body, "secret_env": secret_env}
    return _enqueue(session, kind="webhook", request_id=request_id, event=event, key=key,
                    payload=payload, now=now)


def email_row(*, request_id: int | None, event: str, to: Sequence[str], template: str,
              context: dict[str, Any], key: str, now: datetime) -> dict[str, Any]:
    """The outbox row of an email to render at delivery (engine.mail), for `insert_rows`.

    The context is a plain snapshot taken now, so the email says what was true when the
    change committed; rendering it later keeps template work out of the transaction.
    """
    recipients = [str(a).strip() for a in to]
    if not recipients or any(not a or any(c in a for c in "\r\n,") for a in recipients):
        raise InvalidInput(f"email {key}: each recipient must be one address, got: {', '.join(recipients)}")
    try:
        context = json.loads(json.dumps(context, default=str))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"email {key}: context is not JSON-serialisable ({exc})") from exc
    return _row("email", request_id, event, key,
                {"to": recipients, "template": template, "context": context}, now)


def webhook_row(*, request_id: int | None, event: str, url: str, body: dict[str, Any],
                secret_env: str, key: str, now: datetime) -> dict[str, Any]:
    """The outbox row of a webhook call, checked like `enqueue_webhook`, for `insert_rows`."""
    try:
        body = json.loads(json.dumps(body))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"webhook {key}: body is not JSON-serialisable ({exc})") from exc
    return _row("webhook", request_id, event, key,
                {"url": url, "body": body, "secret_env": secret_env}, now)


def _row(kind: str, request_id: int | None, event: str, key: str, payload: dict[str, Any],
         now: datetime) -> dict[str, Any]:
    if not key or len(key) > KEY_MAX:
        raise InvalidInput(f"idempotency key must be 1 to {KEY_MAX} characters, got {len(key)}")
    if not event or len(event) > EVENT_MAX:
        raise InvalidInput(f"event must be 1 to {EVENT_MAX} characters")
    return {"request_id": request_id, "kind": kind, "event": event, "idempotency_key": key,
            "payload": payload, "status": "pending", "attempts": 0, "next_attempt_at": now,
            "locked_until": None, "last_error": "", "created_at": now, "delivered_at": None,
            "message_digest": message_digest(key) if kind == "email" else None}


def message_digest(key: str) -> str:
    """The unique part of the Message-ID of the email with this idempotency key (engine.smtp)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def insert_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert outbox rows in one statement; a row whose key already exists is skipped."""
    if not rows:
        return
    unique = list({r["idempotency_key"]: r for r in rows}.values())
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        for r in unique:
            _enqueue(session, kind=r["kind"], request_id=r["request_id"], event=r["event"],
                     key=r["idempotency_key"], payload=r["payload"], now=r["created_at"])
        return
    session.connection().execute(_insert_skipping_known(dialect), unique)  # Core: no ORM handling


@functools.lru_cache(maxsize=2)
def _insert_skipping_known(dialect: str) -> Any:
    """The outbox's insert that skips a known key, built once per dialect; Core on the table,
    since nothing reads the rows back (the ORM's bulk path costs more than the statement)."""
    table = Base.metadata.tables[OutboxMessage.__tablename__]
    stmt = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    return stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])


def _enqueue(session: Session, *, kind: str, request_id: int | None, event: str, key: str,
             payload: dict[str, Any], now: datetime) -> OutboxMessage:
    if not key or len(key) > KEY_MAX:
        raise InvalidInput(f"idempotency key must be 1 to {KEY_MAX} characters, got {len(key)}")
    if not event or len(event) > EVENT_MAX:
        raise InvalidInput(f"event must be 1 to {EVENT_MAX} characters")
    existing = _by_key(session, key)
    if existing is not None:
        return existing
    message = OutboxMessage(request_id=request_id, kind=kind, event=event, idempotency_key=key,
                            payload=payload, status="pending", attempts=0, next_attempt_at=now,
                            locked_until=None, last_error="", created_at=now, delivered_at=None,
                            message_digest=message_digest(key) if kind == "email" else None)
    # A concurrent transaction may insert the same key between our SELECT and INSERT; the
    # savepoint keeps the caller's transaction usable when the unique index says so.
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        existing = _by_key(session, key)
        if existing is None:
            raise
        return existing
    return message


def _by_key(session: Session, key: str) -> OutboxMessage | None:
    return session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).first()


def dead_letters(session: Session, limit: int = 100) -> list[OutboxMessage]:
    """Return the newest dead messages first."""
    stmt = (select(OutboxMessage).where(OutboxMessage.status == "dead")
            .order_by(OutboxMessage.id.desc()).limit(limit))
    return list(session.scalars(stmt))


def replay(session: Session, message_id: int, now: datetime,
           actor_id: str | None = None) -> OutboxMessage:
    """Put a dead message back in the queue with its attempts reset, and audit it.

    The idempotency key is kept, so a receiver that did get an earlier attempt can drop the
    replay. Whether `actor_id` may replay is the caller's check.
    """
    message = session.get(OutboxMessage, message_id, with_for_update=True)
    if message is None:
        raise NotFound(f"no outbox message {message_id}")
    if message.status != "dead":
        raise Conflict(f"outbox message {message_id} is {message.status}; only dead messages replay")
    detail = {"message_id": message.id, "kind": message.kind, "event": message.event,
              "idempotency_key": message.idempotency_key, "attempts": message.attempts,
              "last_error": message.last_error}
    message.status = "pending"
    message.attempts = 0
    message.next_attempt_at = now
    message.locked_until = None
    message.last_error = ""
    session.add(AuditEvent(request_id=message.request_id, actor_id=actor_id, event="outbox_replayed",
                           from_state=None, to_state=None, detail=detail, at=now))
    session.flush()
    return message


def outbox_stats(session: Session, now: datetime) -> dict[str, float]:
    """Count messages by status and age the oldest undelivered one, for dashboards."""
    rows = session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    stats: dict[str, float] = {"pending": 0, "sending": 0, "delivered": 0, "dead": 0}
    stats.update({status: n for status, n in rows})
    oldest = session.scalar(select(func.min(OutboxMessage.created_at))
                            .where(OutboxMessage.status.in_(("pending", "sending"))))
    stats["oldest_pending_seconds"] = (now - oldest).total_seconds() if oldest else 0.0
    return stats
