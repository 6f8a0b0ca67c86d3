"""Server-side rules for field values: one place, used for defaults, forms and the API."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from catalog.models import CHOICE_TYPES, TEXT_TYPES, Field, FieldType
from catalog.patterns import full_match

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I)


#: what a file field's `accept` may name, and the media types (read from the content) of each;
#: every one is in the instance's allow-list (engine.attachments.ALLOWED)
FILE_KINDS: Mapping[str, frozenset[str]] = {
    "image": frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"}),
    "pdf": frozenset({"application/pdf"}),
    "document": frozenset({
        "application/msword", "application/vnd.oasis.opendocument.text",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}),
    "spreadsheet": frozenset({
        "application/vnd.ms-excel", "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "text/csv"}),
    "presentation": frozenset({
        "application/vnd.ms-powerpoint", "application/vnd.oasis.opendocument.presentation",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"}),
    "zip": frozenset({"application/zip"}),
    "text": frozenset({"text/plain", "text/csv"}),
}
#: files a multiple file field takes when it gives no max_items
MAX_FILES = 10


@dataclass(frozen=True, slots=True)
class Upload:
    """A file given as a file field's answer: its name as sent and its bytes."""

    filename: str
    data: bytes

    def __repr__(self) -> str:  # never the bytes, in a log or an error
        return f"Upload({self.filename!r}, {len(self.data)} bytes)"


def accepted_types(f: Field) -> frozenset[str] | None:
    """The media types a file field accepts; None for every type the instance allows."""
    if not f.accept:
        return None
    return frozenset().union(*(FILE_KINDS.get(k, frozenset()) for k in f.accept))


def kinds_in_words(kinds: Collection[str]) -> str:
    """`image, pdf or text`."""
    names = [("PDF" if k == "pdf" else k) for k in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def parse_date(value: Any) -> date | None:
    """A date given as `YYYY-MM-DD` (and only so), or a date object."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def value_errors(f: Field, value: Any, choices: Collection[str] | None = None,
                 people: Collection[str] | None = None) -> list[str]:
    """Say what is wrong with `value` for field `f` (empty when it is fine).

    `choices` are the allowed values when they come from elsewhere than the field
    (a lookup, the directory); `people` the known person ids for person fields.
    Emptiness and `required` are the caller's business: `value` is not empty here.
    """
    t = f.type
    if t in TEXT_TYPES:
        if not isinstance(value, str):
            return ["must be text"]
        if "\x00" in value:
            return ["must not contain NUL characters"]
        errors = []
        limit = f.effective_max_length
        if f.min_length is not None and len(value) < f.min_length:
            errors.append(f"must be at least {f.min_length} characters")
        if limit is not None and len(value) > limit:
            errors.append(f"must be at most {limit} characters")
        if t is FieldType.EMAIL and not EMAIL.match(value):
            errors.append("must be an email address")
        if t is FieldType.URL and not URL.match(value):
            errors.append("must be an http or https URL")
        if f.pattern and not errors and not full_match(f.pattern, value):
            errors.append(f"must match the pattern {f.pattern}")
        return errors
    if t in (FieldType.INTEGER, FieldType.NUMBER):
        ok = isinstance(value, int) if t is FieldType.INTEGER else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            return ["must be a whole number" if t is FieldType.INTEGER else "must be a number"]
        if value != value or value in (float("inf"), float("-inf")):
            return ["must be a finite number"]
        if isinstance(f.min, int | float) and value < f.min:
            return [f"must be at least {_num(f.min)}"]
        if isinstance(f.max, int | float) and value > f.max:
            return [f"must be at most {_num(f.max)}"]
        return []
    if t is FieldType.BOOLEAN:
        return [] if isinstance(value, bool) else ["must be true or false"]
    if t is FieldType.DATE:
        day = parse_date(value)
        if day is None:
            return ["must be a date (YYYY-MM-DD)"]
        if isinstance(f.min, date) and day < f.min:
            return [f"must be on or after {f.min.isoformat()}"]
        if isinstance(f.max, date) and day > f.max:
            return [f"must be on or before {f.max.isoformat()}"]
        return []
    if t in CHOICE_TYPES:
        allowed = choices if choices is not None else (
            {c.value for c in f.choices} if f.choices else None)
        values = value if t is FieldType.MULTICHOICE else [value]
        if t is FieldType.MULTICHOICE and not isinstance(value, list):
            return ["must be a list of choices"]
        if not all(isinstance(v, str) for v in values):
            return ["must be one of the offered choices"]
        if allowed is not None:
            unknown = [v for v in values if v not in allowed]
            if unknown:
                return [f"{unknown[0]} is not one of the choices"]
        if t is FieldType.MULTICHOICE:
            if len(set(values)) != len(values):
                return ["lists a choice twice"]
            return _count_errors(f, len(values), "choices")
        return []
    if t is FieldType.PERSON:
        if not isinstance(value, str):
            return ["must be a person's id"]
        if people is not None and value not in people:
            return [f"{value} is not a known person"]
        return []
    if t is FieldType.TABLE:
        if isinstance(value, list) and len(value) > f.max_rows:  # before any row is looked at
            return [f"must have at most {f.max_rows} rows"]
        if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
            return ["must be a list of rows"]
        errors = _count_errors(f, len(value), "rows")
        names = {c.name for c in f.columns}
        for i, row in enumerate(value, 1):
            extra = sorted(str(k) for k in set(row) - names)
            if extra:
                errors.append(f"row {i}: unknown column {extra[0]}")
            for col in f.columns:
                cell = row.get(col.name)
                if is_empty(cell):
                    if col.required:
                        errors.append(f"row {i}: {col.label} is required")
                    continue
                errors.extend(f"row {i}: {col.label} {e}" for e in value_errors(col, cell, None, people))
        return errors
    if t is FieldType.ASSET:
        if isinstance(value, bool) or not (isinstance(value, int) or (
                isinstance(value, str) and value.isascii() and value.isdigit())):
            return ["must be the number of a configuration item"]
        if choices is not None and str(value) not in choices:
            return [f"{value} is not one of the items offered"]
        return []
    if t is FieldType.FILE:
        return _file_errors(f, value)
    return [f"unknown field type {t}"]


def _file_errors(f: Field, value: Any) -> list[str]:
    """A file field's answer is an Upload (a list of them when `multiple`); sizes and types
    are the instance's to check (engine.attachments), when the record is written."""
    files = value if f.multiple and isinstance(value, list) else [value]
    if f.multiple and not isinstance(value, list):
        return ["must be a list of files"]
    for one in files:
        if isinstance(one, Upload):
            continue
        if isinstance(one, Mapping) and set(one) == {"filename", "content"} and isinstance(
                one["filename"], str) and isinstance(one["content"], str):
            return ["content must be the file's bytes in base64"]
        return ["must be a file: an object with filename and content (base64)"]
    if f.multiple:
        if f.max_items is None and len(files) > MAX_FILES:
            return [f"must have at most {MAX_FILES} files"]
        return _count_errors(f, len(files), "files")
    return []


def _count_errors(f: Field, n: int, what: str) -> list[str]:
    if f.min_items is not None and n < f.min_items:
        return [f"must have at least {f.min_items} {what}"]
    if f.max_items is not None and n > f.max_items:
        return [f"must have at most {f.max_items} {what}"]
    return []


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}
