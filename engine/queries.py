"""What the portal shows: inbox, queues, my requests, one request with its timeline.

Read-only; each takes a Session and the viewer, and shows only what the viewer may see.
The inbox walks `ix_approvals_inbox` in its order; a queue walks `ix_tasks_queue` (by due date),
`ix_tasks_queue_id` (newest or oldest first) or, filtered by assignee, `ix_tasks_queue_assignee`
and `ix_tasks_queue_assignee_id`: no list is sorted in memory. Counts stop at COUNT_CAP + 1 rows
past the page shown (`Page.more`), so a long queue is "more than 1,000", not counted row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session, lazyload

from engine import people
from engine.memo import recall, remember
from engine.models import (
    Approval,
    AuditEvent,
    Comment,
    Delegation,
    Group,
    Membership,
    Notification,
    Person,
    Request,
    Task,
    WorkflowVersion,
)

PAGE_SIZE = 25
#: counting stops here (past the page shown): a list says "more than 1,000"
COUNT_CAP = 1000


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Any]
    page: int
    pages: int
    #: rows counted: every row, or (with `more`) COUNT_CAP + 1 or one past the page shown
    total: int
    #: there are more rows than `total`; the count stopped
    more: bool = False

    @property
    def counted(self) -> str:
        """The count in words: "25", or "more than 1,000" when the count stopped."""
        return f"more than {self.total - 1:,}" if self.more else f"{self.total:,}"


def _paginate(session: Session, query: Select[Any], page: int, size: int = PAGE_SIZE,
              count: Select[Any] | None = None, capped: bool = False) -> Page:  # type: ignore[type-arg]
    """One page of `query`; `count` is a cheaper query of the same number of rows, when known.

    `capped`: `count` selects the rows' ids, of which at most COUNT_CAP + 1 (or one more than
    reach the page asked for) are counted."""
    if count is None:
        count = query.order_by(None)
        capped = True
    limit = max(COUNT_CAP, max(1, page) * size) + 1
    total = session.scalar(select(func.count()).select_from(count.limit(limit).subquery())
                           if capped else count) or 0
    more = capped and total >= limit
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    rows = session.execute(query.limit(size).offset((page - 1) * size)).all()
    return Page(rows, page, pages, total, more)


def inbox_query(person_id: str, delegators: Sequence[str]) -> Select[Any]:  # type: ignore[type-arg]
    """Pending approvals of the person and their delegators, never of the person's own requests."""
    return (select(Approval, Request).options(lazyload(Request.workflow_version))  # type: ignore[return-value]
            .join(Request, Request.id == Approval.request_id)
            .where(_approvers(person_id, delegators), Approval.decision == "pending",
                   Approval.visit == Request.visit, Request.status == "open",
                   Request.requester_id != person_id, Request.requested_for_id != person_id)
            .order_by(Approval.created_at, Approval.id))


def _approvers(person_id: str | BindParameter[str], delegators: Sequence[str]) -> Any:
    # `=` for one approver: the index then gives the rows in the inbox's order (with several,
    # their few pending rows are sorted)
    if not delegators:
        return Approval.approver_id == person_id
    return Approval.approver_id.in_([person_id, *delegators])


def _inbox_count_query(person_id: str | BindParameter[str],
                       delegators: Sequence[str]) -> Select[Any]:  # type: ignore[type-arg]
    """The ids of the inbox's rows, to count."""
    # Leaving a state closes its pending approvals (runtime.close_visit), so the pending rows
    # alone give the count: an index-only scan instead of a join over every open request.
    # Nobody approves their own request (approvals.resolve), but a delegator's approval may be
    # of the delegate's own request: with delegators, those rows are joined and left out.
    count = select(Approval.id).where(_approvers(person_id, delegators),
                                      Approval.decision == "pending")
    if delegators:
        count = count.join(Request, Request.id == Approval.request_id).where(
            Request.requester_id != person_id, Request.requested_for_id != person_id)
    return count


def inbox(session: Session, person_id: str, now: datetime, page: int = 1) -> Page:
    """Pending approvals of the person, and of those who delegated to them now."""
    delegators = people.delegators_for(session, person_id, now)
    found = _paginate(session, inbox_query(person_id, delegators), page,
                      count=_inbox_count_query(person_id, delegators), capped=True)
    if found.page == 1:  # counted as inbox_count counts: the nav's badge needs no count of its own
        remember(session, ("inbox_count", person_id, now), lambda: found.total)
    return found


def inbox_count(session: Session, person_id: str, now: datetime) -> int:
    """Pending approvals of the person and their delegators, at most COUNT_CAP + 1 (read once
    per transaction until the session writes)."""
    def count() -> int:
        delegators = people.delegators_for(session, person_id, now)
        ids = _inbox_count_query(person_id, delegators).limit(COUNT_CAP + 1).subquery()
        return session.scalar(select(func.count()).select_from(ids)) or 0
    return remember(session, ("inbox_count", person_id, now), count)


@dataclass(frozen=True, slots=True)
class Nav:
    """What the navigation bar of every page shows of its viewer."""

    #: pending approvals, as inbox_count counts them
    inbox: int
    #: unread notifications (engine.notifications.unread_count)
    unread: int
    #: manages a group that owns some catalog item (a service owner: sees the dashboards)
    owns_service: bool


def nav(session: Session, person_id: str, now: datetime, owner_groups: frozenset[str]) -> Nav:
    """The nav's figures in one statement (each on its index), where they were four: the inbox
    count, the delegations it depends on, the unread count and the service-owner check. With a
    delegation in force the inbox count is inbox_count's (one statement more); an inbox count the
    page already made (the inbox's first page) is not made again."""
    def read() -> Nav:
        known: int | None = recall(session, ("inbox_count", person_id, now))
        statement = _NAV if known is None else _NAV_WITHOUT_INBOX
        row = session.execute(statement, {"person": person_id, "now": now,
                                          "owners": sorted(owner_groups)}).one()
        if known is None:
            known = inbox_count(session, person_id, now) if row.delegated else row.inbox
        return Nav(known, row.unread, bool(row.owns_service))
    return remember(session, ("nav", person_id, now, owner_groups), read)


def _nav_statement(with_inbox: bool) -> Select[Any]:  # type: ignore[type-arg]
    person: BindParameter[str] = bindparam("person")
    figures = [
        select(func.count()).select_from(Notification)
        .where(Notification.person_id == person, Notification.read_at.is_(None))
        .scalar_subquery().label("unread"),
        exists().where(Group.manager_id == person,
                       Group.id.in_(bindparam("owners", expanding=True))).label("owns_service"),
        exists().where(Delegation.delegate_id == person, Delegation.starts_at <= bindparam("now"),
                       Delegation.ends_at > bindparam("now")).label("delegated")]
    if with_inbox:  # the person's own pending approvals (no delegation in force)
        ids = _inbox_count_query(person, ()).limit(COUNT_CAP + 1).subquery()
        figures.append(select(func.count()).select_from(ids).scalar_subquery().label("inbox"))
    return select(*figures)


#: built once (every page runs one): building a statement costs more than running it
_NAV, _NAV_WITHOUT_INBOX = _nav_statement(True), _nav_statement(False)


def queues_of(session: Session, person_id: str) -> list[str]:
    return people.groups_of(session, person_id)


# no due date last, on both databases (SQLite walks the index twice for NULLS LAST)
SORTS = {"due": (Task.due_at.asc().nulls_last(), Task.id), "new": (Task.id.desc(),),
         "old": (Task.id,)}


def queue_query(group_id: str, assignee: str | None = None, priority: str | None = None,
                mine: bool = False, viewer: str | None = None, sort: str = "due") -> Select[Any]:
    q: Select[Any] = (select(Task, Request).options(lazyload(Request.workflow_version))  # type: ignore[assignment]
                      .join(Request, Request.id == Task.request_id)
                      .where(Task.queue == group_id, Task.status == "open"))
    if priority:
        q = q.where(Request.priority == priority)
    if mine and viewer:
        q = q.where(Task.assignee_id == viewer)
    elif assignee == "unassigned":
        q = q.where(Task.assignee_id.is_(None))
    return q.order_by(*SORTS.get(sort, SORTS["due"]))


def queue(session: Session, group_id: str, viewer: str, page: int = 1, **filters: Any) -> Page:
    count = None
    if not filters.get("priority"):
        # open tasks belong to open requests (runtime.close_visit cancels the rest): count tasks only
        count = select(Task.id).where(Task.queue == group_id, Task.status == "open")
        if filters.get("mine"):
            count = count.where(Task.assignee_id == viewer)
        elif filters.get("assignee") == "unassigned":
            count = count.where(Task.assignee_id.is_(None))
    return _paginate(session, queue_query(group_id, viewer=viewer, **filters), page, count=count,
                     capped=True)


def my_requests_query(person_id: str, status: str | None, search: str | None) -> Select[Any]:  # type: ignore[type-arg]
    q = select(Request).options(lazyload(Request.workflow_version)).where(or_(
        Request.requester_id == person_id,
        Request.requested_for_id == person_id))
    if status in ("open", "closed"):
        q = q.where(Request.status == status)
    if search:
        term = f"%{search.strip()[:100]}%"
        q = q.where(or_(Request.number.ilike(term), Request.item_name.ilike(term)))
    return q.order_by(Request.created_at.desc(), Request.id.desc())


def my_requests(session: Session, person_id: str, status: str | None = None,
                search: str | None = None, page: int = 1) -> Page:
    return _paginate(session, my_requests_query(person_id, status, search), page)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str           # event | comment
    actor: str | None
    event: AuditEvent | None = None
    comment: Comment | None = None


def timeline(session: Session, req: Request, internal: bool) -> list[TimelineEntry]:
    """Audit events and comments, oldest first; internal notes only for agents."""
    entries = [TimelineEntry(e.at, "event", e.actor_id, event=e) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.request_id == req.id).order_by(AuditEvent.id))
        # an internal note's attachments are audited as internal (engine.attachments)
        if e.event != "comment" and (internal or not (e.detail or {}).get("internal"))]
    comments = select(Comment).where(Comment.request_id == req.id)
    if not internal:
        comments = comments.where(Comment.internal.is_(False))
    entries += [TimelineEntry(c.created_at, "comment", c.author_id, comment=c)
                for c in session.scalars(comments.order_by(Comment.id))]
    return sorted(entries, key=lambda e: (e.at, 0 if e.kind == "event" else 1))


def approvals_of(session: Session, req: Request) -> list[Approval]:
    return list(session.scalars(select(Approval).where(Approval.request_id == req.id)
                                .order_by(Approval.id)))


def tasks_of(session: Session, req: Request) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.request_id == req.id).order_by(Task.id)))


def names(session: Session, ids: set[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(wanted))).all())


def group_members(session: Session, group_id: str) -> list[Person]:
    return list(session.scalars(select(Person).join(Membership, Membership.person_id == Person.id)
                                .where(Membership.group_id == group_id, Person.active.is_(True))
                                .order_by(Person.name)))


def open_by_version(session: Session) -> list[Any]:
    return [tuple(r) for r in session.execute(
        select(WorkflowVersion.workflow_id, WorkflowVersion.version, func.count(Request.id))
        .join(Request, and_(Request.workflow_version_id == WorkflowVersion.id,
                            Request.status == "open"), isouter=True)
        .group_by(WorkflowVersion.workflow_id, WorkflowVersion.version)
        .order_by(WorkflowVersion.workflow_id))]  # type: ignore[misc]
