"""The "API tokens" page: a person creates (shown once) and revokes their own tokens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField

from engine import tokens
from engine.errors import InvalidInput
from web.context import now, session, viewer
from web.state import portal_state

bp = Blueprint("tokens", __name__)


class TokenForm(FlaskForm):
    # lengths are the engine's (tokens.create_token), so its messages are the only ones
    name = StringField("Name", description="What the token is for, e.g. 'laptop script'.")


def _page(form: TokenForm, status: int = 200, secret: str | None = None,
          errors: list[str] | None = None) -> tuple[str, int]:
    return render_template("tokens/page.html", form=form, tokens=tokens.tokens_of(session(), viewer()),
                           secret=secret, errors=errors or []), status


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def page() -> Any:
    form = TokenForm()
    if not form.is_submitted():
        return _page(form)
    if not form.validate():  # only the CSRF token can fail here: web.errors answers 400
        return _page(form, 400, errors=["The form expired. Reload the page and try again."])
    try:
        with portal_state().sessions.begin() as s:
            row, secret = tokens.create_token(s, viewer(), form.name.data or "", now())
            name = row.name
    except InvalidInput as exc:
        return _page(form, 422, errors=[m for ms in exc.fields.values() for m in ms])
    session().rollback()  # a new snapshot, with the new token in the list
    flash(f"Token “{name}” created. Copy it now: it is shown only once.", "success")
    return _page(TokenForm(formdata=None), 201, secret=secret)


@bp.route("/account/tokens/<id:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int) -> Response:
    with portal_state().sessions.begin() as s:
        row = tokens.revoke_token(s, token_id, now(), owner=viewer())
        name = row.name
    flash(f"Token “{name}” is revoked: it no longer works.", "success")
    return redirect(url_for("tokens.page"))
