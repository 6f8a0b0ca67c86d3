"""Deliver outbox rows: claim them, send them outside any transaction, record the outcome.

A delivery is at least once. `claim` marks due rows ``sending`` with a lease
(``locked_until``) and counts the attempt in one short transaction; the email (engine.smtp)
or webhook (engine.webhooks) goes out with no transaction open; a second transaction records
delivered, retry (with exponential backoff and jitter) or dead. A worker killed mid-send
leaves its rows ``sending``: once their lease runs out any worker claims them again, so a
receiver may see a message twice, always with the same idempotency key (``Idempotency-Key``
header, ``Message-ID``). The outcome is written only while the lease read before sending is
still the row's, so a worker that overran its lease cannot overwrite a newer claim.

Several workers may run at once against PostgreSQL, where `claim` uses
``FOR UPDATE SKIP LOCKED``. SQLite serialises writers (``BEGIN IMMEDIATE``), so claims
never overlap there either, but SQLite is a single-host database: run one worker.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.delivery_config import DeliveryConfig
from engine.errors import DeliveryFailed
from engine.models import OutboxMessage
from engine.smtp import Sender, send_email, send_smtp
from engine.webhooks import Resolver, send_webhook

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

DELIVERED, RETRY, DEAD, SKIPPED = "delivered", "retry", "dead", "skipped"
ERROR_MAX = 2000


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    kind: str
    event: str
    key: str
    payload: dict[str, Any]
    attempts: int
    locked_until: datetime


# ---------------------------------------------------------------- claiming

def claim(sessionmaker: sessionmaker[Session], now: datetime, limit: int = 50, *,
          lease: float = 60.0) -> list[int]:
    """Mark up to `limit` due messages as sending under a lease, count the attempt, commit."""
    due = or_(and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
              and_(OutboxMessage.status == "sending", OutboxMessage.locked_until < now))
    with sessionmaker() as session, session.begin():
        stmt = (select(OutboxMessage).where(due)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(session.scalars(stmt))
        for row in rows:
            if row.status == "sending":
                log.warning("outbox %s: lease ran out mid-send; claiming it again", row.id)
            row.status = "sending"
            row.locked_until = now + timedelta(seconds=lease)
            # Counted at claim time, so a message that kills its worker still runs out of tries.
            row.attempts += 1
        return [row.id for row in rows]


def deliver_due(sessionmaker: sessionmaker[Session], config: DeliveryConfig, now_fn: Clock,
                limit: int = 50, *, resolver: Resolver = socket.getaddrinfo,
                sender: Sender | None = None) -> dict[str, int]:
    """Claim due messages in batches of `config.concurrency`, deliver them, count the outcomes."""
    counts = {"claimed": 0, DELIVERED: 0, RETRY: 0, DEAD: 0, SKIPPED: 0, "error": 0}
    with ThreadPoolExecutor(max_workers=config.concurrency,
                            thread_name_prefix="deskflow-delivery") as pool:
        while counts["claimed"] < limit:
            batch = min(config.concurrency, limit - counts["claimed"])
            # Claim no more than we send at once, so no lease runs out while queued here.
            ids = claim(sessionmaker, now_fn(), batch, lease=config.lease)
            counts["claimed"] += len(ids)
            futures = [pool.submit(deliver_one, sessionmaker, i, config, now_fn,
                                   resolver=resolver, sender=sender) for i in ids]
            for message_id, future in zip(ids, futures, strict=True):
                try:
                    counts[future.result()] += 1
                except Exception:
                    # The row stays `sending`; its lease runs out and it is tried again.
                    log.exception("outbox %s: delivery crashed", message_id)
                    counts["error"] += 1
            if len(ids) < batch:
                break
    return counts


# ---------------------------------------------------------------- one message

def deliver_one(sessionmaker: sessionmaker[Session], message_id: int, config: DeliveryConfig,
                now_fn: Clock, resolver: Resolver = socket.getaddrinfo,
                sender: Sender | None = None) -> str:
    """Send one claimed message outside any transaction, then record the outcome.

    Returns ``delivered``, ``retry``, ``dead`` or ``skipped`` (not ours to send any more).
    `sender` replaces `send_smtp` for email.
    """
    with sessionmaker() as session, session.begin():
        row = session.get(OutboxMessage, message_id)
        if row is None or row.status != "sending" or row.locked_until is None:
            return SKIPPED
        if row.locked_until <= now_fn():
            return SKIPPED  # overran the lease; whoever claims it next sends it
        claimed = _Claimed(row.id, row.kind, row.event, row.idempotency_key, dict(row.payload),
                           row.attempts, row.locked_until)
    if claimed.attempts > config.max_attempts:
        return _record(sessionmaker, claimed, config, now_fn(),
                       DeliveryFailed(f"gave up after {claimed.attempts - 1} attempts (the last one never "
                               "finished: the worker stopped mid-send)", permanent=True))
    failure: DeliveryFailed | None = None
    try:
        if claimed.kind == "email":
            send_email(claimed.payload, claimed.key, config, now_fn(), sender or send_smtp)
        elif claimed.kind == "webhook":
            send_webhook(claimed.payload, claimed.event, claimed.key, config, now_fn(), resolver)
        else:
            raise DeliveryFailed(f"unknown outbox kind {claimed.kind!r}", permanent=True)
    except DeliveryFailed as exc:
        failure = exc
    except Exception as exc:
        # A bug, not the receiver's answer: keep it visible in last_error and let backoff apply.
        log.exception("outbox %s: unexpected error while sending", claimed.id)
        failure = DeliveryFailed(f"internal error: {type(exc).__name__}: {exc}")
    return _record(sessionmaker, claimed, config, now_fn(), failure)


def _record(sessionmaker: sessionmaker[Session], claimed: _Claimed, config: DeliveryConfig,
            now: datetime, failure: DeliveryFailed | None) -> str:
    values: dict[str, Any]
    if failure is None:
        outcome = DELIVERED
        values = {"status": "delivered", "delivered_at": now, "locked_until": None, "last_error": ""}
    elif failure.permanent or claimed.attempts >= config.max_attempts:
        outcome = DEAD
        error = str(failure) if failure.permanent else \
            f"attempt {claimed.attempts} of {config.max_attempts}: {failure}"
        values = {"status": "dead", "locked_until": None, "last_error": error[:ERROR_MAX]}
    else:
        outcome = RETRY
        delay = failure.retry_after if failure.retry_after is not None else \
            config.backoff(claimed.attempts)
        values = {"status": "pending", "locked_until": None,
                  "next_attempt_at": now + timedelta(seconds=delay),
                  "last_error": f"attempt {claimed.attempts}: {failure}"[:ERROR_MAX]}
    # Fenced on the lease we sent under: if it ran out and another worker claimed the row,
    # that worker owns the outcome now.
    stmt = (update(OutboxMessage)
            .where(OutboxMessage.id == claimed.id, OutboxMessage.status == "sending",
                   OutboxMessage.locked_until == claimed.locked_until)
            .values(**values).execution_options(synchronize_session=False))
    with sessionmaker() as session, session.begin():
        if cast("CursorResult[Any]", session.execute(stmt)).rowcount != 1:
            log.warning("outbox %s: lease lost before recording %s", claimed.id, outcome)
            return SKIPPED
    level = logging.INFO if outcome == DELIVERED else logging.WARNING
    log.log(level, "outbox %s %s %s: %s%s", claimed.id, claimed.kind, claimed.event, outcome,
            f" ({values['last_error']})" if failure else "")
    return outcome
