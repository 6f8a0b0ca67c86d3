"""The incident lifecycle: resolve with a code, confirm or reopen, merge duplicates.

A mixin of `RequestService` (engine.service): each public method is one unit of work.

- `resolve` completes the open task of the current state with its `resolved` outcome and
  stores the resolution (code from deskflow.yaml `resolution_codes`, notes) on the record;
  the SLA clocks stop while the record waits for the caller.
- `confirm_resolution` (the caller): the record closes now, as its wait would have.
- `reopen` (the caller, or an agent for them) within `reopen_window` of the resolution:
  back to the state it was resolved in, with a new task; the SLA clocks run again.
- `merge` (agents): the duplicate closes as `duplicate`, linked `duplicate_of` the
  survivor, which gets its comments (marked with their origin), watchers and caller.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Duration
from catalog.workflow import StateKind
from engine import attention, intake, major, notifications, people, permissions, runtime, satisfaction, sla
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.inputs import checked_text, fresh
from engine.models import AuditEvent, Comment, RecordLink, Request, Task, Watcher
from engine.records import watchers_of
from engine.tasks import spec_of
from engine.unit import UnitOfWork, UnitRunner, audit, tasks_of_visit, touch, workflow

#: the reopen window when deskflow.yaml sets none
DEFAULT_REOPEN_WINDOW = Duration(3, "day", True)
RESOLVED, DUPLICATE = "resolved", "duplicate"


def reopen_window(unit: UnitOfWork) -> Duration:
    return unit.catalog.settings.reopen_window or DEFAULT_REOPEN_WINDOW


def reopen_until(unit: UnitOfWork, req: Request) -> datetime | None:
    """Until when the caller may reopen the record (None: it is not resolved)."""
    if req.resolved_at is None:
        return None
    return unit.calendar.add(req.resolved_at, reopen_window(unit))


def _local(unit: UnitOfWork, at: datetime) -> str:
    return at.astimezone(ZoneInfo(unit.catalog.settings.time_zone)).strftime("%Y-%m-%d %H:%M")


def resolving_task(session: Session, req: Request) -> Task | None:
    """The open task of the current visit that has a `resolved` outcome, if any."""
    for task in tasks_of_visit(session, req):
        spec = spec_of(req, task)
        if task.status == "open" and spec is not None and RESOLVED in spec.outcomes:
            return task
    return None


def can_resolve(session: Session, actor: str, req: Request) -> bool:
    return (req.status == "open" and req.resolved_at is None
            and permissions.is_agent(session, actor, req)
            and resolving_task(session, req) is not None)


def awaits_confirmation(req: Request) -> bool:
    """Resolved and waiting for the caller (or for the wait to close it)."""
    if req.status != "open" or req.resolved_at is None:
        return False
    state = workflow(req).state(req.state)
    return state is not None and state.kind is StateKind.WAIT


def mark_resolved(unit: UnitOfWork, req: Request, task: Task, code: str | None,
                  notes: str | None, article: str | None = None) -> None:
    """Store the resolution and stop the SLA clocks while the caller checks the fix."""
    req.resolved_at, req.resolution_code, req.resolution_notes = unit.now, code, notes or None
    req.solution_article = article
    if req.sla_paused_at is None:
        sla.pause(unit, req)
    touch(unit, req)
    audit(unit, req, "resolved", state=req.state, task=task.id, code=code, notes=notes or "",
          **({"article": article} if article else {}))
    satisfaction.ask(unit, req)


def resolve_through_workflow(unit: UnitOfWork, req: Request, code: str | None, notes: str,
                             article: str | None) -> bool:
    """Resolve `req` as `resolve` does, for its parent (engine.major); False when it has no
    open resolving task or that task's form refuses the resolution."""
    task = resolving_task(unit.session, req)
    if task is None:
        return False
    try:
        task.answers = _task_answers(unit, req, task, code, notes)
    except InvalidInput:
        return False
    _complete(unit, req, task, code, notes, article)
    return True


def _task_answers(unit: UnitOfWork, req: Request, task: Task, code: str | None,
                  notes: str) -> dict[str, object]:
    """The resolving task's answers: its form's `resolution_code`/`resolution_notes`, checked."""
    spec = spec_of(req, task)
    fields = spec.fields if spec else ()
    given = {"resolution_code": code, "resolution_notes": notes}
    return intake.check_task_answers(unit.session, unit.catalog, fields,
                                     {f.name: given[f.name] for f in fields if f.name in given})


def _complete(unit: UnitOfWork, req: Request, task: Task, code: str | None, notes: str,
              article: str | None) -> None:
    """The task ends with `resolved`, the resolution is stored, the workflow moves on."""
    task.status, task.outcome = "done", RESOLVED
    task.assignee_id = task.assignee_id or unit.actor
    task.completed_at, task.completed_by_id = unit.now, unit.actor
    req.responded_at = req.responded_at or unit.now
    mark_resolved(unit, req, task, code, notes, article)
    runtime.transition(unit, req, RESOLVED)


class Lifecycle:
    """Resolving, confirming, reopening and merging records."""

    unit: UnitRunner

    @staticmethod
    def _lifecycle_record(unit: UnitOfWork, number: str, actor: str) -> Request:
        req = unit.session.scalar(select(Request).where(Request.number == number))
        if req is None or not permissions.can_view_request(unit.session, actor, req, unit.now):
            raise NotFound(f"no request {number}")
        return req

    # ------------------------------------------------------------ resolve

    def resolve(self, number: str, actor: str, code: str | None, notes: str,
                seen_version: int | None = None, solution_article: str | None = None) -> Request:
        """Resolve the record (agents): its open task ends with the `resolved` outcome; its
        open children (engine.major) are resolved with it."""

        def work(unit: UnitOfWork) -> Request:
            s = unit.session
            req = self._lifecycle_record(unit, number, actor)
            if not permissions.is_agent(s, actor, req):
                raise NotAllowed(f"only agents of {req.number} can resolve it")
            fresh(req, seen_version)
            if req.status != "open":
                raise Conflict(f"{req.number} is already {req.outcome}")
            if req.resolved_at is not None:
                raise Conflict(f"{req.number} is already resolved")
            task = resolving_task(s, req)
            if task is None:
                raise Conflict(f"{req.number} has no open task that can be resolved "
                               f"(it is {req.state})")
            if task.assignee_id not in (None, actor) and not people.is_admin(s, actor):
                raise Conflict(f"task {task.id} is claimed by {task.assignee_id}")
            clean_code = _checked_code(unit, code)
            text = checked_text(notes, "resolution_notes")
            article = _checked_article(unit, actor, solution_article)
            task.answers = _task_answers(unit, req, task, clean_code, text)
            _complete(unit, req, task, clean_code, text, article)
            report = major.resolve_children(unit, req, clean_code, text, article,
                                            resolve_through_workflow)
            if any(report.values()):
                audit(unit, req, "children_resolved", resolved=report["resolved"],
                      closed=report["closed"], skipped=report["skipped"])
            return req

        return self.unit(actor, work)

    # ------------------------------------------------------------ confirm, reopen

    def confirm_resolution(self, number: str, actor: str) -> Request:
        """The caller confirms the fix: the record closes now (as its wait would have)."""

        def work(unit: UnitOfWork) -> Request:
            return confirm_resolution_in(unit, number, actor)

        return self.unit(actor, work)

    def reopen(self, number: str, actor: str, reason: str) -> Request:
        """Back to work (the caller, or an agent for them) within the reopen window."""

        def work(unit: UnitOfWork) -> Request:
            return reopen_in(unit, number, actor, reason)

        return self.unit(actor, work)

    # ------------------------------------------------------------ merge

    def merge(self, duplicate_number: str, survivor_number: str, actor: str,
              seen_version: int | None = None) -> Request:
        """Close `duplicate_number` as a duplicate of `survivor_number` (agents); return the survivor."""

        def work(unit: UnitOfWork) -> Request:
            s = unit.session
            dup = self._lifecycle_record(unit, duplicate_number, actor)
            if not permissions.is_agent(s, actor, dup):
                raise NotAllowed(f"only agents of {dup.number} can merge it")
            fresh(dup, seen_version)
            wanted = survivor_number.strip().upper() if isinstance(survivor_number, str) else ""
            if not wanted:
                raise InvalidInput("say which record to merge into",
                                   {"survivor": ["This field is required."]})
            survivor = s.scalar(select(Request).where(Request.number == wanted))
            if survivor is None or not permissions.can_view_request(s, actor, survivor, unit.now):
                raise InvalidInput(f"no record {wanted}", {"survivor": [f"There is no record {wanted}."]})
            _check_merge(s, dup, survivor)
            moved = _move_parties(s, dup, survivor)
            copied = _copy_comments(unit, dup, survivor)
            s.add(RecordLink(source_id=dup.id, target_id=survivor.id, kind="duplicate_of",
                             created_at=unit.now, created_by_id=actor))
            audit(unit, survivor, "merged_in", other=dup.number, comments=copied, watchers=moved)
            touch(unit, survivor)
            audit(unit, dup, "merged", other=survivor.number, comments=copied, watchers=moved)
            _close_as_duplicate(unit, dup, survivor)
            return survivor

        return self.unit(actor, work)


# ---------------------------------------------------------------- helpers


def confirm_resolution_in(unit: UnitOfWork, number: str, actor: str) -> Request:
    """`Lifecycle.confirm_resolution` inside the caller's unit (engine.email_actions)."""
    req = Lifecycle._lifecycle_record(unit, number, actor)
    if not permissions.is_party(req, actor):
        raise NotAllowed(f"only the caller of {req.number} can confirm its resolution")
    if req.status != "open":
        raise Conflict(f"{req.number} is already {req.outcome}")
    if not awaits_confirmation(req):
        raise Conflict(f"{req.number} is not waiting for a confirmation (it is {req.state})")
    audit(unit, req, "resolution_confirmed")
    touch(unit, req)
    runtime.transition(unit, req, "timer", confirmed=True)
    return req


def reopen_in(unit: UnitOfWork, number: str, actor: str, reason: str) -> Request:
    """`Lifecycle.reopen` inside the caller's unit (engine.email_actions)."""
    s = unit.session
    req = Lifecycle._lifecycle_record(unit, number, actor)
    if not (permissions.is_party(req, actor) or permissions.is_agent(s, actor, req)):
        raise NotAllowed(f"only the caller or agents of {req.number} can reopen it")
    if req.status != "open":
        when = f" on {_local(unit, req.closed_at)}" if req.closed_at else ""
        raise Conflict(f"{req.number} was closed{when}; "
                       "open a new incident and mention it")
    if req.resolved_at is None:
        raise Conflict(f"{req.number} is not resolved; there is nothing to reopen")
    until = reopen_until(unit, req)
    assert until is not None
    if unit.now > until:
        raise Conflict(f"{req.number} was resolved on {_local(unit, req.resolved_at)} and "
                       f"could be reopened until {_local(unit, until)}; "
                       "open a new incident and mention it")
    why = checked_text(reason, "reason")
    back = s.scalar(select(AuditEvent.detail).where(
        AuditEvent.request_id == req.id, AuditEvent.event == "resolved")
        .order_by(AuditEvent.id.desc()).limit(1))
    dest = (back or {}).get("state")
    wf = workflow(req)
    if not dest or wf.state(dest) is None:
        raise Conflict(f"{req.number} cannot go back: its workflow has no state "
                       f"{dest or '(unknown)'}")
    c = Comment(request_id=req.id, author_id=actor, body=why, created_at=unit.now)
    s.add(c)
    s.flush()
    old = (req.resolution_code, req.resolution_notes)
    req.resolved_at = req.resolution_code = req.resolution_notes = None
    req.solution_article = None
    req.reopen_count = (req.reopen_count or 0) + 1
    audit(unit, req, "reopened", req.state, dest, reason=why, comment=c.id,
          count=req.reopen_count, code=old[0])
    runtime.clear(req)
    runtime.close_visit(unit, req)
    req.state = dest
    touch(unit, req)
    sla.resume(unit, req)
    runtime.start(unit, req, wf)
    notifications.tell(
        unit, req, notifications.CALLER_REPLY,
        [p for p in notifications.holders(unit, req) if not permissions.is_party(req, p)],
        f"{notifications.name_of(unit, actor)} reopened it: {notifications.excerpt(why)}",
        key=f"reopen:{c.id}")
    return req


def _checked_code(unit: UnitOfWork, code: str | None) -> str | None:
    codes = unit.catalog.settings.resolution_codes
    if code is not None and not isinstance(code, str):
        raise InvalidInput("resolution_code must be text", {"resolution_code": ["Must be text."]})
    text = (code or "").strip()
    if not codes:
        return text or None
    if not text:
        raise InvalidInput("a resolution code is required",
                           {"resolution_code": ["This field is required."]})
    if text not in codes:
        raise InvalidInput(f"unknown resolution code {text}",
                           {"resolution_code": [f"Choose one of: {', '.join(codes)}."]})
    return text


def _checked_article(unit: UnitOfWork, actor: str, article_id: str | None) -> str | None:
    """The article that solved it: one the agent may read, or none."""
    if article_id is not None and not isinstance(article_id, str):
        raise InvalidInput("solution_article must be text", {"solution_article": ["Must be text."]})
    wanted = (article_id or "").strip()
    if not wanted:
        return None
    article = unit.catalog.article(wanted)
    if article is None or not permissions.can_see_item(unit.session, actor, article.visible_to):
        raise InvalidInput(f"no article {wanted}",
                           {"solution_article": [f"There is no article {wanted}."]})
    return article.id


def _check_merge(session: Session, dup: Request, survivor: Request) -> None:
    s = session
    if dup.id == survivor.id:
        raise InvalidInput(f"{dup.number} cannot be merged into itself",
                           {"survivor": ["A record cannot be merged into itself."]})
    if dup.status != "open":
        raise Conflict(f"{dup.number} is already {dup.outcome}")
    if survivor.status != "open":
        raise InvalidInput(f"{survivor.number} is already {survivor.outcome}",
                           {"survivor": [f"{survivor.number} is closed; merge into an open record."]})
    if dup.record_type != survivor.record_type:
        raise InvalidInput(f"{dup.number} is a {dup.record_type}, {survivor.number} a "
                           f"{survivor.record_type}",
                           {"survivor": [f"{survivor.number} is a {survivor.record_type}; merge "
                                         f"into another {dup.record_type}."]})
    current: int | None = survivor.id
    seen: set[int] = set()
    while current is not None and current not in seen:
        if current == dup.id:
            raise InvalidInput(f"{survivor.number} is a duplicate of {dup.number}",
                               {"survivor": [f"{survivor.number} is a duplicate of {dup.number}; "
                                             f"merge {survivor.number} into {dup.number} instead."]})
        seen.add(current)
        current = s.scalar(select(RecordLink.target_id).where(
            RecordLink.source_id == current, RecordLink.kind == "duplicate_of"))


def _move_parties(session: Session, dup: Request, survivor: Request) -> list[str]:
    """The duplicate's watchers and callers watch the survivor now; returns who was added."""
    s = session
    wanted = dict.fromkeys([*watchers_of(s, dup), dup.requester_id, dup.requested_for_id])
    already = set(watchers_of(s, survivor))
    added = []
    for person in wanted:
        if person in already or permissions.is_party(survivor, person):
            continue
        s.add(Watcher(request_id=survivor.id, person_id=person))
        added.append(person)
    for row in s.scalars(select(Watcher).where(Watcher.request_id == dup.id)):
        s.delete(row)
    return added


def _copy_comments(unit: UnitOfWork, dup: Request, survivor: Request) -> int:
    s = unit.session
    rows = list(s.scalars(select(Comment).where(Comment.request_id == dup.id).order_by(Comment.id)))
    for c in rows:
        s.add(Comment(request_id=survivor.id, author_id=c.author_id, internal=c.internal,
                      body=f"(From {dup.number}, {_local(unit, c.created_at)})\n\n{c.body}",
                      created_at=c.created_at))
    return len(rows)


def _close_as_duplicate(unit: UnitOfWork, dup: Request, survivor: Request) -> None:
    """End the duplicate's workflow with the `duplicate` outcome, or close it administratively."""
    s = unit.session
    codes = unit.catalog.settings.resolution_codes
    dup.resolved_at = unit.now
    dup.resolution_code = DUPLICATE if not codes or DUPLICATE in codes else None
    dup.resolution_notes = f"Duplicate of {survivor.number}."
    touch(unit, dup)
    for task in tasks_of_visit(s, dup):
        spec = spec_of(dup, task)
        if task.status == "open" and spec is not None and DUPLICATE in spec.outcomes:
            task.status, task.outcome = "done", DUPLICATE
            task.completed_at, task.completed_by_id = unit.now, unit.actor
            runtime.transition(unit, dup, DUPLICATE, merged_into=survivor.number)
            return
    if DUPLICATE in attention.declared_outcomes(dup):
        attention.route(unit, dup, None, DUPLICATE)
        return
    audit(unit, dup, "closed_administratively", dup.state, dup.state, outcome=DUPLICATE)
    runtime.clear(dup)
    runtime.close_visit(unit, dup)
    dup.visit += 1
    runtime.finish(unit, dup, DUPLICATE)
