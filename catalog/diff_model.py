"""What a catalog diff is made of: `Change`s, the open requests they touch, values as text.

`catalog.diff` finds the changes, `catalog.diff_render` prints them, and
`engine.checks.requests_in_flight` reads the `InFlight` rows that `affected` counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from enum import Enum
from pathlib import PurePosixPath
from typing import Any

from catalog.expressions import Expression, Template
from catalog.models import Duration

#: the order subjects are listed in
SUBJECTS = ("settings", "directory", "item", "workflow", "fieldset", "lookup", "article",
            "response", "view", "ci_type", "guide")


@dataclass(frozen=True, slots=True)
class InFlight:
    """Open requests sharing an item, a workflow version and a state, and how many."""

    item_id: str
    workflow_id: str
    version: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class Affected:
    """Open requests a change touches, on one workflow version."""

    version: str
    count: int


@dataclass(frozen=True, slots=True)
class Change:
    """One semantic change: `sign` is + (added), - (removed) or ~ (changed)."""

    kind: str
    sign: str
    subject: str          # a SUBJECTS entry
    subject_id: str       # the item, workflow, ... id ("" for settings)
    message: str          # "removes state legal_review"
    file: PurePosixPath
    line: int
    #: where `file:line` is: "new", or "old" for what the new side no longer has
    side: str = "new"
    before: str | None = None
    after: str | None = None
    #: what open requests this touches: ("item", id) | ("workflow", id) | ("state", wf, state)
    scope: tuple[str, ...] = ()
    affected: tuple[Affected, ...] | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def open_requests(self) -> int:
        return sum(a.count for a in self.affected or ())

    def sort_key(self) -> tuple[int, str, str, int, str]:
        return (SUBJECTS.index(self.subject), self.subject_id, str(self.file), self.line,
                self.message)


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    """Every change from `old` to `new`, in a stable order."""

    old: str
    new: str
    changes: tuple[Change, ...]

    def __bool__(self) -> bool:
        return bool(self.changes)

def affected(change: Change, rows: Sequence[InFlight]) -> tuple[Affected, ...]:
    """The open requests in `change.scope`, by workflow version (most first)."""
    counts: dict[str, int] = {}
    for r in rows:
        if _in_scope(change.scope, r):
            counts[r.version] = counts.get(r.version, 0) + r.count
    return tuple(Affected(v, n) for v, n in sorted(counts.items(), key=lambda vn: (-vn[1], vn[0])))


def _in_scope(scope: tuple[str, ...], row: InFlight) -> bool:
    what, *ids = scope
    if what == "item":
        return row.item_id == ids[0]
    if what == "workflow":
        return row.workflow_id == ids[0]
    return row.workflow_id == ids[0] and row.state == ids[1]

def show(value: Any) -> str:
    """A value as a reviewer reads it: `3 business days`, `form.x > 1`, `a, b`, `none`."""
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Expression | Template):
        return value.source
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, Duration | date | PurePosixPath):
        return str(value)
    if isinstance(value, tuple | list | frozenset | set):
        items = sorted(value, key=str) if isinstance(value, frozenset | set) else value
        return ", ".join(show(v) for v in items)
    if isinstance(value, Mapping):
        return ", ".join(f"{show(k)}: {show(v)}" for k, v in value.items()) or "none"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value).__str__ is not object.__str__ and "__str__" in type(value).__dict__:
            return str(value)
        parts = [f"{f.name}={show(getattr(value, f.name))}" for f in dataclasses.fields(value)
                 if f.compare and not f.name.startswith("_")
                 and getattr(value, f.name) != _default(f)]
        return "{" + "; ".join(parts) + "}"
    return str(value)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def props(obj: Any, skip: frozenset[str]) -> Iterable[str]:
    """The compared fields of a model dataclass, but those in `skip`."""
    return (f.name for f in dataclasses.fields(obj)
            if f.compare and f.name not in skip and not f.name.startswith("_"))
