"""The record panel on the request page (fields, links, watchers) and logging for a caller."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from catalog.models import RECORD_TYPES
from engine import permissions, queries, records
from engine.errors import InvalidInput, NotAllowed
from engine.models import Group, Person, Request
from web.context import catalog, service, session, viewer
from web.pages import RECORD_FIELDS, form_seen_version, load_request, state_words

bp = Blueprint("records", __name__)

TYPE_WORDS = {"request": "Service request", "incident": "Incident", "problem": "Problem",
              "change": "Change"}


@dataclass(frozen=True, slots=True)
class LinkRow:
    words: str
    kind: str
    number: str
    title: str
    state: str


@dataclass(frozen=True, slots=True)
class Panel:
    """What the record panel shows one viewer."""

    req: Request
    agent: bool
    type_words: str
    group: str
    assignee: str
    links: tuple[LinkRow, ...] = ()
    watchers: tuple[tuple[str, str], ...] = ()
    watching: bool = False
    impacts: tuple[str, ...] = ()
    urgencies: tuple[str, ...] = ()
    groups: tuple[tuple[str, str], ...] = ()
    people: tuple[tuple[str, str], ...] = ()
    kinds: tuple[tuple[str, str], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@bp.app_template_global("record_panel")
def record_panel(req: Request) -> Panel:
    """The panel for the request page (a template global: blueprints do not import each other)."""
    s, me = session(), viewer()
    agent = permissions.is_agent(s, me, req)
    watchers = records.watchers_of(s, req)
    names = queries.names(s, {*watchers, req.assignee_id})
    group = s.get(Group, req.assignment_group_id) if req.assignment_group_id else None
    base = dict(req=req, agent=agent, type_words=TYPE_WORDS.get(req.record_type, req.record_type),
                group=group.name if group else "", assignee=names.get(req.assignee_id or "", ""),
                watchers=tuple((w, names.get(w, w)) for w in watchers), watching=me in watchers)
    if not agent:
        return Panel(**base)  # type: ignore[arg-type]
    settings = catalog().settings
    links = tuple(LinkRow(words, link.kind, other.number or "", other.title or other.item_name,
                          state_words(other)) for words, link, other in records.links_of(s, req))
    people = tuple((pid, name) for pid, name in s.execute(
        select(Person.id, Person.name).where(Person.active.is_(True)).order_by(Person.name)))
    groups = tuple((gid, name) for gid, name in s.execute(select(Group.id, Group.name)
                                                          .order_by(Group.name)))
    return Panel(**base, links=links, impacts=settings.impacts,  # type: ignore[arg-type]
                 urgencies=settings.urgencies, groups=groups, people=people,
                 kinds=tuple((k, words[0]) for k, words in records.LINK_KINDS.items()),
                 labels=RECORD_FIELDS)


# ---------------------------------------------------------------- posts


def _ensure_agent(req: Request) -> None:
    """Refuse (403) before reading the form when the viewer is no agent of the record."""
    if not permissions.is_agent(session(), viewer(), req):
        raise NotAllowed(f"only agents of {req.number} can change its record")


def _invalid(req: Request, exc: InvalidInput, values: Mapping[str, str]) -> Any:
    """The panel again, alone on a page, with the service's messages per field (422)."""
    return render_template("records/panel_page.html", req=req, panel=record_panel(req),
                           errors=exc.fields or {"_form": [exc.message]}, values=values), 422


def _back(number: str, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("requests.detail", number=number) + "#record-heading")


@bp.route("/requests/<number>/record", methods=["POST"])
@login_required
def edit(number: str) -> Any:
    """Save the record's fields; only the fields the form sends change."""
    req = load_request(number)
    _ensure_agent(req)
    changes = {k: request.form[k] for k in records.EDITABLE if k in request.form}
    try:
        service().edit_record(number, viewer(), changes, seen_version=form_seen_version())
    except InvalidInput as exc:
        return _invalid(req, exc, changes)
    return _back(number, f"{number} is saved.")


def _linking(number: str, use_case: Callable[..., Any], done: str) -> Any:
    """Link or unlink: the other record's number and the kind, back to the record."""
    req = load_request(number)
    _ensure_agent(req)
    values = {"other": request.form.get("other", ""), "kind": request.form.get("kind", "")}
    try:
        use_case(number, viewer(), values["other"], values["kind"])
    except InvalidInput as exc:
        return _invalid(req, exc, values)
    return _back(number, done.format(other=values["other"].strip().upper()))


@bp.route("/requests/<number>/links", methods=["POST"])
@login_required
def link(number: str) -> Any:
    return _linking(number, service().link, f"{number} is linked to {{other}}.")


@bp.route("/requests/<number>/links/remove", methods=["POST"])
@login_required
def unlink(number: str) -> Any:
    return _linking(number, service().unlink, "The link to {other} is removed.")


def _person(req: Request) -> str:
    person = (request.form.get("person") or "").strip()
    if person and person != viewer():
        _ensure_agent(req)
    if not person:
        raise InvalidInput("say who", {"person": [records.REQUIRED]})
    return person


@bp.route("/requests/<number>/watchers", methods=["POST"])
@login_required
def watch(number: str) -> Any:
    req = load_request(number)
    try:
        person = _person(req)
        service().watch(number, viewer(), person)
    except InvalidInput as exc:
        return _invalid(req, exc, {"person": request.form.get("person", "")})
    who = "You are" if person == viewer() else f"{person} is"
    return _back(number, f"{who} watching it now.")


@bp.route("/requests/<number>/watchers/remove", methods=["POST"])
@login_required
def unwatch(number: str) -> Any:
    req = load_request(number)
    try:
        person = _person(req)
        service().unwatch(number, viewer(), person)
    except InvalidInput as exc:
        return _invalid(req, exc, {"person": request.form.get("person", "")})
    who = "You" if person == viewer() else person
    return _back(number, f"{who} stopped watching it.")


# ---------------------------------------------------------------- logging for a caller


@bp.route("/log")
@login_required
def log() -> Any:
    """Agents: every item, to open its order form for a caller with a channel."""
    cat = catalog()
    if not records.can_log_for_callers(session(), cat, viewer()):
        raise NotAllowed("only agents log records for callers")
    items = sorted((i for i in cat.items if permissions.can_order(session(), viewer(), i)),
                   key=lambda i: (RECORD_TYPES.index(i.record_type), i.category, i.name))
    return render_template("records/log.html", items=items, type_words=TYPE_WORDS)
