"""The approval use cases of the request service: decide, delegate, stand in while away.

A mixin of `RequestService` (engine.service): each public method is one unit of work.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.orm import aliased

from engine import email_links, notifications, people, permissions, queries, runtime
from engine.errors import Conflict, Denial, InvalidInput, NotAllowed, NotFound, SecurityDenied
from engine.inputs import checked_text, fresh
from engine.models import Approval, Delegation, Person, Request
from engine.unit import UnitOfWork, UnitRunner, audit, touch, visit_approvals


def _approval_query() -> Select[Approval, Request, Person]:
    """One query for a decision: the approval, its request, the requester (expressions read
    them) and the other approvals of the request's current visit (the one-vote check and the
    outcome read them: unit.visit_approvals). Built once: building it costs more than running it."""
    me = aliased(Approval)
    return (select(Approval, Request, Person)
            .join(Request, Request.id == Approval.request_id)
            .join(me, me.request_id == Request.id)
            .outerjoin(Person, Person.id == Request.requester_id)
            .where(me.id == bindparam("approval_id"),
                   or_(Approval.visit == Request.visit, Approval.id == me.id))
            .order_by(Approval.id))


_APPROVAL_QUERY = _approval_query()


class Decisions:
    """Approving, rejecting and delegating approvals; standing delegations."""

    unit: UnitRunner

    def approve(self, approval_id: int, actor: str, comment: str = "",
                seen_version: int | None = None) -> Approval:
        return self._decide(approval_id, actor, "approved", comment, seen_version)

    def reject(self, approval_id: int, actor: str, comment: str,
               seen_version: int | None = None) -> Approval:
        return self._decide(approval_id, actor, "rejected", comment, seen_version)

    @staticmethod
    def _approval(unit: UnitOfWork, approval_id: int, actor: str) -> tuple[Approval, Request]:
        s = unit.session
        rows = s.execute(_APPROVAL_QUERY, {"approval_id": approval_id}).all()
        appr = next((r.Approval for r in rows if r.Approval.id == approval_id), None)
        req = rows[0].Request if rows else None
        if appr is None or req is None:
            raise NotFound(f"no approval {approval_id}")
        unit.remember(req.requester_id, rows[0].Person)
        unit.visit_approvals.setdefault(
            req.id, (req.visit, [r.Approval for r in rows if r.Approval.visit == req.visit]))
        if appr.approver_id != actor and not permissions.can_view_request(s, actor, req, unit.now):
            raise NotFound(f"no approval {approval_id}")  # the approver can always see it
        return appr, req

    def _decide(self, approval_id: int, actor: str, decision: str, comment: str,
                seen_version: int | None) -> Approval:
        def work(unit: UnitOfWork) -> Approval:
            return decide(unit, approval_id, actor, decision, comment, seen_version)

        return self.unit(actor, work)

    @staticmethod
    def _ensure_can_decide(unit: UnitOfWork, appr: Approval, req: Request, actor: str) -> None:
        if permissions.is_party(req, actor):
            raise _self_dealing(f"{actor} cannot decide on their own request {req.number}",
                                req, appr, "self-approval")
        if appr.approver_id != actor and not permissions.can_decide(unit.session, actor, appr, unit.now):
            raise NotAllowed(f"{actor} is not an approver of {req.number}")

    @staticmethod
    def _ensure_can_delegate(unit: UnitOfWork, appr: Approval, req: Request, actor: str) -> None:
        if permissions.is_party(req, actor):  # admins included: segregation of duties
            raise _self_dealing(f"{actor} cannot choose who approves their own request {req.number}",
                                req, appr, "self-delegation")
        if not permissions.can_delegate(unit.session, actor, appr, req):
            raise NotAllowed(f"{actor} is not the approver of approval {appr.id}")

    @staticmethod
    def _already_votes(unit: UnitOfWork, appr: Approval, person: str, decided: bool) -> bool:
        """Whether `person` holds (or, with `decided`, has cast) another vote in the same approval."""
        req = unit.session.get(Request, appr.request_id)
        assert req is not None
        for other in visit_approvals(unit, req):
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

        def work(unit: UnitOfWork) -> Approval:
            s = unit.session
            appr, req = self._approval(unit, approval_id, actor)
            self._ensure_can_delegate(unit, appr, req, actor)
            fresh(req, seen_version)
            if appr.decision != "pending" or appr.visit != req.visit:
                raise Conflict(f"approval {approval_id} is no longer pending")
            if people.active_person(s, to_person) is None:
                raise InvalidInput(f"no active person {to_person}",
                                   {"to": [f"{to_person} is not an active person."]})
            if permissions.is_party(req, to_person) or to_person == appr.approver_id:
                raise InvalidInput(f"{to_person} cannot take this approval",
                                   {"to": ["Pick someone other than the requester and yourself."]})
            if self._already_votes(unit, appr, to_person, decided=False):
                raise InvalidInput(f"{to_person} already takes part in this approval",
                                   {"to": ["Pick someone who is not already an approver here."]})
            appr.decision = "delegated"
            new = Approval(request_id=req.id, visit=appr.visit, state=appr.state, name=appr.name,
                           policy=appr.policy, approver_id=to_person,
                           source=f"delegated by {actor}", delegated_from_id=appr.approver_id,
                           created_at=unit.now, due_at=appr.due_at,
                           comment=checked_text(comment, "comment", required=False))
            s.add(new)
            s.flush()
            touch(unit, req)
            audit(unit, req, "approval_delegated", approval=appr.id, to=to_person, new=new.id)
            notifications.tell_approvers(
                unit, req, [to_person],
                f"{notifications.name_of(unit, actor)} delegated an approval to you ({appr.name})",
                key=f"delegated:{new.id}", personal=email_links.approval_links(unit, req, [new]))
            return new

        return self.unit(actor, work)

    def set_delegation(self, actor: str, delegate: str, starts_at: datetime,
                       ends_at: datetime) -> Delegation:
        """While away from `starts_at` to `ends_at`, `delegate` may decide `actor`'s approvals."""

        def work(unit: UnitOfWork) -> Delegation:
            s = unit.session
            if people.active_person(s, delegate) is None or delegate == actor:
                raise InvalidInput(f"no other active person {delegate}",
                                   {"delegate": ["Pick another active person."]})
            if ends_at <= starts_at:
                raise InvalidInput("the delegation ends before it starts",
                                   {"ends_at": ["Must be after the start."]})
            d = Delegation(person_id=actor, delegate_id=delegate, starts_at=starts_at,
                           ends_at=ends_at, created_at=unit.now)
            s.add(d)
            s.flush()
            audit(unit, None, "delegation_set", delegate=delegate, starts_at=starts_at.isoformat(),
                  ends_at=ends_at.isoformat())
            if starts_at <= unit.now < ends_at:
                self._tell_delegate(unit, d)
            return d

        return self.unit(actor, work)

    @staticmethod
    def _tell_delegate(unit: UnitOfWork, d: Delegation) -> None:
        """A delegation that starts now: the delegate hears of each approval already waiting
        (approvals opened later tell them as they open: approvals.recipients)."""
        s = unit.session
        for appr, req in s.execute(queries.inbox_query(d.person_id, ())):
            if not permissions.is_party(req, d.delegate_id):
                notifications.tell(
                    unit, req, notifications.APPROVAL_NEEDED, [d.delegate_id],
                    f"Your approval is needed for {notifications.name_of(unit, d.person_id)}, "
                    f"who delegated to you ({appr.name})",
                    key=f"standing:{d.id}:{appr.id}", email="approval_requested",
                    personal=email_links.approval_links(unit, req, [appr]))

    def end_delegation(self, actor: str, delegation_id: int) -> Delegation:
        """Stop a delegation now (or drop one that has not started)."""

        def work(unit: UnitOfWork) -> Delegation:
            d = unit.session.get(Delegation, delegation_id)
            if d is None or (d.person_id != actor and not people.is_admin(unit.session, actor)):
                raise NotFound(f"no delegation {delegation_id}")
            if d.ends_at <= unit.now:
                raise Conflict(f"delegation {delegation_id} has already ended")
            d.ends_at = max(unit.now, d.starts_at)
            audit(unit, None, "delegation_ended", delegation=d.id, delegate=d.delegate_id)
            return d

        return self.unit(actor, work)


def decide(unit: UnitOfWork, approval_id: int, actor: str, decision: str, comment: str,
           seen_version: int | None = None) -> Approval:
    """Approve or reject inside the caller's unit, with every rule of `Decisions.approve`
    (the emailed links use it: engine.email_actions)."""
    appr, req = Decisions._approval(unit, approval_id, actor)
    Decisions._ensure_can_decide(unit, appr, req, actor)
    fresh(req, seen_version)
    if decision == "rejected" and (not isinstance(comment, str) or not comment.strip()):
        raise InvalidInput("a rejection needs a comment",
                           {"comment": ["Say why the request is rejected."]})
    if appr.decision != "pending" or appr.visit != req.visit or req.status != "open":
        raise Conflict(f"approval {approval_id} was already {appr.decision}; "
                       f"{req.number} is now {req.state}")
    if Decisions._already_votes(unit, appr, actor, decided=True):
        raise Conflict(f"{actor} already decided approval {appr.name} of {req.number}; "
                       "one person counts once")
    appr.decision, appr.decided_by_id, appr.decided_at = decision, actor, unit.now
    appr.comment = checked_text(comment, "comment", required=False)
    touch(unit, req)
    on_behalf = appr.approver_id if appr.approver_id != actor else None
    audit(unit, req, f"approval_{decision}", approval=appr.id, name=appr.name,
          on_behalf_of=on_behalf)
    runtime.decide_if_complete(unit, req)
    return appr


def _self_dealing(message: str, req: Request, appr: Approval, reason: str) -> SecurityDenied:
    """A refusal the unit runner records as a `security_denied` audit event."""
    return SecurityDenied(message, Denial(request_id=req.id, reason=reason, approval=appr.id))
