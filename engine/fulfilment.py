"""The task use cases of the request service: claim, reassign, escalate, complete.

A mixin of `RequestService` (engine.service): each public method is one unit of work.
"""

from __future__ import annotations

from typing import Any

from engine import intake, lifecycle, notifications, people, permissions, problems
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.inputs import checked_text, fresh
from engine.models import Request, Task
from engine.runtime import transition
from engine.tasks import all_done, move_to_next_tier, spec_of
from engine.unit import UnitOfWork, UnitRunner, audit, touch, workflow


class Fulfilment:
    """Working the tasks of a request."""

    unit: UnitRunner

    def _task(self, unit: UnitOfWork, task_id: int, actor: str,
              seen_version: int | None = None) -> tuple[Task, Request]:
        s = unit.session
        task = s.get(Task, task_id)
        req = s.get(Request, task.request_id) if task else None
        if task is None or req is None or not permissions.can_view_request(s, actor, req, unit.now):
            raise NotFound(f"no task {task_id}")
        if not (people.is_member(s, actor, task.queue) or task.assignee_id == actor
                or people.is_admin(s, actor)):
            raise NotAllowed(f"{actor} is not in the {task.queue} queue")
        if task.status != "open" or task.visit != req.visit or req.status != "open":
            raise Conflict(f"task {task_id} is {task.status}; {req.number} is now {req.state}")
        fresh(req, seen_version)
        return task, req

    def claim_task(self, task_id: int, actor: str, seen_version: int | None = None) -> Task:
        def work(unit: UnitOfWork) -> Task:
            task, req = self._task(unit, task_id, actor, seen_version)
            if task.assignee_id not in (None, actor):
                raise Conflict(f"task {task_id} is already claimed by {task.assignee_id}")
            if task.assignee_id == actor:
                return task
            task.assignee_id = actor
            req.responded_at = req.responded_at or unit.now
            touch(unit, req)
            audit(unit, req, "task_claimed", task=task.id)
            return task

        return self.unit(actor, work)

    def reassign(self, task_id: int, actor: str, to_person: str,
                 seen_version: int | None = None) -> Task:
        def work(unit: UnitOfWork) -> Task:
            s = unit.session
            task, req = self._task(unit, task_id, actor, seen_version)
            if not (people.is_member(s, to_person, task.queue) and people.active_person(s, to_person)):
                raise InvalidInput(f"{to_person} is not in the {task.queue} queue",
                                   {"to": [f"Pick someone in {task.queue}."]})
            audit(unit, req, "task_reassigned", task=task.id, from_person=task.assignee_id,
                  to=to_person)
            task.assignee_id = to_person
            touch(unit, req)
            notifications.tell(
                unit, req, notifications.ASSIGNED, [to_person] if to_person != actor else [],
                f"{notifications.name_of(unit, actor)} assigned you the task “{task.title}”",
                key=f"reassign:{task.id}:{to_person}", email="task_assigned",
                email_ids=[to_person], task=task)
            return task

        return self.unit(actor, work)

    def escalate_task(self, task_id: int, actor: str, reason: str = "",
                      seen_version: int | None = None) -> Task:
        def work(unit: UnitOfWork) -> Task:
            task, req = self._task(unit, task_id, actor, seen_version)
            if not move_to_next_tier(unit, req, task, checked_text(reason, "reason", required=False)):
                raise Conflict(f"task {task_id} is already at its last tier ({task.queue})")
            touch(unit, req)
            return task

        return self.unit(actor, work)

    def complete_task(self, task_id: int, actor: str, outcome: str | None = None,
                      answers: dict[str, Any] | None = None, comment: str = "",
                      seen_version: int | None = None) -> Task:
        def work(unit: UnitOfWork) -> Task:
            s = unit.session
            task, req = self._task(unit, task_id, actor, seen_version)
            if task.assignee_id not in (None, actor) and not people.is_admin(s, actor):
                raise Conflict(f"task {task_id} is claimed by {task.assignee_id}")
            spec = spec_of(req, task)
            outcomes = spec.outcomes if spec else ("done",)
            chosen = outcome or outcomes[0]
            if chosen not in outcomes:
                raise InvalidInput(f"{chosen} is not an outcome of this task",
                                   {"outcome": [f"Choose one of: {', '.join(outcomes)}."]})
            task.answers = intake.check_task_answers(s, unit.catalog, spec.fields if spec else (),
                                                     answers or {})
            task.status, task.outcome = "done", chosen
            task.assignee_id = task.assignee_id or actor
            task.completed_at, task.completed_by_id = unit.now, actor
            req.responded_at = req.responded_at or unit.now
            touch(unit, req)
            audit(unit, req, "task_completed", task=task.id, outcome=chosen,
                  comment=checked_text(comment, "comment", required=False))
            if chosen == problems.KNOWN_ERROR:  # the known-error rule holds here too
                problems.mark_known_error(unit, req)
            if chosen == lifecycle.RESOLVED and req.resolved_at is None:  # docs/service-desk.md
                notes = task.answers.get("resolution_notes")
                code = task.answers.get("resolution_code")
                lifecycle.mark_resolved(unit, req, task, code if isinstance(code, str) else None,
                                        notes if isinstance(notes, str) else None)
            state = workflow(req).state(req.state)
            if state is not None and len(state.tasks) > 1:
                if all_done(unit, req):
                    transition(unit, req, "done")
            else:
                transition(unit, req, chosen)
            return task

        return self.unit(actor, work)
