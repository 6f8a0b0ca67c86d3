"""Order guides in the portal: one form for several items, and the order page."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import Form

from catalog.answers import defaults_for
from catalog.guide_parser import Guide, GuideItem
from catalog.models import CatalogItem
from engine import people, permissions
from engine.errors import InvalidInput
from engine.models import Order, Request
from engine.orders import SEPARATOR, item_key
from engine.versions import workflow_of
from forms.answers import clean_answers
from forms.wtf import ItemForm, build_form_class, form_field, raw_answers, raw_value
from web.context import catalog, now, service, session, viewer
from web.pages import state_label

bp = Blueprint("orders", __name__)


@dataclass(slots=True)
class Part:
    """One item of a guide on the page: its form (the fields still asked) and its condition."""

    entry: GuideItem
    item: CatalogItem
    form: ItemForm
    included: bool = True


def _guide_or_404(guide_id: str) -> Guide:
    guide = catalog().guide(guide_id)
    if guide is None or not permissions.can_see_item(session(), viewer(), guide.visible_to):
        abort(404)
    return guide


def _questions(guide: Guide) -> CatalogItem:
    """The shared questions as a form of their own."""
    return CatalogItem(id=guide.id, name=guide.name, category=guide.category,
                       summary=guide.summary, workflow="", fields=guide.questions,
                       visible_to=guide.visible_to)


def _parts(guide: Guide, requester: dict[str, Any] | None, posted: bool) -> list[Part]:
    cat, parts = catalog(), []
    for entry in guide.items:
        item = cat.item(entry.item)
        if item is None or not permissions.can_order(session(), viewer(), item):
            continue
        asked = replace(item, fields=guide.asked(entry, item), checks=())
        form_class = build_form_class(asked, cat, base=Form)
        prefix = f"{item.id}{SEPARATOR}"
        form = (form_class(formdata=request.form, prefix=prefix, requester=requester) if posted
                else form_class(formdata=None, data=defaults_for(asked, requester, cat),
                                prefix=prefix, requester=requester))
        parts.append(Part(entry, item, form))
    return parts


def _check_part(guide: Guide, part: Part, shared_raw: dict[str, Any],
                requester: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The item's whole form checked at once: shared, fixed and own answers; errors on fields
    of the item's own form go there, the others are returned."""
    names = {f.name for f in part.item.fields}
    raw = {**{k: v for k, v in shared_raw.items() if k in names},
           **{k: raw_value(v) for k, v in part.entry.answers.items()}, **raw_answers(part.form)}
    result = clean_answers(part.item, raw, catalog(), requester, from_html=True)
    own = type(part.form)._attrs
    rest: dict[str, list[str]] = {}
    for name, messages in result.errors.items():
        if name in own:
            bound = form_field(part.form, name)
            bound.errors = [*bound.errors, *messages]
        else:
            rest[item_key(part.item.id, name)] = messages
    return {k: v for k, v in result.values.items() if k in own}, rest


def _show_service_errors(shared: ItemForm, parts: list[Part],
                         exc: InvalidInput) -> dict[str, list[str]]:
    rest: dict[str, list[str]] = {}
    by_item = {p.item.id: p for p in parts}
    for key, messages in exc.fields.items():
        item_id, _, name = key.partition(SEPARATOR)
        part = by_item.get(item_id) if name else None
        if part is not None and name in type(part.form)._attrs:
            bound = form_field(part.form, name)
        elif not name and key in type(shared)._attrs:
            bound = form_field(shared, key)
        else:
            rest[key] = messages
            continue
        bound.errors = [*bound.errors, *messages]
    if not exc.fields:
        rest["_form"] = [exc.message]
    return rest


@bp.route("/guides/<guide_id>", methods=["GET", "POST"])
@login_required
def guide(guide_id: str) -> Any:
    guide = _guide_or_404(guide_id)
    cat = catalog()
    requester = people.person_context(session(), viewer())
    shared_class = build_form_class(_questions(guide), cat, base=FlaskForm)
    posted = request.method == "POST"
    parts = _parts(guide, requester, posted)
    other_errors: dict[str, list[str]] = {}
    status = 200
    if posted:
        shared = shared_class(requester=requester)
        if shared.validate():
            assert shared.answers is not None
            values = shared.answers.values
            included = {e.item for e in guide.included(values, cat.functions())}
            shared_raw = raw_answers(shared)
            answers: dict[str, dict[str, Any]] = {}
            for part in parts:
                part.included = part.item.id in included
                if part.included:
                    answers[part.item.id], rest = _check_part(guide, part, shared_raw, requester)
                    other_errors.update(rest)
            if not other_errors and not any(p.form.errors for p in parts if p.included):
                try:
                    order = service().order_guide(guide.id, viewer(), dict(values), answers)
                except InvalidInput as exc:
                    other_errors = _show_service_errors(shared, parts, exc)
                else:
                    return redirect(url_for("orders.order", number=order.number))
        status = 422
    else:
        shared = shared_class(formdata=None, data=defaults_for(_questions(guide), requester, cat),
                              requester=requester)
    return render_template("orders/guide.html", guide=guide, shared=shared, parts=parts,
                           other_errors=other_errors, labels=_labels(guide, parts)), status


def _labels(guide: Guide, parts: list[Part]) -> dict[str, str]:
    """What an error key not on the page names, for the summary: `Item: Field`."""
    out = {}
    for p in parts:
        for f in p.item.fields:
            asked = guide.question(f.name)
            out[item_key(p.item.id, f.name)] = f"{p.item.name}: {asked.label if asked else f.label}"
    return out


@bp.route("/orders/<number>")
@login_required
def order(number: str) -> Any:
    view = service().order(session(), number, viewer(), now())
    labels = {c.id: state_label(workflow_of(c.workflow_version), c.state) for c in view.children}
    return render_template("orders/order.html", view=view, labels=labels)


@bp.app_template_global("order_of")
def order_of(req: Request) -> Order | None:
    """The order a record is part of (a template global: blueprints do not import each other)."""
    return service().order_of(session(), req)
