"""The approver inbox."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("approvals", __name__)


@bp.route("/approvals")
@login_required
def inbox() -> Any:
    from engine import queries
    from web.extensions import db
    from web.views import now, viewer

    page = queries.inbox(db.session, viewer(), now())
    return render_template("approvals/inbox.html", page=page)
