"""The agents' list: every record an agent may work, filtered, sorted, one page at a time.

`parse_filters` turns query-string style input (name -> text) into a `Filters`, refusing
anything it does not understand with InvalidInput and one message per filter; `worklist`
runs it. Saved views are a person's named filters (`save_view`, `views_of`, `delete_view`).

SLA status is read from the record: *paused* while `sla_paused_at` is set, else *breached*
when `sla_state` is breached, *at risk* when it is warning, *on track* when it is ok.
The default sort (most recently updated first) is served by `ix_requests_updated`, or with
a status or group by `ix_requests_status_updated` and `ix_requests_group_status_updated`, the
shared views by `ix_requests_assignee_status_updated` (mine), `ix_requests_sla_status_updated`
(breached) and `ix_requests_assignee_status_priority` (unassigned, by priority), each in the
sort's order with its tiebreaker; `q` by the text index of engine.search_index. `counts`
counts the sidebar's views in one statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, case, false, func, or_, select, true
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from catalog.catalog import Catalog
from catalog.models import View
from catalog.view_parser import DATE_FILTERS, FILTERS, value_problem
from engine import people, search_index
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import AuditEvent, Group, Person, Request, SavedView, Task, WorkflowVersion
from engine.permissions import WORK_EVENTS
from engine.records import can_log_for_callers
from engine.unit import UnitOfWork, UnitRunner, audit

PAGE_SIZE = 50
#: counting stops here: a view shows "more than 1,000" rather than counting every row
COUNT_CAP = 1000
VIEW_NAME_MAX = 80
MAX_VIEWS = 50
SLA_WORDS = {"on_track": "On track", "at_risk": "At risk", "breached": "Breached",
             "paused": "Paused"}
FILTER_NAMES = (*FILTERS, "sort")


@dataclass(frozen=True, slots=True)
class Filters:
    kind: str | None = None
    status: str | None = None
    state: str | None = None
    priority: str | None = None
    group: str | None = None
    #: a person id, or "unassigned"; "me" is resolved to the viewer by `parse_filters`
    assignee: str | None = None
    requester: str | None = None
    category: str | None = None
    sla: str | None = None
    #: yes: major incidents only (engine.major); no: all but them
    major: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    q: str | None = None
    #: one of catalog.view_parser.SORTS: a field, "-" in front for descending
    sort: str = "-updated"


@dataclass(frozen=True, slots=True)
class WorkPage:
    rows: Sequence[Request]
    page: int
    #: rows in the view, at most COUNT_CAP + 1 (then `more` is true)
    total: int
    more: bool
    has_next: bool


def sla_status(req: Request) -> str:
    if req.sla_paused_at is not None:
        return "paused"
    return {"breached": "breached", "warning": "at_risk"}.get(req.sla_state, "on_track")


def parse_filters(session: Session, cat: Catalog, viewer: str,
                  raw: Mapping[str, str]) -> Filters:
    """Check every filter; InvalidInput with a message per filter name when any is wrong."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in FILTER_NAMES:
            errors[key] = [f"Unknown filter {key}."]
            continue
        text = value.strip() if isinstance(value, str) else None
        if text is None:
            errors[key] = ["Must be text."]
            continue
        if not text:
            continue
        message = _check(session, cat, key, text)
        if message:
            errors[key] = [message]
        elif key in DATE_FILTERS:
            values[key] = date.fromisoformat(text)
        elif key in ("assignee", "requester") and text == "me":
            values[key] = viewer
        else:
            values[key] = text
    if errors:
        raise InvalidInput("the filters have errors", errors)
    return Filters(**values)


def _check(session: Session, cat: Catalog, key: str, text: str) -> str:
    """The message for one bad filter value, or "" when it is fine."""
    if key == "priority":
        known = tuple(p.id for p in cat.settings.priorities)
        return "" if text in known else f"{text} is not one of: {', '.join(known)}."
    if key == "group":
        return "" if session.get(Group, text) is not None else f"{text} is not a known group."
    if key in ("assignee", "requester"):
        if text == "me" or (key == "assignee" and text == "unassigned"):
            return ""
        return "" if session.get(Person, text) is not None else f"{text} is not a known person."
    return value_problem(key, text)


def view_query(view: View) -> dict[str, str]:
    """A shared view's filters as list input (its sort included)."""
    return {**view.filters, **({"sort": view.sort} if view.sort != "-updated" else {})}


def as_query(filters: Filters) -> dict[str, str]:
    """The filters as query-string text, leaving out what is not set (for links and views)."""
    out: dict[str, str] = {}
    for key in FILTER_NAMES:
        value = getattr(filters, key)
        if value is None or (key == "sort" and value == "-updated"):
            continue
        out[key] = value.isoformat() if isinstance(value, date) else str(value)
    return out


def _day(value: date, after: bool = False) -> datetime:
    start = datetime.combine(value, time(), tzinfo=UTC)
    return start + timedelta(days=1) if after else start


def _unindexed(column: Any) -> Any:
    """`+column`: SQLite then uses no index for the condition (its documented way), so that the
    text index, which it cannot weigh without statistics, drives a search instead."""
    return UnaryExpression(column, operator=custom_op("+"))


def _where(query: Select[Any], f: Filters, cat: Catalog,  # type: ignore[type-arg]
           searching: bool = False) -> Select[Any]:  # type: ignore[type-arg]
    simple = {"kind": Request.record_type, "status": Request.status, "state": Request.state,
              "priority": Request.priority, "group": Request.assignment_group_id,
              "requester": Request.requester_id, "category": Request.category,
              "assignee": Request.assignee_id}
    for key, column in simple.items():
        value = getattr(f, key)
        if value is not None and not (key == "assignee" and value == "unassigned"):
            query = query.where((_unindexed(column) if searching else column) == value)
    if f.assignee == "unassigned":
        query = query.where((_unindexed(Request.assignee_id) if searching
                             else Request.assignee_id).is_(None))
    if f.major is not None:
        query = query.where(Request.major.is_(f.major == "yes"))
    if f.sla == "paused":
        query = query.where(Request.sla_paused_at.is_not(None))
    elif f.sla is not None:
        state = {"on_track": "ok", "at_risk": "warning", "breached": "breached"}[f.sla]
        query = query.where(Request.sla_paused_at.is_(None), Request.sla_state == state)
    if f.created_from:
        query = query.where(Request.created_at >= _day(f.created_from))
    if f.created_to:
        query = query.where(Request.created_at < _day(f.created_to, after=True))
    if f.updated_from:
        query = query.where(Request.updated_at >= _day(f.updated_from))
    if f.updated_to:
        query = query.where(Request.updated_at < _day(f.updated_to, after=True))
    return query


@dataclass(frozen=True, slots=True)
class _Seer:
    """Who looks at the list: read once for a page and once for all the sidebar's counts."""

    id: str
    admin: bool
    agent: bool
    groups: tuple[str, ...]
    dialect: str


def _seer(session: Session, cat: Catalog, viewer: str) -> _Seer:
    admin = people.is_admin(session, viewer)
    return _Seer(viewer, admin, admin or is_agent(session, cat, viewer),
                 tuple(people.groups_of(session, viewer)), session.get_bind().dialect.name)


def _searched(query: Select[Any], seer: _Seer, text: str) -> Select[Any]:  # type: ignore[type-arg]
    """Records whose number, title, answers or comments contain the text (engine.search_index);
    internal notes only count where the viewer may read them (permissions.is_agent)."""
    if seer.admin:
        readable: Any = true()
    else:
        tasked = _per_row(select(Task.id).where(
            Task.request_id == Request.id,
            or_(Task.queue.in_(seer.groups), Task.assignee_id == seer.id)), seer)
        readable = or_(Request.assignment_group_id.in_(seer.groups),
                       Request.assignee_id == seer.id, tasked.exists())
    return query.where(search_index.matches(seer.dialect, text, readable))


def _visible(query: Select[Any], seer: _Seer, cat: Catalog,  # type: ignore[type-arg]
             filters: Filters) -> Select[Any]:  # type: ignore[type-arg]
    """Agents see every record (settings agents_see: all); with agents_see: groups, those
    whose assignment group or a task's queue is one of theirs, assigned to them, or worked.
    Filters on the viewer as assignee or on one of their groups need no more condition."""
    if seer.admin:
        return query
    if not seer.agent:
        return query.where(false())
    if not _probing(seer, cat, filters):
        return query
    queued = _per_row(select(Task.id).where(
        Task.request_id == Request.id,
        or_(Task.queue.in_(seer.groups), Task.assignee_id == seer.id)), seer)
    worked = _per_row(select(AuditEvent.id).where(AuditEvent.request_id == Request.id,
                                                  AuditEvent.actor_id == seer.id,
                                                  AuditEvent.event.in_(WORK_EVENTS)), seer)
    return query.where(or_(Request.assignment_group_id.in_(seer.groups),
                           Request.assignee_id == seer.id, queued.exists(), worked.exists()))


def _probing(seer: _Seer, cat: Catalog, filters: Filters) -> bool:
    """Does the agent's visibility probe tasks and work events per record (`_visible`)?"""
    return seer.agent and not seer.admin and cat.settings.agents_see == "groups" \
        and filters.assignee != seer.id and filters.group not in seer.groups


def _per_row(sub: Select[Any], seer: _Seer) -> Select[Any]:  # type: ignore[type-arg]
    """An EXISTS under OR that PostgreSQL must probe per row through its index: `OFFSET 0`
    keeps it from hashing every task or work event of the viewer's first (a scan of the
    table), which a page that stops after 51 rows never needs."""
    return sub.offset(0) if seer.dialect == "postgresql" else sub


def is_agent(session: Session, cat: Catalog, viewer: str) -> bool:
    """Admins, and members of a group owning an item or a queue (the "Log for a caller" rule)."""
    return can_log_for_callers(session, cat, viewer)


def _order(f: Filters, cat: Catalog) -> list[Any]:
    desc = f.sort.startswith("-")
    name = f.sort.lstrip("-")
    if name == "priority":
        ids = [p.id for p in cat.settings.priorities]
        if ids == sorted(ids):
            # the ids sort as the ranks do (p1, p2, ...): `ix_requests_assignee_status_priority`
            # serves the order; none last, as the ranks put them
            first = Request.priority.desc().nulls_first() if desc else \
                Request.priority.asc().nulls_last()
            return [first, Request.id.desc() if desc else Request.id.asc()]
        ranks = {p: i for i, p in enumerate(ids)}
        column: Any = case(ranks, value=Request.priority, else_=len(ranks)) if ranks else \
            Request.priority
    else:
        column = {"updated": Request.updated_at, "created": Request.created_at,
                  "number": Request.id}[name]
    return [column.desc() if desc else column.asc(), Request.id.desc() if desc else Request.id.asc()]


def _matching(query: Select[Any], seer: _Seer, cat: Catalog,  # type: ignore[type-arg]
              filters: Filters) -> Select[Any]:  # type: ignore[type-arg]
    """`query` (over requests) narrowed to the records the viewer may work that match: the
    conditions stand in the statement itself, so an index in the sort's order serves a page."""
    return _visible(_filtered(query, seer, cat, filters), seer, cat, filters)


def _filtered(query: Select[Any], seer: _Seer, cat: Catalog,  # type: ignore[type-arg]
              filters: Filters) -> Select[Any]:  # type: ignore[type-arg]
    """`query` narrowed by the filters and the text, before the viewer's visibility."""
    searching = seer.dialect == "sqlite" and len(filters.q or "") >= search_index.TRIGRAM
    # (a record gets its number in the transaction that stores it: no condition on it, and
    # a count can read an index alone)
    query = _where(query, filters, cat, searching)
    return _searched(query, seer, filters.q) if filters.q else query


def _capped(query: Select[Any]) -> Select[Any]:  # type: ignore[type-arg]
    return select(func.count()).select_from(query.limit(COUNT_CAP + 1).subquery())


def _count_query(seer: _Seer, cat: Catalog, filters: Filters) -> Select[Any]:  # type: ignore[type-arg]
    """The capped count. Where visibility probes tasks and work events per record, the
    records of the viewer's groups are counted first, from an index alone: when more than
    COUNT_CAP of them match, so many match in all, and the probing count (a scan of the
    table until enough match) never runs: a CASE evaluates its other branch only if needed."""
    full = _capped(_matching(select(Request.id), seer, cat, filters))
    if not (_probing(seer, cat, filters) and seer.groups):
        return full
    grouped = _capped(_filtered(select(Request.id), seer, cat, filters)
                      .where(Request.assignment_group_id.in_(seer.groups)))
    return select(case((grouped.scalar_subquery() > COUNT_CAP, COUNT_CAP + 1),
                       else_=full.scalar_subquery()))


def count(session: Session, cat: Catalog, viewer: str, filters: Filters) -> tuple[int, bool]:
    """How many records match, counting at most COUNT_CAP + 1 of them: (count, more)."""
    return counts(session, cat, viewer, [filters])[0]


def counts(session: Session, cat: Catalog, viewer: str,
           many: Sequence[Filters]) -> list[tuple[int, bool]]:
    """`count` for several filters (the sidebar's views) in one statement."""
    if not many:
        return []
    seer = _seer(session, cat, viewer)
    row = session.execute(select(*(_count_query(seer, cat, f).scalar_subquery()
                                   for f in many))).one()
    return [(n or 0, (n or 0) > COUNT_CAP) for n in row]


def worklist(session: Session, cat: Catalog, viewer: str, filters: Filters,
             page: int = 1) -> WorkPage:
    """One page (PAGE_SIZE rows) of the records the viewer may work that match the filters."""
    seer = _seer(session, cat, viewer)
    page = max(1, page)
    if filters.q:
        found = session.execute(_found_query(seer, cat, filters, page)).all()
        counted = min(found[0][0], COUNT_CAP + 1)
        rows = [row for _, row in found if row is not None]
    else:
        counted = session.scalar(_count_query(seer, cat, filters)) or 0
        rows = list(session.scalars(_page_query(seer, cat, filters, page)))
    return WorkPage(rows[:PAGE_SIZE], page, counted, counted > COUNT_CAP, len(rows) > PAGE_SIZE)


def _found_query(seer: _Seer, cat: Catalog, filters: Filters,
                 page: int) -> Select[Any]:  # type: ignore[type-arg]
    """A search's count and page in one statement, the text index read once: the matching ids
    in the list's order, numbered, at most COUNT_CAP + 1 of them (more for a page beyond them);
    their count, joined to the rows of the page's numbers (none: one row without a record)."""
    order = _order(filters, cat)
    numbered = _narrowed(select(Request.id, func.row_number().over(order_by=order).label("n")),
                         seer, cat, filters)
    skipped = (page - 1) * PAGE_SIZE
    hits = numbered.order_by(*order).limit(max(COUNT_CAP + 1, skipped + PAGE_SIZE + 1)).cte("hits")
    total = select(func.count().label("total")).select_from(hits)
    shown = select(hits).where(hits.c.n > skipped, hits.c.n <= skipped + PAGE_SIZE + 1)
    total_, shown_ = total.subquery("total"), shown.subquery("shown")
    return (select(total_.c.total, Request).select_from(total_)
            .outerjoin(shown_, true()).outerjoin(Request, Request.id == shown_.c.id)
            .options(_VERSIONS).order_by(shown_.c.n))


def found_query(session: Session, cat: Catalog, viewer: str, filters: Filters,
                page: int = 1) -> Select[Any]:  # type: ignore[type-arg]
    """The statement of a search's page and its count (at least COUNT_CAP + 1 when there are
    more): rows of (count, record), one row (count, None) for a page past the last."""
    return _found_query(_seer(session, cat, viewer), cat, filters, max(1, page))


#: the states in words need each row's workflow version: one statement for the page, and
#: without the definitions, which engine.versions.workflow_of has parsed once already
_VERSIONS = selectinload(Request.workflow_version).defer(WorkflowVersion.definition)


def _narrowed(query: Select[Any], seer: _Seer, cat: Catalog,  # type: ignore[type-arg]
              filters: Filters) -> Select[Any]:  # type: ignore[type-arg]
    """`_matching`; for a search by kind and status on PostgreSQL, the matching ids first: the
    ids of the text's hits joined to an index (ix_requests_type_status_group), where a
    statement over whole rows fetches the row of every hit to check the filters on it."""
    if filters.q and filters.kind and filters.status and seer.dialect == "postgresql":
        ids = _matching(select(Request.id), seer, cat, filters).correlate(None)
        return query.where(Request.id.in_(ids))
    return _matching(query, seer, cat, filters)


def _page_query(seer: _Seer, cat: Catalog, filters: Filters,
                page: int) -> Select[Any]:  # type: ignore[type-arg]
    return (_narrowed(select(Request).options(_VERSIONS), seer, cat, filters)
            .order_by(*_order(filters, cat))
            .limit(PAGE_SIZE + 1).offset((max(1, page) - 1) * PAGE_SIZE))


def page_query(session: Session, cat: Catalog, viewer: str, filters: Filters,
               page: int = 1) -> Select[Any]:  # type: ignore[type-arg]
    """The statement of one page, one row more than PAGE_SIZE (is there a next page?)."""
    return _page_query(_seer(session, cat, viewer), cat, filters, page)


def count_query(session: Session, cat: Catalog, viewer: str,
                filters: Filters) -> Select[Any]:  # type: ignore[type-arg]
    """The statement that counts the matching records, at most COUNT_CAP + 1 of them."""
    return _count_query(_seer(session, cat, viewer), cat, filters)


# ---------------------------------------------------------------- saved views

def views_of(session: Session, person_id: str) -> list[SavedView]:
    return list(session.scalars(select(SavedView).where(SavedView.person_id == person_id)
                                .order_by(SavedView.name)))


def save_view(session: Session, cat: Catalog, person_id: str, name: str,
              query: Mapping[str, str], now: datetime) -> SavedView:
    """Save the (checked) filters under a name of the person's; the caller commits."""
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise InvalidInput("the view needs a name", {"name": ["This field is required."]})
    if len(text) > VIEW_NAME_MAX or "\x00" in text:
        raise InvalidInput("the view's name is too long",
                           {"name": [f"Must be at most {VIEW_NAME_MAX} characters."]})
    parse_filters(session, cat, person_id, query)
    stored = {k: v.strip() for k, v in query.items() if isinstance(v, str) and v.strip()}
    if session.scalar(select(SavedView.id).where(SavedView.person_id == person_id,
                                                 SavedView.name == text)) is not None:
        raise Conflict(f"you already have a view named {text}")
    if len(views_of(session, person_id)) >= MAX_VIEWS:
        raise Conflict(f"you have {MAX_VIEWS} views already; delete one first")
    view = SavedView(person_id=person_id, name=text, query=stored, created_at=now)
    session.add(view)
    session.flush()  # a name saved at the same moment: IntegrityError, a Conflict in a unit
    return view


def delete_view(session: Session, person_id: str, view_id: int) -> None:
    view = session.get(SavedView, view_id)
    if view is None or view.person_id != person_id:
        raise NotFound(f"no view {view_id}")
    session.delete(view)
    session.flush()


class SavedViews:
    """The saved-view use cases of the request service (a mixin), each one unit of work."""

    unit: UnitRunner

    def save_view(self, actor: str, name: str, query: Mapping[str, str]) -> SavedView:
        def work(unit: UnitOfWork) -> SavedView:
            view = save_view(unit.session, unit.catalog, actor, name, query, unit.now)
            audit(unit, None, "view_saved", name=view.name, query=dict(view.query))
            return view

        return self.unit(actor, work)

    def delete_view(self, actor: str, view_id: int) -> None:
        def work(unit: UnitOfWork) -> None:
            view = unit.session.get(SavedView, view_id)
            name = view.name if view is not None else ""
            delete_view(unit.session, actor, view_id)
            audit(unit, None, "view_deleted", name=name)

        self.unit(actor, work)
