"""What parsing one file yields: the `Parsed` record every `parse_*` function fills.

Each parser (`settings_parser`, `directory_parser`, `item_parser`, `workflow_parser`)
returns a `Parsed`: the model, the problems found, and the references to other files
that the cross-file checks resolve later.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from catalog.errors import Severity, SpecError
from catalog.expressions import (
    ROOTS,
    Expression,
    ExpressionError,
    Template,
    compile_expression,
    compile_template,
)
from catalog.models import Duration, Field
from catalog.source import SourceDoc

Path = tuple[str | int, ...]
FORM_ROOTS = frozenset({"form", "requester"})
#: `person:ID`, `group:ID` or `role:ID`
PRINCIPAL = re.compile(r"^(person|group|role):([a-z][a-z0-9._-]*)$")


@dataclass(frozen=True, slots=True)
class Reference:
    """A name in one file that must exist in another (or in the same catalog)."""

    kind: str               # workflow | fieldset | group | person | role | lookup | article | item | priority
    id: str
    doc: SourceDoc
    path: Path

    def error(self, message: str, hint: str = "") -> SpecError:
        return self.doc.error(self.path, message, hint)


@dataclass(frozen=True, slots=True)
class FieldSite:
    """Where a field was written, and where its expressions are."""

    doc: SourceDoc
    path: Path


@dataclass(slots=True)
class Parsed:
    kind: str
    doc: SourceDoc
    model: Any = None
    problems: list[SpecError] = field(default_factory=list)
    refs: list[Reference] = field(default_factory=list)
    #: id(Field) -> where it is written (for errors found once fieldsets are expanded)
    sites: dict[int, FieldSite] = field(default_factory=dict)
    #: for items: the form as written, fields and ("use", fieldset id, path) entries
    form: tuple[Field | tuple[str, str, Path], ...] = ()

    def error(self, path: Path, message: str, hint: str = "", **kw: Any) -> None:
        self.problems.append(self.doc.error(path, message, hint, **kw))

    def warn(self, path: Path, message: str, hint: str = "", **kw: Any) -> None:
        self.problems.append(self.doc.error(path, message, hint, severity=Severity.WARNING, **kw))

    def ref(self, kind: str, ident: str, path: Path) -> None:
        self.refs.append(Reference(kind, ident, self.doc, path))

    def principal_ref(self, who: str, path: Path) -> None:
        """Record a reference when `who` names a person, group or role."""
        m = PRINCIPAL.match(who)
        if m:
            self.ref(m.group(1), m.group(2), path)

    def expression(self, text: str, path: Path,
                   roots: frozenset[str] = ROOTS) -> Expression | None:
        """Compile an expression written at `path`, or report why it cannot be."""
        try:
            expr = compile_expression(text, roots)
        except ExpressionError as exc:
            self.error(path, f"expression {text!r} {_expression_message(exc)}", exc.hint)
            return None
        self._lookup_refs(expr, path)
        return expr

    def template(self, text: str, path: Path, roots: frozenset[str] = ROOTS) -> Template | None:
        """Compile a `{{ }}` template written at `path`, or report why it cannot be."""
        try:
            tpl = compile_template(text, roots)
        except ExpressionError as exc:
            self.error(path, f"template {text!r}: {exc.message}", exc.hint)
            return None
        for e in tpl.expressions:
            self._lookup_refs(e, path)
        return tpl

    def duplicates(self, values: list[str], where: Callable[[int], Path], what: str) -> None:
        """Report each value seen before, at `where(its index)`."""
        seen: set[str] = set()
        for i, v in enumerate(values):
            if v in seen:
                self.error(where(i), f"duplicate {what} {v}", f"each {what} may appear once")
            seen.add(v)

    def _lookup_refs(self, expr: Expression, path: Path) -> None:
        for name, args in expr.calls:
            if name == "lookup":
                if len(args) != 2 or not isinstance(args[0], str):
                    self.error(path, "lookup() takes a lookup id in quotes and a value",
                               "write lookup('systems', form.system)")
                else:
                    self.ref("lookup", args[0], path)


def _expression_message(exc: ExpressionError) -> str:
    return exc.message if exc.message.startswith("does not parse") else f"is invalid: {exc.message}"


def duration(text: str | None) -> Duration | None:
    """The duration written, or None when the key is absent."""
    return Duration.parse(text) if text else None
