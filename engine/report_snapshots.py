"""Report snapshots: the dashboards' figures computed once and served to every process until
they are older than a max age (docs/reports.md, "How the figures are kept").

A snapshot is one row per set of filters (`snapshot_key`: the canonical `Filters.query()`),
holding every figure as JSON and when it was computed. The figures do not depend on who looks
(engine.reports takes no viewer; /reports checks only that the viewer may see reports), so
one snapshot serves everyone allowed. Max age 0 means live: the table is never read or written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import UsageError
from engine import reports
from engine.models import ReportSnapshot
from engine.reports import Figure, Filters

#: DESKFLOW_REPORTS_MAX_AGE when unset: seconds a snapshot is served before it is recomputed
MAX_AGE = 300


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one view, when they were computed, and whether they were computed live
    (max age 0: no snapshot read or stored)."""

    figures: tuple[Figure, ...]
    computed_at: datetime
    live: bool = False


def max_age(config: Mapping[str, Any]) -> int:
    """DESKFLOW_REPORTS_MAX_AGE from a configuration or the environment: whole seconds, 0 or more."""
    value = config.get("DESKFLOW_REPORTS_MAX_AGE", MAX_AGE)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UsageError("DESKFLOW_REPORTS_MAX_AGE must be a whole number of seconds, 0 or more "
                         f"(not {value})")
    return value


def snapshot_key(f: Filters) -> str:
    """The canonical filters: `Filters.query()` as JSON with sorted keys ("{}" for none)."""
    return json.dumps(f.query(), sort_keys=True, separators=(",", ":"))


def to_json(figures: tuple[Figure, ...] | list[Figure]) -> list[dict[str, Any]]:
    """Every field of each figure, as JSON values."""
    return [{"name": fig.name, "title": fig.title, "definition": fig.definition,
             "columns": fig.columns, "rows": fig.rows, "chart": fig.chart,
             "chart_columns": list(fig.chart_columns)} for fig in figures]


def from_json(data: list[dict[str, Any]]) -> tuple[Figure, ...]:
    """The figures `to_json` stored."""
    return tuple(Figure(d["name"], d["title"], d["definition"], list(d["columns"]),
                        [list(row) for row in d["rows"]], d["chart"],
                        (int(d["chart_columns"][0]), int(d["chart_columns"][1]))) for d in data)


def store(s: Session, f: Filters, figures: tuple[Figure, ...], computed_at: datetime) -> None:
    """Insert or replace the snapshot of `f` (two processes racing: the last one wins)."""
    values = {"key": snapshot_key(f), "figures": to_json(figures), "computed_at": computed_at}
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(ReportSnapshot).values(**values)
    s.execute(stmt.on_conflict_do_update(
        index_elements=[ReportSnapshot.key],
        set_={"figures": stmt.excluded.figures, "computed_at": stmt.excluded.computed_at}))


def _young(snapshot: ReportSnapshot | None, now: datetime, age: timedelta) -> bool:
    return snapshot is not None and now - snapshot.computed_at < age


def current_figures(s: Session, f: Filters, now: datetime, max_age: int, *,
                    fresh: bool = False, writer: sessionmaker[Session] | None = None) -> Figures:
    """The figures of `f`: the snapshot when younger than `max_age` seconds (and not `fresh`),
    else computed now and stored — in a transaction of its own when a `writer` is given (a
    page: the figures are read in its read transaction, which SQLite could not turn into a
    write once another writer has committed), else in `s` (the caller commits). Max age 0:
    computed live, the table untouched."""
    if max_age <= 0:
        return Figures(tuple(reports.all_figures(s, f, now)), now, live=True)
    if not fresh:
        snapshot = s.get(ReportSnapshot, snapshot_key(f))
        if snapshot is not None and _young(snapshot, now, timedelta(seconds=max_age)):
            return Figures(from_json(snapshot.figures), snapshot.computed_at)
    figures = tuple(reports.all_figures(s, f, now))
    if writer is None:
        store(s, f, figures, now)
    else:
        with writer.begin() as ws:
            store(ws, f, figures, now)
    return Figures(figures, now)


def refresh_unfiltered(s: Session, now: datetime, max_age: int) -> bool:
    """Recompute the unfiltered snapshot when it is older than half `max_age` (or missing), so
    the default view never waits; return whether it did (the caller commits)."""
    if max_age <= 0:
        return False
    if _young(s.get(ReportSnapshot, snapshot_key(Filters())), now, timedelta(seconds=max_age) / 2):
        return False
    store(s, Filters(), tuple(reports.all_figures(s, Filters(), now)), now)
    return True
