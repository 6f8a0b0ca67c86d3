"""The one server-side pipeline from submitted data to clean answers.

`clean_answers` is used by the HTML form (through the generated form class) and by
the API alike. Fields are handled in form order:

- a field whose `show_if` is false is hidden: its answer is None, whatever was sent,
  and it is neither validated nor required. Conditions read the clean answers of
  the fields before it (later, hidden and invalid ones read as None) and the
  requester snapshot; a condition that cannot be evaluated is false.
- an empty answer is "This field is required." when the field is required or its
  `required_if` holds; otherwise it is None ([] for multichoice and table). A
  required boolean must be true: a checkbox that must be ticked.
- anything else goes through `catalog.fields.value_errors`, the one definition of
  the rules; its messages are returned as sentences.
- then the item's `checks` across fields (`catalog.form_checks`): a check whose
  `when` holds adds its message under its `field`, or under `_form` when it names
  none or its field is hidden; a check reading a field that has an error is skipped.

From HTML (`from_html=True`) values are form strings: they are stripped and coerced
("3" -> 3, "on" -> True, a missing checkbox -> False), multichoice values are
lists (a MultiDict's `getlist`), and table rows come from `name-0-col` keys (or a
list of row dicts); rows left untouched (every cell empty or its default) are
dropped, and keys that are not fields are ignored. From JSON the values are taken
as they are (only 3.0 becomes 3 for an integer field) and an unknown key is an
error under `_unknown`; a body that is not an object is an error under `_body`.
Clean answers are JSON-serialisable: dates are ISO strings.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog.expressions import Expression, ExpressionError
from catalog.fields import is_empty, parse_date, value_errors
from catalog.form_checks import failed_checks
from catalog.loader import Catalog
from catalog.models import CHOICE_TYPES, TEXT_TYPES, CatalogItem, Field, FieldType
from forms.choices import all_choices, allowed_values

log = logging.getLogger("deskflow.forms")
REQUIRED = "This field is required."
UNKNOWN = "_unknown"
BODY = "_body"
LIST_TYPES = frozenset({FieldType.MULTICHOICE, FieldType.TABLE})
#: types whose empty answer, in JSON, is the empty string
STRING_TYPES = TEXT_TYPES | {FieldType.CHOICE, FieldType.DATE, FieldType.PERSON}
TRUE_WORDS = frozenset({"y", "yes", "on", "true", "1"})
FALSE_WORDS = frozenset({"n", "no", "off", "false", "0"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_ROW_KEY = re.compile(r"([0-9]{1,9})-([a-z][a-z0-9_]*)")
_SHOWN_KEY_LENGTH = 80


@dataclass(frozen=True, slots=True)
class Answers:
    """Clean answers (every field of the item, hidden ones None) or what is wrong, by field."""

    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.errors


def clean_answers(item: CatalogItem, raw: Mapping[str, Any], catalog: Catalog,
                  requester: Mapping[str, Any] | None = None, *,
                  from_html: bool = False) -> Answers:
    """Coerce, check and clean submitted answers for `item`; never raise on bad input."""
    values: dict[str, Any] = dict.fromkeys(f.name for f in item.fields)
    if not isinstance(raw, Mapping):
        return Answers(values, {BODY: ["The answers must be an object of field names and values."]})
    errors: dict[str, list[str]] = {}
    if not from_html:
        unknown = sorted(_shown(k) for k in raw if k not in values)
        if unknown:
            errors[UNKNOWN] = [f"Unknown field {k}." for k in unknown]
    hidden: set[str] = set()
    functions = catalog.functions()
    who = dict(requester) if isinstance(requester, Mapping) else {}
    people = {p.id for p in catalog.directory.people if p.active}
    for f in item.fields:
        names = {"form": dict(values), "requester": who}
        if f.show_if is not None and not _holds(f.show_if, names, functions):
            hidden.add(f.name)
            continue
        required = f.required or (f.required_if is not None and _holds(f.required_if, names,
                                                                        functions))
        value = _from_html(f, raw, f.name) if from_html else _from_json(f, raw.get(f.name))
        unticked = f.type is FieldType.BOOLEAN and value is False
        if _blank(f, value, from_html) or (required and unticked):
            if required:
                errors[f.name] = [REQUIRED]
            values[f.name] = [] if f.type in LIST_TYPES else None
            continue
        problems = field_problems(f, value, catalog, values, people)
        if problems:
            errors[f.name] = problems
        else:
            values[f.name] = _canonical(f, value)
    for where, messages in failed_checks(item, values, who, functions, invalid=errors,
                                         hidden=hidden).items():
        errors.setdefault(where, []).extend(messages)
    return Answers(values, errors, frozenset(hidden))


def field_problems(f: Field, value: Any, catalog: Catalog, answers: Mapping[str, Any],
                   people: Collection[str]) -> list[str]:
    """The rules' messages, as sentences, for a non-empty `value` given the answers so far."""
    choices = allowed_values(f, catalog, answers) if f.type in CHOICE_TYPES else None
    problems = value_errors(f, value, choices, people)
    if f.type is FieldType.TABLE and isinstance(value, list) and all(
            isinstance(row, Mapping) for row in value):
        problems += [p for p in _cell_choice_errors(f, value, catalog) if p not in problems]
    if f.type in CHOICE_TYPES | {FieldType.PERSON}:
        echoed = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    else:
        echoed = []
    return [sentence(p, echoed) for p in problems]


def _cell_choice_errors(f: Field, rows: list[Mapping[str, Any]], catalog: Catalog) -> list[str]:
    """Check cells of columns whose choices come from the catalog (value_errors cannot see them)."""
    errors: list[str] = []
    for col in f.columns:
        if col.type not in CHOICE_TYPES or col.choices_from is None:
            continue
        allowed = {c.value for c in all_choices(col, catalog)}
        for i, row in enumerate(rows, 1):
            cell = row.get(col.name)
            if not is_empty(cell):
                errors += [f"row {i}: {col.label} {e}" for e in value_errors(col, cell, allowed)]
    return errors


def sentence(message: str, echoed: Collection[str] = ()) -> str:
    """Capitalise a rule's message and end it with a full stop; a value it starts with stays."""
    if not any(message.startswith(f"{e} is not ") for e in echoed):
        message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


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
            value = _from_html(f, {f.name: text}, f.name)
            choices = allowed_values(f, catalog) if catalog and f.type in CHOICE_TYPES else None
            if not is_empty(value) and not value_errors(f, value, choices):
                out[f.name] = _canonical(f, value)
        elif f.default is not None:
            out[f.name] = copy.deepcopy(f.default)
    return out


# ---------------------------------------------------------------- coercion

def _holds(expression: Expression, names: Mapping[str, Any],
           functions: Mapping[str, Callable[..., Any]]) -> bool:
    try:
        return expression.test(names, functions)
    except ExpressionError as exc:
        # the person filling in the form cannot fix the catalog; the admin reads the log
        log.warning("a condition cannot be evaluated, so it does not hold: %s", exc.message)
        return False


def _blank(f: Field, value: Any, from_html: bool) -> bool:
    if from_html or value is None:
        return is_empty(value)
    if f.type in STRING_TYPES:
        return isinstance(value, str) and value == ""
    if f.type in LIST_TYPES:
        return isinstance(value, list) and not value
    return False


def _from_json(f: Field, value: Any) -> Any:
    if f.type is FieldType.INTEGER and isinstance(value, float) and value.is_integer():
        return int(value)
    if f.type is FieldType.TABLE and isinstance(value, list):
        columns = {c.name: c for c in f.columns}
        # one row more than allowed is enough to say there are too many
        return [{k: _from_json(columns[k], v) if k in columns else v for k, v in row.items()}
                if isinstance(row, Mapping) else row for row in value[:f.max_rows + 1]]
    return value


def _getlist(raw: Mapping[str, Any], key: str) -> list[Any]:
    getlist = getattr(raw, "getlist", None)
    if callable(getlist):
        return list(getlist(key))
    value = raw.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _from_html(f: Field, raw: Mapping[str, Any], key: str) -> Any:
    if f.type is FieldType.TABLE:
        return _html_rows(f, raw, key)
    given = _getlist(raw, key)
    if f.type is FieldType.MULTICHOICE:
        return [v.strip() if isinstance(v, str) else v for v in given
                if not (isinstance(v, str) and not v.strip())]
    return _coerce(f, given[0] if given else None)


def _coerce(f: Field, value: Any) -> Any:
    """Turn one form string into the field's type; leave what does not convert for the rules."""
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


def _html_rows(f: Field, raw: Mapping[str, Any], key: str) -> Any:
    """Rows in index order, untouched ones dropped, parsed until one more than `max_rows`."""
    given = raw.get(key)
    raw_rows: Iterable[Mapping[str, Any]]
    if isinstance(given, list) and all(isinstance(r, Mapping) for r in given):
        raw_rows = given
    else:
        by_index: dict[int, dict[str, str]] = {}
        prefix = f"{key}-"
        for k in raw:
            m = _ROW_KEY.fullmatch(k[len(prefix):]) if isinstance(k, str) and k.startswith(
                prefix) else None
            if m:
                by_index.setdefault(int(m.group(1)), {})[m.group(2)] = k
        raw_rows = ({col: _getlist(raw, k) for col, k in by_index[i].items()}
                    for i in sorted(by_index))
    rows = []
    for raw_row in raw_rows:
        row = {c.name: _from_html(c, raw_row, c.name) for c in f.columns}
        if not all(_untouched(c, row[c.name]) for c in f.columns):
            rows.append(row)
            if len(rows) > f.max_rows:  # enough to say there are too many
                break
    return rows


def _untouched(col: Field, value: Any) -> bool:
    return is_empty(value) or value is False or (col.default is not None and value == col.default)


def _canonical(f: Field, value: Any) -> Any:
    if f.type is FieldType.DATE:
        day = parse_date(value)
        return day.isoformat() if day is not None else value
    if f.type is FieldType.MULTICHOICE:
        return list(value)
    if f.type is FieldType.TABLE:
        return [{c.name: ([] if c.type in LIST_TYPES else None) if is_empty(row.get(c.name))
                 else _canonical(c, row.get(c.name)) for c in f.columns} for row in value]
    return value


def _shown(key: Any) -> str:
    text = str(key)
    return text if len(text) <= _SHOWN_KEY_LENGTH else text[:_SHOWN_KEY_LENGTH - 3] + "..."
