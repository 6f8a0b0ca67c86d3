"""The one-click links in emails: approve, reject, confirm resolved, reopen (engine.email_actions).

A link works without signing in: its signed token is the authority and names the person it
acts as. A GET shows what it would do and records nothing (mail scanners open links); only
the POST of that page (with its CSRF token) acts. A used, expired or forged link, or one
whose approval was decided meanwhile, gets the error page saying so.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from engine.email_actions import Pending
from engine.errors import InvalidInput
from engine.models import Person
from web.context import link_secret, now, service, session

bp = Blueprint("email_actions", __name__)

#: the form field each action reads (approve: an optional comment)
TEXT_FIELD = {"approve": "comment", "reject": "comment", "confirm": "", "reopen": "reason"}


def _page(token: str, pending: Pending, status: int = 200,
          errors: dict[str, list[str]] | None = None, text: str = "") -> Any:
    s = session()
    return render_template(
        "email_actions/confirm.html", p=pending, token=token, field=TEXT_FIELD[pending.action],
        person=s.get(Person, pending.link.person_id), errors=errors or {}, text=text,
        requester=s.get(Person, pending.req.requester_id)), status


@bp.route("/email-actions/<token>", methods=["GET"])
def link(token: str) -> Any:
    """The emailed link: says what it would do, records nothing."""
    return _page(token, service().email_action(session(), link_secret(), token, now()))


@bp.route("/email-actions/<token>", methods=["POST"])
def use(token: str) -> Any:
    field = TEXT_FIELD.get(service().email_action(session(), link_secret(), token, now()).action)
    text = request.form.get(field, "") if field else ""
    try:
        done = service().use_email_action(link_secret(), token, text)
    except InvalidInput as exc:
        pending = service().email_action(session(), link_secret(), token, now())
        return _page(token, pending, 422, exc.fields or {field or "_form": [exc.message]}, text)
    return render_template("email_actions/done.html", p=done)
