"""The one pipeline from typed answers to clean answers, for every path that accepts them.

`check_answers` runs for the portal's forms (after `forms` has turned HTML or JSON
into typed values), for the engine's intake and task forms, and so for `deskflow
simulate`. Only where choices come from differs: the caller passes a
`catalog.choices.ChoiceSource` (the catalog's files, or the engine's database).
Fields are handled in form order:

- `show_if`: a field whose condition is false is hidden: its answer is None,
  whatever was sent, and it is neither validated nor required. Conditions read the
  clean answers of the fields before it (later, hidden and invalid ones read as
  None) and the requester snapshot.
- `required_if`: with `required`, says whether an empty answer is "This field is
  required."; an empty optional answer is None ([] for multichoice and table). A
  required boolean must be true: a checkbox that must be ticked.
- a condition that cannot be evaluated (over its budget) decides nothing: the
  answers are refused with "Cannot decide this field", and the admin reads the log.
- value checks: anything else goes through `catalog.fields.value_errors`, the one
  definition of the rules, with the choices on offer given the answers so far; its
  messages are returned as sentences.
- then the `checks` across fields (`catalog.form_checks`).

Keys that are not fields are an error under `_unknown`; answers that are not a
mapping, under `_body`. Clean answers are JSON-serialisable (dates are ISO strings), except a
file field's: `catalog.fields.Upload`s, which the engine keeps as attachments and replaces by
references (engine.file_answers).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalog.catalog import Catalog
from catalog.choices import CatalogChoices, ChoiceSource, offered_now
from catalog.expressions import Expression, ExpressionError
from catalog.fields import is_empty, parse_date, value_errors
from catalog.form_checks import failed_checks
from catalog.models import CHOICE_TYPES, TEXT_TYPES, CatalogItem, Field, FieldType, FormCheck

# the order form's log, where an admin looks for conditions that cannot be evaluated
log = logging.getLogger("deskflow.forms")
REQUIRED = "This field is required."
UNKNOWN = "_unknown"
BODY = "_body"
LIST_TYPES = frozenset({FieldType.MULTICHOICE, FieldType.TABLE})
#: types whose empty answer, besides None, is the empty string
STRING_TYPES = TEXT_TYPES | {FieldType.CHOICE, FieldType.DATE, FieldType.PERSON, FieldType.ASSET}
TRUE_WORDS = frozenset({"y", "yes", "on", "true", "1"})
FALSE_WORDS = frozenset({"n", "no", "off", "false", "0"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_SHOWN_KEY_LENGTH = 80


@dataclass(frozen=True, slots=True)
class Answers:
    """Clean answers (every field, hidden ones None) or what is wrong, by field."""

    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.errors


class _Undecided(Exception):
    """A field's condition cannot be evaluated."""


def check_answers(fields: Sequence[Field], answers: Any, choices: ChoiceSource, *,
                  checks: Iterable[FormCheck] = (), requester: Mapping[str, Any] | None = None,
                  functions: Mapping[str, Callable[..., Any]] | None = None) -> Answers:
    """Check and clean typed answers to `fields`; never raise on bad input."""
    values: dict[str, Any] = dict.fromkeys(f.name for f in fields)
    if not isinstance(answers, Mapping):
        return Answers(values, {BODY: ["The answers must be an object of field names and values."]})
    errors: dict[str, list[str]] = {}
    unknown = sorted(_shown(k) for k in answers if k not in values)
    if unknown:
        errors[UNKNOWN] = [f"Unknown field {k}." for k in unknown]
    hidden: set[str] = set()
    who = dict(requester) if isinstance(requester, Mapping) else {}
    for f in fields:
        names = {"form": dict(values), "requester": who}
        try:
            if f.show_if is not None and not _holds(f.show_if, names, functions):
                hidden.add(f.name)
                continue
            required = f.required or (f.required_if is not None
                                      and _holds(f.required_if, names, functions))
        except _Undecided as exc:
            errors[f.name] = [f"Cannot decide this field: {exc}."]
            continue
        value = answers.get(f.name)
        unticked = f.type is FieldType.BOOLEAN and value is False
        if _blank(f, value) or (required and unticked):
            if required:
                errors[f.name] = [REQUIRED]
            values[f.name] = [] if f.type in LIST_TYPES else None
            continue
        problems = _problems(f, value, choices, values)
        if problems:
            errors[f.name] = problems
        else:
            values[f.name] = _canonical(f, value)
    for where, messages in failed_checks(checks, values, who, functions, invalid=errors,
                                         hidden=hidden).items():
        errors.setdefault(where, []).extend(messages)
    return Answers(values, errors, frozenset(hidden))


def check_item_answers(item: CatalogItem, answers: Any, catalog: Catalog,
                       requester: Mapping[str, Any] | None = None,
                       choices: ChoiceSource | None = None) -> Answers:
    """`check_answers` for an item's order form; choices from the catalog unless given."""
    return check_answers(item.fields, answers, choices or CatalogChoices(catalog),
                         checks=item.checks, requester=requester, functions=catalog.functions())


def sentence(message: str, echoed: Collection[str] = ()) -> str:
    """Capitalise a rule's message and end it with a full stop; a value it starts with stays."""
    if not any(message.startswith(f"{e} is not ") for e in echoed):
        message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


def from_form(f: Field, value: Any) -> Any:
    """One value as an HTML form sends it (text; nothing for an unticked box), in the field's type.

    What does not convert is left for the rules to word ("3" -> 3, "on" -> True).
    """
    if value is None:
        return False if f.type is FieldType.BOOLEAN else None
    if not isinstance(value, str):
        return value
    text = value.replace("\r\n", "\n").strip()
    if f.type is FieldType.BOOLEAN:
        word = text.lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS or not word else text
    if not text:
        return None
    if f.type in (FieldType.INTEGER, FieldType.NUMBER) and _INTEGER.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts
            return text
    if f.type is FieldType.NUMBER and _NUMBER.fullmatch(text):
        return float(text)
    return text


def defaults_for(item: CatalogItem, requester: Mapping[str, Any] | None,
                 catalog: Catalog | None = None) -> dict[str, Any]:
    """Initial answers: static defaults, and default templates rendered for the requester.

    A template that cannot be rendered, or renders a value the field would refuse,
    gives no default.
    """
    names = {"requester": dict(requester) if isinstance(requester, Mapping) else {}}
    functions = catalog.functions() if catalog is not None else None
    out: dict[str, Any] = {}
    for f in item.fields:
        if f.default_template is not None:
            try:
                text = f.default_template.render(names, functions)
            except ExpressionError:
                continue
            value = _from_text(f, text)
            choices = ({c.value for c in offered_now(f, CatalogChoices(catalog))}
                       if catalog and f.type in CHOICE_TYPES else None)
            if not is_empty(value) and not value_errors(f, value, choices):
                out[f.name] = _canonical(f, value)
        elif f.default is not None:
            out[f.name] = copy.deepcopy(f.default)
    return out


def _problems(f: Field, value: Any, choices: ChoiceSource,
              answers: Mapping[str, Any]) -> list[str]:
    """The rules' messages, as sentences, for a non-empty `value` given the answers so far."""
    if f.type is FieldType.ASSET:
        # only a database-backed source knows configuration items (`asset_errors`)
        problems = value_errors(f, value)
        check = getattr(choices, "asset_errors", None)
        if not problems and callable(check):
            problems = list(check(f, str(value)))
        return [sentence(p) for p in problems]
    allowed = ({c.value for c in offered_now(f, choices, answers)}
               if f.type in CHOICE_TYPES else None)
    problems = value_errors(f, value, allowed, _people(f, choices))
    if f.type is FieldType.TABLE and isinstance(value, list) and all(
            isinstance(row, Mapping) for row in value):
        problems += [p for p in _cell_choice_errors(f, value, choices) if p not in problems]
    if f.type in CHOICE_TYPES | {FieldType.PERSON}:
        echoed = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    else:
        echoed = []
    return [sentence(p, echoed) for p in problems]


def _people(f: Field, choices: ChoiceSource) -> set[str] | None:
    """The known person ids, when the field or one of its columns is a person field."""
    person = f if f.type is FieldType.PERSON else next(
        (c for c in f.columns if c.type is FieldType.PERSON), None)
    return {c.value for c in choices.offered(person)} if person is not None else None


def _cell_choice_errors(f: Field, rows: list[Mapping[str, Any]],
                        choices: ChoiceSource) -> list[str]:
    """Check cells of columns whose choices come from elsewhere (value_errors cannot see them)."""
    errors: list[str] = []
    for col in f.columns:
        if col.type not in CHOICE_TYPES or col.choices_from is None:
            continue
        allowed = {c.value for c in choices.offered(col)}
        for i, row in enumerate(rows, 1):
            cell = row.get(col.name)
            if not is_empty(cell):
                errors += [f"row {i}: {col.label} {e}" for e in value_errors(col, cell, allowed)]
    return errors


def _holds(expression: Expression, names: Mapping[str, Any],
           functions: Mapping[str, Callable[..., Any]] | None) -> bool:
    try:
        return expression.test(names, functions)
    except ExpressionError as exc:
        # the person filling in the form cannot fix the catalog; the admin reads the log
        log.warning("a condition cannot be evaluated, so it does not hold: %s", exc.message)
        raise _Undecided(exc.message) from None


def _blank(f: Field, value: Any) -> bool:
    if value is None:
        return True
    if f.type in STRING_TYPES:
        return isinstance(value, str) and value == ""
    if f.type in LIST_TYPES or f.type is FieldType.FILE:
        return isinstance(value, list) and not value
    return False


def _from_text(f: Field, text: str) -> Any:
    """A rendered default template's text as the field's value."""
    if f.type is FieldType.TABLE:
        return []
    if f.type is FieldType.MULTICHOICE:
        return [text.strip()] if text.strip() else []
    return from_form(f, text)


def _canonical(f: Field, value: Any) -> Any:
    if f.type is FieldType.DATE:
        day = parse_date(value)
        return day.isoformat() if day is not None else value
    if f.type is FieldType.MULTICHOICE:
        return list(value)
    if f.type is FieldType.ASSET:
        return str(value)
    if f.type is FieldType.TABLE:
        return [{c.name: ([] if c.type in LIST_TYPES else None) if is_empty(row.get(c.name))
                 else _canonical(c, row.get(c.name)) for c in f.columns} for row in value]
    return value


def _shown(key: Any) -> str:
    text = str(key)
    return text if len(text) <= _SHOWN_KEY_LENGTH else text[:_SHOWN_KEY_LENGTH - 3] + "..."
