"""Satisfaction surveys: the card on the record page, the portal form, the emailed link.

The emailed link works without signing in: its signed token is the authority (engine
.satisfaction). A GET of it only shows the question — mail scanners open links — and a
POST (with the page's CSRF token) records the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from engine import satisfaction
from engine.errors import InvalidInput
from engine.models import Request, SatisfactionResponse
from web.context import link_secret, now, service, session, viewer
from web.pages import load_request

bp = Blueprint("satisfaction", __name__)


@dataclass(frozen=True, slots=True)
class Card:
    """What the satisfaction card shows one viewer of a record."""

    req: Request
    survey: SatisfactionResponse | None
    can_answer: bool
    question: str

    @property
    def shown(self) -> bool:
        return self.survey is not None and (self.can_answer or self.survey.answered_at is not None)


@bp.app_template_global("satisfaction_card")
def satisfaction_card(req: Request) -> Card:
    """The card for the request page (a template global: blueprints do not import each other)."""
    survey = service().survey(session(), req)
    me = viewer() if current_user.is_authenticated else None
    can = (survey is not None and survey.answered_at is None and survey.person_id == me)
    return Card(req=req, survey=survey, can_answer=can, question=satisfaction.question(req.number))


@bp.app_template_global("surveys_to_answer")
def surveys_to_answer() -> list[tuple[Request, SatisfactionResponse]]:
    """The viewer's unanswered questions, for "My requests"."""
    if not current_user.is_authenticated:
        return []
    return service().surveys_to_answer(session(), viewer())


def _form() -> dict[str, str]:
    return {"score": request.form.get("score", ""), "comment": request.form.get("comment", "")}


@bp.route("/requests/<number>/satisfaction", methods=["POST"])
@login_required
def answer(number: str) -> Any:
    req = load_request(number)
    values = _form()
    try:
        service().answer_survey(number, viewer(), values["score"], values["comment"])
    except InvalidInput as exc:
        card = satisfaction_card(req)
        return render_template("satisfaction/card_page.html", req=req, card=card,
                               serrors=exc.fields or {"_form": [exc.message]}, svalues=values), 422
    flash("Thank you for telling us.", "success")
    return redirect(url_for("requests.detail", number=number) + "#satisfaction-heading")


@bp.route("/satisfaction/<token>", methods=["GET"])
def link(token: str) -> Any:
    """The emailed link: shows the question, records nothing."""
    req, survey = service().survey_by_token(session(), link_secret(), token, now())
    return render_template("satisfaction/link.html", req=req, survey=survey, token=token,
                           question=satisfaction.question(req.number))


@bp.route("/satisfaction/<token>", methods=["POST"])
def link_answer(token: str) -> Any:
    values = _form()
    try:
        service().answer_by_token(link_secret(), token, values["score"], values["comment"])
    except InvalidInput as exc:
        req, survey = service().survey_by_token(session(), link_secret(), token, now())
        return render_template("satisfaction/link.html", req=req, survey=survey, token=token,
                               question=satisfaction.question(req.number),
                               serrors=exc.fields or {"_form": [exc.message]}, svalues=values), 422
    return render_template("satisfaction/thanks.html")
