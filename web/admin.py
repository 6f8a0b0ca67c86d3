"""Admin: catalog status and reload, previews, workflows, people and groups."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def admins_only() -> None:
    if not current_user.is_admin:
        abort(403)


@bp.route("/")
def status() -> Any:
    from web.state import deskflow

    return render_template("admin/status.html", state=deskflow())
