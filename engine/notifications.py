"""In-app notifications: what concerns a person, written in the unit of work of the event.

`tell` is the one way the engine tells people of the five kinds below: it reads each
recipient's preference for the kind (email, in_app or both; both when never set), writes
the in-app rows in the caller's transaction (like outbox rows, they commit or roll back
with the change) and queues the email for those who want it. Other emails (reminders,
outcomes, `notify` actions) do not go through here and are not affected by preferences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Integer,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from engine import approvals, people, permissions
from engine.errors import InvalidInput, NotFound
from engine.models import Delegation, Notification, NotificationPreference, Request, Task
from engine.unit import UnitOfWork, UnitRunner

ASSIGNED = "assigned"
CALLER_REPLY = "caller_reply"
APPROVAL_NEEDED = "approval_needed"
SLA_WARNING = "sla_warning"
MENTIONED = "mentioned"
MAJOR_INCIDENT = "major_incident"
RESOLVED = "resolved"

#: every kind, with how the settings page names it
KINDS: dict[str, str] = {
    ASSIGNED: "A task or record is assigned to you",
    CALLER_REPLY: "The caller replies on a record you work",
    APPROVAL_NEEDED: "An approval waits for you (or for someone you stand in for)",
    SLA_WARNING: "A record you work is close to breaching its SLA",
    MENTIONED: "Someone mentions you in a comment or note",
    MAJOR_INCIDENT: "An incident becomes a major incident (you are in the major-incident group)",
    RESOLVED: "A record of yours is resolved with the problem behind it",
}
EMAIL, IN_APP, BOTH = "email", "in_app", "both"
CHANNELS: dict[str, str] = {BOTH: "Email and in-app", EMAIL: "Email only", IN_APP: "In-app only"}
TEXT_MAX = 300
PAGE_SIZE = 50

#: `@person-id`, not inside a word or an email address; person ids are `^[a-z][a-z0-9._-]*$`
MENTION = re.compile(r"(?<![\w@.+-])@([a-z][a-z0-9._-]*)")


# ---------------------------------------------------------------- writing (inside a unit)


def tell(unit: UnitOfWork, req: Request, kind: str, person_ids: Sequence[str | None], text: str,
         *, key: str, email: str | None = None, email_ids: Sequence[str | None] | None = None,
         channels: Mapping[str, str] | None = None, **extra: Any) -> None:
    """Tell people of `kind` about `req`: an in-app row and/or the `email` event, as each prefers.

    `person_ids` get the in-app row; `email_ids` (default: the same people) the email, so a
    caller can keep an email's long-standing recipients while the in-app rule is wider.
    `channels`: their stored channels for `kind` when the caller read them already.
    """
    inbox = _unique(person_ids)
    mail = inbox if email_ids is None else _unique(email_ids)
    prefs = channels_of(unit.session, [*inbox, *mail], kind) if channels is None else channels
    if email is not None:
        wants_mail = [p for p in mail if prefs.get(p, BOTH) in (EMAIL, BOTH)]
        if wants_mail:
            unit.queue_email(req, email, wants_mail, key=key, **extra)
    line = text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 1] + "…"
    for pid in inbox:
        if prefs.get(pid, BOTH) in (IN_APP, BOTH) and unit.active_person(pid) is not None:
            # written in bulk when the unit ends: nothing reads a new row back in the unit
            unit.notification_rows.append({"person_id": pid, "kind": kind, "request_id": req.id,
                                           "text": line, "created_at": unit.now, "read_at": None})


def tell_approvers(unit: UnitOfWork, req: Request, approver_ids: Sequence[str], text: str, *,
                   key: str, personal: Callable[[str], Mapping[str, Any]] | None) -> None:
    """Tell approvers that an approval of `req` waits, and whoever decides for them now
    (approvals.recipients): in-app and the approval_requested email, as each prefers. Their
    standing delegations and the channels of all of them are read in one query."""
    asked = list(dict.fromkeys(approver_ids))
    params: dict[str, Any] = {"now": unit.now, "kind": APPROVAL_NEEDED}
    if len(asked) == 1:  # the usual case, without an IN list rendered anew for every call
        stmt, params["person"] = _AUDIENCE_OF_ONE, asked[0]
    else:
        stmt, params["people"] = _AUDIENCE, asked
    rows = unit.session.connection().execute(stmt, params).all()
    delegates = list(dict.fromkeys(pid for part, pid, _, _ in rows if part == _DELEGATE))
    channels = {pid: channel for part, pid, channel, _ in rows if part == _CHANNEL}
    tell(unit, req, APPROVAL_NEEDED, approvals.recipients(req, approver_ids, delegates), text,
         key=key, email="approval_requested", channels=channels, personal=personal)


def _audience(one: bool = False) -> CompoundSelect[Any]:
    """The standing delegations of `people` at `now` (part 0, in the order they were made),
    then the channels for `kind` of `people` and of their delegates (part 1); with `one`, of
    the one `person`."""
    d, p = Delegation.__table__.c, NotificationPreference.__table__.c

    def among(column: Any) -> Any:
        return column == bindparam("person") if one else column.in_(bindparam("people", expanding=True))

    standing = (among(d.person_id), d.starts_at <= bindparam("now"), d.ends_at > bindparam("now"))
    return union_all(
        select(literal_column(str(_DELEGATE), Integer).label("part"),
               d.delegate_id.label("person_id"), cast(null(), String).label("channel"),
               d.id.label("made")).where(*standing),
        select(literal_column(str(_CHANNEL), Integer), p.person_id, p.channel,
               literal_column("0", Integer)).where(
            p.kind == bindparam("kind"),
            or_(among(p.person_id), p.person_id.in_(select(d.delegate_id).where(*standing))))
    ).order_by("part", "made")


_DELEGATE, _CHANNEL = 0, 1
#: built once (it runs for every approval opened): building it costs more than running it;
#: Core on the tables, which skips the ORM's handling of the statement and its result
_AUDIENCE = _audience()
_AUDIENCE_OF_ONE = _audience(one=True)


def channels_of(session: Session, person_ids: Sequence[str], kind: str) -> dict[str, str]:
    """The stored channel of each person for `kind` (people without a row are left out)."""
    if not person_ids:
        return {}
    rows = session.execute(_CHANNELS, {"kind": kind, "people": sorted(set(person_ids))})
    return {pid: channel for pid, channel in rows}


#: built once (it runs for every notification): building it costs more than running it;
#: Core on the table, which skips the ORM's handling of the statement and its result
_PREFERENCE = NotificationPreference.__table__.c
_CHANNELS = (select(_PREFERENCE.person_id, _PREFERENCE.channel)
             .where(_PREFERENCE.kind == bindparam("kind"),
                    _PREFERENCE.person_id.in_(bindparam("people", expanding=True))))


def mentioned(session: Session, body: str) -> list[str]:
    """The active people `@mentioned` in a text, in order; unknown ids are ignored.

    A trailing `.`, `-` or `_` ends a sentence more often than an id (`thanks @bob.`), so an
    id that is not a person is tried again without it.
    """
    found: list[str] = []
    for match in MENTION.finditer(body):
        candidate = match.group(1)
        for pid in (candidate, candidate.rstrip("._-")):
            if pid and people.active_person(session, pid) is not None:
                found.append(pid)
                break
    return _unique(found)


def tell_mentions(unit: UnitOfWork, req: Request, body: str, author: str, *, key: str,
                  internal: bool) -> None:
    """`@person` in a comment or note: that person, when they may see the record (and, for an
    internal note, are among its agents, who alone can read notes)."""
    s = unit.session
    who = [pid for pid in mentioned(s, body) if pid != author
           and permissions.can_view_request(s, pid, req, unit.now)
           and (not internal or permissions.is_agent(s, pid, req))]
    name = name_of(unit, author)
    what = "an internal note" if internal else "a comment"
    tell(unit, req, MENTIONED, who, f"{name} mentioned you in {what}: {excerpt(body)}",
         key=f"mention:{key}", email="mentioned", comment={"body": body, "author": name})


def holders(unit: UnitOfWork, req: Request) -> list[str]:
    """Who hears the caller's replies and SLA warnings: whoever holds the record — its
    assignee and the assignees of its open tasks — or, when nobody holds it, the members of
    its assignment group and of its open tasks' queues."""
    tasks = open_tasks(unit.session, req)
    held = _unique([req.assignee_id, *(t.assignee_id for t in tasks)])
    if held:
        return held
    groups = _unique([req.assignment_group_id, *(t.queue for t in tasks)])
    return _unique([m for g in groups for m in unit.members(g)])


def open_tasks(session: Session, req: Request) -> list[Task]:
    return list(session.scalars(select(Task).where(
        Task.request_id == req.id, Task.visit == req.visit, Task.status == "open")
        .order_by(Task.id)))


def record_line(req: Request) -> str:
    """How a notification names a record: its number and title."""
    return f"{req.number} {req.title or req.item_name}"


def name_of(unit: UnitOfWork, person_id: str | None) -> str:
    """A person's name for a notification ("Deskflow" when nobody acts: the worker)."""
    p = unit.person(person_id)
    return p.name if p is not None else (person_id or "Deskflow")


def excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _unique(ids: Sequence[str | None]) -> list[str]:
    return list(dict.fromkeys(i for i in ids if i))


# ---------------------------------------------------------------- reading and marking


@dataclass(frozen=True, slots=True)
class Entry:
    """One notification as the list shows it."""

    id: int
    kind: str
    text: str
    created_at: datetime
    read_at: datetime | None
    number: str | None
    title: str


def unread_count(session: Session, person_id: str) -> int:
    """Unread notifications of a person (served by `ix_notifications_inbox`)."""
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.person_id == person_id, Notification.read_at.is_(None))) or 0


def inbox(session: Session, person_id: str, limit: int = PAGE_SIZE,
          unread_only: bool = False) -> list[Entry]:
    """A person's notifications, newest first, with the number and title of each record."""
    query = (select(Notification, Request.number, Request.item_name,
                    Request.title)
             .outerjoin(Request, Request.id == Notification.request_id)
             .where(Notification.person_id == person_id))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    return [Entry(n.id, n.kind, n.text, n.created_at, n.read_at, number,
                  title or item_name or "")
            for n, number, item_name, title in session.execute(query)]


def open_notification(session: Session, person_id: str, notification_id: int,
                      now: datetime) -> str | None:
    """Mark one of the person's notifications read; the number of its record (to go to).

    Someone else's notification is NotFound, never 403, so ids do not leak.
    """
    n = session.get(Notification, notification_id)
    if n is None or n.person_id != person_id:
        raise NotFound(f"no notification {notification_id}")
    if n.read_at is None:
        n.read_at = now
    return session.scalar(select(Request.number).where(Request.id == n.request_id))


def read_all(session: Session, person_id: str, now: datetime) -> int:
    """Mark every unread notification of the person read; how many there were."""
    result = session.execute(update(Notification).where(
        Notification.person_id == person_id, Notification.read_at.is_(None)).values(read_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def preferences(session: Session, person_id: str) -> dict[str, str]:
    """The person's channel for every kind (both where never set)."""
    stored = dict(session.execute(select(NotificationPreference.kind, NotificationPreference.channel)
                                  .where(NotificationPreference.person_id == person_id)).all())
    return {kind: stored.get(kind, BOTH) for kind in KINDS}


def set_preferences(session: Session, person_id: str, choices: dict[str, str],
                    now: datetime) -> dict[str, str]:
    """Store the person's channel per kind; an unknown kind or channel is InvalidInput."""
    errors = {kind: [f"Unknown kind of notification: {kind}."] for kind in choices if kind not in KINDS}
    errors.update({kind: [f"Choose one of: {', '.join(CHANNELS)}."]
                   for kind, channel in choices.items() if kind in KINDS and channel not in CHANNELS})
    if errors:
        raise InvalidInput("notification preferences: " + "; ".join(
            f"{k}: {v[0]}" for k, v in sorted(errors.items())), errors)
    if people.person(session, person_id) is None:
        raise NotFound(f"no person {person_id}")
    for kind, channel in choices.items():
        row = session.get(NotificationPreference, (person_id, kind))
        if row is None:
            session.add(NotificationPreference(person_id=person_id, kind=kind, channel=channel,
                                               updated_at=now))
        elif row.channel != channel:
            row.channel, row.updated_at = channel, now
    session.flush()
    return preferences(session, person_id)


class NotificationInbox:
    """The inbox use cases of the request service (a mixin), each one unit of work."""

    unit: UnitRunner

    def open_notification(self, actor: str, notification_id: int) -> str | None:
        """Mark a notification read; the number of its record, to go to."""
        return self.unit(actor, lambda u: open_notification(u.session, actor, notification_id,
                                                             u.now))

    def read_all_notifications(self, actor: str) -> int:
        return self.unit(actor, lambda u: read_all(u.session, actor, u.now))

    def set_notification_preferences(self, actor: str, choices: dict[str, str]) -> dict[str, str]:
        return self.unit(actor, lambda u: set_preferences(u.session, actor, choices, u.now))
