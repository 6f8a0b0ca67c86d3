"""Fulfiller queues and task actions: claim, reassign, escalate, ask, comment, complete."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, cast

from cachetools import LRUCache, cached
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import case, func, select
from wtforms import BooleanField, SelectField, TextAreaField

from catalog.catalog import Catalog
from catalog.models import CatalogItem
from catalog.workflow import TaskSpec
from engine import permissions, queries
from engine.errors import InvalidInput, NotFound
from engine.models import Group, Request, Task
from engine.tasks import spec_of
from forms.wtf import ItemForm, build_form_class
from web.context import catalog, catalog_queues, now, service, viewer
from web.extensions import db
from web.pages import ActionForm, answer_rows, event_text, page_arg, request_url, show_errors, state_words
from web.task_access import load, load_to_act, may_act, may_work

bp = Blueprint("tasks", __name__)

SORTS = {"due": "SLA due date", "new": "Newest first", "old": "Oldest first"}
ASSIGNEES = {"all": "Anyone", "unassigned": "Unassigned", "mine": "Mine"}
FORM_CLASSES_KEPT = 256


# ---------------------------------------------------------------- forms

class ClaimForm(ActionForm):
    pass


class ReassignForm(ActionForm):
    to = SelectField("Assign to", validate_choice=False)


class EscalateForm(ActionForm):
    reason = TextAreaField("Why", render_kw={"rows": 2, "maxlength": 10_000})


class AskForm(ActionForm):
    question = TextAreaField("Question for the requester", render_kw={"rows": 3, "maxlength": 10_000},
                             description="The SLA clock stops until they answer.")


class CommentForm(ActionForm):
    body = TextAreaField("Comment", render_kw={"rows": 3, "maxlength": 10_000})
    internal = BooleanField("Internal note (only people working on the request see it)")


class CompleteForm(ActionForm):
    outcome = SelectField("Outcome", validate_choice=False)
    comment = TextAreaField("Closing comment", render_kw={"rows": 2, "maxlength": 10_000})


class _Plain(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect checks the token of every POST before the view runs


def answers_form_class(req: Request, task: Task, spec: TaskSpec | None) -> type[ItemForm]:
    """The fulfiller's form of the task (its workflow's `form:`), built once per version."""
    return _answers_form_class(catalog(), req.workflow_version.version, task.state, task.name, spec)


@cached(LRUCache(maxsize=FORM_CLASSES_KEPT), lock=threading.Lock(),
        key=lambda cat, version, state, name, spec: (cat.version, version, state, name))
def _answers_form_class(cat: Catalog, version: str, state: str, name: str,
                        spec: TaskSpec | None) -> type[ItemForm]:
    """The form of task `name` in `state` of workflow `version` (the spec follows from those)."""
    holder = SimpleNamespace(id=f"task-{name.replace('_', '-')}",
                             fields=spec.fields if spec else (), checks=())
    return build_form_class(cast(CatalogItem, holder), cat, base=_Plain)


# ---------------------------------------------------------------- queues



@bp.get("/queues")
@login_required
def queues() -> Any:
    """The viewer's queues (every queue for admins): groups that get tasks, or have some open."""
    mine, everyone = set(current_user.groups), current_user.is_admin
    query = (select(Task.queue, func.count(), func.sum(case((Task.assignee_id.is_(None), 1), else_=0)))
             .where(Task.status == "open").group_by(Task.queue))
    if not everyone:
        query = query.where(Task.queue.in_(mine))
    counts = {q: (total, unassigned or 0) for q, total, unassigned in db.session().execute(query)}
    wanted = catalog_queues() | counts.keys()
    if not everyone:
        wanted &= mine
    groups = db.session().scalars(select(Group).where(Group.id.in_(wanted)).order_by(Group.name))
    rows = [(g, *counts.get(g.id, (0, 0)), g.id in mine) for g in groups]
    return render_template("tasks/queues.html", rows=rows)


@bp.get("/queues/<group_id>")
@login_required
def queue(group_id: str) -> Any:
    group = db.session().get(Group, group_id) if len(group_id) <= 64 else None
    if group is None or not may_work(group_id):
        raise NotFound(f"no queue {group_id}")
    settings = catalog().settings
    args = request.args
    sort = args.get("sort") if args.get("sort") in SORTS else "due"
    assignee = args.get("assignee") if args.get("assignee") in ASSIGNEES else "all"
    priorities = {p.id: p.name for p in settings.priorities}
    priority = args.get("priority") if args.get("priority") in priorities else ""
    page = queries.queue(db.session(), group_id, viewer(), page_arg(), sort=sort,
                         priority=priority or None, mine=assignee == "mine",
                         assignee=assignee if assignee == "unassigned" else None)
    names = queries.names(db.session(), {t.assignee_id for t, _ in page.rows})
    return render_template("tasks/queue.html", group=group, page=page, names=names, now=now(),
                           sort=sort, assignee=assignee, priority=priority, sorts=SORTS,
                           assignees=ASSIGNEES, priorities=priorities, me=viewer(),
                           request_url=request_url)


# ---------------------------------------------------------------- one task

def _render(task: Task, req: Request, status: int = 200, errors: list[str] | None = None,
            **forms: Any) -> Any:
    s, me = db.session(), viewer()
    spec = spec_of(req, task)
    outcomes = spec.outcomes if spec else ("done",)
    version = {"formdata": None, "seen_version": req.lock_version}
    f: dict[str, Any] = {
        "claim": ClaimForm(prefix="claim", **version),
        "reassign": ReassignForm(prefix="reassign", **version),
        "escalate": EscalateForm(prefix="escalate", **version),
        "ask": AskForm(prefix="ask", **version),
        "comment": CommentForm(prefix="comment", **version),
        "complete": CompleteForm(prefix="complete", **version),
        "answers": answers_form_class(req, task, spec)(prefix="answer", formdata=None),
    }
    f.update(forms)
    f["reassign"].to.choices = [(p.id, p.name) for p in queries.group_members(s, task.queue)]
    if f["reassign"].to.data is None:
        f["reassign"].to.data = task.assignee_id or me
    f["complete"].outcome.choices = [(o, o.replace("_", " ").capitalize()) for o in outcomes]
    can_act = may_act(task)
    timeline = queries.timeline(s, req, internal=can_act or permissions.is_agent(s, me, req))
    ids = {req.requester_id, req.requested_for_id, task.assignee_id, *(e.actor for e in timeline)}
    is_open = task.status == "open" and task.visit == req.visit and req.status == "open"
    return render_template(
        "tasks/task.html", task=task, req=req, forms=f, errors=errors or [], is_open=is_open,
        can_act=can_act,
        can_escalate=spec is not None and task.tier + 1 < len(spec.tiers),
        several_outcomes=len(outcomes) > 1, answers=answer_rows(req), state=state_words(req),
        timeline=timeline, event_text=event_text, names=queries.names(s, ids), now=now(),
        group=s.get(Group, task.queue), priority=catalog().settings.priority(req.priority or ""),
        request_url=request_url(str(req.number))), status


@bp.get("/tasks/<id:task_id>")
@login_required
def show(task_id: int) -> Any:
    task, req = load(task_id)
    return _render(task, req)


@bp.post("/tasks/<id:task_id>/claim")
@login_required
def claim(task_id: int) -> Any:
    task, req = load_to_act(task_id)
    form = ClaimForm(prefix="claim")
    if not form.validate():
        return _render(task, req, 422, form.seen_version.errors)
    service().claim_task(task_id, viewer(), seen_version=form.seen_version.data)
    flash(f"You took {req.number}.", "success")
    return redirect(url_for(".show", task_id=task_id))


@bp.post("/tasks/<id:task_id>/reassign")
@login_required
def reassign(task_id: int) -> Any:
    task, req = load_to_act(task_id)
    form = ReassignForm(prefix="reassign")
    if not form.validate():
        return _render(task, req, 422, form.seen_version.errors, reassign=form)
    try:
        service().reassign(task_id, viewer(), form.to.data or "", seen_version=form.seen_version.data)
    except InvalidInput as exc:
        return _render(task, req, 422, show_errors(form, exc.fields), reassign=form)
    who = queries.names(db.session(), {form.to.data}).get(form.to.data or "", form.to.data)
    flash(f"{req.number} is now assigned to {who}.", "success")
    return redirect(url_for(".show", task_id=task_id))


@bp.post("/tasks/<id:task_id>/escalate")
@login_required
def escalate(task_id: int) -> Any:
    task, req = load_to_act(task_id)
    form = EscalateForm(prefix="escalate")
    if not form.validate():
        return _render(task, req, 422, form.seen_version.errors, escalate=form)
    queue = task.queue
    try:
        service().escalate_task(task_id, viewer(), form.reason.data or "",
                                seen_version=form.seen_version.data)
    except InvalidInput as exc:
        return _render(task, req, 422, show_errors(form, exc.fields), escalate=form)
    flash(f"{req.number} went to the next tier.", "success")
    return redirect(url_for(".queue", group_id=queue))


@bp.post("/tasks/<id:task_id>/ask")
@login_required
def ask(task_id: int) -> Any:
    task, req = load_to_act(task_id)
    form = AskForm(prefix="ask")
    if not form.validate():
        return _render(task, req, 422, form.seen_version.errors, ask=form)
    try:
        service().ask_requester(str(req.number), viewer(), form.question.data or "",
                                seen_version=form.seen_version.data)
    except InvalidInput as exc:
        return _render(task, req, 422, show_errors(form, exc.fields), ask=form)
    flash(f"Your question is with the requester; {req.number} waits for their answer.", "success")
    return redirect(url_for(".show", task_id=task_id))


@bp.post("/tasks/<id:task_id>/comment")
@login_required
def comment(task_id: int) -> Any:
    """A comment adds to the request without changing it, so a stale page may still comment."""
    task, req = load_to_act(task_id)
    form = CommentForm(prefix="comment")
    if not form.validate():
        return _render(task, req, 422, form.seen_version.errors, comment=form)
    try:
        service().comment(str(req.number), viewer(), form.body.data or "",
                          internal=bool(form.internal.data))
    except InvalidInput as exc:
        return _render(task, req, 422, show_errors(form, exc.fields), comment=form)
    flash("Internal note added." if form.internal.data else "Comment added.", "success")
    return redirect(url_for(".show", task_id=task_id))


@bp.post("/tasks/<id:task_id>/complete")
@login_required
def complete(task_id: int) -> Any:
    task, req = load_to_act(task_id)
    spec = spec_of(req, task)
    form = CompleteForm(prefix="complete")
    answers = answers_form_class(req, task, spec)(prefix="answer")
    ok = form.validate()
    ok = answers.validate() and ok
    if not ok or answers.answers is None:
        return _render(task, req, 422, form.seen_version.errors, complete=form, answers=answers)
    several = spec is not None and len(spec.outcomes) > 1
    try:
        service().complete_task(task_id, viewer(), outcome=form.outcome.data if several else None,
                                answers=answers.answers.values, comment=form.comment.data or "",
                                seen_version=form.seen_version.data)
    except InvalidInput as exc:
        where = {name: answers._fields[attr] for name, attr in type(answers)._attrs.items()}
        mine = {k: v for k, v in exc.fields.items() if k in ("outcome", "comment")}
        theirs = {k: v for k, v in exc.fields.items() if k not in mine}
        left = show_errors(form, mine) + show_errors(answers, theirs, where)
        return _render(task, req, 422, left, complete=form, answers=answers)
    flash(f"{task.title} is done.", "success")
    return redirect(url_for(".queue", group_id=task.queue))
