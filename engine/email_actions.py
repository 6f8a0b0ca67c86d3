"""Using a one-click email link (engine.email_links): approve, reject, confirm, reopen.

Opening a link only reads (`email_action`): mail scanners prefetch links, so nothing is
recorded until the confirmation page is posted (`use_email_action`). The link's person acts,
through the same unit-level use cases as the portal (decisions.decide, lifecycle
.confirm_resolution_in / reopen_in), so every rule applies: delegation, self-approval
refusal, one vote per person, the reopen window. Spending the link, the action and the
`email_action` audit row commit together; any refusal changes nothing.

A mixin of `RequestService` (engine.service): each public method is one unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from engine import email_links
from engine.decisions import decide
from engine.errors import Conflict
from engine.lifecycle import confirm_resolution_in, reopen_in
from engine.models import Approval, EmailAction, Request
from engine.signed_links import USED
from engine.unit import UnitOfWork, UnitRunner, audit


@dataclass(frozen=True, slots=True)
class Pending:
    """What an opened link would do (its confirmation page shows this)."""

    link: EmailAction
    action: str
    req: Request
    approval: Approval | None


def _check(session: Session, secret_key: str, token: object, now: datetime) -> Pending:
    link, action, req = email_links.link_by_token(session, secret_key, token, now)
    if link.kind == email_links.APPROVAL:
        return Pending(link, action, req, email_links.open_approval(session, link, req, now))
    # the lifecycle checks the rest (who, the reopen window) when the page is posted
    if req.status != "open":
        raise Conflict(f"{req.number} is already closed ({req.outcome}): there is nothing to "
                       "confirm or reopen; if the trouble is back, open a new incident and "
                       "mention it. Nothing was changed.")
    if req.resolved_at is None:
        raise Conflict(f"{req.number} is no longer resolved (it was reopened): there is nothing "
                       "to confirm or reopen. Nothing was changed.")
    return Pending(link, action, req, None)


class EmailActions:
    """Reading and using the emailed action links."""

    unit: UnitRunner
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]

    def email_action(self, session: Session, secret_key: str, token: object,
                     now: datetime) -> Pending:
        """What a link would do, checked (read only: a GET of the link records nothing)."""
        return _check(session, secret_key, token, now)

    def use_email_action(self, secret_key: str, token: object, text: str = "") -> Pending:
        """Do what the link says as the person it was sent to; `text` is the rejection's
        comment or the reopening's reason (an approval's comment is optional)."""
        with self.sessions() as s:  # who acts decides the unit's actor (and a denial's)
            person = email_links.link_by_token(s, secret_key, token, self.clock())[0].person_id

        def work(unit: UnitOfWork) -> Pending:
            found = _check(unit.session, secret_key, token, unit.now)
            link, req = found.link, found.req
            link.nonce, link.used_at, link.used_action = USED, unit.now, found.action
            if found.approval is not None:
                decide(unit, found.approval.id, person,
                       "approved" if found.action == "approve" else "rejected", text)
            elif found.action == "confirm":
                confirm_resolution_in(unit, str(req.number), person)
            else:
                reopen_in(unit, str(req.number), person, text)
            audit(unit, req, "email_action", action=found.action, link=link.id,
                  approval=found.approval.id if found.approval else None, via="email")
            return found

        return self.unit(person, work)
