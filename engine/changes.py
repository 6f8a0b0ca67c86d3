"""Change records: type, risk, planned window and affected configuration items; the change
calendar with its conflicts and freezes; the review an emergency change cannot skip.

`stamp_change` fills a new change's data from its item's `change:` block (catalog-format
§9b); `Changes` is a mixin of `RequestService` (agents edit the window and the CIs);
`calendar` and `warnings_of` are reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, exists, not_, or_, select
from sqlalchemy.orm import Session, aliased

from catalog.catalog import Catalog
from catalog.fields import parse_date
from catalog.models import CatalogItem, Freeze, PlannedTime
from catalog.workflow import StateKind, Workflow
from engine import permissions
from engine.change_risk import evaluate_risk
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.inputs import fresh
from engine.models import Asset, AuditEvent, Change, ChangeCI, Request, WorkflowVersion
from engine.records import can_log_for_callers
from engine.unit import UnitOfWork, UnitRunner, audit, touch
from engine.versions import workflow_by_id

_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$", re.ASCII)
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}$", re.ASCII)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$", re.ASCII)
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$", re.ASCII)
#: outcomes of changes that never happened: not on the calendar
NOT_HAPPENING = ("rejected", "cancelled")
END_AFTER_START = "The planned end must be after the planned start."
MAX_CIS = 50


# ---------------------------------------------------------------- at submit

def stamp_change(unit: UnitOfWork, item: CatalogItem, answers: Mapping[str, Any], req: Request,
                 requester: Mapping[str, Any]) -> None:
    """Store a new change record's type, risk, planned window and CIs (after its flush)."""
    spec = item.change
    if spec is None:
        return
    zone = ZoneInfo(unit.catalog.settings.time_zone)
    start = end = None
    if spec.planned_start is not None and spec.planned_end is not None:
        start = _moment(spec.planned_start, answers, zone, end=False)
        end = _moment(spec.planned_end, answers, zone, end=True)
        if start is not None and end is not None and end <= start:
            where = spec.planned_end.time_field or spec.planned_end.date_field
            raise InvalidInput(f"{item.id}: the planned end is not after the planned start",
                               {where: [END_AFTER_START]})
    risk = evaluate_risk(unit, item, answers, requester)
    s = unit.session
    s.add(Change(request_id=req.id, change_type=spec.type, risk=risk, planned_start=start,
                 planned_end=end))
    ids = {int(v) for name in spec.affected
           if isinstance(v := answers.get(name), str) and v.isdigit()}
    s.add_all(ChangeCI(request_id=req.id, asset_id=i) for i in sorted(ids))
    s.flush()


def _moment(planned: PlannedTime, answers: Mapping[str, Any], zone: ZoneInfo,
            end: bool) -> datetime | None:
    day = parse_date(answers.get(planned.date_field))
    if day is None:
        return None
    text = answers.get(planned.time_field) if planned.time_field else None
    if text:
        m = _TIME.match(text) if isinstance(text, str) else None
        if m is None:
            raise InvalidInput(f"{planned.time_field} is not a time",
                               {str(planned.time_field): ["Must be a time (HH:MM)."]})
        local = datetime.combine(day, time(int(m.group(1)), int(m.group(2))), zone)
    else:  # a whole day: from its start, to the start of the next
        local = datetime.combine(day + timedelta(days=1) if end else day, time(0), zone)
    return local.astimezone(UTC)


# ---------------------------------------------------------------- the calendar

@dataclass(frozen=True, slots=True)
class Period:
    """The calendar's visible range: [start, end) in UTC, and its days in the desk's zone."""

    kind: str               # month | week
    key: str                # 2026-12 | 2026-W49
    first: date
    last: date
    start: datetime
    end: datetime
    previous: str
    next: str


def period(month: str | None, week: str | None, zone_name: str, today: date) -> Period:
    """The month (`YYYY-MM`) or ISO week (`YYYY-Www`) asked for, else this month."""
    zone = ZoneInfo(zone_name)
    if month is not None and week is not None:
        raise InvalidInput("give month or week, not both",
                           {"week": ["Give a month or a week, not both."]})
    if week is not None:
        m = _WEEK.match(week) if isinstance(week, str) else None
        try:
            first = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1) if m else None
        except ValueError:
            first = None
        if first is None or not 1900 <= first.year <= 9998:
            raise InvalidInput(f"bad week {week}",
                               {"week": [f"{_shown(week)} is not a week (YYYY-Www, e.g. 2026-W49)."]})
        last = first + timedelta(days=6)
        before, after = first - timedelta(days=7), first + timedelta(days=7)
        return Period("week", week, first, last, _utc(first, zone), _utc(last + timedelta(days=1), zone),
                      _week_key(before), _week_key(after))
    if month is None:
        first = today.replace(day=1)
    else:
        m = _MONTH.match(month) if isinstance(month, str) else None
        if m is None or not 1 <= int(m.group(2)) <= 12 or not 1900 <= int(m.group(1)) <= 9998:
            raise InvalidInput(f"bad month {month}",
                               {"month": [f"{_shown(month)} is not a month (YYYY-MM, e.g. 2026-12)."]})
        first = date(int(m.group(1)), int(m.group(2)), 1)
    following = (first + timedelta(days=32)).replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    return Period("month", first.strftime("%Y-%m"), first, following - timedelta(days=1),
                  _utc(first, zone), _utc(following, zone), previous.strftime("%Y-%m"),
                  following.strftime("%Y-%m"))


def _utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "…"


@dataclass(slots=True)
class Scheduled:
    """One change on the calendar, with what it is flagged for."""

    id: int
    number: str
    title: str
    change_type: str
    risk: str | None
    state: str
    state_label: str
    status: str
    outcome: str | None
    start: datetime
    end: datetime
    awaiting_approval: bool
    cis: list[tuple[int, str]] = field(default_factory=list)
    #: numbers of changes whose window overlaps this one on a shared CI
    conflicts: list[str] = field(default_factory=list)
    freezes: list[str] = field(default_factory=list)


def calendar_query(start: datetime, end: datetime) -> Select:  # type: ignore[type-arg]
    """The changes whose planned window overlaps [start, end) and that may still happen or did,
    a row per change and CI it affects (one with no CI for a change without); by start."""
    return _scheduled(Change.planned_start < end, Change.planned_end > start,
                      not_(and_(Request.status == "closed", Request.outcome.in_(NOT_HAPPENING))))


def _scheduled(*where: Any) -> Select:  # type: ignore[type-arg]
    # one statement for the changes, their workflow versions and their CIs: on a month of
    # 400 changes a statement per version and one for the CIs (400 ids bound) cost more than
    # the changes themselves, most of all on PostgreSQL
    return (select(Request.id, Request.number, Request.title, Request.state, Request.status,
                   Request.outcome, Request.workflow_version_id, WorkflowVersion.version,
                   Change.change_type, Change.risk, Change.planned_start, Change.planned_end,
                   Asset.id.label("ci_id"), Asset.name.label("ci_name"))
            .select_from(Change)
            .join(Request, Request.id == Change.request_id)
            .join(WorkflowVersion, WorkflowVersion.id == Request.workflow_version_id)
            .outerjoin(ChangeCI, ChangeCI.request_id == Change.request_id)
            .outerjoin(Asset, Asset.id == ChangeCI.asset_id)
            .where(*where)
            .order_by(Change.planned_start, Request.id, Asset.name, Asset.id))


def calendar(session: Session, catalog: Catalog, start: datetime, end: datetime) -> list[Scheduled]:
    """The changes whose planned window overlaps [start, end), flagged; by start."""
    return _flagged(session, catalog, session.execute(calendar_query(start, end)).all())


def _flagged(session: Session, catalog: Catalog, rows: Iterable[Any]) -> list[Scheduled]:
    """Changes from `_scheduled`'s rows (a change's rows are adjacent), flagged."""
    workflows: dict[int, Workflow] = {}
    out: list[Scheduled] = []
    last: Scheduled | None = None
    # unpacked, not read by name: a Row's attributes cost more than the rest of the loop
    for (request_id, number, title, state_name, status, outcome, version_id, version,
         change_type, risk, start, end, ci_id, ci_name) in rows:
        if last is None or last.id != request_id:
            wf = workflows.get(version_id)
            if wf is None:
                wf = workflows[version_id] = workflow_by_id(session, version_id, version)
            state = wf.state(state_name)
            last = Scheduled(
                request_id, number or "", title, change_type, risk, state_name,
                (state.label or state_name) if state else state_name, status, outcome, start,
                end, status == "open" and state is not None and state.kind is StateKind.APPROVAL)
            out.append(last)
        if ci_id is not None:
            last.cis.append((ci_id, ci_name))
    mark_conflicts(out)
    mark_freezes(out, catalog.settings.change_freezes, ZoneInfo(catalog.settings.time_zone))
    return out


def mark_conflicts(changes: Iterable[Scheduled]) -> None:
    """Flag changes whose windows overlap on a shared CI: a sweep by start time per CI.

    Windows are half-open: one ending when the next starts does not overlap it.
    """
    per_ci: dict[int, list[Scheduled]] = {}
    for c in changes:
        for ci, _ in c.cis:
            per_ci.setdefault(ci, []).append(c)
    for group in per_ci.values():
        group.sort(key=lambda c: (c.start, c.id))
        active: list[Scheduled] = []
        for c in group:
            active = [a for a in active if a.end > c.start]
            for a in active:
                if a.number not in c.conflicts:
                    c.conflicts.append(a.number)
                if c.number not in a.conflicts:
                    a.conflicts.append(c.number)
            active.append(c)
    for c in changes:
        c.conflicts.sort()


def mark_freezes(changes: Iterable[Scheduled], freezes: Sequence[Freeze], zone: ZoneInfo) -> None:
    """Flag changes planned (in part) inside a freeze; a freeze covers its last day whole."""
    spans = [(f.name, _utc(f.start, zone), _utc(f.end + timedelta(days=1), zone)) for f in freezes]
    for c in changes:
        c.freezes = [name for name, begin, finish in spans if c.start < finish and c.end > begin]


def freezes_between(freezes: Sequence[Freeze], first: date, last: date) -> list[Freeze]:
    """The freezes that touch the days first..last."""
    return [f for f in freezes if f.start <= last and f.end >= first]


def warnings_of(session: Session, catalog: Catalog, req: Request) -> list[str]:
    """What the calendar flags about this change: conflicts on its CIs, freezes it falls in."""
    change = session.get(Change, req.id)
    if change is None or change.planned_start is None or change.planned_end is None:
        return []
    mine, theirs = aliased(ChangeCI), aliased(ChangeCI)  # not the CIs `_scheduled` joins
    shared = select(mine.asset_id).where(mine.request_id == req.id).scalar_subquery()
    rows = session.execute(_scheduled(or_(Request.id == req.id, and_(
        Change.planned_start < change.planned_end, Change.planned_end > change.planned_start,
        not_(and_(Request.status == "closed", Request.outcome.in_(NOT_HAPPENING))),
        exists().where(theirs.request_id == Request.id, theirs.asset_id.in_(shared)))))).all()
    me = next((c for c in _flagged(session, catalog, rows) if c.id == req.id), None)
    if me is None:
        return []
    return ([f"Conflict with {n}: its planned window overlaps this one on a shared "
             "configuration item." for n in me.conflicts]
            + [f"Planned inside the change freeze {name}." for name in me.freezes])


# ---------------------------------------------------------------- the review of emergency changes

def ensure_closable(session: Session, req: Request, wf: Workflow) -> None:
    """Refuse to end an implemented emergency change by hand before its review is done."""
    change = session.get(Change, req.id)
    if change is None or change.change_type != "emergency":
        return
    reviews = [s.name for s in wf.states if s.review]
    implementing = [s.name for s in wf.states if s.kind is StateKind.TASK and not s.review]
    implemented = session.scalar(select(exists().where(
        AuditEvent.request_id == req.id, AuditEvent.to_state.in_(implementing))))
    if not implemented:
        return
    reviewed = session.scalar(select(exists().where(
        AuditEvent.request_id == req.id, AuditEvent.event == "transition",
        AuditEvent.from_state.in_(reviews), AuditEvent.to_state != "cancelled")))
    if not reviewed:
        raise Conflict(f"{req.number} is an emergency change that has been implemented; it cannot "
                       "be closed before its post-implementation review is done")


# ---------------------------------------------------------------- editing

@dataclass(frozen=True, slots=True)
class ChangeData:
    """A change's data as the record page shows it."""

    change_type: str
    risk: str | None
    start: datetime | None
    end: datetime | None
    cis: tuple[tuple[int, str], ...]


def change_of(session: Session, req: Request) -> ChangeData | None:
    change = session.get(Change, req.id)
    if change is None:
        return None
    cis = session.execute(select(Asset.id, Asset.name).join(ChangeCI, ChangeCI.asset_id == Asset.id)
                          .where(ChangeCI.request_id == req.id).order_by(Asset.name, Asset.id)).all()
    return ChangeData(change.change_type, change.risk, change.planned_start, change.planned_end,
                      tuple((i, n) for i, n in cis))


@dataclass(frozen=True, slots=True)
class CalendarView:
    """What the change calendar shows for one month or week."""

    period: Period
    changes: list[Scheduled]
    freezes: list[Freeze]


class Changes:
    """Agents keeping a change's planned window and affected CIs up to date; the calendar."""

    unit: UnitRunner
    catalog: Callable[[], Catalog]
    clock: Callable[[], datetime]

    def change_calendar(self, session: Session, viewer: str, month: str | None = None,
                        week: str | None = None, today: date | None = None) -> CalendarView:
        """The changes planned in a month (`YYYY-MM`, default this one) or ISO week (`YYYY-Www`),
        for the desk's agents and the change board; flagged for conflicts and freezes."""
        cat = self.catalog()
        if not can_log_for_callers(session, cat, viewer):
            raise NotAllowed("only agents and the change board see the change calendar")
        zone = ZoneInfo(cat.settings.time_zone)
        shown = period(month, week, cat.settings.time_zone,
                       today or self.clock().astimezone(zone).date())
        return CalendarView(shown, calendar(session, cat, shown.start, shown.end),
                            freezes_between(cat.settings.change_freezes, shown.first, shown.last))

    def edit_change(self, number: str, actor: str, changes: Mapping[str, Any],
                    seen_version: int | None = None) -> Request:
        """Set a change's planned start and end (`YYYY-MM-DDTHH:MM`, the desk's time) and its
        affected CIs (asset ids); agents only, audited old → new."""

        def work(unit: UnitOfWork) -> Request:
            s = unit.session
            req = s.scalar(select(Request).where(Request.number == number))
            if req is None or not permissions.can_view_request(s, actor, req, unit.now):
                raise NotFound(f"no request {number}")
            if not permissions.is_agent(s, actor, req):
                raise NotAllowed(f"only agents of {req.number} can edit its change")
            change = s.get(Change, req.id)
            if change is None:
                raise NotFound(f"{req.number} is not a change")
            fresh(req, seen_version)
            if req.status != "open":
                raise Conflict(f"{req.number} is already {req.outcome}; its change is closed")
            zone = ZoneInfo(unit.catalog.settings.time_zone)
            start, end, cis = _checked(s, change, changes, zone)
            old_cis = list(s.scalars(select(ChangeCI.asset_id).where(ChangeCI.request_id == req.id)
                                     .order_by(ChangeCI.asset_id)))
            changed: dict[str, list[Any]] = {}
            if start != change.planned_start:
                changed["planned_start"] = [_local(change.planned_start, zone), _local(start, zone)]
                change.planned_start = start
            if end != change.planned_end:
                changed["planned_end"] = [_local(change.planned_end, zone), _local(end, zone)]
                change.planned_end = end
            if cis is not None and cis != old_cis:
                changed["affected"] = [old_cis, cis]
                for row in s.scalars(select(ChangeCI).where(ChangeCI.request_id == req.id)):
                    s.delete(row)
                s.flush()
                s.add_all(ChangeCI(request_id=req.id, asset_id=i) for i in cis)
            if not changed:
                return req
            touch(unit, req)
            audit(unit, req, "change_changed", changes=changed)
            return req

        return self.unit(actor, work)


def _checked(session: Session, change: Change, changes: Mapping[str, Any],
             zone: ZoneInfo) -> tuple[datetime | None, datetime | None, list[int] | None]:
    if not isinstance(changes, Mapping):
        raise InvalidInput("the changes must be a mapping of field to value",
                           {"_form": ["The changes must be a mapping of field to value."]})
    errors: dict[str, list[str]] = {}
    for key in changes:
        if key not in ("planned_start", "planned_end", "affected"):
            errors.setdefault("_unknown", []).append(f"Unknown field {_shown(key)}.")
    moments: dict[str, datetime | None] = {"planned_start": change.planned_start,
                                           "planned_end": change.planned_end}
    for key in moments:
        if key not in changes:
            continue
        value = changes[key]
        if value is None or value == "":
            errors[key] = ["This field is required."]
            continue
        parsed = _parse_local(value, zone)
        if parsed is None:
            errors[key] = [f"{_shown(value)} is not a date and time (YYYY-MM-DD HH:MM)."]
        else:
            moments[key] = parsed
    start, end = moments["planned_start"], moments["planned_end"]
    if not errors and start is not None and end is not None and end <= start:
        errors["planned_end"] = [END_AFTER_START]
    cis: list[int] | None = None
    if "affected" in changes:
        raw = changes["affected"]
        if not isinstance(raw, list | tuple) or len(raw) > MAX_CIS:
            errors["affected"] = [f"Give at most {MAX_CIS} configuration items."]
        else:
            wanted = sorted({int(v) for v in raw if isinstance(v, str | int) and str(v).isdigit()
                             and len(str(v)) < 18})
            bad = [_shown(v) for v in raw if not (isinstance(v, str | int) and str(v).isdigit()
                                                   and len(str(v)) < 18)]
            found = set(session.scalars(select(Asset.id).where(Asset.id.in_(wanted),
                                                               Asset.status != "retired"))) \
                if wanted else set()
            bad += [str(i) for i in wanted if i not in found]
            if bad:
                errors["affected"] = [f"There is no configuration item {b}." for b in bad]
            cis = wanted
    if errors:
        raise InvalidInput("the change's data has errors", errors)
    return start, end, cis


def _parse_local(value: Any, zone: ZoneInfo) -> datetime | None:
    if not isinstance(value, str) or not _LOCAL.match(value.strip()):
        return None
    try:
        naive = datetime.fromisoformat(value.strip().replace(" ", "T"))
    except ValueError:
        return None
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _local(value: datetime | None, zone: ZoneInfo) -> str | None:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value is not None else None
