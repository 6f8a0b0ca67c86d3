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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import make_transient_to_detached

from catalog.errors import DeskflowError
from catalog.expressions import ExpressionError
from catalog.workflow import StateKind, Workflow
from engine import approvals, email_links, notifications, satisfaction, why
from engine.actions import ACTIONS
from engine.errors import Conflict, StepFailed
from engine.models import Approval, Base, Request, Task, Timer
from engine.unit import UnitOfWork, audit, context, render, touch, visit_approvals, workflow
from workflows.compiler import fire, machine_for
from workflows.errors import WorkflowError

MAX_AUTOMATIC_STEPS = 100
MAX_ERROR = 2000  # characters of a step's error kept on the request


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


def flag(unit: UnitOfWork, req: Request, exc: StepFailed) -> None:
    """Halt the request where a step failed, visibly: what it needs is an admin's retry or route."""
    req.attention_at = unit.now
    req.attention_state, req.attention_step = exc.state, exc.step
    req.attention_error = str(exc)[:MAX_ERROR]
    touch(unit, req)
    audit(unit, req, "needs_attention", actor=False, state=exc.state, step=exc.step,
          error=req.attention_error)


def clear(req: Request) -> None:
    """The request moves on: whatever held it up is settled or moot."""
    if req.attention_at is not None or req.attention_step is not None:
        req.attention_at = req.attention_state = req.attention_step = req.attention_error = None


def drive(unit: UnitOfWork, req: Request, work: Callable[[], Any]) -> bool:
    """Run `work`; if a step in it fails, flag the request and keep what came before."""
    try:
        work()
    except StepFailed as exc:
        flag(unit, req, exc)
        return False
    return True


# ---------------------------------------------------------------- moving on


def transition(unit: UnitOfWork, req: Request, trigger: str, **detail: Any) -> None:
    """Fire `trigger`, leave the current state, and enter the next one (and onwards).

    A trigger the state does not have is a Conflict and changes nothing. A step that fails
    after that halts the request where it failed, flagged; what came before it is kept.
    """
    drive(unit, req, lambda: move(unit, req, trigger, detail, asked=True))


def start(unit: UnitOfWork, req: Request, wf: Workflow, entered: bool = False) -> None:
    """Enter the state the request is in (a new request's first) and go on as far as it goes.

    `entered`: the request's `visit` counts this state already (a new request is written with
    its first visit, so its row needs no UPDATE for it).
    """

    def work() -> None:
        trigger = settle(unit, req, wf) if entered else enter(unit, req, wf)
        if trigger:
            move(unit, req, trigger, {})

    drive(unit, req, work)


def move(unit: UnitOfWork, req: Request, trigger: str, detail: dict[str, Any],
         asked: bool = False) -> None:
    """Fire `trigger` and follow automatic steps; StepFailed when a step fails.

    `asked`: the trigger is what the caller asked for, so one the state lacks is a Conflict.
    """
    wf = workflow(req)
    for _ in range(MAX_AUTOMATIC_STEPS):
        source = req.state
        if asked and trigger not in machine_for(wf).get_triggers(source):
            try:
                fire(wf, source, trigger, {}, unit.functions)
            except WorkflowError as exc:
                raise Conflict(f"{req.number} is {source}; cannot {trigger}: {exc}") from None
        asked = False
        with guard(req, f"trigger:{trigger}",
                   "decision" if trigger == "route" else f"trigger {trigger}"):
            names = context(unit, req)
            dest = fire(wf, source, trigger, names, unit.functions)
        if trigger == "route":  # the sentence keeps the values the decision saw
            detail = {**detail, "why": why.branch(wf, source, names, unit.functions)}
        clear(req)
        close_visit(unit, req)
        audit(unit, req, "transition", source, dest, trigger=trigger, **detail)
        req.state = dest
        touch(unit, req)
        trigger = enter(unit, req, wf) or ""
        detail = {}
        if not trigger:
            return
    raise StepFailed(req.state, f"trigger:{trigger}", "automatic steps",
                     f"workflow {wf.id} loops without waiting "
                     f"({MAX_AUTOMATIC_STEPS} steps without a state that waits)")


def enter(unit: UnitOfWork, req: Request, wf: Workflow) -> str | None:
    """Set up the state the request is in; return the trigger to fire at once, if any."""
    req.visit += 1
    return settle(unit, req, wf)


def settle(unit: UnitOfWork, req: Request, wf: Workflow, first_action: int = 0) -> str | None:
    """Run the state's actions from `first_action`, then open what it waits for.

    Return the trigger to fire at once, if any. A retry re-runs it from the failed unit.
    """
    state = wf.state(req.state)
    assert state is not None
    run_actions(unit, req, state.actions, first_action)
    if state.kind is StateKind.APPROVAL:
        with guard(req, "approvals", "opening its approvals"):
            open_approvals(unit, req, wf)
        return None
    if state.kind is StateKind.TASK:
        with guard(req, "tasks", "opening its tasks"):
            open_tasks(unit, req, wf)
        return None
    if state.kind is StateKind.WAIT:
        assert state.wait is not None
        unit.add_timer(req, "wait", req.visit, state.name, unit.calendar.add(unit.now, state.wait))
        return None
    if state.kind is StateKind.DECISION:
        return "route"
    if state.kind is StateKind.ACTION:
        return "next"
    finish(unit, req, state.outcome or state.name)
    return None


def run_actions(unit: UnitOfWork, req: Request, actions: tuple[Any, ...], first: int = 0,
                key: str = "action", label: str = "action") -> None:
    """Run `actions` from index `first`; the one that fails names itself (`key:index`)."""
    for i, action in enumerate(actions):
        if i < first:
            continue
        with guard(req, f"{key}:{i}", f"{label} {i + 1} ({action.kind})"):
            ACTIONS[action.kind](unit, req, action, f"{req.visit}.{i}")


def open_approvals(unit: UnitOfWork, req: Request, wf: Workflow) -> None:
    """Open the state's approvals; every approver is resolved before anything is written."""
    state = wf.state(req.state)
    assert state is not None
    ctx = context(unit, req)
    excluded = list(dict.fromkeys([req.requester_id, req.requested_for_id]))
    resolved = [(spec, approvals.resolve(unit.session, spec, ctx, unit.functions, excluded))
                for spec in state.approvals]
    for spec, chosen in resolved:
        due = unit.calendar.add(unit.now, spec.timeout) if spec.timeout else None
        policy = approvals.policy_text(spec.policy, len(chosen))
        opened = insert_approvals(unit, req, [
            {"request_id": req.id, "visit": req.visit, "state": state.name, "name": spec.name,
             "policy": policy, "approver_id": c.person_id, "source": c.source,
             "decision": "pending", "comment": "", "decided_by_id": None,
             "delegated_from_id": None, "created_at": unit.now, "decided_at": None,
             "due_at": due, "reminders": 0, "lock_version": 1} for c in chosen])
        if due is not None:
            unit.add_timer(req, "approval_timeout", req.visit, spec.name, due)
        audit(unit, req, "approval_requested", actor=False, approval=spec.name,
              approvers=[c.person_id for c in chosen], policy=policy)
        notifications.tell_approvers(
            unit, req, [c.person_id for c in chosen], f"Your approval is needed ({spec.name})",
            key=f"{req.visit}:{spec.name}", personal=email_links.approval_links(unit, req, opened))


#: new approvals go in by Core, built once, handing back their ids (the emails' links name
#: them): a unit's flush of them cost more than the statement, and a submit's last flush then
#: has nothing left to write
_APPROVALS = Base.metadata.tables[Approval.__tablename__]
_INSERT_APPROVALS = insert(_APPROVALS).returning(_APPROVALS.c.id, sort_by_parameter_order=True)


def insert_approvals(unit: UnitOfWork, req: Request, rows: list[dict[str, Any]]) -> list[Approval]:
    """Insert complete approval rows now; return them as the session's objects, as if loaded
    (a later change is an UPDATE checked against their version). A request that is still new
    is written first: the rows refer to it."""
    s = unit.session
    if inspect(req).pending:
        s.flush()
    ids = s.connection().execute(_INSERT_APPROVALS, rows).scalars().all()
    opened = []
    for row, new_id in zip(rows, ids, strict=True):
        a = Approval()
        # the stored values, as a load puts them: setting each through the attribute's events
        # cost more than the INSERT (nothing of a new object's history is kept anyway)
        inspect(a).dict.update(row, id=new_id)
        make_transient_to_detached(a)
        s.add(a)
        opened.append(a)
    return opened


def open_tasks(unit: UnitOfWork, req: Request, wf: Workflow) -> None:
    """Open the state's tasks; every one is worked out before anything is written."""
    state = wf.state(req.state)
    assert state is not None
    ctx = context(unit, req)
    tasks = []
    for spec in state.tasks:
        assignee = None
        if spec.assignee is not None:
            targets = approvals._targets(unit.session, spec.assignee, ctx, unit.functions)
            assignee = next((i for k, i in targets if k == "person"
                             and unit.active_person(i)), None)
        if unit.group_members(spec.queue) is None:
            raise Conflict(f"task {spec.name}: no group {spec.queue} to queue it in")
        tasks.append((spec, Task(
            request_id=req.id, visit=req.visit, state=state.name, name=spec.name,
            title=render(unit, req, spec.title, default=state.label or state.name)[:500],
            instructions=render(unit, req, spec.instructions), queue=spec.queue, tier=0,
            assignee_id=assignee, created_at=unit.now,
            due_at=(unit.calendar.add(unit.now, spec.sla) if spec.sla else req.resolution_due))))
    for spec, task in tasks:
        assignee = task.assignee_id
        unit.session.add(task)
        unit.session.flush()
        audit(unit, req, "task_created", actor=False, task=task.id, queue=spec.queue,
              assignee=assignee)
        if assignee:
            notifications.tell(unit, req, notifications.ASSIGNED, [assignee],
                               f"Task “{task.title}” was assigned to you",
                               key=f"{req.visit}:{spec.name}:0", email="task_assigned", task=task)
        else:
            unit.queue_email(req, "task_assigned", unit.members(spec.queue),
                             key=f"{req.visit}:{spec.name}:0", task=task)


def close_visit(unit: UnitOfWork, req: Request) -> None:
    """Leaving a state: what is still open in it will never be decided."""
    s = unit.session
    state = workflow(req).state(req.state)
    kind = state.kind if state is not None else None
    # the units run without autoflush: rows are checked in Python, where this unit's own
    # changes (an approval just decided, a task just done) are already visible
    if kind is StateKind.APPROVAL:
        for a in visit_approvals(unit, req):
            if a.decision == "pending" and a.visit == req.visit:
                a.decision = "closed"
    if kind is StateKind.TASK:
        for t in s.scalars(select(Task).where(Task.request_id == req.id, Task.visit == req.visit,
                                              Task.status == "open")):
            if t.status == "open":
                t.status = "cancelled"
    # a visit's timers (timeouts, waits) are not looked up here: a timer that fires after
    # its visit ended finds that out itself and cancels (timers._fire); finish() cancels all


#: built once (every request that ends reads them): building it costs more than running it
_PENDING_TIMERS = select(Timer).where(Timer.request_id == bindparam("request"),
                                      Timer.status == "pending")


def finish(unit: UnitOfWork, req: Request, outcome: str) -> None:
    clear(req)
    req.status = "closed"
    req.outcome = outcome
    req.closed_at = unit.now
    req.waiting_on_requester = False
    for timer in unit.session.scalars(_PENDING_TIMERS, {"request": req.id}):
        if timer.status == "pending":
            timer.status = "cancelled"
    unit.cancel_new_timers(req)  # timers this very unit created (written when it ends)
    satisfaction.ask_on_finish(unit, req, outcome)


def decide_if_complete(unit: UnitOfWork, req: Request) -> str | None:
    """After a decision: when the state's approvals are settled, move on; return how."""
    wf = workflow(req)
    state = wf.state(req.state)
    assert state is not None
    rows = visit_approvals(unit, req)
    by_name: dict[str, list[Approval]] = {}
    for r in rows:
        by_name.setdefault(r.name, []).append(r)
    result = approvals.state_outcome([approvals.outcome(by_name.get(spec.name, []))
                                      for spec in state.approvals])
    if result is not None:
        transition(unit, req, result)
    return result
