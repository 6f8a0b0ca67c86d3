"""Idempotency keys for POSTs that create: the same key and body give back the first result.

Follows the IETF draft "The Idempotency-Key HTTP Header Field": keys are per sender (the
token's or session's person); the same key with a different body is refused (422); a second
request racing the first one with the same key loses on the unique constraint (409) and,
sent again, gets the first result. Keys are kept with the record they created.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from engine.errors import InvalidInput
from engine.models import IdempotencyKey, Request
from engine.unit import UnitOfWork

MAX_KEY = 255
REUSED = "This Idempotency-Key was used with a different request body."


def fingerprint(body: Any) -> str:
    """SHA-256 of the body in canonical JSON (key order and spacing do not matter)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def check_key(key: str) -> str:
    """The key as sent, if it is 1..255 visible ASCII characters (InvalidInput otherwise)."""
    if not 0 < len(key) <= MAX_KEY or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidInput("the Idempotency-Key header is malformed",
                           {"Idempotency-Key": [f"1 to {MAX_KEY} visible ASCII characters."]})
    return key


def once(unit: UnitOfWork, person_id: str, key: str, body: Any,
         create: Callable[[UnitOfWork], Request]) -> tuple[Request, bool]:
    """Run `create` unless this key was used before; return the record and whether it is new.

    Runs inside the caller's unit of work, so the record and its key commit together.
    """
    s = unit.session
    digest = fingerprint(body)
    seen = s.scalar(select(IdempotencyKey).where(IdempotencyKey.person_id == person_id,
                                                 IdempotencyKey.key == key))
    if seen is not None:
        if seen.fingerprint != digest:
            raise InvalidInput(REUSED, {"Idempotency-Key": [REUSED]})
        first = s.get(Request, seen.request_id)
        assert first is not None  # the key row goes with its record (ON DELETE CASCADE)
        return first, False
    req = create(unit)
    s.add(IdempotencyKey(person_id=person_id, key=key, fingerprint=digest, request_id=req.id,
                         created_at=unit.now))
    return req, True
