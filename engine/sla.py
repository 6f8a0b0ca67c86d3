"""Request-level SLA clocks: targets, warning and breach timers, pausing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from catalog.models import Duration
from catalog.workflow import Workflow
from engine.models import Request, Timer

if TYPE_CHECKING:
    from engine.runtime import Step

REQUEST_LEVEL = -1


def targets(step: Step, req: Request, wf: Workflow) -> tuple[Duration | None, Duration | None]:
    if wf.sla is None:
        return None, None
    if wf.sla.from_priority:
        prio = step.catalog.settings.priority(req.priority or "")
        return (prio.response, prio.resolution) if prio else (None, None)
    return wf.sla.response, wf.sla.resolution


def start(step: Step, req: Request, wf: Workflow) -> None:
    response, resolution = targets(step, req, wf)
    req.response_due = step.calendar.add(step.now, response) if response else None
    req.resolution_due = step.calendar.add(step.now, resolution) if resolution else None
    schedule(step, req)


def schedule(step: Step, req: Request) -> None:
    """Timers for the warning and breach of each target not yet met or breached."""
    s = step.session
    pct = step.catalog.settings.sla_warning_percent / 100
    if req.response_due and req.responded_at is None:
        s.add(Timer(request_id=req.id, kind="sla_breach", visit=REQUEST_LEVEL, ref="response",
                    due_at=req.response_due))
    if req.resolution_due:
        if req.sla_state == "ok":
            warn_at = step.calendar.fraction_point(req.created_at, req.resolution_due, pct)
            s.add(Timer(request_id=req.id, kind="sla_warning", visit=REQUEST_LEVEL,
                        ref="resolution", due_at=max(warn_at, step.now)))
        if req.sla_state != "breached":
            s.add(Timer(request_id=req.id, kind="sla_breach", visit=REQUEST_LEVEL,
                        ref="resolution", due_at=req.resolution_due))


def _cancel(step: Step, req: Request) -> None:
    for timer in step.session.scalars(select(Timer).where(
            Timer.request_id == req.id, Timer.visit == REQUEST_LEVEL, Timer.status == "pending")):
        if timer.status == "pending":
            timer.status = "cancelled"


def pause(step: Step, req: Request) -> None:
    """Waiting on the requester: the clocks stop."""
    req.sla_paused_at = step.now
    _cancel(step, req)


def resume(step: Step, req: Request) -> None:
    """The requester answered: the due times move later by the business time spent waiting."""
    if req.sla_paused_at is None:
        return
    waited = step.calendar.between(req.sla_paused_at, step.now)
    if req.response_due and req.responded_at is None:
        req.response_due = step.calendar.add_minutes(req.response_due, waited)
    if req.resolution_due:
        req.resolution_due = step.calendar.add_minutes(req.resolution_due, waited)
    req.sla_paused_at = None
    if req.status == "open":
        schedule(step, req)
