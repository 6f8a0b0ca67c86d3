"""The approver inbox: pending approvals, one approval with its request, decisions, delegation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import case, func, select
from wtforms import DateTimeLocalField, SelectField, TextAreaField
from wtforms.validators import InputRequired

from engine import changes, permissions, queries, why
from engine.approvals import LIVE
from engine.errors import Conflict, EngineError, InvalidInput, NotAllowed, NotFound, Unavailable
from engine.models import Approval, Delegation, Request
from web.context import catalog, now, page_now, service, viewer
from web.extensions import db
from web.ids import number, valid_id
from web.pages import (
    ActionForm,
    ShownAnswer,
    answer_rows,
    event_text,
    page_arg,
    people_choices,
    request_url,
    show_errors,
    state_words,
)

bp = Blueprint("approvals", __name__)

MAX_BULK = 100
KEY_ANSWERS = 4
TIMELINE_ENTRIES = 8
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
RESULTS = {Conflict: "conflict", NotAllowed: "not allowed", NotFound: "not found",
           InvalidInput: "invalid", Unavailable: "busy"}


# ---------------------------------------------------------------- forms

class DecisionForm(ActionForm):
    comment = TextAreaField("Comment", description="Optional when approving; required when rejecting.",
                            render_kw={"rows": 3, "maxlength": 10_000})


class DelegateForm(ActionForm):
    to = SelectField("Hand this approval to", validate_choice=False)
    comment = TextAreaField("Note for them", render_kw={"rows": 2, "maxlength": 10_000})


class DelegationForm(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect checks the token of every POST before the view runs

    delegate = SelectField("Who decides for you", validate_choice=False,
                           validators=[InputRequired("Pick a person.")])
    starts_at = DateTimeLocalField("From", format=DATETIME_LOCAL,
                                   validators=[InputRequired("Give a start.")])
    ends_at = DateTimeLocalField("Until", format=DATETIME_LOCAL,
                                 validators=[InputRequired("Give an end.")])


# ---------------------------------------------------------------- the inbox

@dataclass(frozen=True, slots=True)
class InboxRow:
    approval: Approval
    request: Request
    answers: list[ShownAnswer]
    policy: str


def policy_text(policy: str, approvers: int, approved: int) -> str:
    """'1 of 4 needed', '3 of 3 needed', '2 of 5 needed, 1 approved so far'."""
    need = approvers if policy == "all" else 1 if policy == "any" else int(policy.split(":", 1)[1])
    text = f"{need} of {approvers} needed"
    return f"{text}, {approved} approved so far" if approved else text


def _policy_counts(rows: Sequence[Any]) -> dict[tuple[int, int, str], tuple[int, int]]:
    """(request, visit, approval name) -> (approvers, approved) for the inbox rows."""
    if not rows:
        return {}
    key = (Approval.request_id, Approval.visit, Approval.name)
    found = db.session().execute(
        select(*key, func.count(), func.sum(case((Approval.decision == "approved", 1), else_=0)))
        .where(Approval.request_id.in_({r.id for _, r in rows}), Approval.decision.in_(LIVE))
        .group_by(*key))
    return {(rid, visit, name): (total, approved or 0) for rid, visit, name, total, approved in found}


def _inbox_rows(rows: Sequence[Any]) -> list[InboxRow]:
    counts = _policy_counts(rows)
    out = []
    for appr, req in rows:
        total, approved = counts.get((req.id, appr.visit, appr.name), (1, 0))
        out.append(InboxRow(appr, req, answer_rows(req, KEY_ANSWERS),
                            policy_text(appr.policy, total, approved)))
    return out


def _render_inbox(status: int = 200, error: str = "") -> Any:
    page = queries.inbox(db.session(), viewer(), page_now(), page_arg())
    rows = _inbox_rows(page.rows)
    ids: set[str | None] = {i for r in rows for i in (
        r.request.requester_id, r.request.requested_for_id, r.approval.approver_id)}
    return render_template("approvals/inbox.html", page=page, rows=rows, error=error,
                           names=queries.names(db.session(), ids), me=viewer(),
                           request_url=request_url), status


@bp.get("/approvals")
@login_required
def inbox() -> Any:
    return _render_inbox()


@bp.post("/approvals/bulk")
@login_required
def bulk() -> Any:
    raw = request.form.getlist("ids")
    if not raw:
        return _render_inbox(422, "Select at least one approval.")
    ids = [number(v) for v in raw]
    if len(ids) > MAX_BULK or not all(i is not None and valid_id(i) for i in ids):
        return _render_inbox(422, f"Select between 1 and {MAX_BULK} approvals from the list.")
    report = [_approve_one(i) for i in dict.fromkeys(ids) if i is not None]
    db.session().rollback()  # end this request's read snapshot: the nav badge counts what is left
    return render_template("approvals/bulk.html", report=report, request_url=request_url)


@dataclass(frozen=True, slots=True)
class BulkResult:
    approval_id: int
    number: str | None
    item: str
    result: str
    detail: str


def _approve_one(approval_id: int) -> BulkResult:
    """Approve one row of a bulk approval; whatever goes wrong is that row's result."""
    seen = number(request.form.get(f"seen-{approval_id}"))
    shown, item = None, ""
    try:
        _, req = load(approval_id)
        shown, item = req.number, req.item_name
        if seen is None:
            raise InvalidInput("the page did not say which version you saw; reload and try again")
        service().approve(approval_id, viewer(), "", seen_version=seen)
    except EngineError as exc:
        kind = next((v for k, v in RESULTS.items() if isinstance(exc, k)), "failed")
        return BulkResult(approval_id, shown, item, kind, getattr(exc, "message", None) or str(exc))
    return BulkResult(approval_id, shown, item, "approved", "")


# ---------------------------------------------------------------- one approval

def load(approval_id: int) -> tuple[Approval, Request]:
    """The approval and its request, if the viewer may see them (else NotFound, never 403)."""
    appr = db.session().get(Approval, approval_id) if valid_id(approval_id) else None
    req = db.session().get(Request, appr.request_id) if appr else None
    if appr is None or req is None or req.number is None:
        raise NotFound(f"no approval {approval_id}")
    try:
        service().request(db.session(), req.number, viewer(), now())
    except NotFound:
        raise NotFound(f"no approval {approval_id}") from None
    return appr, req


def _render_approval(appr: Approval, req: Request, decision: DecisionForm | None = None,
                     delegate: DelegateForm | None = None, status: int = 200,
                     errors: Sequence[str] = ()) -> Any:
    s, me, at = db.session(), viewer(), now()
    pending = appr.decision == "pending" and appr.visit == req.visit and req.status == "open"
    own = permissions.is_party(req, me)
    can_decide = pending and not own and permissions.can_decide(s, me, appr, at)
    can_delegate = pending and permissions.can_delegate(s, me, appr, req)
    decision = decision or DecisionForm(prefix="decision", formdata=None, seen_version=req.lock_version)
    delegate = delegate or DelegateForm(prefix="delegate", formdata=None, seen_version=req.lock_version)
    delegate.to.choices = [("", "Choose a person"), *people_choices(
        {me, appr.approver_id, req.requester_id, req.requested_for_id})]
    others = queries.approvals_of(s, req)
    history = queries.timeline(s, req, internal=False)
    timeline = history[-TIMELINE_ENTRIES:]
    ids = {req.requester_id, req.requested_for_id, *(a.approver_id for a in others),
           *(a.decided_by_id for a in others), *(e.actor for e in timeline), me,
           appr.delegated_from_id, *why.people_in(appr.source)}
    names = queries.names(s, ids)
    why_you = why.approver(appr.source, appr.approver_id, names, appr.delegated_from_id,
                           appr.decided_by_id)
    if pending and me != appr.approver_id and can_decide:
        why_you += (f"; you may decide for {names.get(appr.approver_id, appr.approver_id)}: "
                    "they delegated their approvals to you for now")
    routes = [f"Decided {e.event.detail['why']}" for e in history
              if e.event is not None and (e.event.detail or {}).get("why")]
    return render_template(
        "approvals/approval.html", appr=appr, req=req, decision=decision, delegate=delegate,
        can_decide=can_decide, can_delegate=can_delegate, own=own, pending=pending,
        answers=answer_rows(req), state=state_words(req), approvals=others, timeline=timeline,
        event_text=event_text, names=names, errors=errors, why_you=why_you, routes=routes,
        request_url=request_url(str(req.number))), status


@bp.get("/approvals/<id:approval_id>")
@login_required
def show(approval_id: int) -> Any:
    appr, req = load(approval_id)
    return _render_approval(appr, req)


@bp.post("/approvals/<id:approval_id>/approve")
@login_required
def approve(approval_id: int) -> Any:
    return _decide(approval_id, "approve")


@bp.post("/approvals/<id:approval_id>/reject")
@login_required
def reject(approval_id: int) -> Any:
    return _decide(approval_id, "reject")


def _decide(approval_id: int, verb: str) -> Any:
    appr, req = load(approval_id)
    service().authorize(verb, approval_id, viewer())
    form = DecisionForm(prefix="decision")
    if not form.validate():
        return _render_approval(appr, req, decision=form, status=422,
                                errors=form.seen_version.errors)
    act = service().approve if verb == "approve" else service().reject
    try:
        act(approval_id, viewer(), form.comment.data or "", seen_version=form.seen_version.data)
    except InvalidInput as exc:
        left = show_errors(form, exc.fields)
        return _render_approval(appr, req, decision=form, status=422, errors=left)
    flash(f"{'Approved' if verb == 'approve' else 'Rejected'} {req.number}.", "success")
    if verb == "approve":  # the change calendar's flags warn, they do not refuse
        for warning in changes.warnings_of(db.session(), catalog(), req):
            flash(f"{req.number}: {warning}", "warning")
    return redirect(url_for(".inbox"))


@bp.post("/approvals/<id:approval_id>/delegate")
@login_required
def delegate(approval_id: int) -> Any:
    appr, req = load(approval_id)
    service().authorize("delegate", approval_id, viewer())
    form = DelegateForm(prefix="delegate")
    if not form.validate():
        return _render_approval(appr, req, delegate=form, status=422,
                                errors=form.seen_version.errors)
    try:
        service().delegate(approval_id, viewer(), form.to.data or "", form.comment.data or "",
                           seen_version=form.seen_version.data)
    except InvalidInput as exc:
        left = show_errors(form, exc.fields)
        return _render_approval(appr, req, delegate=form, status=422, errors=left)
    names = queries.names(db.session(), {form.to.data})
    flash(f"{req.number} is now with {names.get(form.to.data or '', form.to.data)}.", "success")
    return redirect(url_for(".inbox"))


# ---------------------------------------------------------------- delegation while away

def _delegations(person_id: str, at: datetime) -> tuple[list[Delegation], list[Delegation]]:
    """The person's current and future delegations, and those made to them."""
    def query(column: Any) -> list[Delegation]:
        return list(db.session().scalars(select(Delegation).where(column == person_id,
                                                                Delegation.ends_at > at)
                                       .order_by(Delegation.starts_at, Delegation.id)))

    return query(Delegation.person_id), query(Delegation.delegate_id)


def _render_delegation(form: DelegationForm, status: int = 200, errors: Sequence[str] = ()) -> Any:
    me, at = viewer(), now()
    form.delegate.choices = [("", "Choose a person"), *people_choices({me})]
    mine, to_me = _delegations(me, at)
    ids: set[str | None] = {*(d.delegate_id for d in mine), *(d.person_id for d in to_me)}
    return render_template("approvals/delegation.html", form=form, mine=mine, to_me=to_me, now=at,
                           names=queries.names(db.session(), ids), errors=errors,
                           time_zone=catalog().settings.time_zone), status


def _utc(local: datetime) -> datetime:
    """A datetime-local value, read in the catalog's time zone."""
    return local.replace(tzinfo=ZoneInfo(catalog().settings.time_zone)).astimezone(UTC)


@bp.route("/approvals/delegation", methods=["GET", "POST"])
@login_required
def delegation() -> Any:
    form = DelegationForm()
    if request.method == "GET":
        return _render_delegation(form)
    if not form.validate():
        return _render_delegation(form, 422)
    try:
        starts, ends = _utc(form.starts_at.data), _utc(form.ends_at.data)
    except (OverflowError, ValueError):
        form.starts_at.errors = [*form.starts_at.errors, "Give a date between the years 2 and 9998."]
        return _render_delegation(form, 422)
    try:
        service().set_delegation(viewer(), form.delegate.data or "", starts, ends)
    except InvalidInput as exc:
        return _render_delegation(form, 422, show_errors(form, exc.fields))
    flash("Delegation saved.", "success")
    return redirect(url_for(".delegation"))
