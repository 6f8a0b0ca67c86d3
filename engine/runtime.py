"""Moving a request through its workflow inside one unit of work.

`transition` fires a trigger on the workflow version's shared machine, closes what
belonged to the state it leaves, records the audit row, and enters the next state:
creating approvals, tasks and timers, running actions, and following decisions and
action states until the request waits or ends.

A step that fails at runtime (an expression, an action, a lookup, nobody to approve) raises
`StepFailed` inside its guard (`guard`); `transition` and `start` catch it and `flag` the
request where it halted, so what the caller did still commits. `engine.attention` retries
the step or routes the request by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from catalog.errors import DeskflowError
from catalog.expressions import ExpressionError, Template
from catalog.loader import Catalog
from catalog.workflow import StateKind, Workflow
from engine import approvals, people, table_text
from engine.actions import ACTIONS
from engine.businesstime import BusinessCalendar
from engine.errors import Conflict, StepFailed
from engine.models import Approval, AuditEvent, Membership, Person, Request, Task, Timer
from engine.outbox import insert_rows
from engine.versions import workflow_of
from workflows.compiler import fire, machine_for
from workflows.errors import WorkflowError

MAX_AUTOMATIC_STEPS = 100
MAX_ERROR = 2000  # characters of a step's error kept on the request
REQUEST_LEVEL = -1  # the visit of timers that outlive states (SLA clocks)


@dataclass
class Step:
    """One unit of work: the session, the catalog, the time, and who acts.

    It also remembers what the unit has read (people) and collects what it writes in bulk
    at the end (audit rows, outbox rows, the version bump of each request it touched).
    """

    session: Session
    catalog: Catalog
    now: datetime
    actor: str | None
    calendar: BusinessCalendar
    notify: Callable[..., None] = field(repr=False, default=lambda *a, **k: None)
    #: where links in emails point, e.g. https://desk.example.com
    base_url: str = ""
    audit_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    outbox_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    touched: dict[int, tuple[Request, int]] = field(default_factory=dict, repr=False)
    visit_approvals: dict[int, tuple[int, list[Approval]]] = field(default_factory=dict, repr=False)
    _people: dict[str, Person | None] = field(default_factory=dict, repr=False)
    _snapshots: dict[tuple[str, bool], dict[str, Any] | None] = field(default_factory=dict, repr=False)

    @property
    def functions(self) -> dict[str, Callable[..., Any]]:
        return self.catalog.functions()

    def person(self, person_id: str | None) -> Person | None:
        """A person, read once per unit (the objects are held, so no second query)."""
        if not person_id:
            return None
        if person_id not in self._people:
            self._people[person_id] = self.session.get(Person, person_id)
        return self._people[person_id]

    def active_person(self, person_id: str | None) -> Person | None:
        p = self.person(person_id)
        return p if p is not None and p.active else None

    def members(self, group_id: str) -> list[str]:
        """Active members of a group, read with their people in one query."""
        rows = list(self.session.scalars(
            select(Person).join(Membership, Membership.person_id == Person.id)
            .where(Membership.group_id == group_id, Person.active.is_(True))
            .order_by(Person.id)))
        for p in rows:
            self._people[p.id] = p
        return [p.id for p in rows]

    def snapshot(self, person_id: str | None, lists: bool) -> dict[str, Any] | None:
        """A person as expressions see them; their roles and groups only when read."""
        key = (person_id or "", lists)
        if key not in self._snapshots:
            p = self.person(person_id)
            snap: dict[str, Any] | None = None if p is None else {
                "id": p.id, "name": p.name, "email": p.email, "manager": p.manager_id,
                "title": p.title, "department": p.department, "location": p.location,
                "active": p.active}
            if snap is not None and lists:
                snap["roles"] = people.roles_of(self.session, p.id)  # type: ignore[union-attr]
                snap["groups"] = people.groups_of(self.session, p.id)  # type: ignore[union-attr]
            self._snapshots[key] = snap
        return self._snapshots[key]

    def finish(self) -> None:
        """Write what the unit collected: version bumps, then audit and outbox rows in bulk."""
        s = self.session
        s.flush()
        for req, version in self.touched.values():
            if req.lock_version == version:  # nothing else changed it: bump it anyway
                req.updated_at = self.now
                flag_modified(req, "updated_at")
        s.flush()
        if self.audit_rows:
            for row in self.audit_rows:
                req = row.pop("request", None)
                row["request_id"] = req.id if req is not None else None
                row["detail"] = {k: (v.id if hasattr(v, "__table__") else v)
                                 for k, v in row["detail"].items()}
            s.execute(insert(AuditEvent), self.audit_rows)
            self.audit_rows = []
        if self.outbox_rows:
            insert_rows(s, self.outbox_rows)
            self.outbox_rows = []


def touch(step: Step, req: Request) -> None:
    """Mark the request changed, so its version moves on even when nothing else did.

    Every action on a request bumps its version: two actions on one request are
    thereby serialised, and a page loaded before an action is recognisably stale.
    The bump happens once, when the unit ends (Step.finish).
    """
    req.updated_at = step.now
    step.touched.setdefault(id(req), (req, req.lock_version))


def workflow(req: Request) -> Workflow:
    return workflow_of(req.workflow_version)


def reads_lists(wf: Workflow) -> bool:
    """Whether any expression of the workflow reads someone's roles or groups."""
    found = _LISTS.get(wf.version)
    if found is None:
        found = _LISTS[wf.version] = any(
            len(path) > 1 and path[0] in ("requester", "requested_for")
            and path[1] in ("roles", "groups")
            for expr in wf.expressions() for path in expr.paths)
    return found


_LISTS: dict[str, bool] = {}


def context(step: Step, req: Request) -> dict[str, Any]:
    """What expressions see: plain snapshots of the form, the people, the request, the item."""
    item = step.catalog.item(req.item_id)
    form = {f.name: None for f in item.fields} if item else {}
    form.update(req.answers)
    lists = reads_lists(workflow(req))
    return {
        "form": form,
        "requester": step.snapshot(req.requester_id, lists),
        "requested_for": step.snapshot(req.requested_for_id, lists),
        "request": {"number": req.number, "state": req.state, "priority": req.priority,
                    "item": req.item_id, "created_at": req.created_at.isoformat(),
                    "status": req.status},
        "item": {"id": req.item_id, "name": req.item_name,
                 "category": item.category if item else "", "owner": item.owner if item else None},
        "now": step.now.isoformat(),
    }


def audit(step: Step, req: Request | None, event: str, /, from_state: str | None = None,
          to_state: str | None = None, actor: str | None | bool = True, **detail: Any) -> None:
    """Record an audit row (written in bulk when the unit ends)."""
    step.audit_rows.append({
        "request": req, "actor_id": step.actor if actor is True else (actor or None),
        "event": event, "from_state": from_state, "to_state": to_state, "detail": detail,
        "at": step.now})


def render(step: Step, req: Request, template: Template | None, default: str = "") -> str:
    """Fill in a template; a failure is the failure of the step that renders it."""
    if template is None:
        return default
    return fill(step, req, template)


def fill(step: Step, req: Request, template: Template) -> str:
    """Render a template; a failing placeholder is named by its expression, trimmed."""
    try:
        return template.render(table_text.readable(context(step, req)), step.functions)
    except ExpressionError as exc:
        for part in template.expressions:
            if exc.message.startswith(f"{part.source}: "):
                raise ExpressionError(f"{part.source.strip()}: "
                                      f"{exc.message[len(part.source) + 2:]}") from None
        raise


# ---------------------------------------------------------------- failing steps


def describe(exc: BaseException) -> str:
    """An error in words: our own errors' text, else the kind of error and its message."""
    if isinstance(exc, ExpressionError):
        return exc.message
    if isinstance(exc, DeskflowError):
        return str(exc)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def guard(req: Request, key: str, what: str) -> Iterator[None]:
    """Run one workflow step; its failure becomes StepFailed (database errors pass through).

    `key` names the step for a retry (see engine.attention), `what` in words.
    """
    try:
        yield
    except (StepFailed, SQLAlchemyError):
        raise
    except Exception as exc:
        raise StepFailed(req.state, key, what, describe(exc)) from exc


def flag(step: Step, req: Request, exc: StepFailed) -> None:
    """Halt the request where a step failed, visibly: what it needs is an admin's retry or route."""
    req.attention_at = step.now
    req.attention_state, req.attention_step = exc.state, exc.step
    req.attention_error = str(exc)[:MAX_ERROR]
    touch(step, req)
    audit(step, req, "needs_attention", actor=False, state=exc.state, step=exc.step,
          error=req.attention_error)


def clear(req: Request) -> None:
    """The request moves on: whatever held it up is settled or moot."""
    if req.attention_at is not None or req.attention_step is not None:
        req.attention_at = req.attention_state = req.attention_step = req.attention_error = None


def drive(step: Step, req: Request, work: Callable[[], Any]) -> bool:
    """Run `work`; if a step in it fails, flag the request and keep what came before."""
    try:
        work()
    except StepFailed as exc:
        flag(step, req, exc)
        return False
    return True


# ---------------------------------------------------------------- moving on


def transition(step: Step, req: Request, trigger: str, **detail: Any) -> None:
    """Fire `trigger`, leave the current state, and enter the next one (and onwards).

    A trigger the state does not have is a Conflict and changes nothing. A step that fails
    after that halts the request where it failed, flagged; what came before it is kept.
    """
    drive(step, req, lambda: move(step, req, trigger, detail, asked=True))


def start(step: Step, req: Request, wf: Workflow) -> None:
    """Enter the state the request is in (a new request's first) and go on as far as it goes."""

    def work() -> None:
        trigger = enter(step, req, wf)
        if trigger:
            move(step, req, trigger, {})

    drive(step, req, work)


def move(step: Step, req: Request, trigger: str, detail: dict[str, Any],
         asked: bool = False) -> None:
    """Fire `trigger` and follow automatic steps; StepFailed when a step fails.

    `asked`: the trigger is what the caller asked for, so one the state lacks is a Conflict.
    """
    wf = workflow(req)
    for _ in range(MAX_AUTOMATIC_STEPS):
        source = req.state
        if asked and trigger not in machine_for(wf).get_triggers(source):
            try:
                fire(wf, source, trigger, {}, step.functions)
            except WorkflowError as exc:
                raise Conflict(f"{req.number} is {source}; cannot {trigger}: {exc}") from None
        asked = False
        with guard(req, f"trigger:{trigger}",
                   "decision" if trigger == "route" else f"trigger {trigger}"):
            dest = fire(wf, source, trigger, context(step, req), step.functions)
        clear(req)
        close_visit(step, req)
        audit(step, req, "transition", source, dest, trigger=trigger, **detail)
        req.state = dest
        touch(step, req)
        trigger = enter(step, req, wf) or ""
        detail = {}
        if not trigger:
            return
    raise StepFailed(req.state, f"trigger:{trigger}", "automatic steps",
                     f"workflow {wf.id} loops without waiting "
                     f"({MAX_AUTOMATIC_STEPS} steps without a state that waits)")


def enter(step: Step, req: Request, wf: Workflow) -> str | None:
    """Set up the state the request is in; return the trigger to fire at once, if any."""
    req.visit += 1
    return settle(step, req, wf)


def settle(step: Step, req: Request, wf: Workflow, first_action: int = 0) -> str | None:
    """Run the state's actions from `first_action`, then open what it waits for.

    Return the trigger to fire at once, if any. A retry re-runs it from the failed step.
    """
    state = wf.state(req.state)
    assert state is not None
    run_actions(step, req, state.actions, first_action)
    if state.kind is StateKind.APPROVAL:
        with guard(req, "approvals", "opening its approvals"):
            open_approvals(step, req, wf)
        return None
    if state.kind is StateKind.TASK:
        with guard(req, "tasks", "opening its tasks"):
            open_tasks(step, req, wf)
        return None
    if state.kind is StateKind.WAIT:
        assert state.wait is not None
        step.session.add(Timer(request_id=req.id, kind="wait", visit=req.visit, ref=state.name,
                               due_at=step.calendar.add(step.now, state.wait)))
        return None
    if state.kind is StateKind.DECISION:
        return "route"
    if state.kind is StateKind.ACTION:
        return "next"
    finish(step, req, state.outcome or state.name)
    return None


def run_actions(step: Step, req: Request, actions: tuple[Any, ...], first: int = 0,
                key: str = "action", label: str = "action") -> None:
    """Run `actions` from index `first`; the one that fails names itself (`key:index`)."""
    for i, action in enumerate(actions):
        if i < first:
            continue
        with guard(req, f"{key}:{i}", f"{label} {i + 1} ({action.kind})"):
            ACTIONS[action.kind](step, req, action, f"{req.visit}.{i}")


def open_approvals(step: Step, req: Request, wf: Workflow) -> None:
    """Open the state's approvals; every approver is resolved before anything is written."""
    state = wf.state(req.state)
    assert state is not None
    ctx = context(step, req)
    excluded = list(dict.fromkeys([req.requester_id, req.requested_for_id]))
    resolved = [(spec, approvals.resolve(step.session, spec, ctx, step.functions, excluded))
                for spec in state.approvals]
    for spec, chosen in resolved:
        due = step.calendar.add(step.now, spec.timeout) if spec.timeout else None
        policy = approvals.policy_text(spec.policy, len(chosen))
        for c in chosen:
            step.session.add(Approval(
                request_id=req.id, visit=req.visit, state=state.name, name=spec.name,
                policy=policy, approver_id=c.person_id, source=c.source, created_at=step.now,
                due_at=due))
        if due is not None:
            step.session.add(Timer(request_id=req.id, kind="approval_timeout", visit=req.visit,
                                   ref=spec.name, due_at=due))
        audit(step, req, "approval_requested", actor=False, approval=spec.name,
              approvers=[c.person_id for c in chosen], policy=policy)
        step.notify(step, req, "approval_requested", approvals.recipients(
            step.session, req, [c.person_id for c in chosen], step.now), key=f"{req.visit}:{spec.name}")


def open_tasks(step: Step, req: Request, wf: Workflow) -> None:
    """Open the state's tasks; every one is worked out before anything is written."""
    state = wf.state(req.state)
    assert state is not None
    ctx = context(step, req)
    tasks = []
    for spec in state.tasks:
        assignee = None
        if spec.assignee is not None:
            targets = approvals._targets(step.session, spec.assignee, ctx, step.functions)
            assignee = next((i for k, i in targets if k == "person"
                             and step.active_person(i)), None)
        if not people.group_exists(step.session, spec.queue):
            raise Conflict(f"task {spec.name}: no group {spec.queue} to queue it in")
        tasks.append((spec, Task(
            request_id=req.id, visit=req.visit, state=state.name, name=spec.name,
            title=render(step, req, spec.title, default=state.label or state.name)[:500],
            instructions=render(step, req, spec.instructions), queue=spec.queue, tier=0,
            assignee_id=assignee, created_at=step.now,
            due_at=(step.calendar.add(step.now, spec.sla) if spec.sla else req.resolution_due))))
    for spec, task in tasks:
        assignee = task.assignee_id
        step.session.add(task)
        step.session.flush()
        audit(step, req, "task_created", actor=False, task=task.id, queue=spec.queue,
              assignee=assignee)
        recipients = [assignee] if assignee else step.members(spec.queue)
        step.notify(step, req, "task_assigned", recipients, key=f"{req.visit}:{spec.name}:0",
                    task=task)


def close_visit(step: Step, req: Request) -> None:
    """Leaving a state: what is still open in it will never be decided."""
    s = step.session
    state = workflow(req).state(req.state)
    kind = state.kind if state is not None else None
    # the units run without autoflush: rows are checked in Python, where this unit's own
    # changes (an approval just decided, a task just done) are already visible
    if kind is StateKind.APPROVAL:
        for a in visit_approvals(step, req):
            if a.decision == "pending" and a.visit == req.visit:
                a.decision = "closed"
    if kind is StateKind.TASK:
        for t in s.scalars(select(Task).where(Task.request_id == req.id, Task.visit == req.visit,
                                              Task.status == "open")):
            if t.status == "open":
                t.status = "cancelled"
    # a visit's timers (timeouts, waits) are not looked up here: a timer that fires after
    # its visit ended finds that out itself and cancels (timers._fire); finish() cancels all


def finish(step: Step, req: Request, outcome: str) -> None:
    clear(req)
    req.status = "closed"
    req.outcome = outcome
    req.closed_at = step.now
    req.waiting_on_requester = False
    for timer in step.session.scalars(select(Timer).where(Timer.request_id == req.id,
                                                          Timer.status == "pending")):
        if timer.status == "pending":
            timer.status = "cancelled"
    for obj in step.session.new:  # timers this very unit created (not flushed yet)
        if isinstance(obj, Timer) and obj.request_id == req.id and obj.status == "pending":
            obj.status = "cancelled"


def approvals_of_visit(session: Session, req: Request) -> list[Approval]:
    return list(session.scalars(select(Approval).where(
        Approval.request_id == req.id, Approval.visit == req.visit).order_by(Approval.id)))


def visit_approvals(step: Step, req: Request) -> list[Approval]:
    """The approvals of the request's current visit, read once per unit."""
    cached = step.visit_approvals.get(req.id)
    if cached is None or cached[0] != req.visit:
        cached = step.visit_approvals[req.id] = (req.visit, approvals_of_visit(step.session, req))
    return cached[1]


def decide_if_complete(step: Step, req: Request) -> str | None:
    """After a decision: when the state's approvals are settled, move on; return how."""
    wf = workflow(req)
    state = wf.state(req.state)
    assert state is not None
    rows = visit_approvals(step, req)
    by_name: dict[str, list[Approval]] = {}
    for r in rows:
        by_name.setdefault(r.name, []).append(r)
    result = approvals.state_outcome([approvals.outcome(by_name.get(spec.name, []))
                                      for spec in state.approvals])
    if result is not None:
        transition(step, req, result)
    return result


def tasks_of_visit(session: Session, req: Request) -> list[Task]:
    return list(session.scalars(select(Task).where(
        Task.request_id == req.id, Task.visit == req.visit).order_by(Task.id)))


def plain(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)
