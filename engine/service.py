"""The request service: every operation a page, the API, the CLI or a worker performs.

Each public method is one database transaction: the state change, approvals, tasks,
audit rows and outbox messages commit together or not at all. Each checks who may
act and raises NotAllowed, NotFound, Conflict or InvalidInput.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from catalog.loader import Catalog
from engine import approvals, attention, intake, people, permissions, queries, runtime, sla, timers
from engine.businesstime import BusinessCalendar
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound, Unavailable
from engine.models import Approval, Comment, Delegation, Request, Task
from engine.notifications import notify
from engine.runtime import Step, audit, touch, transition
from engine.tasks import all_done, move_to_next_tier, spec_of
from engine.versions import snapshot

T = TypeVar("T")
MAX_ATTEMPTS = 4
MAX_COMMENT = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


class RequestService:
    """Operations on requests, each in its own transaction, with permission checks."""

    def __init__(self, sessions: sessionmaker[Session], catalog: Callable[[], Catalog],
                 clock: Callable[[], datetime] = utcnow, base_url: str = "") -> None:
        self.sessions, self.catalog, self.clock = sessions, catalog, clock
        self.base_url = base_url.rstrip("/")
        self._calendars: dict[str, BusinessCalendar] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ unit of work

    def _calendar(self, catalog: Catalog) -> BusinessCalendar:
        cal = self._calendars.get(catalog.version)
        if cal is None:
            with self._lock:
                cal = self._calendars.setdefault(catalog.version, BusinessCalendar(catalog.settings))
        return cal

    def unit(self, actor: str | None, work: Callable[[Step], T]) -> T:
        """Run `work` in one transaction; retry when a concurrent change got there first."""
        for attempt in range(MAX_ATTEMPTS):
            catalog = self.catalog()
            session = self.sessions()
            try:
                with session.begin():
                    step = Step(session, catalog, self.clock(), actor, self._calendar(catalog),
                                notify=notify, base_url=self.base_url)
                    with session.no_autoflush:  # one flush at the end: one UPDATE per row
                        result = work(step)
                    step.finish()
                    return result
            except StaleDataError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise Conflict("someone else changed this at the same moment; "
                                   "reload and try again") from None
            except NotAllowed as exc:
                if getattr(exc, "security_event", None):
                    self._record_denial(actor, exc)
                raise
            except IntegrityError:
                raise Conflict("that conflicts with a change made at the same moment") from None
            except DBAPIError as exc:
                if _is_busy(exc):
                    raise Unavailable("the database is busy; try again in a moment") from None
                if _is_serialization(exc) and attempt < MAX_ATTEMPTS - 1:
                    continue
                raise
            finally:
                session.close()
        raise Conflict("someone else changed this at the same moment; reload and try again")

    def _record_denial(self, actor: str | None, exc: NotAllowed) -> None:
        event = exc.security_event  # type: ignore[attr-defined]
        session = self.sessions()
        try:
            with session.begin():
                step = Step(session, self.catalog(), self.clock(), actor,
                            self._calendar(self.catalog()))
                req = session.get(Request, event.pop("request_id"))
                audit(step, req, "security_denied", **event)
                step.finish()
        finally:
            session.close()

    # ------------------------------------------------------------ reading

    def request(self, session: Session, number: str, viewer: str, now: datetime) -> Request:
        """The request with this number, if `viewer` may see it (else NotFound, never 403)."""
        req = session.scalar(select(Request).where(Request.number == number))
        if req is None or not permissions.can_view(session, viewer, req, now):
            raise NotFound(f"no request {number}")
        return req

    # ------------------------------------------------------------ requests

    def submit(self, item_id: str, actor: str, answers: dict[str, Any],
               requested_for: str | None = None) -> Request:
        """Order an item: validate the answers, pin the workflow version, start the workflow."""

        def work(step: Step) -> Request:
            s, cat = step.session, step.catalog
            item = cat.item(item_id)
            requester = people.active_person(s, actor)
            if requester is None:
                raise NotAllowed(f"{actor} cannot order: not an active person")
            if item is None or not permissions.can_order(s, actor, item):
                raise NotFound(f"no catalog item {item_id}")
            target = requested_for or actor
            if target != actor:
                if not item.order_for_others:
                    raise InvalidInput(f"{item.name} cannot be ordered for someone else",
                                       {"requested_for": ["This item is ordered for yourself only."]})
                if people.active_person(s, target) is None:
                    raise InvalidInput(f"no active person {target}",
                                       {"requested_for": [f"{target} is not an active person."]})
            wf = cat.workflow(item.workflow)
            if wf is None:
                raise Conflict(f"item {item_id} has no workflow {item.workflow}")
            clean = intake.check_answers(s, cat, item, answers, people.snapshot(s, actor))
            version = snapshot(s, wf, step.now)
            req = Request(item_id=item.id, item_name=item.name, workflow_version_id=version.id,
                          workflow_version=version, state=wf.start, answers=clean,
                          requester_id=actor, requested_for_id=target,
                          priority=intake.priority(cat, item, clean), created_at=step.now,
                          updated_at=step.now)
            s.add(req)
            s.flush()
            req.number = f"REQ-{req.id:06d}"
            audit(step, req, "submitted", None, wf.start, item=item.id, version=wf.version,
                  requested_for=target)
            sla.start(step, req, wf)
            runtime.start(step, req, wf)
            return req

        return self.unit(actor, work)

    def cancel(self, number: str, actor: str, reason: str = "",
               seen_version: int | None = None) -> Request:
        def work(step: Step) -> Request:
            req = self.request(step.session, number, actor, step.now)
            self._may_cancel(step, req, actor)
            _fresh(req, seen_version)
            self._open(req)
            transition(step, req, "cancel", reason=_text(reason, "reason", required=False))
            return req

        return self.unit(actor, work)

    def comment(self, number: str, actor: str, body: str, internal: bool = False) -> Comment:
        def work(step: Step) -> Comment:
            s = step.session
            req = self.request(s, number, actor, step.now)
            if not permissions.takes_part(s, actor, req, step.now):
                raise NotAllowed(f"{actor} worked on {req.number} once and may read it, "
                                 "but no longer takes part in it")
            agent = permissions.is_agent(s, actor, req)
            if internal and not agent:
                raise NotAllowed("only people working on the request can write internal notes")
            c = Comment(request_id=req.id, author_id=actor, body=_text(body, "body"),
                        internal=internal, created_at=step.now)
            s.add(c)
            s.flush()
            if agent and not internal and req.responded_at is None and not permissions.is_party(req, actor):
                req.responded_at = step.now
            touch(step, req)
            audit(step, req, "comment", comment=c.id, internal=internal)
            if not internal and not permissions.is_party(req, actor):
                step.notify(step, req, "comment_added", [req.requester_id], key=f"comment:{c.id}",
                            comment={"body": c.body})
            return c

        return self.unit(actor, work)

    def ask_requester(self, number: str, actor: str, question: str,
                      seen_version: int | None = None) -> Comment:
        """An agent asks the requester something; the SLA clocks stop until they answer."""

        def work(step: Step) -> Comment:
            s = step.session
            req = self.request(s, number, actor, step.now)
            _fresh(req, seen_version)
            self._open(req)
            if not permissions.is_agent(s, actor, req):
                raise NotAllowed("only people working on the request can ask the requester")
            if req.waiting_on_requester:
                raise Conflict(f"{number} is already waiting on the requester")
            c = Comment(request_id=req.id, author_id=actor, body=_text(question, "question"),
                        kind="question", created_at=step.now)
            s.add(c)
            s.flush()
            req.waiting_on_requester = True
            req.responded_at = req.responded_at or step.now
            touch(step, req)
            sla.pause(step, req)
            audit(step, req, "asked_requester", comment=c.id)
            step.notify(step, req, "question_asked", [req.requester_id], key=f"question:{c.id}",
                        comment={"body": c.body})
            return c

        return self.unit(actor, work)

    def answer(self, number: str, actor: str, text: str) -> Comment:
        def work(step: Step) -> Comment:
            s = step.session
            req = self.request(s, number, actor, step.now)
            if not permissions.is_party(req, actor):
                raise NotAllowed("only the requester can answer")
            if not req.waiting_on_requester:
                raise Conflict(f"{number} is not waiting for an answer")
            c = Comment(request_id=req.id, author_id=actor, body=_text(text, "answer"),
                        kind="answer", created_at=step.now)
            s.add(c)
            s.flush()
            req.waiting_on_requester = False
            touch(step, req)
            sla.resume(step, req)
            audit(step, req, "answered", comment=c.id)
            assignees = [t.assignee_id for t in runtime.tasks_of_visit(s, req) if t.assignee_id]
            step.notify(step, req, "comment_added", assignees, key=f"answer:{c.id}",
                        comment={"body": c.body})
            return c

        return self.unit(actor, work)

    # ------------------------------------------------------------ approvals

    def approve(self, approval_id: int, actor: str, comment: str = "",
                seen_version: int | None = None) -> Approval:
        return self._decide(approval_id, actor, "approved", comment, seen_version)

    def reject(self, approval_id: int, actor: str, comment: str,
               seen_version: int | None = None) -> Approval:
        return self._decide(approval_id, actor, "rejected", comment, seen_version)

    def _approval(self, step: Step, approval_id: int, actor: str) -> tuple[Approval, Request]:
        s = step.session
        appr = s.get(Approval, approval_id)
        req = s.get(Request, appr.request_id) if appr else None
        if appr is None or req is None:
            raise NotFound(f"no approval {approval_id}")
        if appr.approver_id != actor and not permissions.can_view(s, actor, req, step.now):
            raise NotFound(f"no approval {approval_id}")  # the approver can always see it
        return appr, req

    def _decide(self, approval_id: int, actor: str, decision: str, comment: str,
                seen_version: int | None) -> Approval:
        def work(step: Step) -> Approval:
            appr, req = self._approval(step, approval_id, actor)
            self._may_decide(step, appr, req, actor)
            _fresh(req, seen_version)
            if decision == "rejected" and (not isinstance(comment, str) or not comment.strip()):
                raise InvalidInput("a rejection needs a comment",
                                   {"comment": ["Say why the request is rejected."]})
            if appr.decision != "pending" or appr.visit != req.visit or req.status != "open":
                raise Conflict(f"approval {approval_id} was already {appr.decision}; "
                               f"{req.number} is now {req.state}")
            if self._already_votes(step, appr, actor, decided=True):
                raise Conflict(f"{actor} already decided approval {appr.name} of {req.number}; "
                               "one person counts once")
            appr.decision, appr.decided_by_id, appr.decided_at = decision, actor, step.now
            appr.comment = _text(comment, "comment", required=False)
            touch(step, req)
            on_behalf = appr.approver_id if appr.approver_id != actor else None
            audit(step, req, f"approval_{decision}", approval=appr.id, name=appr.name,
                  on_behalf_of=on_behalf)
            runtime.decide_if_complete(step, req)
            return appr

        return self.unit(actor, work)

    @staticmethod
    def _may_decide(step: Step, appr: Approval, req: Request, actor: str) -> None:
        if permissions.is_party(req, actor):
            raise _self_dealing(f"{actor} cannot decide on their own request {req.number}",
                                req, appr, "self-approval")
        if appr.approver_id != actor and not permissions.may_decide(step.session, actor, appr, step.now):
            raise NotAllowed(f"{actor} is not an approver of {req.number}")

    @staticmethod
    def _may_delegate(step: Step, appr: Approval, req: Request, actor: str) -> None:
        if permissions.is_party(req, actor):  # admins included: segregation of duties
            raise _self_dealing(f"{actor} cannot choose who approves their own request {req.number}",
                                req, appr, "self-delegation")
        if not permissions.may_delegate(step.session, actor, appr, req):
            raise NotAllowed(f"{actor} is not the approver of approval {appr.id}")

    @staticmethod
    def _may_cancel(step: Step, req: Request, actor: str) -> None:
        if not permissions.may_cancel(step.session, actor, req):
            raise NotAllowed(f"only the requester can cancel {req.number}")

    def authorize(self, action: str, target: int | str, actor: str) -> None:
        """Refuse (NotFound/NotAllowed) before any input is read if `actor` may not act at all.

        Runs the same checks as the action itself (a refused self-approval or self-delegation
        is recorded) and changes nothing else; views call it before validating their forms.
        """

        def work(step: Step) -> None:
            if action == "cancel":
                self._may_cancel(step, self.request(step.session, str(target), actor, step.now), actor)
                return
            if action in ("retry", "route"):
                self._may_handle_attention(step, self.request(step.session, str(target), actor,
                                                              step.now), actor)
                return
            appr, req = self._approval(step, int(target), actor)
            if action in ("approve", "reject"):
                self._may_decide(step, appr, req, actor)
            elif action == "delegate":
                self._may_delegate(step, appr, req, actor)

        self.unit(actor, work)

    @staticmethod
    def _already_votes(step: Step, appr: Approval, person: str, decided: bool) -> bool:
        """Whether `person` holds (or, with `decided`, has cast) another vote in the same approval."""
        req = step.session.get(Request, appr.request_id)
        assert req is not None
        for other in runtime.visit_approvals(step, req):
            if other.id == appr.id or other.name != appr.name:
                continue
            if decided and other.decided_by_id == person and other.decision in ("approved", "rejected"):
                return True
            if not decided and other.decision in ("pending", "approved", "rejected") and (
                    other.approver_id == person or other.decided_by_id == person):
                return True
        return False

    def delegate(self, approval_id: int, actor: str, to_person: str, comment: str = "",
                 seen_version: int | None = None) -> Approval:
        """Hand one pending approval to someone else."""

        def work(step: Step) -> Approval:
            s = step.session
            appr, req = self._approval(step, approval_id, actor)
            self._may_delegate(step, appr, req, actor)
            _fresh(req, seen_version)
            if appr.decision != "pending" or appr.visit != req.visit:
                raise Conflict(f"approval {approval_id} is no longer pending")
            if people.active_person(s, to_person) is None:
                raise InvalidInput(f"no active person {to_person}",
                                   {"to": [f"{to_person} is not an active person."]})
            if permissions.is_party(req, to_person) or to_person == appr.approver_id:
                raise InvalidInput(f"{to_person} cannot take this approval",
                                   {"to": ["Pick someone other than the requester and yourself."]})
            if self._already_votes(step, appr, to_person, decided=False):
                raise InvalidInput(f"{to_person} already takes part in this approval",
                                   {"to": ["Pick someone who is not already an approver here."]})
            appr.decision = "delegated"
            new = Approval(request_id=req.id, visit=appr.visit, state=appr.state, name=appr.name,
                           policy=appr.policy, approver_id=to_person,
                           source=f"delegated by {actor}", delegated_from_id=appr.approver_id,
                           created_at=step.now, due_at=appr.due_at,
                           comment=_text(comment, "comment", required=False))
            s.add(new)
            s.flush()
            touch(step, req)
            audit(step, req, "approval_delegated", approval=appr.id, to=to_person, new=new.id)
            step.notify(step, req, "approval_requested",
                        approvals.recipients(s, req, [to_person], step.now), key=f"delegated:{new.id}")
            return new

        return self.unit(actor, work)

    def set_delegation(self, actor: str, delegate: str, starts_at: datetime,
                       ends_at: datetime) -> Delegation:
        """While away from `starts_at` to `ends_at`, `delegate` may decide `actor`'s approvals."""

        def work(step: Step) -> Delegation:
            s = step.session
            if people.active_person(s, delegate) is None or delegate == actor:
                raise InvalidInput(f"no other active person {delegate}",
                                   {"delegate": ["Pick another active person."]})
            if ends_at <= starts_at:
                raise InvalidInput("the delegation ends before it starts",
                                   {"ends_at": ["Must be after the start."]})
            d = Delegation(person_id=actor, delegate_id=delegate, starts_at=starts_at,
                           ends_at=ends_at, created_at=step.now)
            s.add(d)
            s.flush()
            audit(step, None, "delegation_set", delegate=delegate, starts_at=starts_at.isoformat(),
                  ends_at=ends_at.isoformat())
            if starts_at <= step.now < ends_at:
                self._tell_delegate(step, d)
            return d

        return self.unit(actor, work)

    @staticmethod
    def _tell_delegate(step: Step, d: Delegation) -> None:
        """A delegation that starts now: the delegate hears of each approval already waiting
        (approvals opened later tell them as they open: approvals.recipients)."""
        s = step.session
        for appr, req in s.execute(queries.inbox_query(d.person_id, ())):
            if not permissions.is_party(req, d.delegate_id):
                step.notify(step, req, "approval_requested", [d.delegate_id],
                            key=f"standing:{d.id}:{appr.id}")

    def end_delegation(self, actor: str, delegation_id: int) -> Delegation:
        """Stop a delegation now (or drop one that has not started)."""

        def work(step: Step) -> Delegation:
            d = step.session.get(Delegation, delegation_id)
            if d is None or (d.person_id != actor and not people.is_admin(step.session, actor)):
                raise NotFound(f"no delegation {delegation_id}")
            if d.ends_at <= step.now:
                raise Conflict(f"delegation {delegation_id} has already ended")
            d.ends_at = max(step.now, d.starts_at)
            audit(step, None, "delegation_ended", delegation=d.id, delegate=d.delegate_id)
            return d

        return self.unit(actor, work)

    # ------------------------------------------------------------ tasks

    def _task(self, step: Step, task_id: int, actor: str,
              seen_version: int | None = None) -> tuple[Task, Request]:
        s = step.session
        task = s.get(Task, task_id)
        req = s.get(Request, task.request_id) if task else None
        if task is None or req is None or not permissions.can_view(s, actor, req, step.now):
            raise NotFound(f"no task {task_id}")
        if not (people.is_member(s, actor, task.queue) or task.assignee_id == actor
                or people.is_admin(s, actor)):
            raise NotAllowed(f"{actor} is not in the {task.queue} queue")
        if task.status != "open" or task.visit != req.visit or req.status != "open":
            raise Conflict(f"task {task_id} is {task.status}; {req.number} is now {req.state}")
        _fresh(req, seen_version)
        return task, req

    def claim_task(self, task_id: int, actor: str, seen_version: int | None = None) -> Task:
        def work(step: Step) -> Task:
            task, req = self._task(step, task_id, actor, seen_version)
            if task.assignee_id not in (None, actor):
                raise Conflict(f"task {task_id} is already claimed by {task.assignee_id}")
            if task.assignee_id == actor:
                return task
            task.assignee_id = actor
            req.responded_at = req.responded_at or step.now
            touch(step, req)
            audit(step, req, "task_claimed", task=task.id)
            return task

        return self.unit(actor, work)

    def reassign(self, task_id: int, actor: str, to_person: str,
                 seen_version: int | None = None) -> Task:
        def work(step: Step) -> Task:
            s = step.session
            task, req = self._task(step, task_id, actor, seen_version)
            if not (people.is_member(s, to_person, task.queue) and people.active_person(s, to_person)):
                raise InvalidInput(f"{to_person} is not in the {task.queue} queue",
                                   {"to": [f"Pick someone in {task.queue}."]})
            audit(step, req, "task_reassigned", task=task.id, from_person=task.assignee_id,
                  to=to_person)
            task.assignee_id = to_person
            touch(step, req)
            step.notify(step, req, "task_assigned", [to_person], key=f"reassign:{task.id}:{to_person}",
                        task=task)
            return task

        return self.unit(actor, work)

    def escalate_task(self, task_id: int, actor: str, reason: str = "",
                      seen_version: int | None = None) -> Task:
        def work(step: Step) -> Task:
            task, req = self._task(step, task_id, actor, seen_version)
            if not move_to_next_tier(step, req, task, _text(reason, "reason", required=False)):
                raise Conflict(f"task {task_id} is already at its last tier ({task.queue})")
            touch(step, req)
            return task

        return self.unit(actor, work)

    def complete_task(self, task_id: int, actor: str, outcome: str | None = None,
                      answers: dict[str, Any] | None = None, comment: str = "",
                      seen_version: int | None = None) -> Task:
        def work(step: Step) -> Task:
            s = step.session
            task, req = self._task(step, task_id, actor, seen_version)
            if task.assignee_id not in (None, actor) and not people.is_admin(s, actor):
                raise Conflict(f"task {task_id} is claimed by {task.assignee_id}")
            spec = spec_of(req, task)
            outcomes = spec.outcomes if spec else ("done",)
            chosen = outcome or outcomes[0]
            if chosen not in outcomes:
                raise InvalidInput(f"{chosen} is not an outcome of this task",
                                   {"outcome": [f"Choose one of: {', '.join(outcomes)}."]})
            task.answers = intake.check_task_answers(spec.fields if spec else (), answers or {})
            task.status, task.outcome = "done", chosen
            task.assignee_id = task.assignee_id or actor
            task.completed_at, task.completed_by_id = step.now, actor
            req.responded_at = req.responded_at or step.now
            touch(step, req)
            audit(step, req, "task_completed", task=task.id, outcome=chosen,
                  comment=_text(comment, "comment", required=False))
            state = runtime.workflow(req).state(req.state)
            if state is not None and len(state.tasks) > 1:
                if all_done(step, req):
                    transition(step, req, "done")
            else:
                transition(step, req, chosen)
            return task

        return self.unit(actor, work)

    # ------------------------------------------------------------ needs attention

    @staticmethod
    def _may_handle_attention(step: Step, req: Request, actor: str) -> None:
        if not people.is_admin(step.session, actor):
            raise NotAllowed(f"only an admin can retry or route {req.number} by hand")

    def _halted(self, step: Step, number: str, actor: str, seen_version: int | None) -> Request:
        req = self.request(step.session, number, actor, step.now)
        self._may_handle_attention(step, req, actor)
        _fresh(req, seen_version)
        if req.status != "open" or req.attention_at is None:
            raise Conflict(f"{number} does not need attention (it is {req.state})")
        return req

    def retry(self, number: str, actor: str, reason: str,
              seen_version: int | None = None) -> Request:
        """Re-run the step a request halted on, with today's data (admins); it may fail again."""

        def work(step: Step) -> Request:
            req = self._halted(step, number, actor, seen_version)
            audit(step, req, "attention_retried", state=req.state, step=req.attention_step,
                  error=req.attention_error, reason=_text(reason, "reason"))
            touch(step, req)
            attention.retry(step, req)
            return req

        return self.unit(actor, work)

    def route(self, number: str, actor: str, reason: str, to_state: str | None = None,
              outcome: str | None = None, seen_version: int | None = None) -> Request:
        """Move a halted request by hand (admins): into a declared state, or end it with an outcome."""

        def work(step: Step) -> Request:
            req = self._halted(step, number, actor, seen_version)
            wf = runtime.workflow(req)
            why = _text(reason, "reason")
            if (to_state is None) == (outcome is None):
                raise InvalidInput("route to a state or end with an outcome, not both or neither",
                                   {"target": ["Choose a state or an outcome."]})
            if to_state is not None and wf.state(to_state) is None:
                raise InvalidInput(f"{wf.id} {wf.version} has no state {to_state}",
                                   {"target": [f"{to_state} is not a state of this workflow."]})
            outcomes = attention.declared_outcomes(req)
            if outcome is not None and outcome not in outcomes:
                raise InvalidInput(f"{wf.id} {wf.version} declares no outcome {outcome}",
                                   {"target": [f"Choose one of: {', '.join(outcomes)}."]})
            dest = to_state if to_state is not None else outcomes[str(outcome)]
            audit(step, req, "attention_routed", req.state, dest, step=req.attention_step,
                  error=req.attention_error, outcome=outcome, reason=why)
            touch(step, req)
            attention.route(step, req, to_state, outcome)
            return req

        return self.unit(actor, work)

    # ------------------------------------------------------------ timers

    def run_due(self, now: datetime | None = None, limit: int = 200) -> int:
        """Fire every timer due by `now` (default: the clock), each in its own transaction."""
        return timers.run_due(self, now or self.clock(), limit)

    @staticmethod
    def _open(req: Request) -> None:
        if req.status != "open":
            raise Conflict(f"{req.number} is already {req.outcome}")


def _self_dealing(message: str, req: Request, appr: Approval, reason: str) -> NotAllowed:
    """A refusal that `unit` records as a `security_denied` audit event."""
    exc = NotAllowed(message)
    exc.security_event = {"request_id": req.id, "reason": reason,  # type: ignore[attr-defined]
                          "approval": appr.id}
    return exc


def _fresh(req: Request, seen_version: int | None) -> None:
    """A form loaded before someone else's change must not act on the new state."""
    if seen_version is not None and seen_version != req.lock_version:
        raise Conflict(f"{req.number} changed since you loaded it (it is now {req.state}); "
                       "reload and try again")


def _text(value: str, name: str, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text", {name: ["Must be text."]})
    value = value.strip()
    if "\x00" in value:
        raise InvalidInput(f"{name} contains a NUL character", {name: ["Must not contain NUL characters."]})
    if required and not value:
        raise InvalidInput(f"{name} is empty", {name: ["This field is required."]})
    if len(value) > MAX_COMMENT:
        raise InvalidInput(f"{name} is too long", {name: [f"Must be at most {MAX_COMMENT} characters."]})
    return value


def _is_busy(exc: DBAPIError) -> bool:
    return "database is locked" in str(exc.orig) or "database is busy" in str(exc.orig)


def _is_serialization(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40001", "40P01")
