"""Fulfiller queues and task actions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required

bp = Blueprint("tasks", __name__)


@bp.route("/queues")
@login_required
def queues() -> Any:
    return render_template("tasks/queues.html", groups=current_user.groups)
