"""The agents' list (/records): every record an agent works, filtered, saved views, bulk actions.

The query string is checked by engine.worklist.parse_filters; a bad filter is a 422 page
that names it. Bulk actions run each selected record through the request service in its
own transaction and report a result per row, like bulk approval (web/approvals.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from threading import Lock
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cachetools import TTLCache
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import func, select

from catalog.view_parser import DATE_FILTERS, RECORD_TYPES, SLA_STATUSES
from engine import queries, worklist
from engine.errors import Conflict, EngineError, InvalidInput, NotAllowed, NotFound, Unavailable
from engine.models import Group, Request
from web.context import catalog, service, session, viewer
from web.ids import number
from web.pages import page_arg, request_url, state_words

bp = Blueprint("worklist", __name__)

MAX_BULK = 100
BODY_MAX = 10_000
ACTIONS = ("assign", "priority", "comment")
RESULTS = {Conflict: "conflict", NotAllowed: "refused", NotFound: "refused",
           InvalidInput: "refused", Unavailable: "busy"}
TYPE_WORDS = {"request": "Request", "incident": "Incident", "problem": "Problem",
              "change": "Change"}


def _ensure_agent() -> None:
    if not worklist.is_agent(session(), catalog(), viewer()):
        raise NotAllowed("only agents see the list of records")


def _raw_filters(args: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in args.items() if k != "page"}


@dataclass(frozen=True, slots=True)
class ViewLink:
    name: str
    query: str
    count: str
    delete_id: int | None = None
    current: bool = False


def _count_text(count: int, more: bool) -> str:
    return f"more than {worklist.COUNT_CAP:,}" if more else f"{count:,}"


def _views(current: str) -> tuple[list[ViewLink], list[ViewLink]]:
    """The sidebar: shared views of the catalog, then the viewer's own, each with its count
    (all counted in one statement)."""
    s, cat, me = session(), catalog(), viewer()
    views: list[tuple[str, Mapping[str, str], int | None]] = [
        (v.name, worklist.view_query(v), None) for v in cat.views]
    own = worklist.views_of(s, me)
    views += [(v.name, v.query, v.id) for v in own]
    checked: dict[int, worklist.Filters] = {}
    for i, (_, raw, _) in enumerate(views):
        try:
            checked[i] = worklist.parse_filters(s, cat, me, raw)
        except InvalidInput:
            pass  # a person or group it names is gone from the directory: "invalid"
    counted = dict(zip(checked, _sidebar_counts(list(checked.values())), strict=True))
    links = [ViewLink(name, urlencode(raw), _count_text(*counted[i]) if i in counted else "invalid",
                      delete_id, urlencode(raw) == current)
             for i, (name, raw, delete_id) in enumerate(views)]
    return links[:len(cat.views)], links[len(cat.views):]


#: The sidebar's counts, per worker process, for COUNTS_TTL seconds at most and only while no
#: record has changed since (the newest `updated_at`, read from its index, is in the key):
#: what a view counts may change without a record changing only through memberships, tasks
#: and SLA clocks, and that shows within COUNTS_TTL. The list's own count is always fresh.
COUNTS_TTL = 30.0
_counted: TTLCache[tuple[Any, ...], tuple[int, bool]] = TTLCache(maxsize=20_000, ttl=COUNTS_TTL)
_counted_lock = Lock()


def _sidebar_counts(views: list[worklist.Filters]) -> list[tuple[int, bool]]:
    if not views:
        return []
    s, cat, me = session(), catalog(), viewer()
    stamp = (str(s.get_bind().engine.url), s.scalar(select(func.max(Request.updated_at))), me)
    with _counted_lock:
        found = {f: _counted.get((*stamp, f)) for f in views}
    missing = [f for f, n in found.items() if n is None]
    if missing:
        fresh = dict(zip(missing, worklist.counts(s, cat, me, missing), strict=True))
        with _counted_lock:
            for f, n in fresh.items():
                _counted[(*stamp, f)] = n
        found.update(fresh)
    return [found[f] or (0, False) for f in views]


def _render(raw: dict[str, str], status: int = 200, error: str = "",
            fields: Mapping[str, list[str]] | None = None) -> Any:
    s, cat, me = session(), catalog(), viewer()
    page = None
    try:
        page = worklist.worklist(s, cat, me, worklist.parse_filters(s, cat, me, raw), page_arg())
    except InvalidInput as exc:
        fields, status = {**exc.fields, **(fields or {})}, 422
        error = error or "Some filters are not right: " + "; ".join(
            f"{name}: {' '.join(msgs)}" for name, msgs in exc.fields.items())
    rows = list(page.rows) if page else []
    ids: set[str | None] = {i for r in rows for i in (r.requester_id, r.assignee_id)}
    query = urlencode(raw)
    shared, own = _views(query)
    return render_template(
        "worklist/list.html", rows=rows, page=page, raw=raw, query=query, error=error,
        fields=fields or {}, names=queries.names(s, ids), shared=shared, own=own,
        groups=dict(s.execute(select(Group.id, Group.name).order_by(Group.name)).all()),
        total_text=_count_text(page.total, page.more) if page else "0", sla=worklist.sla_status,
        sla_words=worklist.SLA_WORDS, state_words=state_words, request_url=request_url,
        type_words=TYPE_WORDS, record_types=RECORD_TYPES, sla_statuses=SLA_STATUSES,
        priorities=cat.settings.priorities, impacts=cat.settings.impacts,
        urgencies=cat.settings.urgencies, date_filters=DATE_FILTERS,
        page_url=lambda n: url_for("worklist.index") + "?" + urlencode({**raw, "page": n}),
    ), status


@bp.get("/records")
@login_required
def index() -> Any:
    _ensure_agent()
    return _render(_raw_filters(request.args.to_dict()))


# ---------------------------------------------------------------- saved views


def _posted_query() -> dict[str, str]:
    return _raw_filters(dict(parse_qsl(request.form.get("query", ""), keep_blank_values=False)))


@bp.post("/records/views")
@login_required
def save_view() -> Any:
    _ensure_agent()
    raw = _posted_query()
    try:
        view = service().save_view(viewer(), request.form.get("name", ""), raw)
    except (InvalidInput, Conflict) as exc:
        fields = exc.fields if isinstance(exc, InvalidInput) else {"name": [_sentence(str(exc))]}
        message = "; ".join(" ".join(m) for m in fields.values())
        return _render(raw, exc.status, f"The view was not saved: {message}", fields)
    flash(f"Saved the view {view.name}.", "success")
    return redirect(url_for("worklist.index") + ("?" + urlencode(raw) if raw else ""))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@bp.post("/records/views/<id:view_id>/delete")
@login_required
def delete_view(view_id: int) -> Any:
    _ensure_agent()
    service().delete_view(viewer(), view_id)
    flash("Deleted the view.", "success")
    return redirect(url_for("worklist.index"))


# ---------------------------------------------------------------- bulk actions


@dataclass(frozen=True, slots=True)
class BulkResult:
    number: str
    title: str
    result: str
    detail: str


def _change() -> tuple[str, dict[str, Any]]:
    """The action and what it changes, checked before any row is touched."""
    form = request.form
    action = form.get("action", "")
    if action not in ACTIONS:
        raise InvalidInput("choose what to do with the selected records",
                           {"action": ["Choose assign, set priority or comment."]})
    if action == "assign":
        change = {k: form.get(k, "").strip() for k in ("assignment_group", "assignee")
                  if form.get(k, "").strip()}
        if not change:
            raise InvalidInput("choose a group or an assignee",
                               {"assignment_group": ["Choose a group, an assignee or both."]})
        return action, change
    if action == "priority":
        change = {k: form.get(k, "").strip() for k in ("impact", "urgency")
                  if form.get(k, "").strip()}
        if not change:
            raise InvalidInput("choose an impact or an urgency",
                               {"impact": ["Choose an impact, an urgency or both."]})
        return action, change
    body = form.get("body", "").strip()
    if not body:
        raise InvalidInput("write the comment", {"body": ["This field is required."]})
    if len(body) > BODY_MAX:
        raise InvalidInput("the comment is too long", {"body": [f"Must be at most {BODY_MAX:,} characters."]})
    return action, {"body": body, "internal": form.get("visibility") == "internal"}


@bp.post("/records/bulk")
@login_required
def bulk() -> Any:
    _ensure_agent()
    back = _raw_filters(dict(parse_qsl(request.form.get("query", ""))))
    picked = list(dict.fromkeys(request.form.getlist("numbers")))
    if not picked:
        return _render(back, 422, "Select at least one record.", {"numbers": ["Select at least one record."]})
    if len(picked) > MAX_BULK or not all(isinstance(n, str) and 0 < len(n) <= 20 for n in picked):
        message = f"Select between 1 and {MAX_BULK} records from the list."
        return _render(back, 422, message, {"numbers": [message]})
    try:
        action, change = _change()
    except InvalidInput as exc:
        message = "; ".join(" ".join(m) for m in exc.fields.values())
        return _render(back, 422, f"Nothing was changed: {message}", exc.fields)
    report = [_one(n, action, change) for n in picked]
    session().rollback()
    return render_template("worklist/bulk.html", report=report, request_url=request_url,
                           back=url_for("worklist.index") + ("?" + urlencode(back) if back else ""))


def _one(num: str, action: str, change: dict[str, Any]) -> BulkResult:
    """One row of a bulk action in its own transaction; whatever goes wrong is its result."""
    title = ""
    try:
        req = session().scalar(select(Request).where(Request.number == num))
        title = req.title if req else ""
        session().rollback()
        if action == "comment":
            service().comment(num, viewer(), change["body"], internal=change["internal"])
            return BulkResult(num, title, "done", "Internal note added." if change["internal"]
                              else "Comment added.")
        seen = number(request.form.get(f"seen-{num}"))
        done = service().edit_record(num, viewer(), change, seen_version=seen)
        detail = (f"Priority {done.priority}." if action == "priority" and done.priority
                  else "Updated.")
        return BulkResult(num, title, "done", detail)
    except EngineError as exc:
        kind = next((v for k, v in RESULTS.items() if isinstance(exc, k)), "failed")
        message = getattr(exc, "message", None) or str(exc)
        if isinstance(exc, InvalidInput) and exc.fields:
            message += ": " + "; ".join(" ".join(m) for m in exc.fields.values())
        return BulkResult(num, "" if isinstance(exc, NotFound) else title, kind, message)
