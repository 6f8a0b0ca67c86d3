"""Passwords: argon2id hashes, the app's hasher, and checks that take the same time for anyone."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import LRUCache, cached
from flask import current_app

from engine.models import Person

#: argon2id, RFC 9106's second recommended option; changing these rehashes on next sign-in
HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
#: the test suite's hasher (DESKFLOW_PASSWORD_HASHING = "fast"): same algorithm, tiny cost
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
MIN_PASSWORD = 12


def hasher() -> PasswordHasher:
    """The production hasher, unless the app was configured for fast (test) hashing."""
    try:
        fast = current_app.config.get("DESKFLOW_PASSWORD_HASHING") == "fast"
    except RuntimeError:  # outside an app: the CLI
        fast = False
    return FAST_HASHER if fast else HASHER


def hash_password(password: str, using: PasswordHasher | None = None) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return (using or hasher()).hash(password)


@cached(LRUCache(maxsize=4), key=id, lock=threading.Lock())
def dummy_hash(using: PasswordHasher) -> str:
    """A hash to verify against when there is no password, so a missing account costs the same."""
    return using.hash("deskflow-timing-equaliser")


def check_password(person: Person | None, password: str) -> bool:
    """Constant work whether or not the person exists (no user enumeration by timing)."""
    current = hasher()
    stored = person.password_hash if person is not None and person.active else None
    try:
        current.verify(stored or dummy_hash(current), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None
