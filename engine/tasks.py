"""Tasks: escalation to the next tier, and the join of parallel tasks."""

from __future__ import annotations

from sqlalchemy import select

from catalog.workflow import TaskSpec
from engine import people
from engine.models import Request, Task
from engine.unit import UnitOfWork, audit, tasks_of_visit, workflow


def spec_of(req: Request, task: Task) -> TaskSpec | None:
    """The definition of a task, from the workflow version its request is pinned to."""
    state = workflow(req).state(task.state)
    return next((t for t in state.tasks if t.name == task.name), None) if state else None


def next_tier(unit: UnitOfWork, req: Request, task: Task) -> str | None:
    """The next tier's group; a tier routed `by_category` picks it by the record's category now."""
    spec = spec_of(req, task)
    return spec.tier_group(task.tier + 1, req.category) if spec else None


def move_to_next_tier(unit: UnitOfWork, req: Request, task: Task, reason: str) -> bool:
    """Hand the task to the next tier's queue; False when it is already at the last tier."""
    queue = next_tier(unit, req, task)
    if queue is None:
        return False
    audit(unit, req, "task_escalated", task=task.id, from_queue=task.queue, to_queue=queue,
          reason=reason)
    if req.assignment_group_id == task.queue and queue != task.queue:
        # the record follows its work up a tier (engine.records): the new group owns it now
        changes: dict[str, list[str | None]] = {"assignment_group": [req.assignment_group_id, queue]}
        if req.assignee_id and not people.is_member(unit.session, req.assignee_id, queue):
            changes["assignee"] = [req.assignee_id, None]
            req.assignee_id = None
        req.assignment_group_id = queue
        audit(unit, req, "record_changed", changes=changes)
    task.queue, task.tier, task.assignee_id = queue, task.tier + 1, None
    unit.queue_email(req, "task_assigned", unit.members(queue),
                     key=f"{req.visit}:{task.name}:{task.tier}", task=task)
    return True


def escalate_open_tasks(unit: UnitOfWork, req: Request) -> int:
    """The `escalate: tasks` action: every open task of the request moves up a tier."""
    moved = 0
    for task in unit.session.scalars(select(Task).where(
            Task.request_id == req.id, Task.visit == req.visit, Task.status == "open")):
        if task.status == "open":
            moved += move_to_next_tier(unit, req, task, "sla")
    return moved


def all_done(unit: UnitOfWork, req: Request) -> bool:
    tasks = tasks_of_visit(unit.session, req)
    return bool(tasks) and all(t.status == "done" for t in tasks)
