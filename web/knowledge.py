"""The knowledge base: browsing by category, votes on articles, canned responses and related
articles on the request page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from catalog.models import Article
from engine import knowledge, people, permissions
from engine.errors import InvalidInput
from engine.knowledge import Knowledge, Rendered
from engine.models import Request
from web.context import catalog, catalog_queues, service, session, viewer

bp = Blueprint("knowledge", __name__)

RELATED = 3


def _knowledge() -> Knowledge:
    return Knowledge(service().unit)


def _visible() -> list[Article]:
    known: dict[tuple[str, ...], bool] = {}
    out = []
    for a in catalog().articles:
        if a.visible_to not in known:
            known[a.visible_to] = permissions.can_see_item(session(), viewer(), a.visible_to)
        if known[a.visible_to]:
            out.append(a)
    return out


@bp.route("/kb")
@login_required
def browse() -> Any:
    by_category: dict[str, list[Article]] = {}
    for a in _visible():
        by_category.setdefault(a.category, []).append(a)
    categories = {name: sorted(arts, key=lambda a: a.title.casefold())
                  for name, arts in sorted(by_category.items(), key=lambda kv: kv[0].casefold())}
    chosen = request.args.get("category") or ""
    if chosen and chosen not in categories:
        chosen = ""
    shown = {chosen: categories[chosen]} if chosen else categories
    return render_template("knowledge/browse.html", categories=categories, shown=shown,
                           chosen=chosen)


@bp.route("/kb/<article_id>/feedback", methods=["POST"])
@login_required
def feedback(article_id: str) -> Any:
    verdict = request.form.get("verdict", "")
    try:
        _knowledge().vote(article_id, viewer(), verdict)
    except InvalidInput as exc:
        return {"error": exc.message, "fields": exc.fields}, 422
    flash("Thank you for your feedback.", "success")
    return redirect(url_for("portal.article", article_id=article_id))


def is_staff() -> bool:
    """Agents (members of a queue some workflow sends tasks to) and admins see vote counts."""
    me = viewer()
    if people.is_admin(session(), me):
        return True
    return bool(set(people.groups_of(session(), me)) & catalog_queues())


def related_articles(req: Request) -> list[Article]:
    """Articles linked to the request's item, then those sharing its keywords or category."""
    item = catalog().item(req.item_id)
    if item is None:
        return []
    words = {k.casefold() for k in item.keywords}
    scored: list[tuple[int, str, Article]] = []
    for a in _visible():
        linked = item.id in a.items or a.id in item.articles
        shared = len(words & {k.casefold() for k in a.keywords})
        same = a.category.casefold() == item.category.casefold()
        score = 100 * linked + 10 * shared + same
        if score:
            scored.append((-score, a.title.casefold(), a))
    return [a for _, _, a in sorted(scored, key=lambda t: t[:2])[:RELATED]]


def canned_responses(req: Request) -> list[Rendered]:
    """The responses the viewer may insert on this request, filled in for it."""
    return _knowledge().responses(req.number or "", viewer())


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    def article_feedback(article: Article) -> dict[str, Any]:
        if not current_user.is_authenticated:
            return {}
        return {"mine": knowledge.verdict_of(session(), article.id, viewer()),
                "counts": knowledge.feedback(session(), article.id) if is_staff() else None}

    return {"canned_responses": canned_responses, "related_articles": related_articles,
            "article_feedback": article_feedback}
