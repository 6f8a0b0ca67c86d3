"""The unit of work: one transaction of the engine, and what every part of it shares.

`UnitOfWork` carries the session, the catalog, the time and who acts; it remembers what it
has read (people, a visit's approvals) and collects what it writes in bulk at the end (timer,
audit and outbox rows, the version bump of each request it touched). `UnitRunner` runs a piece
of work in one, retrying when a concurrent change got there first. This module is the kernel
the rest of the engine imports; it imports none of them.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from cachetools import LRUCache, cached
from sqlalchemy import and_, bindparam, insert, inspect, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.orm.exc import StaleDataError

from catalog.catalog import Catalog
from catalog.expressions import ExpressionError, Template
from catalog.workflow import Workflow
from engine import memo, people, record_figures, table_text
from engine import webhook_subscriptions as subscriptions
from engine.attachment_store import AttachmentStore
from engine.businesstime import BusinessCalendar
from engine.db import is_busy
from engine.errors import Conflict, Denial, SecurityDenied, Unavailable
from engine.models import (
    Approval,
    AuditEvent,
    Base,
    Change,
    Group,
    Membership,
    Notification,
    Person,
    Request,
    Task,
    Timer,
)
from engine.outbox import email_row, insert_rows
from engine.versions import workflow_of

T = TypeVar("T")
MAX_ATTEMPTS = 4


#: a group (no row: no such group) with its active members and their people; built once
_GROUP_MEMBERS = (
    select(Group.id, Person).select_from(Group)
    .outerjoin(Membership, Membership.group_id == Group.id)
    .outerjoin(Person, and_(Person.id == Membership.person_id, Person.active.is_(True)))
    .where(Group.id == bindparam("group_id")).order_by(Person.id))


#: the rows a unit collects, inserted by Core on the tables in one executemany each: nothing
#: reads them back in the unit, and the ORM's bulk path costs more than the statement (it also
#: groups rows by the keys that are not None; Core keeps rows with and without, say, a
#: from_state in one executemany)
_INSERT = {name: insert(Base.metadata.tables[name]) for name in (
    Notification.__tablename__, Timer.__tablename__, AuditEvent.__tablename__)}
#: the audit rows' insert that hands back their ids (webhooks' idempotency keys name them)
_AUDIT_RETURNING_IDS = _INSERT[AuditEvent.__tablename__].returning(
    Base.metadata.tables[AuditEvent.__tablename__].c.id, sort_by_parameter_order=True)


@dataclass
class UnitOfWork:
    """One transaction: the session, the catalog, the time, and who acts.

    It also remembers what the unit has read (people) and collects what it writes in bulk
    at the end (in-app notification, timer, audit and outbox rows, the version bump of each
    request it touched).
    """

    session: Session
    catalog: Catalog
    now: datetime
    actor: str | None
    calendar: BusinessCalendar
    #: where links in emails point, e.g. https://desk.example.com
    base_url: str = ""
    #: signs links in emails (engine.satisfaction); empty: no signed links
    secret_key: str = field(default="", repr=False)
    #: where attachments are kept, and their limits (engine.attachments); None: not here
    attachments: AttachmentStore | None = field(default=None, repr=False)
    audit_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    outbox_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    notification_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    timer_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    touched: dict[int, tuple[Request, int]] = field(default_factory=dict, repr=False)
    visit_approvals: dict[int, tuple[int, list[Approval]]] = field(default_factory=dict, repr=False)
    _people: dict[str, Person | None] = field(default_factory=dict, repr=False)
    _groups: dict[str, list[str] | None] = field(default_factory=dict, repr=False)
    _contexts: dict[tuple[str, bool], dict[str, Any] | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.session.info[people.HELD_PEOPLE] = self._people  # people.person keeps them here

    @property
    def functions(self) -> dict[str, Callable[..., Any]]:
        return self.catalog.functions()

    def person(self, person_id: str | None) -> Person | None:
        """A person, read once per unit (the objects are held, so no second query)."""
        if not person_id:
            return None
        if person_id not in self._people:
            self._people[person_id] = people.person(self.session, person_id)
        return self._people[person_id]

    def active_person(self, person_id: str | None) -> Person | None:
        p = self.person(person_id)
        return p if p is not None and p.active else None

    def remember(self, person_id: str, found: Person | None) -> None:
        """Keep a person read along with something else, so `person` needs no query."""
        self._people.setdefault(person_id, found)

    def group_members(self, group_id: str) -> list[str] | None:
        """Active members of a group, None when there is no such group; the group and its
        members with their people in one query, once per unit."""
        if group_id not in self._groups:
            rows = self.session.execute(_GROUP_MEMBERS, {"group_id": group_id}).all()
            found = [p for _, p in rows if p is not None]
            for p in found:
                self._people[p.id] = p
            self._groups[group_id] = [p.id for p in found] if rows else None
        return self._groups[group_id]

    def members(self, group_id: str) -> list[str]:
        """Active members of a group (none when there is no such group)."""
        return self.group_members(group_id) or []

    def person_context(self, person_id: str | None, lists: bool) -> dict[str, Any] | None:
        """A person as expressions see them; their roles and groups only when read."""
        key = (person_id or "", lists)
        if key not in self._contexts:
            p = self.person(person_id)
            found: dict[str, Any] | None = None if p is None else {
                "id": p.id, "name": p.name, "email": p.email, "manager": p.manager_id,
                "title": p.title, "department": p.department, "location": p.location,
                "active": p.active}
            if found is not None and lists:
                found["roles"] = people.roles_of(self.session, p.id)  # type: ignore[union-attr]
                found["groups"] = people.groups_of(self.session, p.id)  # type: ignore[union-attr]
            self._contexts[key] = found
        return self._contexts[key]

    def add_timer(self, req: Request, kind: str, visit: int, ref: str, due_at: datetime) -> None:
        """A pending timer, written in bulk when the unit ends: nothing reads a new timer's id,
        which the ORM would fetch row by row on SQLite."""
        self.timer_rows.append({"request_id": req.id, "kind": kind, "visit": visit, "ref": ref,
                                "due_at": due_at, "status": "pending", "fired_at": None,
                                "lock_version": 1})

    def cancel_new_timers(self, req: Request, visit: int | None = None) -> None:
        """Cancel the pending timers this unit created for `req` (of `visit`, if given)."""
        for row in self.timer_rows:
            if row["request_id"] == req.id and row["status"] == "pending" \
                    and (visit is None or row["visit"] == visit):
                row["status"] = "cancelled"

    def queue_email(self, req: Request, event: str, person_ids: list[str], *, key: str,
                    personal: Callable[[str], Mapping[str, Any]] | None = None,
                    **extra: Any) -> None:
        """Write `event` to the outbox for each person (once per person and key, whatever
        retries happen); the worker renders and sends it later. `personal(person_id)` adds
        what differs per recipient (engine.email_links: their own signed links); it is
        called only for the people actually emailed."""
        state = workflow(req).state(req.state)
        base = {
            "site_name": self.catalog.settings.name,
            "request": {"number": req.number, "item_name": req.item_name, "state": req.state,
                        "state_label": (state.label if state and state.label else req.state),
                        "outcome": req.outcome, "url": f"{self.base_url}/requests/{req.number}"},
            **{k: _plain(v) for k, v in extra.items()},
        }
        for pid in dict.fromkeys(person_ids):
            person = self.active_person(pid)
            if person is None or not person.email:
                continue
            self.outbox_rows.append(email_row(
                request_id=req.id, event=event, to=[person.email], template=event,
                context={**base, **(personal(pid) if personal else {}),
                         "person": {"name": person.name}},
                key=short_key(f"{req.id}:{event}:{key}:{pid}"), now=self.now))

    def finish(self) -> None:
        """Write what the unit collected: version bumps, then notification, timer, audit and
        outbox rows in bulk."""
        s = self.session
        flush(s)
        for req, version in self.touched.values():
            if req.lock_version == version:  # nothing else changed it: bump it anyway
                req.updated_at = self.now
                flag_modified(req, "updated_at")
        flush(s)
        # Core statements on the connection: the session's handling of a statement (events,
        # autoflush, ORM result setup) costs more than these executemanys themselves
        conn = s.connection()
        if self.notification_rows:
            conn.execute(_INSERT[Notification.__tablename__], self.notification_rows)
            self.notification_rows = []
        if self.timer_rows:
            conn.execute(_INSERT[Timer.__tablename__], self.timer_rows)
            self.timer_rows = []
        if self.audit_rows:
            reqs = []
            for row in self.audit_rows:
                req = row.pop("request", None)
                reqs.append(req)
                row["request_id"] = req.id if req is not None else None
                row["detail"] = {k: (v.id if hasattr(v, "__table__") else v)
                                 for k, v in row["detail"].items()}
            hooks = self.catalog.settings.webhooks
            if hooks and subscriptions.wanted(hooks, [r["event"] for r in self.audit_rows]):
                # the events' ids make the webhooks' idempotency keys
                ids = list(conn.execute(_AUDIT_RETURNING_IDS, self.audit_rows).scalars())
                self.outbox_rows += subscriptions.outbox_rows(hooks, self.audit_rows, reqs, ids,
                                                              self.now)
            else:
                conn.execute(_INSERT[AuditEvent.__tablename__], self.audit_rows)
            self.audit_rows = []
        if self.outbox_rows:
            insert_rows(s, self.outbox_rows)
            self.outbox_rows = []


# ---------------------------------------------------------------- writing changes


#: the engine's flush listeners (engine.record_figures, engine.memo: both loaded by now); `flush`
#: does what they do, and leaves a session with any other listener to the ORM's flush
_FLUSH_LISTENERS = frozenset(Session().dispatch.after_flush)
#: the models whose changed rows `flush` writes itself, in the order the ORM's flush writes
#: them (an approval decided, then its request moved on: most units change nothing else)
_UPDATED = (Approval, Request)


@functools.cache
def _columns(table: str) -> dict[str, Any]:
    """The table's columns by key (each is its model's attribute of the same name)."""
    return {c.key: c for c in Base.metadata.tables[table].columns}


@functools.cache
def _update_statement(model: type[Any]) -> Any:
    """The version-checked UPDATE of one row, built once; the columns it sets are the keys of
    the parameters it runs with."""
    table = Base.metadata.tables[model.__tablename__]  # type: ignore[attr-defined]
    return update(table).where(table.c.id == bindparam("changed_id"),
                               table.c.lock_version == bindparam("seen_version"))


def flush(s: Session) -> None:
    """`Session.flush`, with the usual case written by Core: only approvals and requests
    changed (nothing new or deleted). Each goes as the ORM sends it: one UPDATE of the
    changed columns and the next version, checked against the version read (StaleDataError
    when another transaction got there first); then what the engine's flush listeners do
    (engine.record_figures, engine.memo). The ORM's handling of the flush cost more than the
    statements. Anything else is left to the ORM."""
    events = s.dispatch
    if s.new or s.deleted or events.before_flush or events.after_flush_postexec \
            or not _FLUSH_LISTENERS.issuperset(events.after_flush):
        s.flush()
        return
    dirty = list(s.dirty)
    if not dirty:
        return
    changes: list[tuple[Any, Any, dict[str, Any]]] = []
    for obj in dirty:
        if type(obj) not in _UPDATED:
            s.flush()
            return
        state = inspect(obj)
        values = state.dict
        if "lock_version" not in values:
            s.flush()  # the version read is needed for the check
            return
        columns = _columns(obj.__tablename__)
        params: dict[str, Any] = {}
        for key, old in state.committed_state.items():
            column = columns.get(key)
            if column is None or column.primary_key or key == "lock_version" or key not in values:
                s.flush()  # a relationship, the key or the version itself: the ORM's case
                return
            new = values[key]
            if old is NO_VALUE or column.type.compare_values(new, old) is not True:
                params[key] = new
        changes.append((obj, state, params))
    conn = s.connection()
    for model in _UPDATED:
        # by id, and checked per run of rows changing the same columns, as the ORM does
        mine = sorted((c for c in changes if type(c[0]) is model and c[2]), key=lambda c: c[0].id)
        for _, group in itertools.groupby(mine, key=lambda c: sorted(c[2])):
            rows = list(group)
            matched = 0
            for obj, state, params in rows:
                seen = state.dict["lock_version"]
                matched += conn.execute(_update_statement(model), {
                    **params, "lock_version": seen + 1, "changed_id": obj.id,
                    "seen_version": seen}).rowcount
            if matched != len(rows):
                raise StaleDataError(f"UPDATE statement on table '{model.__tablename__}' expected "
                                     f"to update {len(rows)} row(s); {matched} were matched.")
    for _, state, params in changes:
        if params:
            state.dict["lock_version"] += 1
        state._commit_all(state.dict, s.identity_map)  # written: no longer changed
    record_figures.write_facts(conn, [record_figures.fact_row(functools.partial(getattr, obj))
                                      for obj in dirty if isinstance(obj, Request)])
    memo.forget(s)


# ---------------------------------------------------------------- running units


class Runner(Protocol):
    """Runs `work` in one unit of work for `actor` (a `UnitRunner`, or a test's stand-in)."""

    def __call__(self, actor: str | None, work: Callable[[UnitOfWork], T]) -> T: ...


@cached(LRUCache(maxsize=8), key=lambda catalog: catalog.version, lock=threading.Lock())
def calendar_of(catalog: Catalog) -> BusinessCalendar:
    """The business calendar of a catalog version, built once."""
    return BusinessCalendar(catalog.settings)


class UnitRunner:
    """Runs work in units of work: one transaction each, retried on a concurrent change."""

    def __init__(self, sessions: sessionmaker[Session], catalog: Callable[[], Catalog],
                 clock: Callable[[], datetime], base_url: str = "", secret_key: str = "",
                 attachments: AttachmentStore | None = None) -> None:
        self.sessions, self.catalog, self.clock = sessions, catalog, clock
        self.base_url = base_url.rstrip("/")
        self.secret_key = secret_key
        self.attachments = attachments

    def __call__(self, actor: str | None, work: Callable[[UnitOfWork], T]) -> T:
        """Run `work` in one transaction; retry when a concurrent change got there first."""
        for attempt in range(MAX_ATTEMPTS):
            catalog = self.catalog()
            session = self.sessions()
            try:
                with session.begin():
                    unit = UnitOfWork(session, catalog, self.clock(), actor, calendar_of(catalog),
                                      base_url=self.base_url, secret_key=self.secret_key,
                                      attachments=self.attachments)
                    with session.no_autoflush:  # one flush at the end: one UPDATE per row
                        result = work(unit)
                    unit.finish()
                    return result
            except StaleDataError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise Conflict("someone else changed this at the same moment; "
                                   "reload and try again") from None
            except SecurityDenied as exc:
                self._record_denial(actor, exc.denial)
                raise
            except IntegrityError:
                raise Conflict("that conflicts with a change made at the same moment") from None
            except DBAPIError as exc:
                if is_busy(exc):
                    raise Unavailable("the database is busy; try again in a moment") from None
                if is_serialization_failure(exc) and attempt < MAX_ATTEMPTS - 1:
                    continue
                raise
            finally:
                session.close()
        raise Conflict("someone else changed this at the same moment; reload and try again")

    def _record_denial(self, actor: str | None, denial: Denial) -> None:
        session = self.sessions()
        try:
            with session.begin():
                catalog = self.catalog()
                unit = UnitOfWork(session, catalog, self.clock(), actor, calendar_of(catalog))
                req = session.get(Request, denial.request_id)
                audit(unit, req, "security_denied", reason=denial.reason, approval=denial.approval)
                unit.finish()
        finally:
            session.close()


def is_serialization_failure(exc: DBAPIError) -> bool:
    """Whether PostgreSQL gave up on the transaction to keep it serialisable (try again)."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40001", "40P01")


# ---------------------------------------------------------------- what every unit does


def touch(unit: UnitOfWork, req: Request) -> None:
    """Mark the request changed, so its version moves on even when nothing else did.

    Every action on a request bumps its version: two actions on one request are
    thereby serialised, and a page loaded before an action is recognisably stale.
    The bump happens once, when the unit ends (UnitOfWork.finish). Imported history
    (engine.history) has no live workflow: nothing changes it but a new import.
    """
    if req.import_source is not None:
        raise Conflict(f"{req.number} is history imported from {req.import_source}; it cannot be "
                       "changed here")
    req.updated_at = unit.now
    unit.touched.setdefault(id(req), (req, req.lock_version))


def audit(unit: UnitOfWork, req: Request | None, event: str, /, from_state: str | None = None,
          to_state: str | None = None, actor: str | None | bool = True, **detail: Any) -> None:
    """Record an audit row (written in bulk when the unit ends); a record's changes also
    update its figures (engine.record_figures)."""
    if event == "record_changed" and req is not None and detail.get("changes"):
        record_figures.note_changes(req, detail["changes"])
    unit.audit_rows.append({
        "request": req, "actor_id": unit.actor if actor is True else (actor or None),
        "event": event, "from_state": from_state, "to_state": to_state, "detail": detail,
        "at": unit.now})


def workflow(req: Request) -> Workflow:
    """The workflow version the request is pinned to."""
    return workflow_of(req.workflow_version)


@cached(LRUCache(maxsize=256), key=lambda wf: wf.version, lock=threading.Lock())
def reads_lists(wf: Workflow) -> bool:
    """Whether any expression of the workflow reads someone's roles or groups."""
    return any(len(path) > 1 and path[0] in ("requester", "requested_for")
               and path[1] in ("roles", "groups")
               for expr in wf.expressions() for path in expr.paths)


def context(unit: UnitOfWork, req: Request) -> dict[str, Any]:
    """What expressions see: plain values of the form, the people, the request, the item."""
    item = unit.catalog.item(req.item_id)
    form = {f.name: None for f in item.fields} if item else {}
    form.update(req.answers)
    lists = reads_lists(workflow(req))
    return {
        "form": form,
        "requester": unit.person_context(req.requester_id, lists),
        "requested_for": unit.person_context(req.requested_for_id, lists),
        "request": {"number": req.number, "state": req.state, "priority": req.priority,
                    "item": req.item_id, "created_at": req.created_at.isoformat(),
                    "status": req.status, "record_type": req.record_type, "title": req.title,
                    "impact": req.impact, "urgency": req.urgency, "category": req.category,
                    "assignment_group": req.assignment_group_id, "assignee": req.assignee_id,
                    "channel": req.channel, **_change_names(unit, req)},
        "item": {"id": req.item_id, "name": req.item_name,
                 "category": item.category if item else "", "owner": item.owner if item else None},
        "now": unit.now.isoformat(),
    }


def _change_names(unit: UnitOfWork, req: Request) -> dict[str, Any]:
    """`request.change_type` and `request.risk` (None on records that are not changes)."""
    change = unit.session.get(Change, req.id) if req.record_type == "change" and req.id else None
    return {"change_type": change.change_type if change else None,
            "risk": change.risk if change else None}


def render(unit: UnitOfWork, req: Request, template: Template | None, default: str = "") -> str:
    """Fill in a template; a failure is the failure of the step that renders it."""
    if template is None:
        return default
    return fill(unit, req, template)


def fill(unit: UnitOfWork, req: Request, template: Template) -> str:
    """Render a template; a failing placeholder is named by its expression, trimmed."""
    try:
        return template.render(table_text.readable(context(unit, req)), unit.functions)
    except ExpressionError as exc:
        for part in template.expressions:
            if exc.message.startswith(f"{part.source}: "):
                raise ExpressionError(f"{part.source.strip()}: "
                                      f"{exc.message[len(part.source) + 2:]}") from None
        raise


def approvals_of_visit(session: Session, req: Request) -> list[Approval]:
    """The approvals of the request's current visit of its state."""
    return list(session.scalars(select(Approval).where(
        Approval.request_id == req.id, Approval.visit == req.visit).order_by(Approval.id)))


def visit_approvals(unit: UnitOfWork, req: Request) -> list[Approval]:
    """The approvals of the request's current visit, read once per unit."""
    found = unit.visit_approvals.get(req.id)
    if found is None or found[0] != req.visit:
        found = unit.visit_approvals[req.id] = (req.visit, approvals_of_visit(unit.session, req))
    return found[1]


def tasks_of_visit(session: Session, req: Request) -> list[Task]:
    """The tasks of the request's current visit of its state."""
    return list(session.scalars(select(Task).where(
        Task.request_id == req.id, Task.visit == req.visit).order_by(Task.id)))


def short_key(key: str, limit: int = 80) -> str:
    """An idempotency key that fits its column: long ones keep a readable head and a hash."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: limit - 33]}~{digest}"


def _plain(value: Any) -> Any:
    """Database rows become plain dicts before they reach a template."""
    if hasattr(value, "__table__"):
        return {c.name: _plain(getattr(value, c.name)) for c in value.__table__.columns}
    if isinstance(value, datetime):
        return value.isoformat()
    return value
