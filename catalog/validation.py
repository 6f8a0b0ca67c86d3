"""JSON Schema validation of one catalog file: the packaged schemas, and errors with positions.

A file first gets a quick yes from jsonschema-rs; only a file it rejects goes through
python-jsonschema, whose errors are turned into `SpecError`s at the value (or key)
they are about. Both read Draft 2020-12 and assert the same formats.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from catalog.errors import SpecError, suggest
from catalog.source import SourceDoc

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_NAMES = ("settings", "directory", "catalog-item", "fieldset", "lookup", "workflow",
                "kb-article", "ci-type", "view", "scenario", "guide")
MAX_MESSAGE = 200


@lru_cache(maxsize=len(SCHEMA_NAMES))
def schema(name: str) -> dict[str, Any]:
    """One of the packaged JSON Schemas, by file stem."""
    text = (SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@lru_cache(maxsize=len(SCHEMA_NAMES))
def validator(name: str) -> Draft202012Validator:
    s = schema(name)
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def _is_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


#: the formats jsonschema's FORMAT_CHECKER asserts, as it checks them (strings only)
FAST_FORMATS: dict[str, Callable[[str], bool]] = {"date": _is_date, "email": lambda v: "@" in v}


def fast_validator(s: dict[str, Any], checked: bool = False) -> Callable[[Any], bool]:
    """Check a Draft 2020-12 schema (unless `checked` already), then compile it with
    jsonschema-rs for quick yes/no answers."""
    if not checked:
        Draft202012Validator.check_schema(s)
    compiled = jsonschema_rs.Draft202012Validator(s, validate_formats=True, formats=FAST_FORMATS)
    return compiled.is_valid  # type: ignore[no-any-return]


@lru_cache(maxsize=len(SCHEMA_NAMES))
def fast_check(name: str) -> Callable[[Any], bool]:
    """One of the packaged schemas compiled by jsonschema-rs: the quick yes on clean files.

    Only files it rejects go through jsonschema, which then says what is wrong and where.
    Both read Draft 2020-12 and assert the same formats (tests/catalog/test_schemas.py).
    The packaged schemas are checked against the meta-schema by that test module, not in
    every process (half of a command's start-up went there).
    """
    return fast_validator(schema(name), checked=True)


def schema_errors(doc: SourceDoc, name: str) -> list[SpecError]:
    """Schema violations, each at the position of the value (or key) it is about."""
    if fast_check(name)(doc.data):
        return []
    return [_spec_error(doc, e) for e in validator(name).iter_errors(doc.data)]


def _spec_error(doc: SourceDoc, e: ValidationError) -> SpecError:
    while e.validator in ("oneOf", "anyOf") and e.context:
        deeper = _closest_branch(e)
        if deeper is None:
            break
        e = deeper
    path = list(e.absolute_path)
    if e.validator == "additionalProperties" and isinstance(e.instance, dict):
        known = set(e.schema.get("properties", {}))
        extra = sorted(k for k in e.instance if k not in known)
        if extra:
            return doc.error([*path, extra[0]], f"unknown key {extra[0]}",
                             suggest(extra[0], known), at_key=True)
    if e.validator == "required":
        missing = e.message.split("'")[1] if "'" in e.message else ""
        return doc.error(path, f"missing required key {missing}", at_key=bool(path))
    if e.validator == "maxLength":
        return doc.error(path, f"is longer than {e.validator_value} characters")
    if e.validator == "minItems":
        n = e.validator_value
        return doc.error(path, f"needs at least {n} entr{'y' if n == 1 else 'ies'}")
    if e.validator == "enum":
        shown = ", ".join(str(x) for x in e.validator_value)
        return doc.error(path, f"{_short(e.instance)} is not one of {shown}")
    if e.validator in ("oneOf", "anyOf"):
        return doc.error(path, f"{_short(e.instance)} is not a valid value here",
                         _one_of_hint(e))
    message = e.message if len(e.message) <= MAX_MESSAGE else e.message[:MAX_MESSAGE] + "..."
    return doc.error(path, message)


def _closest_branch(e: ValidationError) -> ValidationError | None:
    """The error of the oneOf branch the author most likely meant: the one that got deepest."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in e.context or ():
        branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).append(sub)
    base = len(e.absolute_path)

    def depth(errs: list[ValidationError]) -> tuple[int, int, int]:
        at_base = [x for x in errs if len(x.absolute_path) == base]
        missing = any(x.validator in ("required", "type", "const") for x in at_base)
        return (0 if missing else 1, max(len(x.absolute_path) for x in errs), -len(errs))

    ranked = sorted(branches.values(), key=depth, reverse=True)
    if len(ranked) > 1 and depth(ranked[0]) == depth(ranked[1]):
        return None
    return best_match(ranked[0]) if ranked else None


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_of_hint(e: ValidationError) -> str:
    desc = e.schema.get("description", "")
    return desc.split(". ")[0].rstrip(".") if desc else ""
