"""Satisfaction surveys (CSAT): one question, once per record, after it is resolved.

`ask` runs inside the unit that resolves a record (engine.lifecycle `mark_resolved`) or
ends it with a success outcome (engine.runtime `finish`): incidents and requests, not
imported ones, not rejected, cancelled or failed ones. It stores a `csat_responses` row
for the person asked (the requested-for person, else the requester), audits `satisfaction`
(asked) and queues the `satisfaction` email with a signed link.

The link's token (itsdangerous, the app's secret key, salt `deskflow-csat`) names the
survey and its nonce; the row holds the nonce and when the link expires (the unit's clock
decides, so an injected clock tests expiry). Answering spends the nonce: the link is single
use. A GET of the link records nothing; only `answer` / `answer_by_token` record.

A mixin of `RequestService` (engine.service): each public method is one unit of work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Duration
from engine import permissions
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.inputs import checked_text
from engine.models import Request, SatisfactionResponse
from engine.signed_links import USED, LinkGone, LinkRefused, new_nonce, same_nonce, sign, unsign
from engine.unit import UnitOfWork, UnitRunner, audit, touch

SALT = "deskflow-csat"
#: how long an emailed link stays valid when deskflow.yaml `satisfaction: {expires}` says nothing
DEFAULT_EXPIRES = Duration(14, "day", False)
#: the record types that are asked, and the end outcomes that count as a success
RECORD_TYPES = ("incident", "request")
SUCCESS_OUTCOMES = ("fulfilled", "resolved")
SCORES = (1, 2, 3, 4, 5)


def question(number: str | None) -> str:
    return f"How satisfied are you with how {number} was handled?"


def token_for(secret_key: str, survey: SatisfactionResponse) -> str:
    """The signed token of the emailed link: the survey's id and nonce."""
    return sign(secret_key, SALT, {"s": survey.id, "n": survey.nonce})


def ask(unit: UnitOfWork, req: Request) -> SatisfactionResponse | None:
    """Ask the question about `req` once (None when it is not asked: wrong kind, imported,
    or already asked — reopening and resolving again does not ask twice)."""
    if req.record_type not in RECORD_TYPES or req.import_source is not None or req.id is None:
        return None
    s = unit.session
    if s.scalar(select(SatisfactionResponse.id)
                .where(SatisfactionResponse.request_id == req.id)) is not None:
        return None
    if any(isinstance(o, SatisfactionResponse) and o.request_id == req.id for o in s.new):
        return None
    person = req.requested_for_id or req.requester_id
    survey = SatisfactionResponse(
        request_id=req.id, person_id=person, nonce=new_nonce(), sent_at=unit.now,
        expires_at=unit.calendar.add(unit.now, unit.catalog.settings.satisfaction_expires
                                     or DEFAULT_EXPIRES), score=None, comment=None,
        answered_at=None)
    s.add(survey)
    s.flush()  # its id goes into the link
    audit(unit, req, "satisfaction", asked=person)
    if unit.secret_key:
        url = f"{unit.base_url}/satisfaction/{token_for(unit.secret_key, survey)}"
        unit.queue_email(req, "satisfaction", [person], key=f"csat:{survey.id}",
                         survey={"url": url, "question": question(req.number),
                                 "expires_at": survey.expires_at})
    return survey


def ask_on_finish(unit: UnitOfWork, req: Request, outcome: str) -> None:
    """A record that ends with a success outcome is asked (if it was not when resolved)."""
    if outcome in SUCCESS_OUTCOMES:
        ask(unit, req)


def survey_of(session: Session, req: Request) -> SatisfactionResponse | None:
    return session.scalar(select(SatisfactionResponse)
                          .where(SatisfactionResponse.request_id == req.id))


def checked_answer(score: Any, comment: Any) -> tuple[int, str | None]:
    """The score (1..5) and the comment (optional), or InvalidInput (422)."""
    value: int | None = None
    if isinstance(score, bool):
        value = None
    elif isinstance(score, int):
        value = score
    elif isinstance(score, str) and score.strip() in {str(n) for n in SCORES}:
        value = int(score.strip())  # not isdigit(): it takes '٣', which int() reads as 3
    if value not in SCORES:
        raise InvalidInput("the score must be a whole number from 1 to 5",
                           {"score": ["Choose a score from 1 to 5."]})
    text = checked_text(comment if comment is not None else "", "comment", required=False)
    return value, (text or None)


def _record(unit: UnitOfWork, survey: SatisfactionResponse, req: Request, score: int,
            comment: str | None, via: str) -> None:
    survey.score, survey.comment, survey.answered_at = score, comment, unit.now
    survey.nonce = USED
    touch(unit, req)
    audit(unit, req, "satisfaction", actor=survey.person_id, score=score,
          comment=comment or "", via=via)


def already(req: Request) -> str:
    return f"You already told us how satisfied you are with how {req.number} was handled."


class Satisfaction:
    """Reading and answering satisfaction surveys."""

    unit: UnitRunner

    def survey(self, session: Session, req: Request) -> SatisfactionResponse | None:
        """The survey of a record, if it was asked (shown to whoever may see the record)."""
        return survey_of(session, req)

    def surveys_to_answer(self, session: Session, person: str) -> list[tuple[Request,
                                                                         SatisfactionResponse]]:
        """The person's unanswered surveys, newest first (the portal's "My requests")."""
        rows = session.execute(
            select(Request, SatisfactionResponse)
            .join(SatisfactionResponse, SatisfactionResponse.request_id == Request.id)
            .where(SatisfactionResponse.person_id == person,
                   SatisfactionResponse.answered_at.is_(None))
            .order_by(SatisfactionResponse.sent_at.desc(), SatisfactionResponse.id.desc())
            .limit(50))
        return [(r, sv) for r, sv in rows]

    def answer_survey(self, number: str, actor: str, score: Any,
                      comment: Any = None) -> SatisfactionResponse:
        """The person asked answers in the portal (signed in)."""

        def work(unit: UnitOfWork) -> SatisfactionResponse:
            req = unit.session.scalar(select(Request).where(Request.number == number))
            if req is None or not permissions.can_view_request(unit.session, actor, req,
                                                               unit.now):
                raise NotFound(f"no request {number}")
            survey = survey_of(unit.session, req)
            if survey is None:
                raise NotFound(f"{number} has no satisfaction question")
            if survey.person_id != actor:
                raise NotAllowed(f"only the person asked can answer about {number}")
            if survey.answered_at is not None:
                raise Conflict(already(req))
            value, text = checked_answer(score, comment)
            _record(unit, survey, req, value, text, "portal")
            return survey

        return self.unit(actor, work)

    def survey_by_token(self, session: Session, secret_key: str, token: str,
                        now: Any) -> tuple[Request, SatisfactionResponse]:
        """The survey a link names, checked (read only: a GET of the link records nothing)."""
        return _by_token(session, secret_key, token, now)

    def answer_by_token(self, secret_key: str, token: str, score: Any,
                        comment: Any = None) -> SatisfactionResponse:
        """The emailed link's form: the signed token is the authority, no sign-in."""

        def work(unit: UnitOfWork) -> SatisfactionResponse:
            req, survey = _by_token(unit.session, secret_key, token, unit.now)
            value, text = checked_answer(score, comment)
            _record(unit, survey, req, value, text, "email")
            return survey

        return self.unit(None, work)


def _by_token(session: Session, secret_key: str, token: str,
              now: Any) -> tuple[Request, SatisfactionResponse]:
    forged = LinkRefused("This satisfaction link is not valid: it was changed or not made by "
                         "this service desk.")
    data = unsign(secret_key, SALT, token, forged, {"s": int, "n": str})
    survey = session.get(SatisfactionResponse, data["s"])
    if survey is None:
        raise forged
    req = session.get(Request, survey.request_id)
    assert req is not None
    if survey.answered_at is not None:
        raise LinkGone(f"This satisfaction link was already used. {already(req)}")
    if not same_nonce(survey.nonce, data["n"]):
        raise forged
    if now >= survey.expires_at:
        raise LinkGone(f"This satisfaction link has expired: it was valid until "
                       f"{survey.expires_at:%Y-%m-%d %H:%M} UTC.")
    return req, survey
