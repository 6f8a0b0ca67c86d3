"""One-click action links in emails: approve or reject an approval, confirm or reopen a record.

An approval email carries an "Approve" and a "Reject" link, bound to the approval and to
the person it is sent to (the approver, or whoever stands in for them: approvals.recipients);
the record-resolved email carries "Confirm" and "Reopen" links for its caller. Each email
gets one `email_actions` row per person: its two links share the row's nonce, so using
either spends both. Tokens are signed links (engine.signed_links, salt
`deskflow-email-action`) naming the row, the action and the nonce; the action is signed
too, so an "approve" link cannot be turned into a "reject" one. A link expires after
deskflow.yaml `email_actions: {expires}` (default 7 days), measured by the unit's clock.

This module writes the links (inside the unit that queues the email) and checks a token;
engine.email_actions uses one, through the request service's own rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from catalog.models import Duration
from engine import permissions
from engine.errors import Conflict, NotAllowed
from engine.models import Approval, EmailAction, Request
from engine.signed_links import LinkGone, LinkRefused, new_nonce, same_nonce, sign, unsign
from engine.unit import UnitOfWork

SALT = "deskflow-email-action"
#: how long a link stays valid when deskflow.yaml `email_actions: {expires}` says nothing
DEFAULT_EXPIRES = Duration(7, "day", False)
APPROVAL, RESOLUTION = "approval", "resolution"
#: the two actions of each kind of link
ACTIONS: dict[str, tuple[str, str]] = {APPROVAL: ("approve", "reject"),
                                       RESOLUTION: ("confirm", "reopen")}
#: what each action did, for "this link was already used to …"
DONE = {"approve": "approve", "reject": "reject", "confirm": "confirm the resolution of",
        "reopen": "reopen"}
#: what a template reads per person: {"actions": {approve: url, reject: url, expires_at: iso}}
Personal = Callable[[str], Mapping[str, Any]]


def token_for(secret_key: str, link: EmailAction, action: str) -> str:
    """The signed token of one of the row's links."""
    return sign(secret_key, SALT, {"e": link.id, "a": action, "n": link.nonce})


def _issue(unit: UnitOfWork, req: Request, kind: str, person: str,
           approval: Approval | None = None) -> dict[str, Any]:
    """Write one row for `person` and return the template's `actions`: each link's URL."""
    s = unit.session
    if approval is not None and approval.id is None:
        s.flush()  # its id goes into the row
    link = EmailAction(
        kind=kind, request_id=req.id, approval_id=approval.id if approval else None,
        person_id=person, nonce=new_nonce(), created_at=unit.now,
        expires_at=unit.calendar.add(unit.now, unit.catalog.settings.email_actions_expires
                                     or DEFAULT_EXPIRES), used_at=None, used_action=None)
    s.add(link)
    s.flush()  # its id goes into the token
    urls: dict[str, Any] = {a: f"{unit.base_url}/email-actions/{token_for(unit.secret_key, link, a)}"
                            for a in ACTIONS[kind]}
    return {**urls, "expires_at": link.expires_at.isoformat()}


def approval_links(unit: UnitOfWork, req: Request, approvals: Sequence[Approval]) -> Personal | None:
    """Per recipient of an approval email: approve/reject links for the pending approval of
    `approvals` they may decide (their own, or one they stand in for); None without a key."""
    if not unit.secret_key:
        return None

    def personal(person: str) -> Mapping[str, Any]:
        # a new row's decision is None until it is flushed (the column default: pending)
        waiting = sorted((a for a in approvals if a.decision in (None, "pending")),
                         key=lambda a: a.approver_id != person)  # their own seat first
        appr = next((a for a in waiting
                     if permissions.can_decide(unit.session, person, a, unit.now)), None)
        if appr is None or permissions.is_party(req, person):
            return {}
        return {"actions": _issue(unit, req, APPROVAL, person, appr)}

    return personal


def resolution_links(unit: UnitOfWork, req: Request) -> Personal | None:
    """Per caller told of a resolution: confirm/reopen links; None without a key."""
    if not unit.secret_key:
        return None

    def personal(person: str) -> Mapping[str, Any]:
        if not permissions.is_party(req, person):
            return {}
        return {"actions": _issue(unit, req, RESOLUTION, person)}

    return personal


# ---------------------------------------------------------------- checking a link


def link_by_token(session: Session, secret_key: str, token: object,
                  now: datetime) -> tuple[EmailAction, str, Request]:
    """The row a token names, its action and record; LinkRefused or LinkGone (read only)."""
    forged = LinkRefused("This link is not valid: it was changed or not made by this service "
                         "desk. Nothing was changed.")
    data = unsign(secret_key, SALT, token, forged, {"e": int, "a": str, "n": str})
    link = session.get(EmailAction, data["e"])
    if link is None or data["a"] not in ACTIONS.get(link.kind, ()):
        raise forged
    req = session.get(Request, link.request_id)
    assert req is not None  # rows go with their record (ON DELETE CASCADE)
    if link.used_at is not None:
        raise LinkGone(f"This link was already used: it was used on {link.used_at:%Y-%m-%d %H:%M}"
                       f" UTC to {DONE.get(link.used_action or '', 'act on')} {req.number}. "
                       "Nothing was changed.")
    if not same_nonce(link.nonce, data["n"]):
        raise forged
    if now >= link.expires_at:
        raise LinkGone(f"This link has expired: it was valid until "
                       f"{link.expires_at:%Y-%m-%d %H:%M} UTC. Nothing was changed; open "
                       f"{req.number} in the portal instead.")
    return link, str(data["a"]), req


def open_approval(session: Session, link: EmailAction, req: Request, now: datetime) -> Approval:
    """The link's approval, if it still waits for the link's person (else Conflict or
    NotAllowed, saying why: decided, delegated, closed, or they no longer decide it)."""
    appr = session.get(Approval, link.approval_id) if link.approval_id is not None else None
    assert appr is not None  # approval links always name one (ON DELETE CASCADE)
    if appr.decision in ("approved", "rejected"):
        by = f" by {appr.decided_by_id}" if appr.decided_by_id else ""
        when = f" on {appr.decided_at:%Y-%m-%d %H:%M} UTC" if appr.decided_at else ""
        raise Conflict(f"This approval of {req.number} was already decided: {appr.decision}{by}"
                       f"{when}. Nothing was changed.")
    if req.status != "open":
        raise Conflict(f"{req.number} is already {req.outcome or req.state}: its approval is no "
                       "longer needed. Nothing was changed.")
    if appr.decision != "pending" or appr.visit != req.visit:
        why = appr.decision if appr.decision != "pending" else "left behind as the record moved on"
        raise Conflict(f"This approval of {req.number} is no longer open (it was {why}). "
                       "Nothing was changed.")
    if not permissions.can_decide(session, link.person_id, appr, now):
        raise NotAllowed(f"{link.person_id} is no longer an approver of {req.number}. Nothing "
                         "was changed.")
    return appr
