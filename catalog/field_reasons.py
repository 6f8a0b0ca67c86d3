"""Why each field of a form is shown or hidden, required or optional, in words.

`field_reasons` explains the outcome of `catalog.answers.check_answers` for given
answers: every condition is evaluated again against the very names the pipeline
gave it (the clean answers of the fields above, later, hidden and invalid ones as
None, and the requester), so the explanation cannot disagree with the form. Each
reason names the condition and the values it read (`form.cost = 1500`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.answers import REQUIRED, Answers
from catalog.expressions import Expression, ExpressionError, path_value
from catalog.fields import Upload, is_empty
from catalog.models import Field

#: text values longer than this are cut in a reason
SHOWN_TEXT = 60
#: list items shown in a reason, the rest elided
SHOWN_ITEMS = 10


@dataclass(frozen=True, slots=True)
class Clause:
    """One part of a reason: words, the condition it is about (if any), and what came of it."""

    lead: str
    source: str = ""
    tail: str = ""

    def __str__(self) -> str:
        return " ".join(p for p in (self.lead, f"`{self.source}`" if self.source else "", self.tail) if p)


@dataclass(frozen=True, slots=True)
class FieldReason:
    """A field's status for some answers, and why; None where a condition cannot be evaluated."""

    name: str
    label: str
    shown: bool | None
    required: bool | None
    clauses: tuple[Clause, ...]

    @property
    def status(self) -> str:
        if self.shown is None or (self.shown and self.required is None):
            return "undecided"
        if not self.shown:
            return "hidden"
        return "shown, required" if self.required else "shown, optional"

    @property
    def reason(self) -> str:
        return "; ".join(str(c) for c in self.clauses)


def field_reasons(fields: Sequence[Field], answers: Answers,
                  requester: Mapping[str, Any] | None = None,
                  functions: Mapping[str, Callable[..., Any]] | None = None
                  ) -> tuple[FieldReason, ...]:
    """Explain, field by field, what `check_answers` decided for `answers`; never raise."""
    who = dict(requester) if isinstance(requester, Mapping) else {}
    above: dict[str, Any] = dict.fromkeys(f.name for f in fields)
    out = []
    for f in fields:
        names = {"form": dict(above), "requester": who}
        out.append(_explain(f, names, functions, answers.errors))
        above[f.name] = answers.values.get(f.name)
    return tuple(out)


def _explain(f: Field, names: Mapping[str, Any],
             functions: Mapping[str, Callable[..., Any]] | None,
             invalid: Mapping[str, Any]) -> FieldReason:
    clauses: list[Clause] = []
    if f.show_if is not None:
        shown, clause = _verdict(f.show_if, "show_if", names, functions, invalid,
                                 ("shown because", "hidden because"))
        clauses.append(clause)
        if shown is not True:
            return FieldReason(f.name, f.label, shown, None, tuple(clauses))
    if f.required:
        clauses.append(Clause("required: always (required: true)"))
        required: bool | None = True
    elif f.required_if is not None:
        required, clause = _verdict(f.required_if, "required_if", names, functions, invalid,
                                    ("required because", "optional because"))
        clauses.append(clause)
    else:
        required = False
    if not clauses:
        clauses.append(Clause("shown: no condition"))
    return FieldReason(f.name, f.label, True, required, tuple(clauses))


def _verdict(expression: Expression, key: str, names: Mapping[str, Any],
             functions: Mapping[str, Callable[..., Any]] | None, invalid: Mapping[str, Any],
             words: tuple[str, str]) -> tuple[bool | None, Clause]:
    try:
        holds = expression.test(names, functions)
    except ExpressionError as exc:
        detail = exc.message.removeprefix(f"{expression.source}: ")
        return None, Clause(f"undecided because {key}", expression.source,
                            f"cannot be evaluated: {detail}")
    used = ", ".join(f"{'.'.join(p)} = {_shown(path_value(names, p), p, invalid)}"
                     for p in sorted(expression.paths))
    tail = ("holds" if holds else "does not hold") + (f" ({used})" if used else "")
    return holds, Clause(f"{words[0] if holds else words[1]} {key}", expression.source, tail)


def _shown(value: Any, path: tuple[str, ...], invalid: Mapping[str, Any]) -> str:
    """A value as a reason shows it: text quoted, booleans as in conditions, none as no answer."""
    if is_empty(value):
        if path[0] != "form":
            return "no value"
        # the pipeline reads a refused answer as none: say so, or the reason looks wrong
        refused = len(path) > 1 and invalid.get(path[1], [REQUIRED]) != [REQUIRED]
        return "no valid answer" if refused else "no answer"
    return _literal(value)


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= SHOWN_TEXT else value[:SHOWN_TEXT - 3] + "...")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Upload):
        return f"file {_literal(value.filename)}"
    if isinstance(value, list | tuple):
        items = [_literal(v) for v in value[:SHOWN_ITEMS]]
        return "[" + ", ".join(items + ["..."] * (len(value) > SHOWN_ITEMS)) + "]"
    if isinstance(value, Mapping):
        pairs = [f"{k}: {_literal(v)}" for k, v in list(value.items())[:SHOWN_ITEMS]]
        return "{" + ", ".join(pairs + ["..."] * (len(value) > SHOWN_ITEMS)) + "}"
    return _literal(str(value))
