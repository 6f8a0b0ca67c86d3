"""Who may see and do what: every check the web layer relies on lives here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog.models import CatalogItem
from engine import people
from engine.memo import remember
from engine.models import Approval, AuditEvent, Group, Membership, Request, Task, Watcher

#: audit events that make their actor someone who worked the request (read access stays)
WORK_EVENTS = ("task_claimed", "task_completed", "task_escalated", "task_reassigned",
               "approval_approved", "approval_rejected", "approval_delegated", "comment",
               "asked_requester")


def can_order(session: Session, person_id: str, item: CatalogItem) -> bool:
    """Whether the item is visible to (and so orderable by) the person."""
    return can_see_item(session, person_id, item.visible_to)


def can_see_item(session: Session, person_id: str, visible_to: tuple[str, ...]) -> bool:
    """Whether a `visible_to` list (of an item or an article) includes the person."""
    return Audience(session, person_id).sees(visible_to)


class Audience:
    """One person as `visible_to` lists name them, for asking about many items at once: their
    groups and roles are read once, when first needed (a catalog of items costs two queries)."""

    def __init__(self, session: Session, person_id: str) -> None:
        self.session, self.person_id = session, person_id
        self._groups: frozenset[str] | None = None
        self._roles: frozenset[str] | None = None

    def groups(self) -> frozenset[str]:
        if self._groups is None:
            self._groups = frozenset(people.groups_of(self.session, self.person_id))
        return self._groups

    def roles(self) -> frozenset[str]:
        if self._roles is None:
            self._roles = frozenset(people.roles_of(self.session, self.person_id))
        return self._roles

    def sees(self, visible_to: tuple[str, ...]) -> bool:
        """Whether `visible_to` includes the person (admins see everything)."""
        for who in visible_to:
            kind, _, ident = who.partition(":")
            if who == "everyone":
                return True
            if kind == "person" and ident == self.person_id:
                return True
            if kind == "group" and ident in self.groups():
                return True
            if kind == "role" and ident in self.roles():
                return True
        return people.ADMIN_ROLE in self.roles()


def is_party(req: Request, person_id: str) -> bool:
    """The requester or the person it was requested for."""
    return person_id in (req.requester_id, req.requested_for_id)


def is_agent(session: Session, person_id: str, req: Request) -> bool:
    """Works on the request: its assignee or in its assignment group, in the queue of one of
    its tasks or assigned one, or an admin. Read once per transaction until the session writes
    (engine.memo): a request page asks it from every panel."""
    return remember(session, ("is_agent", person_id, req.id, req.assignee_id,
                              req.assignment_group_id), lambda: _is_agent(session, person_id, req))


def _is_agent(session: Session, person_id: str, req: Request) -> bool:
    if people.is_admin(session, person_id) or req.assignee_id == person_id:
        return True
    if req.assignment_group_id and people.is_member(session, person_id, req.assignment_group_id):
        return True
    in_queue = select(Task.id).join(Membership, Membership.group_id == Task.queue).where(
        Task.request_id == req.id, Membership.person_id == person_id)
    assigned = select(Task.id).where(Task.request_id == req.id, Task.assignee_id == person_id)
    return bool(session.scalar(select(or_(in_queue.exists(), assigned.exists()))))


def is_approver(session: Session, person_id: str, req: Request, now: datetime) -> bool:
    """Holds (or decided, or holds by delegation) an approval of the request."""
    who = [person_id, *people.delegators_for(session, person_id, now)]
    mine = select(Approval.id).where(
        Approval.request_id == req.id,
        or_(Approval.approver_id.in_(who), Approval.decided_by_id == person_id,
            Approval.delegated_from_id == person_id))
    return bool(session.scalar(select(mine.exists())))


def is_worker_of(session: Session, person_id: str, req: Request) -> bool:
    """Claimed, reassigned, escalated or completed a task of it, decided, delegated or was
    handed an approval of it, or commented on it.

    Read from the request's own audit rows and approvals (`ix_audit_request`,
    `ix_approvals_request_visit`): a few rows per request, whatever the table sizes.
    """
    worked = select(AuditEvent.id).where(AuditEvent.request_id == req.id,
                                         AuditEvent.actor_id == person_id,
                                         AuditEvent.event.in_(WORK_EVENTS))
    handed = select(Approval.id).where(Approval.request_id == req.id,
                                       Approval.approver_id == person_id,
                                       Approval.delegated_from_id.is_not(None))
    return bool(session.scalar(select(or_(worked.exists(), handed.exists()))))


def takes_part(session: Session, person_id: str, req: Request, now: datetime) -> bool:
    """A party to the request, one of its agents, one of its approvers (or their delegate),
    or one of its watchers."""
    return (is_party(req, person_id) or is_agent(session, person_id, req)
            or is_approver(session, person_id, req, now)
            or session.get(Watcher, (req.id, person_id)) is not None)


def can_view_request(session: Session, person_id: str, req: Request, now: datetime) -> bool:
    """Takes part in the request, or worked it once (then read only: an escalated task's
    tier-1 agent still sees what became of it)."""
    return takes_part(session, person_id, req, now) or is_worker_of(session, person_id, req)


def can_decide(session: Session, person_id: str, approval: Approval, now: datetime) -> bool:
    """The approver, or someone they delegated to for this moment."""
    if approval.approver_id == person_id:
        return True
    return approval.approver_id in people.delegators_for(session, person_id, now)


def can_cancel(session: Session, person_id: str, req: Request) -> bool:
    """The requester (or the person it is for), or an admin."""
    return is_party(req, person_id) or people.is_admin(session, person_id)


def can_delegate(session: Session, person_id: str, approval: Approval, req: Request) -> bool:
    """The approver, or an admin (a delegate does not pass an approval on); never a party to
    the request, admins included: nobody chooses who approves their own request."""
    if is_party(req, person_id):
        return False
    return approval.approver_id == person_id or people.is_admin(session, person_id)


def can_see_reports(session: Session, person_id: str, owner_groups: frozenset[str],
                    owns_service: bool | None = None) -> bool:
    """The dashboards: the `reporting` role, a service owner (the manager of a group that owns
    some catalog item: `owner_groups`; `owns_service` when the caller read it already), or an
    admin."""
    roles = people.roles_of(session, person_id)
    if "reporting" in roles or people.ADMIN_ROLE in roles:
        return True
    if owns_service is not None:
        return owns_service
    return session.scalar(select(Group.id).where(Group.manager_id == person_id,
                                                 Group.id.in_(owner_groups)).limit(1)) is not None
