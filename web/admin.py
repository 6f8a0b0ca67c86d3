"""Admin: catalog status and reload, previews, workflows, people and groups, requests that need
attention, the outbox."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.answers import defaults_for
from catalog.catalog import Catalog
from catalog.diff import diff_catalogs
from catalog.diff_model import Change
from catalog.diff_render import impact, sections, summary
from catalog.errors import CatalogInvalid, DeskflowError
from catalog.field_reasons import field_reasons
from engine import attention, outbox, people, queries
from engine.checks import in_flight
from engine.models import Group, Membership, Person, PersonRole, Role
from forms.answers import clean_answers
from forms.client import client_rules
from forms.wtf import raw_answers
from web.context import catalog, now, order_form, viewer
from web.extensions import db
from web.state import CatalogMoved, portal_state
from workflows.diagram import to_svg

bp = Blueprint("admin", __name__, url_prefix="/admin")
#: the preview's "Try these answers" button; no field is named so (names start with a letter)
TRY_ANSWERS = "_try"


@bp.before_request
@login_required
def admins_only() -> None:
    if not current_user.is_admin:
        abort(403)


# ---------------------------------------------------------------- catalog


@bp.route("/")
def status() -> Any:
    return _status_page()


@bp.route("/reload/preview", methods=["POST"])
def reload_preview() -> Any:
    """What reloading would change against the catalog serving now; nothing switches."""
    try:
        fresh = portal_state().preview()
    except DeskflowError as exc:  # the directory is gone, or far too large
        return _status_page(refused=(str(exc),)), 422
    if not fresh.ok:
        return _status_page(refused=tuple(e.render() for e in fresh.errors)), 422
    return _status_page(preview=_preview_of(fresh))


@bp.route("/reload", methods=["POST"])
def reload() -> Any:
    """Switch to the previewed catalog, if the files on disk are still that version."""
    expected = request.form.get("fingerprint", "").strip()
    if not expected or len(expected) > 64:
        flash("Preview the reload first: the confirmation names the version it switches to.",
              "danger")
        return _status_page(), 422
    old = portal_state().catalog.version
    try:
        fresh = portal_state().reload(expected)
    except CatalogMoved as exc:
        if not exc.fresh.ok:
            return _status_page(refused=tuple(e.render() for e in exc.fresh.errors),
                                moved=str(exc)), 409
        return _status_page(preview=_preview_of(exc.fresh), moved=str(exc)), 409
    except CatalogInvalid as exc:
        return _status_page(refused=tuple(e.render() for e in exc.errors)), 422
    except DeskflowError as exc:  # the directory is gone, or far too large
        return _status_page(refused=(str(exc),)), 422
    warnings = len(fresh.warnings)
    note = f" with {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
    if fresh.version == old:
        flash(f"Catalog reloaded{note}; nothing changed (version {fresh.version}).", "info")
    else:
        flash(f"Catalog reloaded{note}: version {fresh.version} (was {old}).", "success")
    return redirect(url_for("admin.status"))


def _status_page(refused: tuple[str, ...] | None = None, preview: ReloadPreview | None = None,
                 moved: str | None = None) -> str:
    state = portal_state()
    return render_template("admin/status.html", state=state, loaded=state.current,
                           catalog=state.catalog, refused=refused,
                           last_refused=state.last_refused, preview=preview, moved=moved)


@dataclass(frozen=True, slots=True)
class ReloadPreview:
    """A catalog on disk against the one serving: its changes, grouped, each with its impact."""

    version: str
    summary: str
    sections: tuple[tuple[str, tuple[tuple[Change, str | None], ...]], ...]
    warnings: int


def _preview_of(fresh: Catalog) -> ReloadPreview:
    serving = portal_state().catalog
    diff = diff_catalogs(serving, fresh, serving.version, fresh.version,
                         in_flight=in_flight(db.session()))
    return ReloadPreview(fresh.version, summary(diff),
                         tuple((title, tuple((c, impact(c)) for c in changes))
                               for title, changes in sections(diff)),
                         len(fresh.warnings))


@bp.route("/items")
def items() -> Any:
    cat = catalog()
    return render_template("admin/items.html",
                           items=sorted(cat.items, key=lambda i: (i.category, i.name)))


@bp.route("/items/<item_id>/preview")
def preview(item_id: str) -> Any:
    """The live order form (no submit button, no ordering) and the item's workflow drawn."""
    cat = catalog()
    item = cat.item(item_id)
    if item is None:
        abort(404)
    requester = people.person_context(db.session(), viewer())
    trying = TRY_ANSWERS in request.args
    if trying:
        # answers to try come in the query string: the page changes nothing, so no CSRF token
        form = order_form(item)(formdata=request.args, requester=requester, meta={"csrf": False})
        form.validate()
        answers = form.answers
    else:
        form = order_form(item)(formdata=None, data=defaults_for(item, requester, cat),
                                requester=requester)
        answers = None
    if answers is None:
        answers = clean_answers(item, raw_answers(form), cat, requester, from_html=True)
    wf = cat.workflow(item.workflow)
    return render_template("admin/preview.html", item=item, form=form, hidden=answers.hidden,
                           rules=client_rules(item), workflow=wf, trying=trying,
                           try_key=TRY_ANSWERS,
                           reasons=field_reasons(item.fields, answers, requester, cat.functions()),
                           diagram=Markup(to_svg(wf)) if wf is not None else None)


# ---------------------------------------------------------------- workflows


@dataclass(frozen=True, slots=True)
class StoredVersion:
    version: str
    open: int
    current: bool


@bp.route("/workflows")
def workflows() -> Any:
    cat = catalog()
    stored = _stored_versions(db.session(), {w.id: w.version for w in cat.workflows})
    known = {w.id for w in cat.workflows}
    removed = {wf_id: rows for wf_id, rows in stored.items() if wf_id not in known}
    return render_template("admin/workflows.html", workflows=sorted(cat.workflows, key=lambda w: w.id),
                           stored=stored, removed=removed)


@bp.route("/workflows/<workflow_id>")
def workflow(workflow_id: str) -> Any:
    cat = catalog()
    wf = cat.workflow(workflow_id)
    if wf is None:
        abort(404)
    stored = _stored_versions(db.session(), {wf.id: wf.version}).get(wf.id, [])
    users = sorted((i for i in cat.items if i.workflow == wf.id), key=lambda i: i.name)
    return render_template("admin/workflow.html", workflow=wf, stored=stored, items=users,
                           diagram=Markup(to_svg(wf)))


@bp.route("/workflows/<workflow_id>/migrate", methods=["GET", "POST"])
def migrate_workflow(workflow_id: str) -> Any:
    """Preview moving a workflow's open requests onto a version (GET); run it (POST)."""
    from engine.workflow_migration import (
        CURRENT,
        migrate,
        parse_map,
        plan_migration,
        resolve_target,
    )

    source = request.form if request.method == "POST" else request.args
    version = source.get("to", CURRENT if request.method == "GET" else "").strip()
    pairs = [p for p in source.get("map", "").split() if p]
    cat = catalog()
    if cat.workflow(workflow_id) is None and not _stored_versions(db.session(), {}).get(workflow_id):
        abort(404)
    state = portal_state()
    try:
        mapping = parse_map(pairs)
        with state.sessions() as session:
            target = resolve_target(session, cat, workflow_id, version, now())
            plan = plan_migration(session, workflow_id, target, mapping)
            if request.method == "GET" or not plan.moves:
                session.rollback()  # a preview stores nothing, not even `current`
            else:
                session.commit()
    except DeskflowError as exc:
        return render_template("admin/migrate.html", workflow_id=workflow_id, plan=None,
                               version=version, pairs=" ".join(pairs), error=str(exc)), 422
    if request.method == "GET" or not plan.moves:
        return render_template("admin/migrate.html", workflow_id=workflow_id, plan=plan,
                               version=version, pairs=" ".join(pairs), error=None)
    try:
        moved = migrate(state.service.unit, plan, viewer())
    except DeskflowError as exc:
        return render_template("admin/migrate.html", workflow_id=workflow_id, plan=plan,
                               version=version, pairs=" ".join(pairs), error=str(exc)), 409
    flash(f"{len(moved)} request{'s' * (len(moved) != 1)} migrated to version "
          f"{plan.target[:8]}.", "success")
    return redirect(url_for("admin.workflow", workflow_id=workflow_id))


def _stored_versions(session: Session, current: dict[str, str]) -> dict[str, list[StoredVersion]]:
    """Versions stored in the database, by workflow, with their open requests; current first."""
    out: dict[str, list[StoredVersion]] = defaultdict(list)
    for wf_id, version, count in queries.open_by_version(session):
        out[wf_id].append(StoredVersion(version, int(count or 0), current.get(wf_id) == version))
    for rows in out.values():
        rows.sort(key=lambda r: (not r.current, -r.open, r.version))
    return dict(out)


# ---------------------------------------------------------------- directory


@dataclass(frozen=True, slots=True)
class PersonRow:
    person: Person
    manager: str | None
    roles: tuple[str, ...]
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GroupRow:
    group: Group
    manager: str | None
    members: tuple[Person, ...]


@bp.route("/people")
def people_list() -> Any:
    return render_template("admin/people.html", rows=directory_people(db.session()))


@bp.route("/groups")
def groups() -> Any:
    return render_template("admin/groups.html", rows=directory_groups(db.session()))


def directory_people(session: Session) -> list[PersonRow]:
    """Everyone in the database (active first), with manager, roles and groups; three queries."""
    everyone = list(session.scalars(select(Person).order_by(Person.active.desc(), Person.name)))
    names = {p.id: p.name for p in everyone}
    roles: dict[str, list[str]] = defaultdict(list)
    for pid, role in session.execute(select(PersonRole.person_id, Role.name)
                                     .join(Role, Role.id == PersonRole.role_id).order_by(Role.name)):
        roles[pid].append(role)
    groups_of: dict[str, list[str]] = defaultdict(list)
    for pid, group in session.execute(select(Membership.person_id, Group.name)
                                      .join(Group, Group.id == Membership.group_id)
                                      .order_by(Group.name)):
        groups_of[pid].append(group)
    return [PersonRow(p, names.get(p.manager_id or "", p.manager_id), tuple(roles[p.id]),
                      tuple(groups_of[p.id])) for p in everyone]


def directory_groups(session: Session) -> list[GroupRow]:
    """Every group with its manager and members; two queries."""
    everyone = {p.id: p for p in session.scalars(select(Person))}
    members: dict[str, list[Person]] = defaultdict(list)
    for gid, pid in session.execute(select(Membership.group_id, Membership.person_id)):
        if pid in everyone:
            members[gid].append(everyone[pid])
    rows = []
    for g in session.scalars(select(Group).order_by(Group.name)):
        manager = everyone.get(g.manager_id or "")
        rows.append(GroupRow(g, manager.name if manager else g.manager_id,
                             tuple(sorted(members[g.id], key=lambda p: p.name))))
    return rows


# ---------------------------------------------------------------- needs attention


@bp.route("/attention")
def needing_attention() -> Any:
    """Open requests a workflow step failed on; each is retried or routed on its own page."""
    return render_template("admin/attention.html", rows=attention.needing_attention(db.session()))


# ---------------------------------------------------------------- outbox


@bp.route("/outbox")
def dead_letters() -> Any:
    return render_template("admin/outbox.html", messages=outbox.dead_letters(db.session()),
                           stats=outbox.outbox_stats(db.session(), now()))


@bp.route("/outbox/<id:message_id>/replay", methods=["POST"])
def replay(message_id: int) -> Any:
    with portal_state().sessions.begin() as session:  # a writer session: SQLite's lock at BEGIN
        message = outbox.replay(session, message_id, now(), actor_id=viewer())
    flash(f"Message {message.id} ({message.kind}, {message.event}) is queued again; "
          "the worker delivers it shortly.", "success")
    return redirect(url_for("admin.dead_letters"))
