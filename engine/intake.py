"""Checking what is submitted: the order form's answers and a fulfiller's task form.

The web and API layers clean answers with `forms`; the engine checks them again with
the same field rules (catalog.fields), so nothing reaches the database unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.expressions import ExpressionError
from catalog.fields import is_empty, value_errors
from catalog.form_checks import failed_checks
from catalog.loader import Catalog
from catalog.models import CHOICE_TYPES, CatalogItem, Field, FieldType
from engine import people
from engine.errors import InvalidInput
from engine.models import Group, Person

MAX_ANSWERS_BYTES = 256 * 1024


def choices_of(session: Session, catalog: Catalog, f: Field,
               answers: Mapping[str, Any]) -> set[str] | None:
    """Allowed values of a choice field, or None when any value is fine."""
    if f.choices:
        allowed = [c for c in f.choices
                   if not f.depends_on or c.parent in (None, answers.get(f.depends_on))]
        return {c.value for c in allowed}
    source = f.choices_from or ""
    if source.startswith("lookup:"):
        lookup = catalog.lookup(source[7:])
        if lookup is None:
            return set()
        return {v.value for v in lookup.values
                if not f.depends_on or v.parent == answers.get(f.depends_on)}
    if source == "groups":
        return set(session.scalars(select(Group.id)))
    if source == "people":
        return set(session.scalars(select(Person.id).where(Person.active.is_(True))))
    if source.startswith("group:"):
        return set(people.members(session, source[6:]))
    return None


def check_answers(session: Session, catalog: Catalog, item: CatalogItem, answers: Any,
                  requester: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the answers to store (hidden fields dropped) or raise InvalidInput per field."""
    if not isinstance(answers, Mapping):
        raise InvalidInput("answers must be an object", {"_form": ["Answers must be an object."]})
    names = {f.name for f in item.fields}
    errors: dict[str, list[str]] = {}
    for key in answers:
        if key not in names:
            errors.setdefault(str(key)[:64], []).append("Unknown field.")
    clean: dict[str, Any] = {}
    hidden: set[str] = set()
    for f in item.fields:
        value = answers.get(f.name)
        ctx = {"form": {**{n: None for n in names}, **clean}, "requester": requester or {}}
        try:
            shown = f.show_if is None or f.show_if.test(ctx, catalog.functions())
            needed = f.required or (f.required_if is not None
                                    and f.required_if.test(ctx, catalog.functions()))
        except ExpressionError as exc:
            errors.setdefault(f.name, []).append(f"Cannot decide this field: {exc.message}.")
            continue
        if not shown:
            clean[f.name] = None
            hidden.add(f.name)
            continue
        if is_empty(value):
            clean[f.name] = None
            if needed:
                errors.setdefault(f.name, []).append("This field is required.")
            continue
        allowed = choices_of(session, catalog, f, clean) if f.type in CHOICE_TYPES else None
        known_people = None
        if f.type is FieldType.PERSON or (f.type is FieldType.TABLE and any(
                c.type is FieldType.PERSON for c in f.columns)):
            known_people = set(session.scalars(select(Person.id).where(Person.active.is_(True))))
        problems = value_errors(f, value, allowed, known_people)
        if problems:
            errors.setdefault(f.name, []).extend(_sentence(p) for p in problems)
        else:
            clean[f.name] = value
    answered = {**dict.fromkeys(names), **clean}
    for where, messages in failed_checks(item, answered, requester, catalog.functions(),
                                         invalid=errors, hidden=hidden).items():
        errors.setdefault(where, []).extend(messages)
    if errors:
        raise InvalidInput("the answers have errors", errors)
    if len(json.dumps(clean, default=str)) > MAX_ANSWERS_BYTES:
        raise InvalidInput("the answers are too large", {"_form": ["The answers are too large."]})
    return clean


def check_task_answers(fields: Iterable[Field], answers: Any) -> dict[str, Any]:
    """A fulfiller's form on completing a task."""
    fields = tuple(fields)
    if not isinstance(answers, Mapping):
        raise InvalidInput("answers must be an object", {"_form": ["Answers must be an object."]})
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    names = {f.name for f in fields}
    for key in answers:
        if key not in names:
            errors.setdefault(str(key)[:64], []).append("Unknown field.")
    for f in fields:
        value = answers.get(f.name)
        ctx = {"form": {**{n: None for n in names}, **clean}}
        try:
            shown = f.show_if is None or f.show_if.test(ctx)
            needed = f.required or (f.required_if is not None and f.required_if.test(ctx))
        except ExpressionError as exc:
            errors.setdefault(f.name, []).append(f"Cannot decide this field: {exc.message}.")
            continue
        if not shown or is_empty(value):
            clean[f.name] = None
            if shown and needed:
                errors.setdefault(f.name, []).append("This field is required.")
            continue
        problems = value_errors(f, value)
        if problems:
            errors.setdefault(f.name, []).extend(_sentence(p) for p in problems)
        else:
            clean[f.name] = value
    if errors:
        raise InvalidInput("the task form has errors", errors)
    return clean


def priority(catalog: Catalog, item: CatalogItem, answers: Mapping[str, Any]) -> str | None:
    rule = item.priority
    if rule is not None and rule.fixed:
        return rule.fixed
    if rule is not None and rule.impact_field and rule.urgency_field:
        found = catalog.settings.priority_for(str(answers.get(rule.impact_field)),
                                              str(answers.get(rule.urgency_field)))
        if found:
            return found
    return catalog.settings.default_priority


def _sentence(text: str) -> str:
    text = text[0].upper() + text[1:] if text else text
    return text if text.endswith(".") else text + "."
