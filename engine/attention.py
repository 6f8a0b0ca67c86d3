"""Requests that need attention: a workflow step failed at runtime; an admin retries or routes.

`runtime.flag` halts a request where a step failed and records which one (`attention_step`):

| step | what `retry` re-runs |
| --- | --- |
| `action:N` | the state's actions from N (0-based), then what the state opens or fires |
| `approvals`, `tasks` | opening the state's approvals or tasks, then on as usual |
| `trigger:T` | firing T from the state (`route` for a decision, `next` after actions, ...) |
| `sla_warning:N`, `sla_breach:N` | the workflow's SLA actions from N |
| `timer:ID` | the timer's handler (its firing failed and was rolled back) |

A retry runs on the request's pinned workflow version with today's data (answers, people,
lookups); it may fail again, and the request is flagged with the new error.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import runtime, timers
from engine.models import Request, Timer
from engine.unit import UnitOfWork, workflow


def needing_attention(session: Session, limit: int = 500) -> list[Request]:
    """Open requests halted by a failed unit, longest waiting first."""
    return list(session.scalars(select(Request).where(
        Request.attention_at.is_not(None), Request.status == "open")
        .order_by(Request.attention_at, Request.id).limit(limit)))


def retry(unit: UnitOfWork, req: Request) -> bool:
    """Re-run the step the request halted on and go on from there; False if it is flagged again."""
    key = req.attention_step or ""
    kind, _, arg = key.partition(":")
    wf = workflow(req)
    state = wf.state(req.state)
    assert state is not None
    runtime.clear(req)

    def work() -> None:
        trigger: str | None = None
        if kind == "action":
            trigger = runtime.settle(unit, req, wf, int(arg))
        elif kind in ("approvals", "tasks"):
            trigger = runtime.settle(unit, req, wf, len(state.actions))
        elif kind == "trigger":
            trigger = arg
        elif kind in ("sla_warning", "sla_breach"):
            timers.run_sla_actions(unit, req, kind, int(arg))
        elif kind == "timer":
            timer = unit.session.get(Timer, int(arg))
            if timer is not None:
                timer.status, timer.fired_at = "fired", unit.now
                with runtime.guard(req, key, f"timer {timer.kind}"):
                    timers.fire_timer(unit, req, timer)
        if trigger:
            runtime.move(unit, req, trigger, {})

    runtime.drive(unit, req, work)
    return req.attention_at is None


def declared_outcomes(req: Request) -> dict[str, str]:
    """The outcomes the request's workflow version declares, each with its end state."""
    out: dict[str, str] = {}
    for s in workflow(req).states:
        if s.is_end:
            out.setdefault(s.outcome or s.name, s.name)
    return out


def route(unit: UnitOfWork, req: Request, to_state: str | None, outcome: str | None) -> None:
    """Move the request by hand: enter a declared state, or end it with a declared outcome.

    Entering a state runs it as the workflow would (its actions, approvals, tasks, and on);
    ending with an outcome closes the request in that outcome's end state without its actions.
    """
    wf = workflow(req)
    runtime.clear(req)
    runtime.close_visit(unit, req)
    if outcome is not None:
        req.state = declared_outcomes(req)[outcome]
        req.visit += 1
        runtime.finish(unit, req, outcome)
        return
    assert to_state is not None
    req.state = to_state
    runtime.start(unit, req, wf)
