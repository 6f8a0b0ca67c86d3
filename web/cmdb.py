"""Configuration items: "My assets" for everyone; the CMDB list, pages and forms for agents."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from catalog.answers import from_form
from catalog.ci_types import STATUSES, CIType
from engine import cmdb
from engine.cmdb import RELATION_KINDS, CIInput
from engine.errors import InvalidInput, NotAllowed
from engine.models import Asset, Group, Person
from web.context import catalog, catalog_queues, now, service, session, viewer

bp = Blueprint("cmdb", __name__)


def _agent() -> None:
    if not cmdb.may_browse(session(), viewer(), catalog_queues()):
        abort(403)


def _ci_type(type_id: str) -> CIType:
    found = catalog().ci_type(type_id)
    if found is None:
        abort(404)
    return found


def _given(ci_type: CIType) -> CIInput:
    form = request.form
    return CIInput(name=form.get("name", ""), status=form.get("status") or "in_use",
                   owner_id=form.get("owner") or None, owner_group_id=form.get("owner_group") or None,
                   fields={f.name: from_form(f, form.get(f.name)) for f in ci_type.fields})


def _choices() -> dict[str, Any]:
    s = session()
    return {"people": s.query(Person).filter(Person.active.is_(True)).order_by(Person.name).all(),
            "groups": s.query(Group).order_by(Group.name).all(), "statuses": STATUSES}


@bp.route("/assets/mine")
@login_required
def mine() -> str:
    items = cmdb.my_assets(session(), viewer())
    return render_template("cmdb/mine.html", items=items, types=_type_names())


@bp.route("/cmdb")
@login_required
def browse() -> str:
    _agent()
    type_id, text = request.args.get("type", ""), request.args.get("q", "")
    return render_template("cmdb/list.html", items=cmdb.search(session(), type_id or None, text),
                           types=catalog().ci_types, type_id=type_id, q=text,
                           names=_type_names())


@bp.route("/cmdb/<id:ci_id>")
@login_required
def detail(ci_id: int) -> str:
    _agent()
    s = session()
    ci = cmdb.get(s, ci_id)
    out, into = cmdb.relations(s, ci.id)
    return render_template(
        "cmdb/detail.html", ci=ci, ci_type=catalog().ci_type(ci.type), out=out, into=into,
        impacted=cmdb.impacted(s, ci.id), records=cmdb.records_touching(s, ci.id, catalog=catalog()),
        may_manage=cmdb.can_manage(s, viewer(), ci), kinds=RELATION_KINDS,
        others=cmdb.search(s, limit=500), names=_type_names())


@bp.route("/cmdb/new/<type_id>", methods=["GET", "POST"])
@login_required
def create(type_id: str) -> Any:
    _agent()
    ci_type = _ci_type(type_id)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            with _writing() as s:
                ci = cmdb.create(s, catalog(), viewer(), type_id, _given(ci_type), now())
                ci_id = ci.id
            flash(f"{ci_type.name} recorded.", "success")
            return redirect(url_for("cmdb.detail", ci_id=ci_id))
        except InvalidInput as exc:
            errors = exc.fields
    status = 422 if errors else 200
    return render_template("cmdb/form.html", ci_type=ci_type, ci=None, values=request.form,
                           errors=errors, **_choices()), status


@bp.route("/cmdb/<id:ci_id>/edit", methods=["GET", "POST"])
@login_required
def edit(ci_id: int) -> Any:
    _agent()
    ci = cmdb.get(session(), ci_id)
    if not cmdb.can_manage(session(), viewer(), ci):
        raise NotAllowed("only admins and members of the owner group may change this item")
    ci_type = _ci_type(ci.type)
    errors: dict[str, list[str]] = {}
    values: Any = _values_of(ci)
    if request.method == "POST":
        values = request.form
        try:
            with _writing() as s:
                cmdb.update(s, catalog(), viewer(), ci_id, _given(ci_type), now())
            flash(f"{ci_type.name} saved.", "success")
            return redirect(url_for("cmdb.detail", ci_id=ci_id))
        except InvalidInput as exc:
            errors = exc.fields
    return render_template("cmdb/form.html", ci_type=ci_type, ci=ci, values=values,
                           errors=errors, **_choices()), 422 if errors else 200


@bp.route("/cmdb/<id:ci_id>/retire", methods=["POST"])
@login_required
def retire(ci_id: int) -> Response:
    _agent()
    with _writing() as s:
        cmdb.retire(s, viewer(), ci_id, now())
    flash("Item retired.", "success")
    return redirect(url_for("cmdb.detail", ci_id=ci_id))


@bp.route("/cmdb/<id:ci_id>/relate", methods=["POST"])
@login_required
def relate(ci_id: int) -> Response:
    _agent()
    cmdb.get(session(), ci_id)
    target = request.form.get("target", "")
    if not target.isdigit():
        raise InvalidInput("choose an item to relate to", {"target": ["Choose an item."]})
    with _writing() as s:
        cmdb.relate(s, viewer(), ci_id, request.form.get("kind", ""), int(target), now())
    flash("Relationship added.", "success")
    return redirect(url_for("cmdb.detail", ci_id=ci_id))


@bp.route("/cmdb/<id:ci_id>/unrelate", methods=["POST"])
@login_required
def unrelate(ci_id: int) -> Response:
    _agent()
    cmdb.get(session(), ci_id)
    relation = request.form.get("relation", "")
    if not relation.isdigit():
        raise InvalidInput("choose a relationship to remove", {"relation": [
            "Choose a relationship."]})
    with _writing() as s:
        cmdb.unrelate(s, viewer(), int(relation), now(), ci_id)
    flash("Relationship removed.", "success")
    return redirect(url_for("cmdb.detail", ci_id=ci_id))


def _writing() -> AbstractContextManager[Session]:
    """One write transaction; the page's read transaction ends first (SQLite allows one writer)."""
    session().rollback()
    return service().sessions.begin()


def _values_of(ci: Asset) -> dict[str, Any]:
    return {"name": ci.name, "owner": ci.owner_id or "", "owner_group": ci.owner_group_id or "",
            "status": ci.status, **{k: "" if v is None else v for k, v in ci.data.items()}}


def _type_names() -> dict[str, str]:
    return {t.id: t.name for t in catalog().ci_types}
