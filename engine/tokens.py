"""Personal API tokens: created for a person, shown once, kept only as a SHA-256, revoked.

A token is `dft_` and 43 random URL-safe characters (256 bits), so a plain SHA-256 is enough
to keep it (as for sign-in sessions, web.auth): nobody can guess a preimage, and the database
is looked up by the digest's unique index, so no secret is compared character by character.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session

from engine import people
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import ApiToken, Person

PREFIX = "dft_"
MAX_NAME = 80
#: active tokens one person may hold
MAX_TOKENS = 50
#: how often a token's last use is written (a busy client must not write on every call)
USED_EVERY = timedelta(minutes=1)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def create_token(session: Session, person_id: str, name: str, now: datetime) -> tuple[ApiToken, str]:
    """Create a token for an active person; return the row and the token (shown once)."""
    clean = " ".join(str(name).split()) if isinstance(name, str) else ""
    if not clean:
        raise InvalidInput("a token needs a name", {"name": ["Give the token a name."]})
    if len(clean) > MAX_NAME:
        raise InvalidInput("the token's name is too long",
                           {"name": [f"At most {MAX_NAME} characters."]})
    if people.active_person(session, person_id) is None:
        raise NotFound(f"no active person {person_id}")
    if len(active_tokens(session, person_id)) >= MAX_TOKENS:
        raise InvalidInput(f"{person_id} already has {MAX_TOKENS} tokens",
                           {"name": [f"Revoke a token first: at most {MAX_TOKENS} at a time."]})
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(person_id=person_id, name=clean, digest=digest(secret),
                   prefix=secret[:len(PREFIX) + 6], created_at=now)
    session.add(row)
    session.flush()
    return row, secret


def tokens_of(session: Session, person_id: str) -> list[ApiToken]:
    """Every token of the person, revoked ones too, newest first."""
    return list(session.scalars(select(ApiToken).where(ApiToken.person_id == person_id)
                                .order_by(ApiToken.id.desc())))


def active_tokens(session: Session, person_id: str) -> list[ApiToken]:
    return [t for t in tokens_of(session, person_id) if t.revoked_at is None]


def revoke_token(session: Session, token_id: int, now: datetime,
                 owner: str | None = None) -> ApiToken:
    """Revoke a token (only the owner's, when `owner` is given); it stops working at once."""
    row = session.get(ApiToken, token_id)
    if row is None or (owner is not None and row.person_id != owner):
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is not None:
        raise Conflict(f"token {token_id} is already revoked")
    row.revoked_at = now
    return row


def token_and_owner(session: Session, secret: str) -> tuple[ApiToken, Person] | None:
    """The active token with this secret and its owner, if an active person (the owner held,
    so the session's weak identity map keeps it)."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    found = session.execute(select(ApiToken, Person).join(Person, Person.id == ApiToken.person_id)
                            .where(ApiToken.digest == digest(secret), ApiToken.revoked_at.is_(None),
                                   Person.active.is_(True))).first()
    return (found[0], found[1]) if found is not None else None


def mark_used(token_id: int, now: datetime) -> Update:
    """The statement that records a use (web runs it after the response, skipped when busy)."""
    return update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)


def needs_use_mark(row: ApiToken, now: datetime) -> bool:
    return row.last_used_at is None or now - row.last_used_at >= USED_EVERY
