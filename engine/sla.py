"""Request-level SLA clocks: targets, warning and breach timers, pausing."""

from __future__ import annotations

from sqlalchemy import select

from catalog.models import Duration
from catalog.workflow import Workflow
from engine.models import Request, Timer
from engine.unit import UnitOfWork

REQUEST_LEVEL = -1  # the visit of timers that outlive states (SLA clocks)


def targets(unit: UnitOfWork, req: Request, wf: Workflow) -> tuple[Duration | None, Duration | None]:
    if wf.sla is None:
        return None, None
    if wf.sla.from_priority:
        prio = unit.catalog.settings.priority(req.priority or "")
        return (prio.response, prio.resolution) if prio else (None, None)
    return wf.sla.response, wf.sla.resolution


def start(unit: UnitOfWork, req: Request, wf: Workflow) -> None:
    set_dues(unit, req, wf)
    schedule(unit, req)


def set_dues(unit: UnitOfWork, req: Request, wf: Workflow) -> None:
    """A new request's due times (`schedule` sets its timers; a submit writes the row between)."""
    response, resolution = targets(unit, req, wf)
    req.response_due = unit.calendar.add(unit.now, response) if response else None
    req.resolution_due = unit.calendar.add(unit.now, resolution) if resolution else None


def retarget(unit: UnitOfWork, req: Request, wf: Workflow, paused_minutes: int) -> None:
    """New targets (a new priority): due = created_at + new target on the business calendar,
    later by the business minutes already spent waiting; a target already met keeps its due."""
    response, resolution = targets(unit, req, wf)
    if req.responded_at is None:
        req.response_due = unit.calendar.add(req.created_at, response) if response else None
    if resolution:
        req.resolution_due = unit.calendar.add_minutes(
            unit.calendar.add(req.created_at, resolution), paused_minutes)
    else:
        req.resolution_due = None
    if req.sla_paused_at is None and req.status == "open":
        _cancel(unit, req)  # a paused request has no timers; resuming schedules them
        schedule(unit, req)


def schedule(unit: UnitOfWork, req: Request) -> None:
    """Timers for the warning and breach of each target not yet met or breached."""
    pct = unit.catalog.settings.sla_warning_percent / 100
    if req.response_due and req.responded_at is None:
        unit.add_timer(req, "sla_breach", REQUEST_LEVEL, "response", req.response_due)
    if req.resolution_due:
        if req.sla_state == "ok":
            warn_at = unit.calendar.fraction_point(req.created_at, req.resolution_due, pct)
            unit.add_timer(req, "sla_warning", REQUEST_LEVEL, "resolution", max(warn_at, unit.now))
        if req.sla_state != "breached":
            unit.add_timer(req, "sla_breach", REQUEST_LEVEL, "resolution", req.resolution_due)


def _cancel(unit: UnitOfWork, req: Request) -> None:
    for timer in unit.session.scalars(select(Timer).where(
            Timer.request_id == req.id, Timer.visit == REQUEST_LEVEL, Timer.status == "pending")):
        if timer.status == "pending":
            timer.status = "cancelled"
    unit.cancel_new_timers(req, REQUEST_LEVEL)


def pause(unit: UnitOfWork, req: Request) -> None:
    """Waiting on the requester: the clocks stop."""
    req.sla_paused_at = unit.now
    _cancel(unit, req)


def resume(unit: UnitOfWork, req: Request) -> None:
    """The requester answered: the due times move later by the business time spent waiting."""
    if req.sla_paused_at is None:
        return
    waited = unit.calendar.between(req.sla_paused_at, unit.now)
    if req.response_due and req.responded_at is None:
        req.response_due = unit.calendar.add_minutes(req.response_due, waited)
    if req.resolution_due:
        req.resolution_due = unit.calendar.add_minutes(req.resolution_due, waited)
    req.sla_paused_at = None
    if req.status == "open":
        schedule(unit, req)
