"""Problems on the request page, opening one from incidents, and known errors where callers look:
the knowledge base and the incident form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from wtforms import Field as WTField

from catalog.answers import defaults_for
from catalog.models import CatalogItem
from engine import people, permissions, problems
from engine.errors import InvalidInput, NotAllowed, NotFound
from engine.models import Asset, ProblemRecord, Request
from engine.problems import KnownError
from engine.worklist import is_agent as is_desk_agent
from forms.answers import clean_answers
from forms.client import client_rules
from forms.wtf import form_field, raw_answers
from web.asset_choices import offer_assets
from web.context import catalog, order_form, service, session, viewer
from web.pages import form_seen_version, load_request

bp = Blueprint("problems", __name__)


@dataclass(frozen=True, slots=True)
class Panel:
    """What the problem card of the request page shows one viewer."""

    req: Request
    agent: bool
    row: ProblemRecord | None = None
    service: str = ""
    ci: str = ""
    services: tuple[tuple[str, str], ...] = ()
    open_incidents: tuple[tuple[str, str], ...] = ()
    #: an incident's agent who may open a problem: the link to the problem form
    can_create: bool = False

    @property
    def shown(self) -> bool:
        return self.row is not None or self.can_create


@dataclass(frozen=True, slots=True)
class Published:
    """A known error as callers see it."""

    error: KnownError
    service: str


@bp.app_template_global("problem_panel")
def problem_panel(req: Request) -> Panel:
    """The problem card (a template global: blueprints do not import each other)."""
    s, me, cat = session(), viewer(), catalog()
    agent = permissions.is_agent(s, me, req)
    row = problems.problem_of(s, req)
    if row is None:
        can = (agent and req.record_type == "incident"
               and bool(problems.problem_items(s, cat, me)))
        return Panel(req, agent, can_create=can)
    labels = problems.service_labels(cat)
    item = cat.item(req.item_id)
    field = item.get_field(item.concerns.service) if item and item.concerns and item.concerns.service \
        else None
    ci = s.get(Asset, row.ci_id) if row.ci_id else None
    incidents = tuple((i.number or "", i.title) for i in problems.linked_incidents(s, req, True))
    return Panel(req, agent, row, labels.get(row.service or "", row.service or ""),
                 f"{ci.name} ({ci.id})" if ci else "",
                 tuple((c.value, c.label) for c in field.choices) if field else (), incidents)


def published() -> list[Published]:
    """The open known errors, for someone who may report incidents (else none)."""
    s, cat = session(), catalog()
    if not problems.may_read_known_errors(s, cat, viewer()):
        return []
    labels = problems.service_labels(cat)
    return [Published(k, labels.get(k.service or "", k.service or ""))
            for k in problems.known_errors(s)]


@bp.app_template_global("kb_known_errors")
def kb_known_errors() -> tuple[list[Published], bool]:
    """The knowledge base's section: the known errors, and whether to show problem numbers."""
    return published(), is_desk_agent(session(), catalog(), viewer())


@bp.app_template_global("form_known_errors")
def form_known_errors(item: CatalogItem) -> list[Published] | None:
    """The known errors an incident form shows: all of them (the browser keeps those matching
    the chosen service or CI); when the form comes back from the server, the matching ones."""
    if item.record_type != "incident" or item.concerns is None:
        return None
    shown = published()
    if request.method == "POST":
        c = item.concerns
        wanted = problems.matching([p.error for p in shown], request.form.get(c.service or ""),
                                   request.form.get(c.ci or ""))
        shown = [p for p in shown if p.error in wanted]
    return shown


# ---------------------------------------------------------------- a new problem


def _numbers() -> list[str]:
    given = [*request.values.getlist("incidents"), *request.values.getlist("numbers")]
    return list(dict.fromkeys(n.strip().upper() for n in given if n.strip()))[:problems.MAX_INCIDENTS]


@bp.route("/problems/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    """The problem item's form, prefilled from the incidents it is created from (if any)."""
    s, cat = session(), catalog()
    items = problems.problem_items(s, cat, viewer())
    if not items:
        raise NotFound("no problem item for you")
    item = items[0]
    numbers = _numbers()
    incidents = [load_request(n) for n in numbers]
    for inc in incidents:
        if inc.record_type != "incident":
            raise InvalidInput(f"{inc.number} is a {inc.record_type}", {"incidents": [
                f"{inc.number} is a {inc.record_type}; a problem is created from incidents."]})
        if not permissions.is_agent(s, viewer(), inc):
            raise NotAllowed(f"only agents of {inc.number} can create a problem from it")
    requester = people.person_context(s, viewer())
    form_class = order_form(item)
    status, other_errors = 200, {}
    if request.method == "POST":
        form = form_class(requester=requester)
        if form.validate():
            assert form.answers is not None
            try:
                req = service().create_problem(viewer(), numbers, dict(form.answers.values), item.id)
            except InvalidInput as exc:
                other_errors = _service_errors(form, item, exc.fields or {"_form": [exc.message]})
            else:
                linked = f", linked to {', '.join(numbers)}" if numbers else ""
                flash(f"Problem {req.number} is open{linked}.", "success")
                return redirect(url_for("requests.detail", number=req.number))
        status = 422
    else:
        data = {**defaults_for(item, requester, cat), **problems.prefill(cat, item, incidents)}
        form = form_class(formdata=None, data=data, requester=requester)
    offer_assets(form, item.fields, viewer())
    hidden = (form.answers.hidden if form.answers is not None else
              clean_answers(item, raw_answers(form), cat, requester, from_html=True).hidden)
    return render_template("problems/new.html", item=item, form=form, hidden=hidden,
                           rules=client_rules(item), numbers=numbers,
                           incidents=[(i.number, i.title) for i in incidents],
                           other_errors=other_errors), status


def _service_errors(form: Any, item: CatalogItem, fields: Mapping[str, list[str]]) -> dict[str, list[str]]:
    rest: dict[str, list[str]] = {}
    for name, messages in fields.items():
        if item.get_field(name) is not None:
            bound: WTField = form_field(form, name)
            bound.errors = [*bound.errors, *messages]
        else:
            rest[name] = messages
    return rest


# ---------------------------------------------------------------- editing


@bp.route("/requests/<number>/problem", methods=["POST"])
@login_required
def edit(number: str) -> Any:
    """Save the problem's root cause, workaround, service, CI and known-error flag."""
    req = load_request(number)
    if problems.problem_of(session(), req) is None:
        raise NotFound(f"{number} is not a problem")
    if not permissions.is_agent(session(), viewer(), req):
        raise NotAllowed(f"only agents of {number} can edit its problem")
    changes: dict[str, Any] = {k: request.form[k] for k in problems.EDITABLE
                               if k in request.form and k != "known_error"}
    if "known_error_shown" in request.form:  # an unticked box sends nothing
        changes["known_error"] = request.form.get("known_error", "")
    try:
        service().edit_problem(number, viewer(), changes, seen_version=form_seen_version())
    except InvalidInput as exc:
        return render_template("problems/panel_page.html", req=req, ppanel=problem_panel(req),
                               errors=exc.fields or {"_form": [exc.message]},
                               values=changes), 422
    flash(f"{number} is saved.", "success")
    return redirect(url_for("requests.detail", number=number) + "#problem-heading")


