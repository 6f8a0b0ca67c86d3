"""Dashboard figures (docs/reports.md): each one function over (session, filters), one definition.

Counts and sums are aggregated in the database; medians and percentiles read only the
needed columns (tuples, never ORM objects). Every duration is wall-clock hours: imported
records carry no business calendar, and one clock keeps native and imported figures comparable.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    inspect,
    literal,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from catalog.models import RECORD_TYPES
from engine import record_figures
from engine.errors import InvalidInput
from engine.models import Approval, Group, RecordFact, Request, SatisfactionResponse

#: the age buckets of the backlog, in days: [lower, upper)
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("< 1 day", 0, 1), ("1-7 days", 1, 7), ("7-30 days", 7, 30), ("30-90 days", 30, 90),
    ("≥ 90 days", 90, None))
FILTERS = ("from", "to", "kind", "item", "group", "priority")


@dataclass(frozen=True, slots=True)
class Filters:
    """Which records a figure counts: opened in [since, until), of a kind, item, group, priority."""

    since: datetime | None = None
    until: datetime | None = None
    kind: str | None = None
    item: str | None = None
    group: str | None = None
    priority: str | None = None

    def query(self) -> dict[str, str]:
        """The filters as query-string values (for links and CSV exports)."""
        out = {"from": self.since.date().isoformat() if self.since else None,
               "to": (self.until - timedelta(days=1)).date().isoformat() if self.until else None,
               "kind": self.kind, "item": self.item, "group": self.group, "priority": self.priority}
        return {k: v for k, v in out.items() if v}


def parse_filters(session: Session, raw: Mapping[str, str | None],
                  priorities: tuple[str, ...] = (), items: tuple[str, ...] = ()) -> Filters:
    """Filters from text (a query string, CLI options); `to` is inclusive (a whole day).

    Raises InvalidInput naming each bad filter. An item or priority is known when the catalog
    names it (`items`, `priorities`) or some record carries it (imported ones included)."""
    errors: dict[str, list[str]] = {}
    values = {k: (raw.get(k) or "").strip() or None for k in FILTERS}
    days: dict[str, date] = {}
    for key in ("from", "to"):
        text = values[key]
        if text is None:
            continue
        try:
            days[key] = date.fromisoformat(text)
        except ValueError:
            errors[key] = [f"{text[:40]!r} is not a date (YYYY-MM-DD)."]
    if "from" in days and "to" in days and days["to"] < days["from"]:
        errors["to"] = ["The end date is before the start date."]
    kind, item, group, priority = values["kind"], values["item"], values["group"], values["priority"]
    if kind is not None and kind not in RECORD_TYPES:
        errors["kind"] = [f"Unknown kind {kind[:40]!r}; one of {', '.join(RECORD_TYPES)}."]
    if group is not None and session.get(Group, group[:64]) is None:
        errors["group"] = [f"Unknown group {group[:40]!r}."]
    if item is not None and item not in items and session.scalar(
            select(Request.id).where(Request.item_id == item[:64]).limit(1)) is None:
        errors["item"] = [f"Unknown item {item[:40]!r}."]
    if priority is not None and priority not in priorities and session.scalar(
            select(Request.id).where(Request.priority == priority[:32]).limit(1)) is None:
        errors["priority"] = [f"Unknown priority {priority[:40]!r}."]
    if errors:
        raise InvalidInput("These report filters are wrong", errors)

    def moment(d: date | None) -> datetime | None:
        return datetime(d.year, d.month, d.day, tzinfo=UTC) if d else None

    until = days.get("to")
    return Filters(moment(days.get("from")), moment(until + timedelta(days=1)) if until else None,
                   kind, item, group, priority)


def _plain(column: Any) -> Any:
    """The column as an expression SQLite cannot match to an index (`coalesce(c, c)`: the same
    values, NULL included). The facts table is narrow: one pass over it reads any share of
    the records faster than an index walk with a table lookup per entry."""
    return func.coalesce(column, column)


def _where(f: Filters) -> list[Any]:
    r = RecordFact
    cond: list[Any] = []
    if f.since:
        cond.append(_plain(r.opened_at) >= f.since)
    if f.until:
        cond.append(_plain(r.opened_at) < f.until)
    for column, value in ((r.record_type, f.kind), (r.item_id, f.item), (r.group_id, f.group),
                          (r.priority, f.priority)):
        if value:
            cond.append(_plain(column) == value)
    return cond


def _of_matching(request_id: Any, f: Filters) -> list[Any]:
    """Conditions on rows of a smaller table (approvals, surveys) whose record matches the
    filters: each row looks up its own facts row, rather than the facts driving the join."""
    if f == Filters():
        return []
    return [exists().where(RecordFact.request_id == request_id, *_where(f))]


def _key(column: Any, f: Filters) -> Any:
    """A column to group by: itself for every record (SQLite reads a narrow index in order),
    `_plain` when filtered (one pass over the matching rows, grouped)."""
    return column if f == Filters() else _plain(column)


@dataclass(slots=True)
class Figure:
    """A figure: its title, its table (columns, rows) and what the chart draws."""

    name: str
    title: str
    definition: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    #: "bars" (label, value) from `chart_columns`; "columns": every column after the first
    #: is a series over the periods of the first (web.charts); "" for a table only
    chart: str = "bars"
    chart_columns: tuple[int, int] = (0, 1)

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "definition": self.definition, "columns": self.columns,
                "rows": self.rows}


def _hours(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def _quantile(values: list[float], q: float) -> float | None:
    """The q-quantile by linear interpolation (q=0.5 is statistics.median)."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _week(at: datetime | date) -> str:
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def _cached(s: Session, key: str, f: Filters, compute: Callable[[], Any]) -> Any:
    """One computation per session and filters, shared by the figures that need it (the
    session of one page view or one command: the reports only read)."""
    cache = s.info.setdefault("reports", {})
    if (key, f) not in cache:
        cache[(key, f)] = compute()
    return cache[(key, f)]


#: the durations whose quantiles the figures show (by priority, or over every record)
DURATIONS = (RecordFact.respond_h, RecordFact.resolve_h, RecordFact.duration_h)
#: the quantiles the figures show, in hundredths
PERCENTS = (50, 90)


def _plain_rows(s: Session, stmt: Executable) -> list[tuple[Any, ...]]:
    """The DBAPI cursor's own tuples, without result rows: for tens of thousands of plain
    values (text, numbers; no type to convert) several times faster."""
    result = s.connection().execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _quantiles(s: Session, f: Filters, column: Any, by: Any | None,
               percents: tuple[int, ...] = PERCENTS) -> dict[Any, tuple[int, list[float | None]]]:
    """Per value of `by` (the priority, or None: one key, None): how many records have
    `column` (one of DURATIONS), and its
    quantiles by linear interpolation (as `_quantile`). PostgreSQL computes them
    (percentile_cont interpolates the same way); from SQLite only the values at each
    quantile's two neighbouring ranks come back."""
    key = (by if by is not None else literal(None)).label("k")
    where = [*_where(f), column.is_not(None)]
    group = [by] if by is not None else []
    if s.get_bind().dialect.name == "postgresql":
        cols = [func.percentile_cont(p / 100).within_group(column) for p in percents]
        return {k: (n, [None if v is None else float(v) for v in values])
                for k, n, *values in s.execute(
                    select(key, func.count(), *cols).where(*where).group_by(*group))}
    out: dict[Any, tuple[int, list[float | None]]] = {}
    if replace(f, priority=None) != Filters():
        # SQLite, narrowed by more than a priority: an index walk would pass every entry the
        # filters refuse, so the matching durations are read (once for all) and sorted here
        rows = _cached(s, "durations", f, lambda: _plain_rows(
            s, select(RecordFact.priority, *DURATIONS).where(*_where(f))))
        at = 1 + [d.key for d in DURATIONS].index(column.key)
        found: defaultdict[Any, list[float]] = defaultdict(list)
        for row in rows:
            if row[at] is not None:
                found[row[0] if by is not None else None].append(row[at])
        return {k: (len(v), [_quantile(v, p / 100) for p in percents]) for k, v in found.items()}
    # SQLite, every record or one priority: the count per key, then the two values around each
    # quantile's rank, each read by walking an index on (priority, column, …) (ix_record_facts_resolve, …)
    for k, n in s.execute(select(key, func.count()).where(*where).group_by(*group)):
        if not n:
            continue
        same = [] if by is None else [by.is_(None) if k is None else by == k]
        values: list[float | None] = []
        for p in percents:
            pos = (n - 1) * p / 100
            lo = int(pos)
            pair = s.scalars(select(column).where(*where, *same).order_by(column)
                             .offset(lo).limit(2)).all()
            a = pair[0]
            b = pair[1] if len(pair) > 1 else a
            values.append(a + (b - a) * (pos - lo))
        out[k] = (n, values)
    return out


def _totals(s: Session, f: Filters, now: datetime) -> dict[str, int]:
    """The counts several figures share: one pass over the matching records, then the open
    ones by age (an index on (open, opened_at) reads only those)."""
    def count(*cond: Any) -> Any:
        return func.sum(case((and_(*cond), 1), else_=0))

    def ones(column: Any) -> Any:
        return func.sum(cast(column, Integer))

    def compute() -> dict[str, int]:
        r = RecordFact
        cols = {"records": func.count(), "reassignments": func.sum(r.reassignments),
                "ping_pong": ones(r.ping_pong), "ever_resolved": ones(r.ever_resolved),
                # reopened implies resolved once (reopen_count > 0)
                "reopened": ones(r.reopened), "resolved": func.count(r.resolved_day),
                "first_contact": count(r.resolved_day.is_not(None), r.reassignments == 0,
                                       r.reopened.is_(False))}
        ages = {}
        for label, lo, hi in AGE_BUCKETS:
            parts = [r.opened_at <= now - timedelta(days=lo)]
            if hi is not None:
                parts.append(r.opened_at > now - timedelta(days=hi))
            ages[label] = count(*parts)
        row = s.execute(select(*(c.label(k) for k, c in cols.items())).where(*_where(f))).one()
        aged = s.execute(select(*(c.label(k) for k, c in ages.items()))
                         .where(*_where(f), r.open.is_(True))).one()
        return {k: int(v or 0) for k, v in (*row._mapping.items(), *aged._mapping.items())}

    return _cached(s, f"totals@{now.isoformat()}", f, compute)


def _by_group(s: Session, f: Filters) -> list[tuple[str | None, int, int, int]]:
    """Per assignment group now: open records, SLAs met, SLAs counted."""
    r = RecordFact
    key = _key(r.group_id, f)
    return _cached(s, "by_group", f, lambda: [tuple(row) for row in s.execute(
        select(key, func.sum(case((r.open.is_(True), 1), else_=0)), func.sum(r.sla_met),
               func.count(r.sla_met)).where(*_where(f)).group_by(key))])


def overview(s: Session, f: Filters) -> Figure:
    fig = Figure("overview", "Overview",
                 "Records matching the filters; the groups they were ever assigned to; the "
                 "median case duration (hours from opened to the last change, updated_at); "
                 "and the records per current state.", ["measure", "value"], chart="")
    state = _key(RecordFact.state, f)
    states = s.execute(select(state, func.count()).where(*_where(f)).group_by(state)).all()
    key = _key(RecordFact.groups, f)
    groups = {g for (path,) in s.execute(select(key).where(*_where(f), key.is_not(None)).distinct())
        for g in record_figures.groups_of(path, None)}
    _, (median, _p90) = _quantiles(s, f, RecordFact.duration_h, None).get(None, (0, [None, None]))
    fig.rows = [["records", sum(n for _, n in states)], ["groups", len(groups)],
                ["median duration hours", _r(median)]]
    fig.rows += [[f"state {state}", k] for state, k in sorted(states)]
    return fig


def volume(s: Session, f: Filters) -> Figure:
    fig = Figure("volume", "Volume per week",
                 "Records opened (created_at) and resolved (resolved_at) per ISO week, of the "
                 "records matching the filters.", ["week", "opened", "resolved"], chart="columns")
    opened: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    for counter, column in ((opened, RecordFact.opened_day), (resolved, RecordFact.resolved_day)):
        key = _key(column, f)
        for day, n in s.execute(select(key, func.count()).where(*_where(f), key.is_not(None))
                                .group_by(key)):
            if day is not None:
                counter[_week(date.fromordinal(day))] += n
    fig.rows = [[w, opened[w], resolved[w]] for w in sorted(opened.keys() | resolved.keys())]
    return fig


def backlog(s: Session, f: Filters, now: datetime) -> Figure:
    fig = Figure("backlog", "Backlog by age",
                 "Records open now (status open, not resolved) by age since opened, in days.",
                 ["age", "open"])
    totals = _totals(s, f, now)
    fig.rows = [[label, totals[label]] for label, _, _ in AGE_BUCKETS]
    return fig


def backlog_by_group(s: Session, f: Filters) -> Figure:
    fig = Figure("backlog_by_group", "Backlog by group",
                 "Records open now (status open, not resolved) by assignment group.",
                 ["group", "open"])
    fig.rows = sorted([[g or "(none)", int(n)] for g, n, _, _ in _by_group(s, f) if n],
                      key=lambda r: (-r[1], r[0]))
    return fig


_SLA_DEFINITION = ("Share of records whose SLA was met. Imported records: their made_sla. "
                   "Native records: resolved ones with a resolution target; met unless the SLA "
                   "state was ever breached. Records with neither are not counted.")


def _sla_rows(rows: Iterable[tuple[Any, Any, Any]]) -> list[list[Any]]:
    return sorted([[k or "(none)", int(m or 0), n, _r(100 * (m or 0) / n)]
                   for k, m, n in rows if n], key=lambda r: r[0])


def sla_by_priority(s: Session, f: Filters) -> Figure:
    fig = Figure("sla_by_priority", "SLA compliance by priority", _SLA_DEFINITION,
                 ["priority", "met", "counted", "percent"], chart_columns=(0, 3))
    key = _key(RecordFact.priority, f)
    fig.rows = _sla_rows(s.execute(
        select(key, func.sum(RecordFact.sla_met), func.count(RecordFact.sla_met))
        .where(*_where(f)).group_by(key)))
    return fig


def sla_by_group(s: Session, f: Filters) -> Figure:
    fig = Figure("sla_by_group", "SLA compliance by group", _SLA_DEFINITION,
                 ["group", "met", "counted", "percent"], chart_columns=(0, 3))
    fig.rows = _sla_rows((g, m, n) for g, _, m, n in _by_group(s, f))
    return fig


def times(s: Session, f: Filters) -> Figure:
    fig = Figure("times", "Time to first response and to resolve (hours)",
                 "Wall-clock hours by priority. First response: responded_at (the first "
                 "agent's claim, comment or state change; for imports the first change of "
                 "state or assignee). Resolve: resolved_at − created_at of resolved records.",
                 ["priority", "responded", "median response", "p90 response", "resolved",
                  "median resolve", "p90 resolve"], chart_columns=(0, 5))
    none = (0, [None, None])
    resp = _quantiles(s, f, RecordFact.respond_h, RecordFact.priority)
    res = _quantiles(s, f, RecordFact.resolve_h, RecordFact.priority)
    rows = []
    for p in resp.keys() | res.keys():
        (n1, (m1, p1)), (n2, (m2, p2)) = resp.get(p, none), res.get(p, none)
        rows.append([p or "(none)", n1, _r(m1), _r(p1), n2, _r(m2), _r(p2)])
    fig.rows = sorted(rows, key=lambda r: r[0])
    return fig


def reassignments(s: Session, f: Filters, now: datetime) -> Figure:
    fig = Figure("reassignments", "Reassignments",
                 "Per record: reassignments = reassignment_count (imports) or the changes of "
                 "assignment group after the first; ping-pong = a group recurring after "
                 "another in the assignment sequence (A → B → A).",
                 ["measure", "value"], chart="")
    t = _totals(s, f, now)
    records = t["records"]
    fig.rows = [["records", records], ["reassignments", t["reassignments"]],
                ["mean per record", _r(t["reassignments"] / records) if records else None],
                ["records with ping-pong", t["ping_pong"]]]
    return fig


def _tier_paths(s: Session, f: Filters) -> list[tuple[str | None, str | None, int]]:
    """Records by (tiers passed through, upper tiers reached from L1), of those with tiers:
    one pass shared by `escalations` and `tiers`."""
    seen, reached = _key(RecordFact.tiers_seen, f), _key(RecordFact.escalated_to, f)
    return _cached(s, "tiers", f, lambda: [(a, b, n) for a, b, n in s.execute(
        select(seen, reached, func.count()).where(*_where(f), seen.is_not(None))
        .group_by(seen, reached))])


def escalations(s: Session, f: Filters) -> Figure:
    fig = Figure("escalations", "Escalations between tiers",
                 "Records with a change of support tier from L1 to L2 or L3 (record_changed "
                 "events with a tier change), by tier reached; a record counts once per pair.",
                 ["from", "to", "records"], chart_columns=(1, 2))
    pairs: Counter[str] = Counter()
    escalated = 0
    for _, reached, n in _tier_paths(s, f):
        if reached is not None:
            escalated += n
            for tier in reached.split(record_figures.ESCALATED_SEP):
                pairs[tier] += n
    fig.rows = [["L1", t, n] for t, n in sorted(pairs.items())] + [["L1", "any upper", escalated]]
    return fig


def tiers(s: Session, f: Filters) -> Figure:
    fig = Figure("tiers", "Support-tier combinations",
                 "Records by the set of support tiers they passed through (the tier when "
                 "opened, then each tier change), joined with '+' in sorted order.",
                 ["tiers", "records"])
    combos: Counter[str] = Counter()
    for seen, _, n in _tier_paths(s, f):
        if seen is not None:
            combos[seen] += n
    fig.rows = [[k, n] for k, n in sorted(combos.items())]
    return fig


def reopen_rate(s: Session, f: Filters, now: datetime) -> Figure:
    fig = Figure("reopen_rate", "Reopen rate",
                 "Of the records resolved at least once (resolved_at set or reopened), the share "
                 "reopened at least once (reopen_count > 0).", ["measure", "value"], chart="")
    t = _totals(s, f, now)
    n, reopened = t["ever_resolved"], t["reopened"]
    fig.rows = [["resolved", n], ["reopened", reopened],
                ["percent", _r(100 * reopened / n) if n else None]]
    return fig


def first_contact(s: Session, f: Filters, now: datetime) -> Figure:
    fig = Figure("first_contact", "First-contact resolution",
                 "Of the resolved records, the share resolved with no reassignment (no change "
                 "of assignment group after the first) and never reopened.",
                 ["measure", "value"], chart="")
    t = _totals(s, f, now)
    n, fcr = t["resolved"], t["first_contact"]
    fig.rows = [["resolved", n], ["first contact", fcr],
                ["percent", _r(100 * fcr / n) if n else None]]
    return fig


#: the two groupings of the approval figures: figure name → (label, key column)
_APPROVAL_KEYS: dict[str, tuple[str, Any]] = {
    "approvals_by_item": ("item", RecordFact.item_id),
    "approvals_by_approver": ("approver", func.coalesce(Approval.decided_by_id,
                                                        Approval.approver_id)),
}


def _approval_medians(s: Session, f: Filters) -> dict[str, dict[str, tuple[int, float | None]]]:
    """Per approval figure, per key: approvals decided 'approved' and their median hours (the
    item read from the narrow facts row, not the wide requests table).

    PostgreSQL: one pass grouped both ways (grouping sets), percentile_cont over the hours.
    SQLite: per key, the count and the one or two approvals at the median's ranks (a window
    ordered by julianday, to the millisecond); their hours are computed here, to the
    microsecond, and interpolated as `_quantile` does."""
    a = Approval
    # the facts row is joined for the item anyway: the filters apply to it directly
    where = [a.decision == "approved", a.decided_at.is_not(None), *_where(f)]

    def compute() -> dict[str, dict[str, tuple[int, float | None]]]:
        out: dict[str, dict[str, tuple[int, float | None]]] = {name: {} for name in _APPROVAL_KEYS}
        (_, item), (_, approver) = _APPROVAL_KEYS.values()
        if s.get_bind().dialect.name == "postgresql":
            hours = cast(func.extract("epoch", a.decided_at - a.created_at), Float) / 3600
            stmt = (select(func.grouping(item), item, approver, func.count(),
                           func.percentile_cont(0.5).within_group(hours))
                    .join(RecordFact, RecordFact.request_id == a.request_id).where(*where)
                    .group_by(func.grouping_sets(tuple_(item), tuple_(approver))))
            for by_approver, i, p, n, median in s.execute(stmt):
                name = "approvals_by_approver" if by_approver else "approvals_by_item"
                out[name][p if by_approver else i] = (n, None if median is None else float(median))
            return out
        order = func.julianday(a.decided_at) - func.julianday(a.created_at)
        for name, (_, key) in _APPROVAL_KEYS.items():
            ranked = (select(key.label("k"), a.created_at, a.decided_at,
                             (func.row_number().over(partition_by=key, order_by=order) - 1)
                             .label("rank"),
                             func.count().over(partition_by=key).label("n"))
                      .join(RecordFact, RecordFact.request_id == a.request_id).where(*where)
                      .subquery())
            picked: defaultdict[str, list[float]] = defaultdict(list)
            counts: dict[str, int] = {}
            for k, created, decided, _rank, n in s.execute(
                    select(ranked).where(ranked.c.rank.in_([(ranked.c.n - 1) // 2, ranked.c.n // 2]))
                    .order_by(ranked.c.k, ranked.c.rank)):
                picked[k].append(_hours(created, decided))
                counts[k] = n
            for k, values in picked.items():
                n = counts[k]
                pos = (n - 1) * .5
                lo, hi = values[0], values[-1]
                out[name][k] = (n, lo + (hi - lo) * (pos - int(pos)))
        return out

    return _cached(s, "approvals", f, compute)


def _approvals(s: Session, f: Filters, name: str) -> Figure:
    label, _ = _APPROVAL_KEYS[name]
    fig = Figure(name, f"Time to approve by {label} (hours)",
                 "Approvals decided 'approved': median wall-clock hours from created_at to "
                 "decided_at, of the records matching the filters.",
                 [label, "approved", "median hours"], chart_columns=(0, 2))
    fig.rows = [[k, n, _r(median)] for k, (n, median) in
                sorted(_approval_medians(s, f)[name].items())]
    return fig


def approvals_by_item(s: Session, f: Filters) -> Figure:
    return _approvals(s, f, "approvals_by_item")


def approvals_by_approver(s: Session, f: Filters) -> Figure:
    return _approvals(s, f, "approvals_by_approver")


def deflections(s: Session, f: Filters, now: datetime) -> Figure:
    from engine.knowledge import deflections as count

    fig = Figure("deflections", "Deflections",
                 "engine.knowledge.deflections over [from, to] (default: the last 90 days): "
                 "article reads on an item's form, and those not followed by an order of it.",
                 ["item", "article", "views", "deflected"], chart_columns=(1, 3))
    since = f.since or now - timedelta(days=90)
    until = min(f.until or now, now)
    fig.rows = [[d.item_id, d.article_id, d.views, d.deflected]
                for d in count(s, since, until) if not f.item or d.item_id == f.item]
    return fig


def _surveys(f: Filters, *columns: Any) -> Select[Any]:
    """The answered surveys of the matching records."""
    return (select(*columns).select_from(SatisfactionResponse)
            .where(SatisfactionResponse.score.is_not(None),
                   *_of_matching(SatisfactionResponse.request_id, f)))


def satisfaction(s: Session, f: Filters) -> Figure:
    fig = Figure("satisfaction", "Satisfaction",
                 "Answered satisfaction surveys (score 1-5) of the records matching the "
                 "filters: how many gave each score; the last row is the average.",
                 ["score", "responses"])
    if not inspect(s.connection()).has_table(SatisfactionResponse.__tablename__):
        return fig
    rows: dict[int, int] = {int(score or 0): n for score, n in s.execute(
        _surveys(f, SatisfactionResponse.score, func.count()).group_by(SatisfactionResponse.score))}
    n = sum(rows.values())
    fig.rows = [[str(k), rows.get(k, 0)] for k in range(1, 6)]
    fig.rows.append(["average", _r(sum(k * v for k, v in rows.items()) / n) if n else None])
    return fig


def _satisfaction_by(s: Session, f: Filters, by: Any, name: str, label: str) -> Figure:
    fig = Figure(name, f"Satisfaction by {label}",
                 f"Answered satisfaction surveys of the records matching the filters, by the "
                 f"record's {label} now: responses and the average score (1-5).",
                 [label, "responses", "average"], chart_columns=(0, 2))
    if not inspect(s.connection()).has_table(SatisfactionResponse.__tablename__):
        return fig
    # the record's group, agent or item looked up per survey (few rows), never a join that
    # could read every record first
    key = select(by).where(Request.id == SatisfactionResponse.request_id).scalar_subquery()
    rows = s.execute(_surveys(f, key.label("k"), func.count(), func.avg(SatisfactionResponse.score))
                     .group_by(literal_column("k")))
    fig.rows = sorted([[k or "(none)", n, _r(float(avg))] for k, n, avg in rows],
                      key=lambda r: r[0])
    return fig


def satisfaction_by_group(s: Session, f: Filters) -> Figure:
    return _satisfaction_by(s, f, Request.assignment_group_id, "satisfaction_by_group", "group")


def satisfaction_by_agent(s: Session, f: Filters) -> Figure:
    return _satisfaction_by(s, f, Request.assignee_id, "satisfaction_by_agent", "agent")


def satisfaction_by_item(s: Session, f: Filters) -> Figure:
    return _satisfaction_by(s, f, Request.item_id, "satisfaction_by_item", "item")


#: every figure, in the order of the page: name → (function, needs `now`)
FIGURES: dict[str, Callable[..., Figure]] = {
    "overview": overview, "volume": volume, "backlog": backlog, "backlog_by_group": backlog_by_group,
    "sla_by_priority": sla_by_priority, "sla_by_group": sla_by_group, "times": times,
    "reassignments": reassignments, "escalations": escalations, "tiers": tiers,
    "reopen_rate": reopen_rate,
    "first_contact": first_contact, "approvals_by_item": approvals_by_item,
    "approvals_by_approver": approvals_by_approver, "deflections": deflections,
    "satisfaction": satisfaction, "satisfaction_by_group": satisfaction_by_group,
    "satisfaction_by_agent": satisfaction_by_agent, "satisfaction_by_item": satisfaction_by_item,
}
_NEEDS_NOW = {"backlog", "deflections", "reassignments", "reopen_rate", "first_contact"}


def figure(s: Session, name: str, f: Filters, now: datetime) -> Figure:
    fn = FIGURES[name]
    return fn(s, f, now) if name in _NEEDS_NOW else fn(s, f)


def all_figures(s: Session, f: Filters, now: datetime) -> list[Figure]:
    return [figure(s, name, f, now) for name in FIGURES]


RECORD_COLUMNS = ("number", "record_type", "item_id", "priority", "state", "status",
                  "assignment_group_id", "assignee_id", "created_at", "responded_at",
                  "resolved_at", "closed_at", "sla_state", "made_sla", "reassignment_count",
                  "reopen_count", "support_tier", "import_source")


def records(s: Session, f: Filters) -> Iterator[tuple[Any, ...]]:
    """Every record matching the filters, by id, streamed (server-side cursor, batches of 1000)."""
    stmt: Select[Any] = select(*(getattr(Request, c) for c in RECORD_COLUMNS)).join(
        RecordFact, RecordFact.request_id == Request.id).where(
        *_where(f)).order_by(Request.id).execution_options(yield_per=1000)
    yield from s.execute(stmt)
