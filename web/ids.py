"""Ids and numbers taken from URLs and forms: ASCII digits only, and within a bigint.

Werkzeug's `int` converter and `str.isdigit()` take digits of every script ('²', '٣') and
numbers of any length; `int()` then refuses some of them, and the database driver overflows
on the rest. Every id in a path goes through `IdConverter` (`<id:...>`), every number in a
form or query string through `number`.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from werkzeug.routing import BaseConverter, ValidationError

#: ids past SQLite's and PostgreSQL's bigint are nobody's (and would overflow the driver)
MAX_ID = 2**63 - 1
#: a whole number as a form or a query string may send it: 1 to 18 ASCII digits
DIGITS = re.compile(r"[0-9]{1,18}")


def number(text: Any) -> int | None:
    """A whole number sent as ASCII digits (at most 18), else None."""
    return int(text) if isinstance(text, str) and DIGITS.fullmatch(text) else None


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID


class IdConverter(BaseConverter):
    """`<id:name>`: a row id, 1 to 2**63-1 in ASCII digits; anything else matches no route (404)."""

    regex = r"[0-9]{1,19}"
    weight = 50  # as werkzeug's own number converters

    def to_python(self, value: str) -> int:
        found = int(value)
        if not valid_id(found):
            raise ValidationError()
        return found

    def to_url(self, value: Any) -> str:
        return str(int(value))


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
