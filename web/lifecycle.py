"""The incident lifecycle on the request page: resolve, confirm or reopen, merge duplicates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required

from catalog.models import Article
from engine import lifecycle, permissions
from engine.errors import InvalidInput, NotAllowed
from engine.models import Request
from engine.unit import calendar_of
from web.context import catalog, now, service, session, viewer
from web.pages import form_seen_version, load_request

bp = Blueprint("lifecycle", __name__)


@dataclass(frozen=True, slots=True)
class Panel:
    """What the resolution panel shows one viewer."""

    req: Request
    agent: bool
    can_resolve: bool
    codes: tuple[str, ...]
    can_confirm: bool
    can_reopen: bool
    reopen_until: datetime | None
    can_merge: bool
    #: the articles the agent may pick as the one that solved it (when resolving)
    articles: tuple[Article, ...] = ()
    #: the article that solved it, when one was chosen
    solution: Article | None = None

    @property
    def shown(self) -> bool:
        return bool(self.req.resolved_at or self.req.reopen_count or self.can_resolve
                    or self.can_merge)


@bp.app_template_global("lifecycle_panel")
def lifecycle_panel(req: Request) -> Panel:
    """The panel for the request page (a template global: blueprints do not import each other)."""
    s, me, cat = session(), viewer(), catalog()
    agent = permissions.is_agent(s, me, req)
    waiting = lifecycle.awaits_confirmation(req)
    until = (calendar_of(cat).add(req.resolved_at, cat.settings.reopen_window
                                  or lifecycle.DEFAULT_REOPEN_WINDOW)
             if req.resolved_at is not None else None)
    party = permissions.is_party(req, me)
    in_window = waiting and until is not None and now() <= until
    return Panel(req=req, agent=agent, can_resolve=lifecycle.can_resolve(s, me, req),
                 codes=cat.settings.resolution_codes, can_confirm=waiting and party,
                 can_reopen=bool(in_window and (party or agent)), reopen_until=until,
                 can_merge=agent and req.status == "open",
                 articles=_readable(cat.articles) if agent and req.resolved_at is None else (),
                 solution=cat.article(req.solution_article) if req.solution_article else None)


def _readable(articles: tuple[Article, ...]) -> tuple[Article, ...]:
    """The articles the viewer may read, by title (asked once per `visible_to`)."""
    known: dict[tuple[str, ...], bool] = {}
    out = []
    for a in articles:
        if a.visible_to not in known:
            known[a.visible_to] = permissions.can_see_item(session(), viewer(), a.visible_to)
        if known[a.visible_to]:
            out.append(a)
    return tuple(sorted(out, key=lambda a: a.title.casefold()))


def _invalid(req: Request, exc: InvalidInput, values: Mapping[str, str]) -> Any:
    """The panel again, alone on a page, with the service's messages per field (422)."""
    return render_template("lifecycle/panel_page.html", req=req, panel=lifecycle_panel(req),
                           errors=exc.fields or {"_form": [exc.message]}, values=values), 422


def _back(number: str, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("requests.detail", number=number) + "#resolution-heading")


def _tell_children(number: str) -> None:
    """Flash what resolving a major incident did with its children (engine.major)."""
    report = service().children_report(number, viewer())
    for words, key in (("resolved with it", "resolved"), ("closed with it", "closed")):
        if report.get(key):
            flash(f"Child incidents {words}: {', '.join(report[key])}.", "success")
    for line in report.get("skipped", ()):
        flash(f"Child incident left as it was: {line}.", "warning")


def _ensure_agent(req: Request, what: str) -> None:
    """Refuse (403) before reading the form when the viewer is no agent of the record."""
    if not permissions.is_agent(session(), viewer(), req):
        raise NotAllowed(f"only agents of {req.number} can {what}")


@bp.route("/requests/<number>/resolve", methods=["POST"])
@login_required
def resolve(number: str) -> Any:
    req = load_request(number)
    _ensure_agent(req, "resolve it")
    values = {"resolution_code": request.form.get("resolution_code", ""),
              "resolution_notes": request.form.get("resolution_notes", ""),
              "solution_article": request.form.get("solution_article", "")}
    try:
        service().resolve(number, viewer(), values["resolution_code"], values["resolution_notes"],
                          seen_version=form_seen_version(required=False),
                          solution_article=values["solution_article"] or None)
    except InvalidInput as exc:
        return _invalid(req, exc, values)
    _tell_children(number)
    if req.record_type == "problem" and request.form.get("also_resolve_incidents") == "yes":
        for incident, result in service().resolve_linked_incidents(number, viewer()):  # engine.problems
            flash(f"{incident}: {result}.", "success" if result == "resolved" else "warning")
    return _back(number, f"{number} is resolved; the caller can confirm or reopen it.")


@bp.route("/requests/<number>/confirm", methods=["POST"])
@login_required
def confirm(number: str) -> Any:
    load_request(number)
    service().confirm_resolution(number, viewer())
    return _back(number, f"Thank you: {number} is closed.")


@bp.route("/requests/<number>/reopen", methods=["POST"])
@login_required
def reopen(number: str) -> Any:
    req = load_request(number)
    if not (permissions.is_party(req, viewer()) or permissions.is_agent(session(), viewer(), req)):
        raise NotAllowed(f"only the caller or agents of {req.number} can reopen it")
    values = {"reason": request.form.get("reason", "")}
    try:
        service().reopen(number, viewer(), values["reason"])
    except InvalidInput as exc:
        return _invalid(req, exc, values)
    return _back(number, f"{number} is reopened and back with the team.")


@bp.route("/requests/<number>/merge", methods=["POST"])
@login_required
def merge(number: str) -> Any:
    req = load_request(number)
    _ensure_agent(req, "merge it")
    values = {"survivor": request.form.get("survivor", "")}
    try:
        survivor = service().merge(number, values["survivor"], viewer(),
                                   seen_version=form_seen_version(required=False))
    except InvalidInput as exc:
        return _invalid(req, exc, values)
    flash(f"{number} is merged into {survivor.number} and closed as a duplicate.", "success")
    return redirect(url_for("requests.detail", number=survivor.number))
