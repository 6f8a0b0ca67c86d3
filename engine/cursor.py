"""Cursor pagination of records, newest first (the API's lists): a person's own, and the
agents' list.

A cursor is the last row's id, made opaque; a page never shifts when records are added.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from catalog.catalog import Catalog
from engine import worklist
from engine.errors import InvalidInput
from engine.models import Request

MAX_LIMIT = 100
BAD_CURSOR = "Not a cursor this API gave out."


@dataclass(frozen=True, slots=True)
class CursorPage:
    rows: list[Request]
    next_cursor: str | None


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"r{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    """The id a cursor stands for (InvalidInput for anything else)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    digits = text[1:]
    if len(cursor) > 40 or not text.startswith("r") or not digits.isascii() or not digits.isdigit() \
            or len(digits) > 18:
        raise InvalidInput("the cursor is malformed", {"cursor": [BAD_CURSOR]})
    return int(digits)


def my_requests(session: Session, person_id: str, cursor: str | None, limit: int,
                status: str | None = None) -> CursorPage:
    """Records the person ordered or that are for them, newest first, after `cursor`."""
    q = (select(Request)
         .where(or_(Request.requester_id == person_id, Request.requested_for_id == person_id)))
    if status is not None:
        q = q.where(Request.status == status)
    return _page(session, q, cursor, limit)


def records(session: Session, cat: Catalog, viewer: str, filters: worklist.Filters,
            cursor: str | None, limit: int) -> CursorPage:
    """The agents' list (engine.worklist: the same filters and visibility), newest first,
    after `cursor`."""
    q = (worklist.page_query(session, cat, viewer, filters)
         .order_by(None).limit(None).offset(None))
    return _page(session, q, cursor, limit)


def _page(session: Session, q: Select[Request], cursor: str | None,
          limit: int) -> CursorPage:
    """`limit` records of `q` newest first, after `cursor`, and the cursor of the next page."""
    if cursor:
        q = q.where(Request.id < decode(cursor))
    rows = list(session.scalars(q.order_by(Request.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return CursorPage(rows, encode(rows[-1].id) if more and rows else None)
