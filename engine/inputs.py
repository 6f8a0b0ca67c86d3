"""Checks every use case applies to what a person typed or loaded: text, and staleness."""

from __future__ import annotations

from engine.errors import Conflict, InvalidInput
from engine.models import Request

MAX_COMMENT = 10_000


def fresh(req: Request, seen_version: int | None) -> None:
    """A form loaded before someone else's change must not act on the new state."""
    if seen_version is not None and seen_version != req.lock_version:
        raise Conflict(f"{req.number} changed since you loaded it (it is now {req.state}); "
                       "reload and try again")


def checked_text(value: str, name: str, required: bool = True) -> str:
    """The text, stripped; InvalidInput when it is not text, empty (if required) or too long."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text", {name: ["Must be text."]})
    value = value.strip()
    if "\x00" in value:
        raise InvalidInput(f"{name} contains a NUL character", {name: ["Must not contain NUL characters."]})
    if required and not value:
        raise InvalidInput(f"{name} is empty", {name: ["This field is required."]})
    if len(value) > MAX_COMMENT:
        raise InvalidInput(f"{name} is too long", {name: [f"Must be at most {MAX_COMMENT} characters."]})
    return value
