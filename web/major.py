"""Major incidents on the request page: declare or stand down, the children, attach incidents."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required

from engine import major, permissions
from engine.errors import InvalidInput, NotAllowed
from engine.models import Request
from web.context import service, session, viewer
from web.pages import form_seen_version, load_request, state_words

bp = Blueprint("major", __name__)


@dataclass(frozen=True, slots=True)
class Child:
    number: str
    title: str
    state: str
    open: bool


@dataclass(frozen=True, slots=True)
class Panel:
    """What the major-incident card shows one viewer of an incident."""

    req: Request
    agent: bool
    children: tuple[Child, ...]
    parent: Request | None

    @property
    def can_declare(self) -> bool:
        return self.agent and not self.req.major and self.req.status == "open"

    @property
    def can_manage(self) -> bool:
        return self.agent and self.req.major and self.req.status == "open"

    @property
    def shown(self) -> bool:
        return self.req.record_type == major.INCIDENT and (
            self.agent and (self.req.major or self.req.status == "open" or bool(self.children)))


@bp.app_template_global("major_panel")
def major_panel(req: Request) -> Panel:
    """The card for the request page (a template global: blueprints do not import each other)."""
    s = session()
    children = tuple(Child(c.number or "", c.title or c.item_name, state_words(c), c.status == "open")
                     for c in major.children_of(s, req)) if req.record_type == major.INCIDENT else ()
    return Panel(req=req, agent=permissions.is_agent(s, viewer(), req), children=children,
                 parent=major.parent_of(s, req) if req.record_type == major.INCIDENT else None)


def _invalid(req: Request, exc: InvalidInput, values: Mapping[str, str]) -> Any:
    """The card again, alone on a page, with the service's messages per field (422)."""
    return render_template("major/panel_page.html", req=req, panel=major_panel(req),
                           errors=exc.fields or {"_form": [exc.message]}, values=values), 422


def _ensure_agent(req: Request, what: str) -> None:
    """Refuse (403) before reading the form when the viewer is no agent of the record."""
    if not permissions.is_agent(session(), viewer(), req):
        raise NotAllowed(f"only agents of {req.number} can {what}")


def _back(number: str, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("requests.detail", number=number) + "#major-heading")


def _with_reason(number: str, what: str, use_case: Callable[..., Any], done: str) -> Any:
    """Declare or stand down: a reason, the version the page showed, back to the record."""
    req = load_request(number)
    _ensure_agent(req, what)
    values = {"reason": request.form.get("reason", "")}
    try:
        use_case(number, viewer(), values["reason"], seen_version=form_seen_version(required=False))
    except InvalidInput as exc:
        return _invalid(req, exc, values)
    return _back(number, done)


@bp.route("/requests/<number>/major/declare", methods=["POST"])
@login_required
def declare(number: str) -> Any:
    return _with_reason(number, "declare it a major incident", service().declare_major,
                        f"{number} is a major incident; the major-incident group is told.")


@bp.route("/requests/<number>/major/stand-down", methods=["POST"])
@login_required
def stand_down(number: str) -> Any:
    return _with_reason(number, "stand down its major incident", service().stand_down_major,
                        f"{number} is no longer a major incident.")


@bp.route("/requests/<number>/major/attach", methods=["POST"])
@login_required
def attach(number: str) -> Any:
    req = load_request(number)
    _ensure_agent(req, "attach incidents to it")
    values = {"numbers": request.form.get("numbers", "")}
    try:
        results = service().attach_incidents(number, viewer(), values["numbers"])
    except InvalidInput as exc:
        return _invalid(req, exc, values)
    done = [r.number for r in results if not r.error]
    if done:
        flash(f"Attached to {number}: {', '.join(done)}.", "success")
    for r in results:
        if r.error:
            flash(f"{r.number} was not attached: {r.error}", "warning")
    return redirect(url_for("requests.detail", number=number) + "#major-heading")
