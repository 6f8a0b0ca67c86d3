"""My requests and the request page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("requests", __name__)


@bp.route("/requests")
@login_required
def mine() -> Any:
    from engine import queries
    from web.extensions import db
    from web.views import viewer

    page = queries.my_requests(db.session, viewer())
    return render_template("requests/mine.html", page=page)
