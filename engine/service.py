"""The request service: every operation a page, the API, the CLI or a worker performs.

Each public method is one unit of work (engine.unit): the state change, approvals, tasks,
audit rows and outbox messages commit together or not at all. Each checks who may act and
raises NotAllowed, NotFound, Conflict or InvalidInput. The approval use cases live in
engine.decisions, the task use cases in engine.fulfilment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, insert, inspect, select
from sqlalchemy.orm import Session, aliased, defer, make_transient_to_detached, sessionmaker

from catalog.catalog import Catalog
from catalog.models import CatalogItem
from catalog.workflow import Workflow
from engine import (
    attention,
    idempotency,
    intake,
    major,
    memo,
    notifications,
    people,
    permissions,
    record_figures,
    records,
    runtime,
    sla,
    timers,
)
from engine.attachment_store import AttachmentStore
from engine.attachments import Attachments, add_attachment, safe_filename
from engine.changes import Changes, ensure_closable, stamp_change
from engine.decisions import Decisions
from engine.email_actions import EmailActions
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.file_answers import keep_files, without_files
from engine.fulfilment import Fulfilment
from engine.inputs import checked_text, fresh
from engine.lifecycle import Lifecycle
from engine.major import MajorIncidents
from engine.models import Base, Comment, Group, Person, Request, WorkflowVersion
from engine.notifications import NotificationInbox
from engine.orders import Orders
from engine.problems import Problems, stamp_problem
from engine.records import Records
from engine.runtime import transition
from engine.satisfaction import Satisfaction
from engine.unit import UnitOfWork, UnitRunner, audit, tasks_of_visit, touch, workflow
from engine.versions import keep_version
from engine.worklist import SavedViews, is_agent


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FirstReads:
    """What a submit reads before it checks anything (`_read_first`)."""

    #: the workflow version's stored row (None: no request used it yet)
    version: WorkflowVersion | None
    owner_exists: bool
    #: the new request's id on SQLite (None: PostgreSQL's sequence gives it, `_NEXT_ID`)
    next_id: int | None


@functools.lru_cache(maxsize=4)
def _first_reads(dialect: str) -> Select[Any]:
    """The person ordering and their manager (often the first approver), the stored
    row of the item's workflow version (its definition is not read: the model is cached) and
    the item's owner group, in one SELECT built once per dialect; on SQLite also the id the new
    request gets: the one SQLite would choose itself (one past the highest), since the unit
    holds the write lock from its BEGIN IMMEDIATE."""
    manager = aliased(Person)
    stmt: Any = (select(Person, manager, WorkflowVersion, Group.id).select_from(Person)
                 .outerjoin(manager, manager.id == Person.manager_id)
                 .outerjoin(WorkflowVersion, and_(
                     WorkflowVersion.workflow_id == bindparam("workflow"),
                     WorkflowVersion.version == bindparam("version")))
                 .outerjoin(Group, Group.id == bindparam("owner"))
                 .where(Person.id == bindparam("person"))
                 .options(defer(WorkflowVersion.definition)))
    if dialect == "sqlite":
        stmt = stmt.add_columns(select(func.coalesce(func.max(Request.id), 0) + 1)
                                .scalar_subquery())
    return stmt


#: a new request's id on PostgreSQL, taken once the answers are checked (as its INSERT took it)
_NEXT_ID = select(func.nextval(func.pg_get_serial_sequence("requests", "id")))


def _read_first(unit: UnitOfWork, actor: str, item: CatalogItem | None,
                wf: Workflow | None) -> FirstReads:
    """Read what a submit needs first in one statement; the person is kept in the unit."""
    s = unit.session
    dialect = s.get_bind().dialect.name
    if dialect == "sqlite" and any(isinstance(o, Request) for o in s.new):
        s.flush()  # a record this unit added before is counted in the highest id
    row = s.execute(_first_reads(dialect), {
        "person": actor, "workflow": wf.id if wf else None, "version": wf.version if wf else None,
        "owner": item.owner if item else None}).one_or_none()
    if row is None:
        unit.remember(actor, None)
        return FirstReads(None, False, None)
    person, manager, version, owner = row[:4]
    unit.remember(actor, person)
    if manager is not None:
        unit.remember(manager.id, manager)
    return FirstReads(version, owner is not None, row[4] if dialect == "sqlite" else None)


#: a new request goes in by Core, built once: the ORM's flush of the one row cost more than the
#: statement; the columns a submit leaves unset take their Python defaults (None without one)
_REQUESTS = Base.metadata.tables[Request.__tablename__]
_INSERT_REQUEST = insert(_REQUESTS)
_REQUEST_DEFAULTS = {c.key: c.default.arg if c.default is not None else None  # type: ignore[attr-defined]
                     for c in _REQUESTS.columns}
if any(c.default is not None and not c.default.is_scalar for c in _REQUESTS.columns):
    # a callable or SQL default would be inserted as the function itself: give it here first
    raise TypeError("engine.service inserts requests by Core with scalar column defaults only")


def _insert_request(s: Session, req: Request) -> None:
    """Insert the complete row of a new request (its id given) now, with its facts row, as the
    flush of it would have; it joins the session as if loaded, so a later change of it is an
    UPDATE checked against its version."""
    if s.new or s.dirty or s.deleted:
        s.flush()  # what the unit wrote before goes first, as one flush would have ordered it
    state = inspect(req)
    given = state.dict
    row = {k: given.get(k, v) for k, v in _REQUEST_DEFAULTS.items()}
    row["lock_version"] = 1  # the version column's first value, as the ORM gives it
    conn = s.connection()
    conn.execute(_INSERT_REQUEST, row)
    record_figures.write_facts(conn, [record_figures.fact_row(row.get)])
    # every column is loaded (none left to expire and read back), then the object is persistent
    given.update({k: v for k, v in row.items() if k not in given})
    make_transient_to_detached(req)
    s.add(req)
    memo.forget(s)  # as after a flush: answers remembered before may have changed


class RequestService(Attachments, Changes, Decisions, EmailActions, Fulfilment, Lifecycle, MajorIncidents,
                     NotificationInbox, Orders, Problems, Records, Satisfaction, SavedViews):
    """Operations on requests, each in its own transaction, with permission checks."""

    def __init__(self, sessions: sessionmaker[Session], catalog: Callable[[], Catalog],
                 clock: Callable[[], datetime] = utcnow, base_url: str = "",
                 secret_key: str = "", attachments: AttachmentStore | None = None) -> None:
        self.sessions, self.catalog, self.clock = sessions, catalog, clock
        self.base_url = base_url.rstrip("/")
        #: signs the satisfaction links in emails (the web app's secret key)
        self.secret_key = secret_key
        #: runs one use case in one transaction (retried on a concurrent change)
        self.unit = UnitRunner(sessions, catalog, clock, self.base_url, secret_key, attachments)

    # ------------------------------------------------------------ reading

    def request(self, session: Session, number: str, viewer: str, now: datetime) -> Request:
        """The request with this number, if `viewer` may see it (else NotFound, never 403)."""
        req = session.scalar(select(Request).where(Request.number == number))
        if req is None or not (permissions.can_view_request(session, viewer, req, now)
                               or self._desk_reads_everything(session, viewer)):
            raise NotFound(f"no request {number}")
        return req

    def _desk_reads_everything(self, session: Session, viewer: str) -> bool:
        """With `agents_see: all` every desk agent reads every record the agents' list shows
        them; acting on one still needs a part in it."""
        cat = self.catalog()
        return cat.settings.agents_see == "all" and is_agent(session, cat, viewer)

    # ------------------------------------------------------------ requests

    def submit(self, item_id: str, actor: str, answers: dict[str, Any],
               requested_for: str | None = None, channel: str = "portal") -> Request:
        """Order an item: validate the answers, pin the workflow version, start the workflow.

        An agent logging a record for a caller gives `requested_for` and the `channel` it
        came in by (engine.records.CHANNELS); everyone else orders through the portal.
        """

        return self.unit(actor, lambda unit: self._submitted(unit, item_id, actor, answers,
                                                             requested_for, channel))

    def submit_once(self, key: str, body: Any, item_id: str, actor: str, answers: dict[str, Any],
                    requested_for: str | None = None) -> tuple[Request, bool]:
        """`submit` under an Idempotency-Key (engine.idempotency): the same key and `body` give
        back the first record (and False) instead of ordering again."""
        return self.unit(actor, lambda unit: idempotency.once(
            unit, actor, idempotency.check_key(key), body,
            lambda u: self._submitted(u, item_id, actor, answers, requested_for, "portal")))

    def _submitted(self, unit: UnitOfWork, item_id: str, actor: str, answers: dict[str, Any],
                   requested_for: str | None, channel: str) -> Request:
        """`submit` inside a unit of work (engine.problems opens a problem and links it in one)."""
        s, cat = unit.session, unit.catalog
        item = cat.item(item_id)
        wf = cat.workflow(item.workflow) if item is not None else None
        first = _read_first(unit, actor, item, wf)
        requester = unit.active_person(actor)
        if requester is None:
            raise NotAllowed(f"{actor} cannot order: not an active person")
        if item is None or not permissions.can_order(s, actor, item):
            raise NotFound(f"no catalog item {item_id}")
        target = requested_for or actor
        if target != actor:
            if not item.order_for_others:
                raise InvalidInput(f"{item.name} cannot be ordered for someone else",
                                   {"requested_for": ["This item is ordered for yourself only."]})
            if people.active_person(s, target) is None:
                raise InvalidInput(f"no active person {target}",
                                   {"requested_for": [f"{target} is not an active person."]})
        via = records.checked_channel(s, cat, actor, item, channel)
        if wf is None:
            raise Conflict(f"item {item_id} has no workflow {item.workflow}")
        # roles and groups are read only when the form's expressions read them
        context = unit.person_context(actor, intake.reads_lists(cat, item))
        given = intake.check_answers(s, cat, item, answers, context, requested_for=target,
                                     files=unit.attachments)
        clean = without_files(item.fields, given)
        version = keep_version(s, wf, unit.now, first.version)
        new_id = first.next_id if first.next_id is not None else s.scalar(_NEXT_ID)
        # the row goes in once, complete: its number, the first state's visit, the SLA's dues
        req = Request()
        # set as a load sets them, without the attributes' events: Core writes the row
        inspect(req).dict.update(
            id=new_id, number=f"REQ-{new_id:06d}", item_id=item.id, item_name=item.name,
            workflow_version_id=version.id, workflow_version=version, state=wf.start,
            status="open", visit=1, sla_state="ok", answers=clean, requester_id=actor,
            requested_for_id=target, priority=intake.priority(cat, item, clean),
            created_at=unit.now, updated_at=unit.now)
        records.stamp(s, cat, item, clean, req, via, owner_exists=first.owner_exists)
        sla.set_dues(unit, req, wf)
        _insert_request(s, req)  # the request alone: its id names it in what follows
        stamp_problem(unit, item, clean, req)
        stamp_change(unit, item, clean, req, context or {})
        audit(unit, req, "submitted", None, wf.start, item=item.id, version=wf.version,
              requested_for=target, **({"channel": via} if via != "portal" else {}))
        kept = keep_files(unit, req, item.fields, given, actor)
        if kept:  # the file fields' answers reference the attachments just kept
            req.answers = {**clean, **kept}
        major.flag_by_rule(unit, req)
        sla.schedule(unit, req)
        runtime.start(unit, req, wf, entered=True)
        return req

    def cancel(self, number: str, actor: str, reason: str = "",
               seen_version: int | None = None) -> Request:
        def work(unit: UnitOfWork) -> Request:
            req = self.request(unit.session, number, actor, unit.now)
            self._ensure_can_cancel(unit, req, actor)
            fresh(req, seen_version)
            self._open(req)
            ensure_closable(unit.session, req, workflow(req))
            transition(unit, req, "cancel", reason=checked_text(reason, "reason", required=False))
            return req

        return self.unit(actor, work)

    def comment(self, number: str, actor: str, body: str, internal: bool = False,
                files: Sequence[tuple[str, bytes]] = ()) -> Comment:
        """Comment on a record; `files` (name, content) are attached to the comment, all or
        none (engine.attachments). With files the text may be left empty."""

        def work(unit: UnitOfWork) -> Comment:
            s = unit.session
            req = self.request(s, number, actor, unit.now)
            if not permissions.takes_part(s, actor, req, unit.now):
                raise NotAllowed(f"{actor} worked on {req.number} once and may read it, "
                                 "but no longer takes part in it")
            agent = permissions.is_agent(s, actor, req)
            if internal and not agent:
                raise NotAllowed("only people working on the request can write internal notes")
            text = body
            if files and isinstance(body, str) and not body.strip():
                text = "Attached " + ", ".join(safe_filename(name) for name, _ in files) + "."
            c = Comment(request_id=req.id, author_id=actor, body=checked_text(text, "body"),
                        internal=internal, created_at=unit.now)
            s.add(c)
            s.flush()
            for name, data in files:
                add_attachment(unit, req, name, data, actor, comment=c)
            if agent and not internal and req.responded_at is None and not permissions.is_party(req, actor):
                req.responded_at = unit.now
            touch(unit, req)
            audit(unit, req, "comment", comment=c.id, internal=internal)
            if not internal and not permissions.is_party(req, actor):
                unit.queue_email(req, "comment_added", [req.requester_id], key=f"comment:{c.id}",
                                 comment={"body": c.body})
            elif not internal:
                notifications.tell(
                    unit, req, notifications.CALLER_REPLY,
                    [p for p in notifications.holders(unit, req) if not permissions.is_party(req, p)],
                    f"{notifications.name_of(unit, actor)} replied: {notifications.excerpt(c.body)}",
                    key=f"comment:{c.id}")
            if not internal:  # watchers follow the public conversation by email
                told = {actor} | (set() if permissions.is_party(req, actor) else {req.requester_id})
                unit.queue_email(req, "comment_added",
                                 [w for w in records.watchers_of(s, req) if w not in told],
                                 key=f"comment:{c.id}", comment={"body": c.body})
            notifications.tell_mentions(unit, req, c.body, actor, key=f"comment:{c.id}",
                                        internal=internal)
            return c

        return self.unit(actor, work)

    def ask_requester(self, number: str, actor: str, question: str,
                      seen_version: int | None = None) -> Comment:
        """An agent asks the requester something; the SLA clocks stop until they answer."""

        def work(unit: UnitOfWork) -> Comment:
            s = unit.session
            req = self.request(s, number, actor, unit.now)
            fresh(req, seen_version)
            self._open(req)
            if not permissions.is_agent(s, actor, req):
                raise NotAllowed("only people working on the request can ask the requester")
            if req.waiting_on_requester:
                raise Conflict(f"{number} is already waiting on the requester")
            c = Comment(request_id=req.id, author_id=actor, body=checked_text(question, "question"),
                        kind="question", created_at=unit.now)
            s.add(c)
            s.flush()
            req.waiting_on_requester = True
            req.responded_at = req.responded_at or unit.now
            touch(unit, req)
            sla.pause(unit, req)
            audit(unit, req, "asked_requester", comment=c.id)
            unit.queue_email(req, "question_asked", [req.requester_id], key=f"question:{c.id}",
                             comment={"body": c.body})
            return c

        return self.unit(actor, work)

    def answer(self, number: str, actor: str, text: str) -> Comment:
        def work(unit: UnitOfWork) -> Comment:
            s = unit.session
            req = self.request(s, number, actor, unit.now)
            if not permissions.is_party(req, actor):
                raise NotAllowed("only the requester can answer")
            if not req.waiting_on_requester:
                raise Conflict(f"{number} is not waiting for an answer")
            c = Comment(request_id=req.id, author_id=actor, body=checked_text(text, "answer"),
                        kind="answer", created_at=unit.now)
            s.add(c)
            s.flush()
            req.waiting_on_requester = False
            touch(unit, req)
            sla.resume(unit, req)
            audit(unit, req, "answered", comment=c.id)
            assignees = [t.assignee_id for t in tasks_of_visit(s, req) if t.assignee_id]
            notifications.tell(
                unit, req, notifications.CALLER_REPLY,
                [p for p in notifications.holders(unit, req) if not permissions.is_party(req, p)],
                f"{notifications.name_of(unit, actor)} answered: {notifications.excerpt(c.body)}",
                key=f"answer:{c.id}", email="comment_added", email_ids=assignees,
                comment={"body": c.body})
            return c

        return self.unit(actor, work)

    @staticmethod
    def _ensure_can_cancel(unit: UnitOfWork, req: Request, actor: str) -> None:
        if not permissions.can_cancel(unit.session, actor, req):
            raise NotAllowed(f"only the requester can cancel {req.number}")

    def authorize(self, action: str, target: int | str, actor: str) -> None:
        """Refuse (NotFound/NotAllowed) before any input is read if `actor` may not act at all.

        Runs the same checks as the action itself (a refused self-approval or self-delegation
        is recorded) and changes nothing else; views call it before validating their forms.
        """

        def work(unit: UnitOfWork) -> None:
            if action in ("cancel", "retry", "route"):
                req = self.request(unit.session, str(target), actor, unit.now)
                if action == "cancel":
                    self._ensure_can_cancel(unit, req, actor)
                else:
                    self._ensure_can_handle_attention(unit, req, actor)
                return
            appr, req = self._approval(unit, int(target), actor)
            if action in ("approve", "reject"):
                self._ensure_can_decide(unit, appr, req, actor)
            elif action == "delegate":
                self._ensure_can_delegate(unit, appr, req, actor)

        self.unit(actor, work)

    # ------------------------------------------------------------ needs attention

    @staticmethod
    def _ensure_can_handle_attention(unit: UnitOfWork, req: Request, actor: str) -> None:
        if not people.is_admin(unit.session, actor):
            raise NotAllowed(f"only an admin can retry or route {req.number} by hand")

    def _halted(self, unit: UnitOfWork, number: str, actor: str, seen_version: int | None) -> Request:
        req = self.request(unit.session, number, actor, unit.now)
        self._ensure_can_handle_attention(unit, req, actor)
        fresh(req, seen_version)
        if req.status != "open" or req.attention_at is None:
            raise Conflict(f"{number} does not need attention (it is {req.state})")
        return req

    def retry(self, number: str, actor: str, reason: str,
              seen_version: int | None = None) -> Request:
        """Re-run the step a request halted on, with today's data (admins); it may fail again."""

        def work(unit: UnitOfWork) -> Request:
            req = self._halted(unit, number, actor, seen_version)
            audit(unit, req, "attention_retried", state=req.state, step=req.attention_step,
                  error=req.attention_error, reason=checked_text(reason, "reason"))
            touch(unit, req)
            attention.retry(unit, req)
            return req

        return self.unit(actor, work)

    def route(self, number: str, actor: str, reason: str, to_state: str | None = None,
              outcome: str | None = None, seen_version: int | None = None) -> Request:
        """Move a halted request by hand (admins): into a declared state, or end it with an outcome."""

        def work(unit: UnitOfWork) -> Request:
            req = self._halted(unit, number, actor, seen_version)
            wf = workflow(req)
            why = checked_text(reason, "reason")
            if (to_state is None) == (outcome is None):
                raise InvalidInput("route to a state or end with an outcome, not both or neither",
                                   {"target": ["Choose a state or an outcome."]})
            if to_state is not None and wf.state(to_state) is None:
                raise InvalidInput(f"{wf.id} {wf.version} has no state {to_state}",
                                   {"target": [f"{to_state} is not a state of this workflow."]})
            outcomes = attention.declared_outcomes(req)
            if outcome is not None and outcome not in outcomes:
                raise InvalidInput(f"{wf.id} {wf.version} declares no outcome {outcome}",
                                   {"target": [f"Choose one of: {', '.join(outcomes)}."]})
            dest = to_state if to_state is not None else outcomes[str(outcome)]
            if (end := wf.state(dest)) is not None and end.is_end:
                ensure_closable(unit.session, req, wf)
            audit(unit, req, "attention_routed", req.state, dest, step=req.attention_step,
                  error=req.attention_error, outcome=outcome, reason=why)
            touch(unit, req)
            attention.route(unit, req, to_state, outcome)
            return req

        return self.unit(actor, work)

    # ------------------------------------------------------------ timers

    def run_due(self, now: datetime | None = None, limit: int = 200) -> int:
        """Fire every timer due by `now` (default: the clock), each in its own transaction."""
        return timers.run_due(self.unit, now or self.clock(), limit)

    @staticmethod
    def _open(req: Request) -> None:
        if req.status != "open":
            raise Conflict(f"{req.number} is already {req.outcome}")
