"""The catalog: home with categories and search, item pages with their order forms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_login import login_required

bp = Blueprint("portal", __name__)


@bp.route("/")
@login_required
def home() -> Any:
    from web.views import catalog

    cat = catalog()
    query = (request.args.get("q") or "").strip()[:100]
    items = list(cat.items)
    categories: dict[str, list[Any]] = {}
    for item in items:
        categories.setdefault(item.category, []).append(item)
    return render_template("portal/home.html", categories=categories, query=query)
