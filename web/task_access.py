"""Who may read and act on a task (below the blueprints: the task pages and the API share it)."""

from __future__ import annotations

from engine import people, permissions
from engine.errors import NotAllowed, NotFound
from engine.models import Request, Task
from web.context import viewer
from web.extensions import db
from web.ids import valid_id


def may_work(group_id: str) -> bool:
    """Whether the viewer works the queue: a member of the group, or an admin."""
    me = viewer()
    return people.is_member(db.session(), me, group_id) or people.is_admin(db.session(), me)


def may_act(task: Task) -> bool:
    return task.assignee_id == viewer() or may_work(task.queue)


def load(task_id: int) -> tuple[Task, Request]:
    """The task and its request, for members of its queue, its assignee and admins, and (to
    read only) whoever worked the request before, e.g. the tier-1 agent who escalated it."""
    task = db.session().get(Task, task_id) if valid_id(task_id) else None
    req = db.session().get(Request, task.request_id) if task else None
    if task is None or req is None or not (
            may_act(task) or permissions.is_worker_of(db.session(), viewer(), req)):
        raise NotFound(f"no task {task_id}")
    return task, req


def load_to_act(task_id: int) -> tuple[Task, Request]:
    """The task, for those who may act on it; a reader who may not is refused (403) here,
    before any input is read."""
    task, req = load(task_id)
    if not may_act(task):
        raise NotAllowed(f"{viewer()} may read task {task_id} but is not in the {task.queue} queue")
    return task, req
