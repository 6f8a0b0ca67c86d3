"""Per-record figures kept on the record as it changes, so the dashboards aggregate columns.

A record's assignment groups in order (`group_path`), how often the group changed after
the first (`group_changes`), whether a group recurred after another (`ping_pong`), the
support tiers it passed through (`tiers_seen`) and the upper tiers it was escalated to
straight from L1 (`escalated_to`) are read by engine.reports. They follow every
`record_changed` audit row (engine.unit `audit` calls `note_changes`) and are computed by
the importer from the same changes (engine.history.importer), so native and imported
records are measured alike.

`group_path` stays NULL until the group first changes: the path of an unchanged record is
its assignment group alone.

Each record also has one narrow `record_facts` row (`fact_row`): what the dashboards filter
on and the durations in hours, computed here in Python from the record's columns, so every
database stores the same numbers. It is written whenever a record is flushed (`watch`
installs a listener on every Session) and by the importer's bulk path (`write_facts`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, UOWTransaction

from engine.models import Base, RecordFact, Request

#: tiers above the first line (BPIC 2013 writes "L2/L3" too)
UPPER_TIERS = ("L2", "L3", "L2/L3")
#: the separator of `group_path` (group ids never contain a newline)
SEP = "\n"
TIERS_SEP = "+"
ESCALATED_SEP = " "


class Figures(Protocol):
    """A record, or the importer's stand-in for one: the columns this module keeps."""

    group_path: str | None
    group_changes: int
    ping_pong: bool
    tiers_seen: str | None
    escalated_to: str | None


@dataclass(slots=True)
class Fresh:
    """The figures of a record being built (the importer's rows are dicts, not objects)."""

    group_path: str | None = None
    group_changes: int = 0
    ping_pong: bool = False
    tiers_seen: str | None = None
    escalated_to: str | None = None

    def columns(self) -> dict[str, Any]:
        return {"group_path": self.group_path, "group_changes": self.group_changes,
                "ping_pong": self.ping_pong, "tiers_seen": self.tiers_seen,
                "escalated_to": self.escalated_to}


def has_ping_pong(path: Sequence[str]) -> bool:
    """A group recurs after another one: A → B → A."""
    seen: set[str] = set()
    for prev, cur in zip([None, *path], path, strict=False):
        if cur != prev and cur in seen:
            return True
        seen.add(cur)
    return False


def groups_of(group_path: str | None, group: str | None) -> list[str]:
    """The groups a record was assigned to, in order."""
    if group_path is not None:
        return group_path.split(SEP) if group_path else []
    return [group] if group else []


def note_tier(rec: Figures, tier: str | None) -> None:
    """The tier a record was opened at (the importer's first row)."""
    if tier:
        seen = set(rec.tiers_seen.split(TIERS_SEP)) if rec.tiers_seen else set()
        seen.add(tier)
        rec.tiers_seen = TIERS_SEP.join(sorted(seen))


def note_changes(rec: Figures, changes: Mapping[str, Sequence[Any]]) -> None:
    """Follow one `record_changed` row's changes ({field: [old, new]})."""
    group = changes.get("assignment_group")
    if group:
        old, new = group[0], group[1]
        path = groups_of(rec.group_path, old)
        if new:
            path.append(new)
        rec.group_path = SEP.join(path)
        rec.group_changes = max(len(path) - 1, 0)
        rec.ping_pong = has_ping_pong(path)
    tier = changes.get("tier")
    if tier:
        old, new = tier[0], tier[1]
        for t in (old, new):
            note_tier(rec, t)
        if old == "L1" and new in UPPER_TIERS:
            reached = set(rec.escalated_to.split(ESCALATED_SEP)) if rec.escalated_to else set()
            reached.add(new)
            rec.escalated_to = ESCALATED_SEP.join(sorted(reached))


def computed(first_tier: str | None, changes: Iterable[Mapping[str, Sequence[Any]]]) -> Fresh:
    """The figures of a record opened at `first_tier` that went through `changes` in order."""
    rec = Fresh()
    note_tier(rec, first_tier)
    for change in changes:
        note_changes(rec, change)
    return rec


#: the columns of requests a facts row is computed from
SOURCE_COLUMNS = ("id", "record_type", "item_id", "priority", "assignment_group_id", "state", "status",
                  "created_at", "updated_at", "responded_at", "resolved_at", "made_sla",
                  "import_source", "resolution_due", "sla_state", "reopen_count",
                  "reassignment_count", "group_changes", "ping_pong", "group_path", "tiers_seen",
                  "escalated_to")


def _hours(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds() / 3600


def _day(at: datetime | None) -> int | None:
    if at is None:
        return None
    return (at.astimezone(UTC) if at.tzinfo else at).date().toordinal()


def sla_met(get: Callable[[str], Any]) -> int | None:
    """1 met, 0 missed, None not counted: imported records by their own verdict (made_sla);
    native ones when resolved with a resolution target, met unless ever breached."""
    made = get("made_sla")
    if made is not None:
        return int(bool(made))
    if get("import_source") is None and get("resolution_due") is not None \
            and get("resolved_at") is not None:
        return 0 if get("sla_state") == "breached" else 1
    return None


def fact_row(get: Callable[[str], Any]) -> dict[str, Any]:
    """The facts row of the record whose columns `get(name)` reads (SOURCE_COLUMNS)."""
    opened = get("created_at")
    resolved = get("resolved_at")
    reopens = get("reopen_count") or 0
    count = get("reassignment_count")
    group = get("assignment_group_id")
    path = get("group_path")
    return {
        "request_id": get("id"), "record_type": get("record_type"), "item_id": get("item_id"),
        "priority": get("priority"), "group_id": group, "state": get("state"),
        "open": get("status") == "open" and resolved is None,
        "opened_at": opened, "opened_day": _day(opened), "resolved_day": _day(resolved),
        "respond_h": _hours(opened, get("responded_at")), "resolve_h": _hours(opened, resolved),
        "duration_h": _hours(opened, get("updated_at") or opened),
        "sla_met": sla_met(get), "ever_resolved": resolved is not None or reopens > 0,
        "reopened": reopens > 0,
        "reassignments": count if count is not None else (get("group_changes") or 0),
        "ping_pong": bool(get("ping_pong")),
        "groups": path if path is not None else group,
        "tiers_seen": get("tiers_seen"), "escalated_to": get("escalated_to"),
    }


def write_facts(conn: Connection | Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or replace the facts rows of these records (`fact_row`'s dicts)."""
    if not rows:
        return
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    conn.execute(_upsert(dialect), list(rows))


@functools.lru_cache(maxsize=4)
def _upsert(dialect: str) -> Any:
    """The facts table's insert-or-replace, built once per dialect (every ORM flush of a record
    runs it; building `excluded` copies every column, which cost more than the statement)."""
    # Core on the table: one executemany (the ORM's bulk path would split it by NULLs)
    table = Base.metadata.tables[RecordFact.__tablename__]
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=["request_id"],
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name != "request_id"})


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    changed = [o for o in (*session.new, *session.dirty) if isinstance(o, Request)]
    if changed:
        write_facts(session.connection(), [fact_row(_reader(r)) for r in changed])


def _reader(req: Request) -> Callable[[str], Any]:
    return lambda name: getattr(req, name)


def watch() -> None:
    """Keep every record's facts row as the ORM flushes records (once per process)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)


watch()  # engine.unit imports this module: every write through the engine keeps the facts
