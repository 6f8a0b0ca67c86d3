"""My requests and the request page: answers, state, timeline, approvals, tasks, SLAs, actions."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache, cached
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import login_required
from markupsafe import Markup

from catalog.workflow import Workflow
from engine import people, permissions, queries, why
from engine.attachments import can_delete, visible_attachments
from engine.attention import declared_outcomes
from engine.errors import InvalidInput
from engine.models import Comment, Request
from engine.queries import TimelineEntry
from engine.unit import calendar_of
from engine.versions import workflow_of
from web.attachments import MAX_FILES
from web.context import catalog, now, service, session, viewer
from web.ids import number
from web.pages import (
    EVENTS,
    RECORD_EVENTS,
    comment_title,
    form_seen_version,
    load_request,
    record_detail,
    shown_answers,
    state_label,
)
from workflows.diagram import to_svg
from workflows.errors import UnknownState

bp = Blueprint("requests", __name__)

STATUSES = ("all", "open", "closed")
MAX_SEARCH = 100
TRUE_WORDS = frozenset({"y", "yes", "on", "true", "1"})
SLA_WORDS = {"ok": "On track", "warning": "At risk", "breached": "Breached"}


# ---------------------------------------------------------------- presentation


@dataclass(frozen=True, slots=True)
class Shown:
    """A timeline entry in words."""

    at: Any
    who: str
    title: str
    detail: str = ""
    body: str = ""
    kind: str = "event"
    internal: bool = False
    #: why a decision went where it did (engine.why.branch, kept on the event)
    why: str = ""


def _event_text(entry: TimelineEntry, wf: Workflow, names: Mapping[str, str]) -> Shown:
    e = entry.event
    assert e is not None
    who = names.get(entry.actor or "", entry.actor or "Deskflow")
    title = EVENTS.get(e.event, e.event.replace("_", " ").capitalize())
    d = e.detail or {}
    detail = ""
    if e.event == "submitted":
        detail = f"Starts at: {state_label(wf, e.to_state or '')}"
    elif e.event == "transition":
        trigger = d.get("trigger", "")
        title = "Cancelled" if trigger == "cancel" else f"Now: {state_label(wf, e.to_state or '')}"
        detail = f"From {state_label(wf, e.from_state or '')}" + (f" ({trigger})" if trigger else "")
        if d.get("reason"):
            detail += f". Reason: {d['reason']}"
        if d.get("why"):
            return Shown(e.at, who, title, detail, why=f"Decided {d['why']}")
    elif e.event == "approval_requested":
        approvers = d.get("approvers") or []
        detail = "From " + ", ".join(names.get(a, a) for a in approvers) if approvers else ""
    elif e.event == "approval_delegated":
        detail = f"To {names.get(d.get('to', ''), d.get('to', ''))}"
    elif e.event in ("task_created", "task_escalated"):
        queue = d.get("queue") or d.get("to_queue") or ""
        detail = f"Queue: {_group_name(queue)}" if queue else ""
    elif e.event == "task_completed" and d.get("comment"):
        detail = str(d["comment"])
    elif e.event == "attention_routed":
        detail = f"To {state_label(wf, e.to_state or '')}"
    elif e.event == "migrated":
        detail = (f"From version {str(d.get('from_version', ''))[:8]} to "
                  f"{str(d.get('to_version', ''))[:8]}, state {e.from_state} → {e.to_state}")
    elif e.event in ("sla_warning", "sla_breach"):
        detail = f"{str(d.get('target', '')).capitalize()} target"
    elif e.event in RECORD_EVENTS:
        detail = record_detail(e.event, d, names)
    elif e.event in ("attachment_added", "attachment_deleted"):
        detail = str(d.get("filename", ""))
    elif e.event in ("major_declared", "major_stood_down"):
        detail = str(d.get("reason", ""))
    elif e.event == "children_resolved":
        detail = "; ".join(f"{k.capitalize()}: {', '.join(v)}" for k, v in d.items() if v)
    return Shown(e.at, who, title, detail)


def _comment_text(entry: TimelineEntry, names: Mapping[str, str]) -> Shown:
    c = entry.comment
    assert c is not None
    return Shown(c.created_at, names.get(c.author_id, c.author_id), comment_title(c), body=c.body,
                 kind=c.kind, internal=c.internal)


def _group_name(group_id: str) -> str:
    group = catalog().directory.group(group_id)
    return group.name if group is not None else group_id


@cached(LRUCache(maxsize=512), key=lambda wf, current: (wf.id, wf.version, current),
        lock=threading.Lock())
def diagram(wf: Workflow, current: str) -> str:
    """The workflow drawn with the current state marked (our own SVG: safe to inline); drawn
    once per workflow version and state (`version` is a hash of the workflow's content)."""
    try:
        return to_svg(wf, current=current)
    except UnknownState:
        return to_svg(wf)


# ---------------------------------------------------------------- pages


def _page(req: Request, status: int = 200, errors: Mapping[str, list[str]] | None = None,
          values: Mapping[str, str] | None = None) -> Any:
    me = viewer()
    wf = workflow_of(req.workflow_version)
    agent = permissions.is_agent(session(), me, req)
    entries = queries.timeline(session(), req, internal=agent)
    approvals = queries.approvals_of(session(), req)
    tasks = queries.tasks_of(session(), req)
    ids: set[str | None] = {req.requester_id, req.requested_for_id, *(e.actor for e in entries)}
    for a in approvals:
        ids |= {a.approver_id, a.decided_by_id, a.delegated_from_id, *why.people_in(a.source)}
    for t in tasks:
        ids |= {t.assignee_id, t.completed_by_id}
    for e in entries:
        if e.event is not None:
            ids |= set((e.event.detail or {}).get("approvers") or ())
            ids.add((e.event.detail or {}).get("to"))
            ids.add((e.event.detail or {}).get("person"))
            ids |= {v for v in ((e.event.detail or {}).get("changes") or {}).get("assignee") or ()}
    files = visible_attachments(session(), req, me)
    ids |= {f.uploaded_by_id for f in files}
    names = queries.names(session(), ids)
    timeline = [_event_text(e, wf, names) if e.kind == "event" else _comment_text(e, names)
                for e in entries]
    question = _open_question(entries) if req.waiting_on_requester else None
    cat = catalog()
    prio = cat.settings.priority(req.priority) if req.priority else None
    item = cat.item(req.item_id)
    return render_template(
        "requests/detail.html", req=req, wf=wf, state_words=state_label(wf, req.state),
        answers=shown_answers(item, req.answers or {}), timeline=timeline,
        approvals=approvals, approval_states={a.state: state_label(wf, a.state) for a in approvals},
        tasks=tasks, groups={t.queue: _group_name(t.queue) for t in tasks}, names=names,
        agent=agent, party=permissions.is_party(req, me), question=question,
        takes_part=permissions.takes_part(session(), me, req, now()),
        attention=_attention(req, wf, me) if req.attention_at is not None else None,
        priority=prio.name if prio else req.priority, sla_words=SLA_WORDS,
        approver_why={a.id: why.approver(a.source, a.approver_id, names, a.delegated_from_id,
                                         a.decided_by_id) for a in approvals},
        sla_why=sla_reasons(req, wf),
        priority_why=why.priority(item, cat.settings, req.answers or {}, req.priority)
        if item is not None and req.priority else "",
        svg=Markup(diagram(wf, req.state)), attachments=files,
        deletable={f.id for f in files if can_delete(session(), me, f, req)},
        attachment_limit=limits.max_file if (limits := service().unit.attachments) else 0,
        errors=errors or {}, values=values or {}), status


def sla_reasons(req: Request, wf: Workflow) -> list[str]:
    """Why each target falls due when it does, and why the clocks are paused (engine.why)."""
    settings = catalog().settings
    calendar = calendar_of(catalog())
    out: list[str] = []
    for what, target, source in why.sla_targets(settings, wf, req.priority):
        due = req.response_due if what == "Response" else req.resolution_due
        if due is not None and not (what == "Response" and req.responded_at):
            out.append(why.sla_due(calendar, what, target, source, req.created_at, due))
    if req.sla_paused_at is not None:
        out.append("The clocks are " + why.sla_paused(req.sla_paused_at, req.waiting_on_requester,
                                                      req.resolved_at, calendar.zone))
    return out


@dataclass(frozen=True, slots=True)
class Attention:
    """The "needs attention" panel: the error for admins and the item's owner group only."""

    staff: bool
    admin: bool
    state_words: str
    states: tuple[tuple[str, str], ...] = ()
    outcomes: tuple[str, ...] = ()


def _attention(req: Request, wf: Workflow, me: str) -> Attention:
    item = catalog().item(req.item_id)
    admin = people.is_admin(session(), me)
    staff = admin or bool(item and item.owner and people.is_member(session(), me, item.owner))
    words = state_label(wf, req.attention_state or req.state)
    if not admin:
        return Attention(staff, admin, words)
    return Attention(staff, admin, words, tuple((s.name, state_label(wf, s.name)) for s in wf.states),
                     tuple(declared_outcomes(req)))


def _open_question(entries: list[TimelineEntry]) -> Comment | None:
    questions = [e.comment for e in entries if e.comment is not None and e.comment.kind == "question"]
    return questions[-1] if questions else None


def _int(text: str | None, default: int) -> int:
    """A page number: ASCII digits (int() also takes ' 7', '٧' and '+7'), else `default`."""
    found = number(text)
    return default if found is None else max(1, found)


@bp.route("/requests")
@login_required
def mine() -> Any:
    status = request.args.get("status", "all")
    status = status if status in STATUSES else "all"
    search = " ".join((request.args.get("q") or "").split())[:MAX_SEARCH]
    page = queries.my_requests(session(), viewer(), None if status == "all" else status,
                               search or None, _int(request.args.get("page"), 1))
    rows = [r for (r,) in page.rows]
    names = queries.names(session(), {r.requested_for_id for r in rows})
    labels = {r.id: state_label(workflow_of(r.workflow_version), r.state) for r in rows}
    return render_template("requests/mine.html", page=page, rows=rows, names=names,
                           labels=labels, status=status, search=search)


@bp.route("/requests/<number>")
@login_required
def detail(number: str) -> Any:
    return _page(load_request(number))


@bp.route("/requests/<number>/diagram.svg")
@login_required
def diagram_svg(number: str) -> Any:
    req = load_request(number)
    svg = diagram(workflow_of(req.workflow_version), req.state)
    return Response(svg, mimetype="image/svg+xml",
                    headers={"Content-Disposition": f'inline; filename="{req.number}.svg"'})


@bp.route("/requests/<number>/cancel", methods=["POST"])
@login_required
def cancel(number: str) -> Any:
    req = load_request(number)
    service().authorize("cancel", number, viewer())
    reason = request.form.get("reason", "")
    try:
        service().cancel(number, viewer(), reason, seen_version=form_seen_version())
    except InvalidInput as exc:
        return _page(req, 422, errors={"cancel": _messages(exc)}, values={"reason": reason})
    flash(f"{number} is cancelled.", "success")
    return redirect(url_for("requests.detail", number=number))


@bp.route("/requests/<number>/comment", methods=["POST"])
@login_required
def comment(number: str) -> Any:
    req = load_request(number)
    body = request.form.get("body", "")
    internal = (request.form.get("internal") or "").strip().lower() in TRUE_WORDS
    uploads = [f for f in request.files.getlist("files") if f.filename or f.content_length]
    if len(uploads) > MAX_FILES:
        return _page(req, 422, errors={"files": [f"Attach at most {MAX_FILES} files at once."]},
                     values={"body": body})
    files = []
    for f in uploads:
        try:
            files.append((f.filename or "attachment", f.read()))
        finally:  # a large part is spooled to a temporary file: closed here
            f.close()
    try:
        service().comment(number, viewer(), body, internal=internal, files=files)
    except InvalidInput as exc:
        if "file" in exc.fields:
            return _page(req, exc.status, errors={"files": exc.fields["file"]}, values={"body": body})
        return _page(req, 422, errors={"body": _messages(exc)}, values={"body": body})
    flash("Your internal note is added." if internal else "Your comment is added.", "success")
    return redirect(url_for("requests.detail", number=number))


@bp.route("/requests/<number>/answer", methods=["POST"])
@login_required
def answer(number: str) -> Any:
    req = load_request(number)
    text = request.form.get("answer", "")
    try:
        service().answer(number, viewer(), text)
    except InvalidInput as exc:
        return _page(req, 422, errors={"answer": _messages(exc)}, values={"answer": text})
    flash("Thank you. Your answer is sent and the work continues.", "success")
    return redirect(url_for("requests.detail", number=number))


@bp.route("/requests/<number>/retry", methods=["POST"])
@login_required
def retry(number: str) -> Any:
    """An admin re-runs the step the request halted on."""
    req = load_request(number)
    service().authorize("retry", number, viewer())
    reason = request.form.get("reason", "")
    try:
        req = service().retry(number, viewer(), reason, seen_version=form_seen_version())
    except InvalidInput as exc:
        return _page(req, 422, errors={"retry": _messages(exc)}, values={"retry_reason": reason})
    _after_attention(req, "The step ran")
    return redirect(url_for("requests.detail", number=number))


@bp.route("/requests/<number>/route", methods=["POST"])
@login_required
def route(number: str) -> Any:
    """An admin moves a halted request into a declared state, or ends it with an outcome."""
    req = load_request(number)
    service().authorize("route", number, viewer())
    reason = request.form.get("reason", "")
    kind, _, target = (request.form.get("target") or "").partition(":")
    try:
        req = service().route(number, viewer(), reason,
                              to_state=target if kind == "state" and target else None,
                              outcome=target if kind == "outcome" and target else None,
                              seen_version=form_seen_version())
    except InvalidInput as exc:
        return _page(req, 422, errors={"route": _messages(exc)}, values={"route_reason": reason})
    _after_attention(req, "Moved by hand")
    return redirect(url_for("requests.detail", number=number))


def _after_attention(req: Request, done: str) -> None:
    if req.attention_at is not None:
        flash(f"{req.number} needs attention again: {req.attention_error}", "warning")
    else:
        words = state_label(workflow_of(req.workflow_version), req.state)
        flash(f"{done}: {req.number} is now {words}.", "success")


def _messages(exc: InvalidInput) -> list[str]:
    return [m for messages in exc.fields.values() for m in messages] or [exc.message]
