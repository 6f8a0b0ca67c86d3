"""Timers: approval timeouts, waits and SLA clocks, fired by `run_due(now)`.

Each due timer is handled in its own transaction. On PostgreSQL a timer is locked with
FOR UPDATE SKIP LOCKED, so several workers never fire the same one; the timer's own
version column makes a second firing impossible on any database. A timer whose firing
fails is marked `failed` and its request needs attention: it is never tried again on its
own, and the timers after it still fire.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from sqlalchemy import select

from engine import email_links, notifications, people, runtime
from engine.errors import Conflict, StepFailed, Unavailable
from engine.models import Approval, Request, Timer
from engine.runtime import transition
from engine.sla import REQUEST_LEVEL
from engine.unit import (
    Runner,
    UnitOfWork,
    approvals_of_visit,
    audit,
    tasks_of_visit,
    touch,
    workflow,
)

MAX_REMINDERS = 3
log = logging.getLogger("deskflow.timers")


def run_due(run: Runner, now: datetime, limit: int) -> int:
    """Fire timers due by `now`, each in its own unit of work run by `run`; return how many fired."""
    ids = run(None, partial(_due, now=now, limit=limit))
    fired = 0
    for timer_id in ids:
        try:
            fired += run(None, partial(_fire, timer_id=timer_id, now=now))
        except Conflict:
            continue  # another worker or a person got there first
        except Unavailable:
            raise
        except Exception as exc:  # any other failure: flag the request, fire the rest
            error = runtime.describe(exc)
            log.warning("timer %s failed: %s", timer_id, error)
            run(None, partial(_give_up, timer_id=timer_id, error=error))
    return fired


def _due(unit: UnitOfWork, *, now: datetime, limit: int) -> list[int]:
    return list(unit.session.scalars(select(Timer.id).where(
        Timer.status == "pending", Timer.due_at <= now).order_by(Timer.due_at).limit(limit)))


def _give_up(unit: UnitOfWork, *, timer_id: int, error: str) -> None:
    """A timer's firing failed (and was rolled back): mark it failed, flag its request."""
    timer = unit.session.get(Timer, timer_id)
    if timer is None or timer.status != "pending":
        return
    timer.status, timer.fired_at = "failed", unit.now
    req = unit.session.get(Request, timer.request_id)
    if req is not None and req.status == "open":
        runtime.flag(unit, req, StepFailed(req.state, f"timer:{timer.id}",
                                           f"timer {timer.kind}", error))


def fire_timer(unit: UnitOfWork, req: Request, timer: Timer) -> None:
    """Run a timer's handler (also how an admin's retry re-runs a timer that failed)."""
    HANDLERS[timer.kind](unit, req, timer)


def _fire(unit: UnitOfWork, *, timer_id: int, now: datetime) -> int:
    s = unit.session
    query = select(Timer).where(Timer.id == timer_id, Timer.status == "pending")
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    timer = s.scalar(query)
    if timer is None:
        return 0
    req = s.get(Request, timer.request_id)
    timer.status, timer.fired_at = "fired", unit.now
    if req is None or req.status != "open" or (
            timer.visit != REQUEST_LEVEL and timer.visit != req.visit):
        timer.status = "cancelled"
        return 0
    touch(unit, req)
    fire_timer(unit, req, timer)
    return 1


def _wait(unit: UnitOfWork, req: Request, timer: Timer) -> None:
    audit(unit, req, "timer_fired", actor=False, timer=timer.id, kind="wait")
    transition(unit, req, "timer")


def _approval_timeout(unit: UnitOfWork, req: Request, timer: Timer) -> None:
    wf = workflow(req)
    state = wf.state(req.state)
    spec = next((a for a in state.approvals if a.name == timer.ref), None) if state else None
    if spec is None:
        return
    pending = [a for a in approvals_of_visit(unit.session, req)
               if a.name == spec.name and a.decision == "pending"]
    if not pending:
        return
    action = spec.on_timeout or "remind"
    audit(unit, req, "approval_timeout", actor=False, approval=spec.name, action=action)
    if action in ("approve", "reject"):
        for a in pending:
            a.decision = "approved" if action == "approve" else "rejected"
            a.decided_at, a.comment = unit.now, f"decided automatically after {spec.timeout}"
        runtime.decide_if_complete(unit, req)
        return
    if action == "escalate":
        excluded = {req.requester_id, req.requested_for_id}
        seated = {a.approver_id for a in approvals_of_visit(unit.session, req)
                  if a.name == spec.name and a.decision in ("pending", "approved", "rejected")}
        for a in pending:
            # the nearest manager up who has no seat in this approval yet: one person, one vote
            up = next((m for m in people.chain_up(unit.session, a.approver_id)
                       if m not in excluded and m not in seated
                       and people.active_person(unit.session, m)), None)
            if up is None:
                a.reminders += 1  # nobody further up: remind the approver instead
                unit.queue_email(req, "approval_reminder", [a.approver_id],
                                 key=f"remind:{timer.id}:{a.id}",
                                 personal=email_links.approval_links(unit, req, [a]))
                continue
            seated.add(up)
            a.decision = "escalated"
            raised = Approval(
                request_id=req.id, visit=a.visit, state=a.state, name=a.name, policy=a.policy,
                approver_id=up, source=f"escalated from {a.approver_id}", created_at=unit.now,
                due_at=unit.calendar.add(unit.now, spec.timeout) if spec.timeout else None)
            unit.session.add(raised)
            audit(unit, req, "approval_escalated", actor=False, approval=a.id,
                  from_person=a.approver_id, to=up)
            notifications.tell_approvers(
                unit, req, [up],
                f"Your approval is needed ({a.name}): escalated from "
                f"{notifications.name_of(unit, a.approver_id)}",
                key=f"escalated:{a.id}", personal=email_links.approval_links(unit, req, [raised]))
    else:
        for a in pending:
            a.reminders += 1
        unit.queue_email(req, "approval_reminder", [a.approver_id for a in pending],
                         key=f"remind:{timer.id}",
                         personal=email_links.approval_links(unit, req, pending))
    if spec.timeout and max(a.reminders for a in pending) < MAX_REMINDERS:
        unit.add_timer(req, "approval_timeout", req.visit, spec.name,
                       unit.calendar.add(unit.now, spec.timeout))


def _sla(unit: UnitOfWork, req: Request, timer: Timer) -> None:
    if timer.kind == "sla_breach" and timer.ref == "response" and req.responded_at is not None:
        return
    warning = timer.kind == "sla_warning"
    if warning and req.sla_state != "ok":
        return
    if timer.ref == "resolution":
        req.sla_state = "warning" if warning else "breached"
    due = req.response_due if timer.ref == "response" else req.resolution_due
    audit(unit, req, timer.kind, actor=False, target=timer.ref,
          due=due.isoformat() if due else None)
    runtime.drive(unit, req, lambda: run_sla_actions(unit, req, timer.kind))
    assignees = [t.assignee_id for t in tasks_of_visit(unit.session, req)
                 if t.assignee_id and t.status == "open"]
    if warning:
        notifications.tell(unit, req, notifications.SLA_WARNING, notifications.holders(unit, req),
                           f"The {timer.ref} SLA is at risk"
                           + (f" (due {due:%Y-%m-%d %H:%M} UTC)" if due else ""),
                           key=f"{timer.id}", email="sla_warning", email_ids=assignees)
    else:
        unit.queue_email(req, "sla_breach", assignees, key=f"{timer.id}")


def run_sla_actions(unit: UnitOfWork, req: Request, kind: str, first: int = 0) -> None:
    """The workflow's `on_warning` or `on_breach` actions (kind: sla_warning | sla_breach)."""
    sla = workflow(req).sla
    if sla is not None:
        warning = kind == "sla_warning"
        runtime.run_actions(unit, req, sla.on_warning if warning else sla.on_breach, first,
                            key=kind, label="on_warning action" if warning else "on_breach action")


HANDLERS = {"wait": _wait, "approval_timeout": _approval_timeout, "sla_warning": _sla,
            "sla_breach": _sla}
