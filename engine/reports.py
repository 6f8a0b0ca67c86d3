"""Dashboard figures (docs/reports.md): each one function over (session, filters), one definition.

Counts and sums are aggregated in the database; medians and percentiles read only the
needed columns (tuples, never ORM objects). Every duration is wall-clock hours: imported
records carry no business calendar, and one clock keeps native and imported figures comparable.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, inspect, select
from sqlalchemy.orm import Session

from catalog.models import RECORD_TYPES
from engine.errors import InvalidInput
from engine.models import Approval, AuditEvent, Group, Request, SatisfactionResponse

#: the age buckets of the backlog, in days: [lower, upper)
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("< 1 day", 0, 1), ("1-7 days", 1, 7), ("7-30 days", 7, 30), ("30-90 days", 30, 90),
    ("≥ 90 days", 90, None))
#: tiers above the first line (BPIC 2013 writes "L2/L3" too)
UPPER_TIERS = ("L2", "L3", "L2/L3")
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


def _where(f: Filters) -> list[Any]:
    cond: list[Any] = []
    if f.since:
        cond.append(Request.created_at >= f.since)
    if f.until:
        cond.append(Request.created_at < f.until)
    if f.kind:
        cond.append(Request.record_type == f.kind)
    if f.item:
        cond.append(Request.item_id == f.item)
    if f.group:
        cond.append(Request.assignment_group_id == f.group)
    if f.priority:
        cond.append(Request.priority == f.priority)
    return cond


def _records(f: Filters) -> Any:
    """The ids of the records matching the filters (a subquery to join on)."""
    return select(Request.id).where(*_where(f)).scalar_subquery()


@dataclass(slots=True)
class Figure:
    """A figure: its title, its table (columns, rows) and what the chart draws."""

    name: str
    title: str
    definition: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    #: "bars" (label, value) from `chart_columns`, or "" for a table only
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


def _week(at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def overview(s: Session, f: Filters) -> Figure:
    fig = Figure("overview", "Overview",
                 "Records matching the filters; the groups they were ever assigned to; the "
                 "median case duration (hours from opened to the last change, updated_at); "
                 "and the records per current state.", ["measure", "value"], chart="")
    n = s.scalar(select(func.count()).where(*_where(f))) or 0
    groups = {g for seq in _group_sequences(s, f).values() for g in seq}
    spans = [_hours(a, b) for a, b in s.execute(
        select(Request.created_at, Request.updated_at).where(*_where(f)))]
    fig.rows = [["records", n], ["groups", len(groups)],
                ["median duration hours", _r(_quantile(spans, .5))]]
    fig.rows += [[f"state {state}", k] for state, k in sorted(s.execute(
        select(Request.state, func.count()).where(*_where(f)).group_by(Request.state)).all())]
    return fig


def volume(s: Session, f: Filters) -> Figure:
    fig = Figure("volume", "Volume per week",
                 "Records opened (created_at) and resolved (resolved_at) per ISO week, of the "
                 "records matching the filters.", ["week", "opened", "resolved"], chart="bars")
    opened: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    for created, res in s.execute(select(Request.created_at, Request.resolved_at).where(*_where(f))):
        opened[_week(created)] += 1
        if res is not None:
            resolved[_week(res)] += 1
    fig.rows = [[w, opened[w], resolved[w]] for w in sorted(opened.keys() | resolved.keys())]
    return fig


def backlog(s: Session, f: Filters, now: datetime) -> Figure:
    fig = Figure("backlog", "Backlog by age",
                 "Records open now (status open, not resolved) by age since opened, in days.",
                 ["age", "open"])
    cond = [*_where(f), Request.status == "open", Request.resolved_at.is_(None)]
    cols = []
    for label, lo, hi in AGE_BUCKETS:
        parts = [Request.created_at <= now - timedelta(days=lo)]
        if hi is not None:
            parts.append(Request.created_at > now - timedelta(days=hi))
        cols.append(func.sum(case((and_(*parts), 1), else_=0)).label(label))
    row = s.execute(select(*cols).where(*cond)).one()
    fig.rows = [[label, int(n or 0)] for (label, _, _), n in zip(AGE_BUCKETS, row, strict=True)]
    return fig


def backlog_by_group(s: Session, f: Filters) -> Figure:
    fig = Figure("backlog_by_group", "Backlog by group",
                 "Records open now (status open, not resolved) by assignment group.",
                 ["group", "open"])
    rows = s.execute(select(Request.assignment_group_id, func.count()).where(
        *_where(f), Request.status == "open", Request.resolved_at.is_(None))
        .group_by(Request.assignment_group_id))
    fig.rows = sorted([[g or "(none)", n] for g, n in rows], key=lambda r: (-r[1], r[0]))
    return fig


def _sla_met() -> Any:
    """1 when met, 0 when missed, NULL when unknown (see sla_compliance)."""
    return case((Request.made_sla.is_(True), 1), (Request.made_sla.is_(False), 0),
                (and_(Request.import_source.is_(None), Request.resolution_due.is_not(None),
                      Request.resolved_at.is_not(None)),
                 case((Request.sla_state == "breached", 0), else_=1)),
                else_=None)


def _sla(s: Session, f: Filters, by: Any, name: str, label: str) -> Figure:
    fig = Figure(name, f"SLA compliance by {label}",
                 "Share of records whose SLA was met. Imported records: their made_sla. Native "
                 "records: resolved ones with a resolution target; met unless the SLA state "
                 "was ever breached. Records with neither are not counted.",
                 [label, "met", "counted", "percent"], chart_columns=(0, 3))
    met = _sla_met()
    rows = s.execute(select(by, func.sum(met), func.count(met)).where(*_where(f))
                     .group_by(by))
    fig.rows = sorted([[k or "(none)", int(m or 0), n, _r(100 * (m or 0) / n)]
                       for k, m, n in rows if n], key=lambda r: r[0])
    return fig


def sla_by_priority(s: Session, f: Filters) -> Figure:
    return _sla(s, f, Request.priority, "sla_by_priority", "priority")


def sla_by_group(s: Session, f: Filters) -> Figure:
    return _sla(s, f, Request.assignment_group_id, "sla_by_group", "group")


def times(s: Session, f: Filters) -> Figure:
    fig = Figure("times", "Time to first response and to resolve (hours)",
                 "Wall-clock hours by priority. First response: responded_at (the first "
                 "agent's claim, comment or state change; for imports the first change of "
                 "state or assignee). Resolve: resolved_at − created_at of resolved records.",
                 ["priority", "responded", "median response", "p90 response", "resolved",
                  "median resolve", "p90 resolve"], chart_columns=(0, 5))
    resp: defaultdict[str, list[float]] = defaultdict(list)
    res: defaultdict[str, list[float]] = defaultdict(list)
    for prio, created, responded, resolved in s.execute(
            select(Request.priority, Request.created_at, Request.responded_at,
                   Request.resolved_at).where(*_where(f))):
        key = prio or "(none)"
        if responded is not None:
            resp[key].append(_hours(created, responded))
        if resolved is not None:
            res[key].append(_hours(created, resolved))
    fig.rows = [[p, len(resp[p]), _r(_quantile(resp[p], .5)), _r(_quantile(resp[p], .9)),
                 len(res[p]), _r(_quantile(res[p], .5)), _r(_quantile(res[p], .9))]
                for p in sorted(resp.keys() | res.keys())]
    return fig


def _cached(s: Session, key: str, f: Filters, compute: Callable[[], Any]) -> Any:
    """One computation per session and filters, shared by the figures that need it (the
    session of one page view or one command: the reports only read)."""
    cache = s.info.setdefault("reports", {})
    if (key, f) not in cache:
        cache[(key, f)] = compute()
    return cache[(key, f)]


def _events(s: Session, f: Filters) -> list[tuple[int, str, dict[str, Any]]]:
    """The submitted and record_changed events of the matching records, in order."""
    return _cached(s, "events", f, lambda: [tuple(row) for row in s.execute(
        select(AuditEvent.request_id, AuditEvent.event, AuditEvent.detail).where(
            AuditEvent.event.in_(("submitted", "record_changed")),
            AuditEvent.request_id.in_(_records(f)))
        .order_by(AuditEvent.request_id, AuditEvent.at, AuditEvent.id))])


def _group_sequences(s: Session, f: Filters) -> dict[int, list[str]]:
    """Per record, its assignment groups in order (from record_changed events)."""
    return _cached(s, "groups", f, lambda: _sequences(s, f))


def _sequences(s: Session, f: Filters) -> dict[int, list[str]]:
    seqs: dict[int, list[str]] = {}
    first = {rid: group for rid, group in s.execute(
        select(Request.id, Request.assignment_group_id).where(*_where(f)))}
    for rid, event, detail in _events(s, f):
        change = (detail.get("changes") or {}).get("assignment_group") \
            if event == "record_changed" else None
        if not change:
            continue
        seq = seqs.setdefault(rid, [change[0]] if change[0] else [])
        if change[1]:
            seq.append(change[1])
    for rid, group in first.items():
        if rid not in seqs:
            seqs[rid] = [group] if group else []
    return seqs


def _ping_pong(seq: list[str]) -> bool:
    """A group recurs after another one: A → B → A."""
    seen: set[str] = set()
    for prev, cur in zip([None, *seq], seq, strict=False):
        if cur != prev and cur in seen:
            return True
        seen.add(cur)
    return False


def reassignments(s: Session, f: Filters) -> Figure:
    fig = Figure("reassignments", "Reassignments",
                 "Per record: reassignments = reassignment_count (imports) or the changes of "
                 "assignment group after the first; ping-pong = a group recurring after "
                 "another in the assignment sequence (A → B → A).",
                 ["measure", "value"], chart="")
    seqs = _group_sequences(s, f)
    counts = {rid: n for rid, n in s.execute(
        select(Request.id, Request.reassignment_count).where(*_where(f)))}
    total = 0
    for rid, seq in seqs.items():
        n = counts.get(rid)
        total += n if n is not None else max(len(seq) - 1, 0)
    records = len(seqs)
    pingpong = sum(_ping_pong(seq) for seq in seqs.values())
    fig.rows = [["records", records], ["reassignments", total],
                ["mean per record", _r(total / records) if records else None],
                ["records with ping-pong", pingpong]]
    return fig


def escalations(s: Session, f: Filters) -> Figure:
    fig = Figure("escalations", "Escalations between tiers",
                 "Records with a change of support tier from L1 to L2 or L3 (record_changed "
                 "events with a tier change), by tier reached; a record counts once per pair.",
                 ["from", "to", "records"], chart_columns=(1, 2))
    pairs: Counter[tuple[str, str]] = Counter()
    seen: set[tuple[int, str, str]] = set()
    for rid, event, detail in _events(s, f):
        if event != "record_changed":
            continue
        old, new = ((detail.get("changes") or {}).get("tier") or (None, None))
        if old == "L1" and new in UPPER_TIERS and (rid, old, new) not in seen:
            seen.add((rid, old, new))
            pairs[(old, new)] += 1
    escalated = len({rid for rid, _, _ in seen})
    fig.rows = [[a, b, n] for (a, b), n in sorted(pairs.items())] + [["L1", "any upper", escalated]]
    return fig


def tiers(s: Session, f: Filters) -> Figure:
    fig = Figure("tiers", "Support-tier combinations",
                 "Records by the set of support tiers they passed through (the tier when "
                 "opened, then each tier change), joined with '+' in sorted order.",
                 ["tiers", "records"])
    seen: defaultdict[int, set[str]] = defaultdict(set)
    for rid, event, detail in _events(s, f):
        if event == "submitted":
            if detail.get("tier"):
                seen[rid].add(detail["tier"])
        else:
            change = (detail.get("changes") or {}).get("tier") or ()
            seen[rid].update(t for t in change if t)
    combos = Counter("+".join(sorted(v)) for v in seen.values() if v)
    fig.rows = [[k, n] for k, n in sorted(combos.items())]
    return fig


def reopen_rate(s: Session, f: Filters) -> Figure:
    fig = Figure("reopen_rate", "Reopen rate",
                 "Of the records resolved at least once (resolved_at set or reopened), the share "
                 "reopened at least once (reopen_count > 0).", ["measure", "value"], chart="")
    ever_resolved = Request.resolved_at.is_not(None) | (Request.reopen_count > 0)
    n, reopened = s.execute(select(func.count(), func.sum(case((Request.reopen_count > 0, 1),
                                                              else_=0)))
                            .where(*_where(f), ever_resolved)).one()
    reopened = int(reopened or 0)
    fig.rows = [["resolved", n], ["reopened", reopened],
                ["percent", _r(100 * reopened / n) if n else None]]
    return fig


def first_contact(s: Session, f: Filters) -> Figure:
    fig = Figure("first_contact", "First-contact resolution",
                 "Of the resolved records, the share resolved with no reassignment (no change "
                 "of assignment group after the first) and never reopened.",
                 ["measure", "value"], chart="")
    seqs = _group_sequences(s, f)
    rows = s.execute(select(Request.id, Request.reassignment_count, Request.reopen_count)
                     .where(*_where(f), Request.resolved_at.is_not(None))).all()
    fcr = 0
    for rid, count, reopens in rows:
        n = count if count is not None else max(len(seqs.get(rid, [])) - 1, 0)
        fcr += int(n == 0 and not reopens)
    fig.rows = [["resolved", len(rows)], ["first contact", fcr],
                ["percent", _r(100 * fcr / len(rows)) if rows else None]]
    return fig


def _approvals(s: Session, f: Filters, by: Any, name: str, label: str) -> Figure:
    fig = Figure(name, f"Time to approve by {label} (hours)",
                 "Approvals decided 'approved': median wall-clock hours from created_at to "
                 "decided_at, of the records matching the filters.",
                 [label, "approved", "median hours"], chart_columns=(0, 2))
    hours: defaultdict[str, list[float]] = defaultdict(list)
    for key, created, decided in s.execute(
            select(by, Approval.created_at, Approval.decided_at)
            .join(Request, Request.id == Approval.request_id)
            .where(*_where(f), Approval.decision == "approved", Approval.decided_at.is_not(None))):
        hours[key].append(_hours(created, decided))
    fig.rows = [[k, len(v), _r(_quantile(v, .5))] for k, v in sorted(hours.items())]
    return fig


def approvals_by_item(s: Session, f: Filters) -> Figure:
    return _approvals(s, f, Request.item_id, "approvals_by_item", "item")


def approvals_by_approver(s: Session, f: Filters) -> Figure:
    return _approvals(s, f, func.coalesce(Approval.decided_by_id, Approval.approver_id),
                      "approvals_by_approver", "approver")


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


def satisfaction(s: Session, f: Filters) -> Figure:
    fig = Figure("satisfaction", "Satisfaction",
                 "Answered satisfaction surveys (score 1-5) of the records matching the "
                 "filters: how many gave each score; the last row is the average.",
                 ["score", "responses"])
    if not inspect(s.connection()).has_table(SatisfactionResponse.__tablename__):
        return fig
    rows: dict[int, int] = {int(score or 0): n for score, n in s.execute(
        select(SatisfactionResponse.score, func.count())
        .where(SatisfactionResponse.request_id.in_(_records(f)),
               SatisfactionResponse.score.is_not(None))
        .group_by(SatisfactionResponse.score))}
    n = sum(rows.values())
    fig.rows = [[str(k), rows.get(k, 0)] for k in range(1, 6)]
    fig.rows.append(["average", _r(sum(k * v for k, v in rows.items()) / n) if n else None])
    return fig


#: every figure, in the order of the page: name → (function, needs `now`)
FIGURES: dict[str, Callable[..., Figure]] = {
    "overview": overview, "volume": volume, "backlog": backlog, "backlog_by_group": backlog_by_group,
    "sla_by_priority": sla_by_priority, "sla_by_group": sla_by_group, "times": times,
    "reassignments": reassignments, "escalations": escalations, "tiers": tiers,
    "reopen_rate": reopen_rate,
    "first_contact": first_contact, "approvals_by_item": approvals_by_item,
    "approvals_by_approver": approvals_by_approver, "deflections": deflections,
    "satisfaction": satisfaction,
}
_NEEDS_NOW = {"backlog", "deflections"}


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
    stmt: Select[Any] = select(*(getattr(Request, c) for c in RECORD_COLUMNS)).where(
        *_where(f)).order_by(Request.id).execution_options(yield_per=1000)
    yield from s.execute(stmt)
