"""Tasks: escalation to the next tier, and the join of parallel tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from catalog.workflow import TaskSpec
from engine.models import Request, Task

if TYPE_CHECKING:
    from engine.runtime import Step


def spec_of(req: Request, task: Task) -> TaskSpec | None:
    """The definition of a task, from the workflow version its request is pinned to."""
    from engine.runtime import workflow

    state = workflow(req).state(task.state)
    return next((t for t in state.tasks if t.name == task.name), None) if state else None


def next_tier(step: Step, req: Request, task: Task) -> str | None:
    spec = spec_of(req, task)
    tiers = spec.tiers if spec else (task.queue,)
    return tiers[task.tier + 1] if task.tier + 1 < len(tiers) else None


def move_to_next_tier(step: Step, req: Request, task: Task, reason: str) -> bool:
    """Hand the task to the next tier's queue; False when it is already at the last tier."""
    from engine.runtime import audit

    queue = next_tier(step, req, task)
    if queue is None:
        return False
    audit(step, req, "task_escalated", task=task.id, from_queue=task.queue, to_queue=queue,
          reason=reason)
    task.queue, task.tier, task.assignee_id = queue, task.tier + 1, None
    step.notify(step, req, "task_assigned", step.members(queue),
                key=f"{req.visit}:{task.name}:{task.tier}", task=task)
    return True


def escalate_open_tasks(step: Step, req: Request) -> int:
    """The `escalate: tasks` action: every open task of the request moves up a tier."""
    moved = 0
    for task in step.session.scalars(select(Task).where(
            Task.request_id == req.id, Task.visit == req.visit, Task.status == "open")):
        if task.status == "open":
            moved += move_to_next_tier(step, req, task, "sla")
    return moved


def all_done(step: Step, req: Request) -> bool:
    from engine.runtime import tasks_of_visit

    tasks = tasks_of_visit(step.session, req)
    return bool(tasks) and all(t.status == "done" for t in tasks)
