"""/api/v1: the catalog, ordering, my requests, approvals (docs/api.md).

Every action goes through the request service, as the portal's pages do; reads show only what
the viewer may see, and "not yours" is the same 404 as "not there".
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import Response, abort, g, jsonify, render_template, request, url_for
from swagger_ui_bundle import swagger_ui_path

from catalog.diff import diff_catalogs
from catalog.diff_render import json_data
from catalog.errors import CatalogInvalid, DeskflowError
from catalog.models import Article, CatalogItem, FieldType
from catalog.revisions import CatalogCommit
from engine import cmdb, cursor, people, permissions, queries, records, worklist
from engine.checks import in_flight
from engine.errors import InvalidInput, NotAllowed
from engine.models import Approval, Asset, Comment, Group, RecordLink, Request, Task
from engine.tasks import spec_of
from engine.versions import workflow_of
from forms.answers import clean_answers
from forms.jsonschema import item_json_schema
from web.api.base import ApiProblem, bp, checked, json_body
from web.api.downgrade import downgrade
from web.api.spec import openapi
from web.context import catalog, catalog_queues, now, service, session, viewer
from web.pages import state_label
from web.search import MAX_QUERY, search_index
from web.state import portal_state
from web.task_access import load, load_to_act

SWAGGER_FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
                 "swagger-ui-standalone-preset.js": "text/javascript"}


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------- catalog


def _audience() -> permissions.Audience:
    """The viewer as `visible_to` lists name them: groups and roles read once per call."""
    if "api_audience" not in g:
        g.api_audience = permissions.Audience(session(), viewer())
    return g.api_audience  # type: ignore[no-any-return]


def _orderable(item: CatalogItem, known: dict[tuple[str, ...], bool]) -> bool:
    """can_order for the viewer, asked once per distinct `visible_to`."""
    if item.visible_to not in known:
        known[item.visible_to] = _audience().sees(item.visible_to)
    return known[item.visible_to]


def _entry(item: CatalogItem) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "summary": item.summary, "category": item.category,
            "record_type": item.record_type, "order_for_others": item.order_for_others}


@bp.get("/v1/catalog")
def catalog_list() -> Any:
    cat, known = catalog(), {}  # type: ignore[var-annotated]
    query = " ".join((request.args.get("q") or "").split())[:MAX_QUERY]

    def allowed(thing: Any) -> bool:
        return isinstance(thing, CatalogItem) and _orderable(thing, known)

    if query:
        items = [h.thing for h in search_index(cat).hits(query, allowed) if h.kind == "item"]
    else:
        items = sorted((i for i in cat.items if allowed(i)),
                       key=lambda i: (i.category.casefold(), i.name.casefold()))
    return jsonify({"items": [_entry(i) for i in items]})


def _item(item_id: str) -> CatalogItem:
    item = catalog().item(item_id)
    if item is None or not _orderable(item, {}):
        raise ApiProblem(404, f"There is no catalog item {item_id[:64]} you may order.")
    return item


@bp.get("/v1/catalog/<item_id>")
def catalog_item(item_id: str) -> Any:
    item = _item(item_id)
    return jsonify({**_entry(item), "description": item.description,
                    "schema": item_json_schema(item, catalog(), _max_file())})


# ---------------------------------------------------------------- requests


def summary(req: Request) -> dict[str, Any]:
    return {"number": req.number, "item": req.item_id, "item_name": req.item_name,
            "record_type": req.record_type, "state": req.state,
            "state_label": state_label(workflow_of(req.workflow_version), req.state),
            "status": req.status, "outcome": req.outcome, "priority": req.priority,
            "requester": req.requester_id, "requested_for": req.requested_for_id,
            "created_at": _when(req.created_at), "updated_at": _when(req.updated_at),
            "version": req.lock_version, "title": req.title,
            "assignment_group": req.assignment_group_id, "assignee": req.assignee_id,
            "channel": req.channel}


def approval_json(a: Approval, number: str) -> dict[str, Any]:
    return {"id": a.id, "request": number, "name": a.name, "approver": a.approver_id,
            "decision": a.decision, "decided_by": a.decided_by_id, "decided_at": _when(a.decided_at),
            "comment": a.comment or "", "due_at": _when(a.due_at), "created_at": _when(a.created_at)}


def _task(t: Task) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "title": t.title, "queue": t.queue,
            "assignee": t.assignee_id, "status": t.status, "outcome": t.outcome,
            "due_at": _when(t.due_at), "created_at": _when(t.created_at),
            "completed_at": _when(t.completed_at)}


def _timeline(entry: queries.TimelineEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"at": _when(entry.at), "kind": entry.kind, "actor": entry.actor}
    if entry.event is not None:
        out |= {"event": entry.event.event, "from_state": entry.event.from_state,
                "to_state": entry.event.to_state}
    if entry.comment is not None:
        out |= {"body": entry.comment.body, "internal": entry.comment.internal}
    return out


def _record_fields(req: Request) -> dict[str, Any]:
    return {"title": req.title, "impact": req.impact, "urgency": req.urgency,
            "category": req.category, "assignment_group": req.assignment_group_id,
            "assignee": req.assignee_id}


def _side(link: RecordLink, req: Request) -> str:
    return "source" if link.source_id == req.id else "target"


def _max_file() -> int | None:
    """The instance's per-file limit, which a file field's schema states."""
    store = service().unit.attachments
    return store.max_file if store is not None else None


def _answers(req: Request) -> dict[str, Any]:
    """The answers; a file field's references (engine.file_answers) with their download URLs."""
    answers = dict(req.answers or {})
    item = catalog().item(req.item_id)
    for f in item.fields if item is not None else ():
        value = answers.get(f.name)
        if f.type is FieldType.FILE and value:
            answers[f.name] = ([_file_ref(v) for v in value] if isinstance(value, list)
                               else _file_ref(value))
    return answers


def _file_ref(ref: Any) -> Any:
    if not isinstance(ref, dict) or not isinstance(ref.get("attachment"), int):
        return ref
    return {**ref, "content_url": f"/api/v1/attachments/{ref['attachment']}/content"}


def detail(req: Request) -> dict[str, Any]:
    """The request as its page shows it to the viewer: internal notes only for its agents."""
    s = session()
    agent = permissions.is_agent(s, viewer(), req)
    return {**summary(req), "answers": _answers(req), **_record_fields(req),
            "links": [{"kind": link.kind, "words": words, "side": _side(link, req),
                       "other": str(other.number)} for words, link, other in records.links_of(s, req)],
            "approvals": [approval_json(a, str(req.number)) for a in queries.approvals_of(s, req)],
            "tasks": [_task(t) for t in queries.tasks_of(s, req)],
            "timeline": [_timeline(e) for e in queries.timeline(s, req, internal=agent)]}


def _int_arg(name: str, default: int, least: int, most: int) -> int:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not least <= int(text) <= most:
        raise InvalidInput(f"{name} is out of range",
                           {name: [f"A whole number from {least} to {most}."]})
    return int(text)


@bp.get("/v1/requests")
def requests_list() -> Any:
    status = request.args.get("status") or None
    if status not in (None, "open", "closed"):
        raise InvalidInput("unknown status", {"status": ["One of: open, closed."]})
    limit = _int_arg("limit", 25, 1, cursor.MAX_LIMIT)
    page = cursor.my_requests(session(), viewer(), request.args.get("cursor") or None, limit, status)
    return jsonify({"items": [summary(r) for r in page.rows], "next_cursor": page.next_cursor})


@bp.get("/v1/requests/<number>")
def request_detail(number: str) -> Any:
    return jsonify(detail(service().request(session(), number, viewer(), now())))


def _answer_errors(item: Any, fields: dict[str, list[str]]) -> dict[str, list[str]]:
    """The form pipeline's (and the service's) errors by the body's paths: `answers.<field>`."""
    names = {f.name for f in item.fields}
    out: dict[str, list[str]] = {}
    for key, messages in fields.items():
        if key in names:
            path = f"answers.{key}"
        elif key in ("_unknown", "_body", "_form"):
            path = "answers"
        else:
            path = key
        out.setdefault(path, []).extend(messages)
    return out


@bp.post("/v1/requests")
def order() -> Any:
    key = request.headers.get("Idempotency-Key")
    body = checked("Order", json_body())
    item = _item(body["item"])
    me = viewer()
    requester = people.person_context(session(), me)
    # the same pipeline as the HTML form (forms.answers -> catalog.answers), then the service's
    answers = clean_answers(item, body["answers"], catalog(), requester)
    if not answers.ok:
        raise ApiProblem(422, "The answers have errors.", _answer_errors(item, answers.errors))
    chosen = body.get("requested_for") or None
    chosen = None if chosen == me else chosen
    try:
        if key is not None:
            req, new = service().submit_once(key, body, item.id, me, dict(answers.values), chosen)
        else:
            req, new = service().submit(item.id, me, dict(answers.values), requested_for=chosen), True
    except InvalidInput as exc:
        if "Idempotency-Key" in exc.fields:
            raise
        raise ApiProblem(422, exc.message, _answer_errors(item, exc.fields)) from None
    session().rollback()  # a new snapshot: the read transaction began before the write
    fresh = service().request(session(), str(req.number), me, now())
    response = jsonify(detail(fresh))
    response.status_code = 201 if new else 200
    response.headers["Location"] = url_for("api.request_detail", number=req.number)
    if not new:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _comment_created(c: Comment, number: str) -> Any:
    response = jsonify({"id": c.id, "request": number, "author": c.author_id, "body": c.body,
                        "internal": c.internal, "created_at": _when(c.created_at)})
    response.status_code = 201
    return response


@bp.post("/v1/requests/<number>/comments")
def comment(number: str) -> Any:
    """Comment on a request one takes part in; agents may write internal notes."""
    service().request(session(), number, viewer(), now())  # 404 before the body is read
    body = checked("Comment", json_body())
    c = service().comment(number, viewer(), body["body"], internal=body.get("internal", False))
    return _comment_created(c, number)


@bp.post("/v1/requests/<number>/cancel")
def cancel(number: str) -> Any:
    service().authorize("cancel", number, viewer())  # who may not cancel is refused first
    body = checked("Cancellation", json_body(optional=True))
    service().cancel(number, viewer(), body.get("reason", ""), seen_version=body.get("version"))
    session().rollback()  # a new snapshot: the read transaction began before the write
    return jsonify(detail(service().request(session(), number, viewer(), now())))


def _fresh_detail(number: str) -> Any:
    session().rollback()  # a new snapshot: the read transaction began before the write
    return jsonify(detail(service().request(session(), number, viewer(), now())))


def _agent_of(number: str, what: str) -> Request:
    """The record, for its agents; others who see it are refused (403) before the body is read."""
    req = service().request(session(), number, viewer(), now())
    if not permissions.is_agent(session(), viewer(), req):
        raise NotAllowed(f"only agents of {req.number} can {what}")
    return req


@bp.patch("/v1/requests/<number>")
def edit_record(number: str) -> Any:
    """Change a record's fields (its agents): title, impact, urgency, category, group, assignee."""
    _agent_of(number, "edit its record")
    body = checked("RecordChanges", json_body())
    changes = {k: v for k, v in body.items() if k in records.EDITABLE}
    if not changes:
        raise InvalidInput("nothing to change", {"_body": ["Send at least one field to change."]})
    service().edit_record(number, viewer(), changes, seen_version=body.get("version"))
    return _fresh_detail(number)


@bp.post("/v1/requests/<number>/reopen")
def reopen(number: str) -> Any:
    """Back to work within the reopen window (the caller, or an agent for them)."""
    req = service().request(session(), number, viewer(), now())
    if not (permissions.is_party(req, viewer()) or permissions.is_agent(session(), viewer(), req)):
        raise NotAllowed(f"only the caller or agents of {req.number} can reopen it")
    body = checked("Reopening", json_body())
    service().reopen(number, viewer(), body["reason"])
    return _fresh_detail(number)


@bp.post("/v1/requests/<number>/answer")
def answer(number: str) -> Any:
    """The requester answers the question an agent asked (ask_requester)."""
    req = service().request(session(), number, viewer(), now())
    if not permissions.is_party(req, viewer()):
        raise NotAllowed("only the requester can answer")
    body = checked("Answer", json_body())
    c = service().answer(number, viewer(), body["answer"])
    return _comment_created(c, number)


@bp.post("/v1/requests/<number>/links")
def link(number: str) -> Any:
    """Link the record to another one: `number` <kind> `other` (its agents)."""
    _agent_of(number, "link it")
    body = checked("Link", json_body())
    service().link(number, viewer(), body["other"], body["kind"])
    response = _fresh_detail(number)
    response.status_code = 201
    return response


@bp.delete("/v1/requests/<number>/links/<kind>/<other>")
def unlink(number: str, kind: str, other: str) -> Any:
    """Remove the link of that kind between the two records, whichever way it points."""
    _agent_of(number, "unlink it")
    service().unlink(number, viewer(), other[:64], kind[:64])
    return _fresh_detail(number)


@bp.get("/v1/records")
def records_list() -> Any:
    """Records of my groups (the agents' list, /records), filtered, newest first by cursor."""
    s, cat, me = session(), catalog(), viewer()
    if not worklist.is_agent(s, cat, me):
        raise NotAllowed("only agents see the list of records")
    limit = _int_arg("limit", 25, 1, cursor.MAX_LIMIT)
    raw = {k: v for k, v in request.args.items() if k not in ("cursor", "limit")}
    if "sort" in raw:
        raise InvalidInput("unknown filter", {"sort": ["Unknown filter sort."]})
    page = cursor.records(s, cat, me, worklist.parse_filters(s, cat, me, raw),
                          request.args.get("cursor") or None, limit)
    return jsonify({"items": [summary(r) for r in page.rows], "next_cursor": page.next_cursor})


# ---------------------------------------------------------------- approvals


@bp.get("/v1/approvals")
def approvals_list() -> Any:
    page_no = _int_arg("page", 1, 1, 10**6)
    page = queries.inbox(session(), viewer(), now(), page_no)
    return jsonify({"items": [approval_json(a, str(r.number)) for a, r in page.rows],
                    "page": page.page, "pages": page.pages, "total": page.total,
                    "more": page.more})


def _decide(approval_id: int, verb: str) -> Any:
    service().authorize(verb, approval_id, viewer())  # who may not act is refused before the body
    body = checked("Decision", json_body(optional=True))
    act = service().approve if verb == "approve" else service().reject
    appr = act(approval_id, viewer(), body.get("comment", ""), seen_version=body.get("version"))
    return _approval_now(appr.id)


def _approval_now(approval_id: int) -> Any:
    """The approval as it is after the action (a new snapshot: the read transaction began
    before the write)."""
    s = session()
    s.rollback()
    fresh = s.get(Approval, approval_id)
    req = s.get(Request, fresh.request_id) if fresh is not None else None
    assert fresh is not None and req is not None
    return jsonify(approval_json(fresh, str(req.number)))


@bp.post("/v1/approvals/<id:approval_id>/delegate")
def delegate(approval_id: int) -> Any:
    """Hand one pending approval to someone else."""
    service().authorize("delegate", approval_id, viewer())  # refused before the body is read
    body = checked("Delegation", json_body())
    appr = service().delegate(approval_id, viewer(), body["to"], body.get("comment", ""),
                              seen_version=body.get("version"))
    return _approval_now(appr.id)


@bp.post("/v1/approvals/<id:approval_id>/approve")
def approve(approval_id: int) -> Any:
    return _decide(approval_id, "approve")


@bp.post("/v1/approvals/<id:approval_id>/reject")
def reject(approval_id: int) -> Any:
    return _decide(approval_id, "reject")


# ---------------------------------------------------------------- tasks


def task_json(t: Task, number: str) -> dict[str, Any]:
    return {**_task(t), "request": number}


def _task_form(req: Request, task: Task) -> tuple[Any, list[str]]:
    """The task's form as an item-like holder (its fields, no checks), and its outcomes."""
    spec = spec_of(req, task)
    holder = SimpleNamespace(id=f"task-{task.name}", name=task.title, summary=task.instructions or "",
                             fields=spec.fields if spec else (), checks=())
    return holder, list(spec.outcomes if spec else ("done",))


@bp.get("/v1/queues/<group_id>/tasks")
def queue_tasks(group_id: str) -> Any:
    """Open tasks of a queue its members (and admins) work."""
    s, me = session(), viewer()
    if len(group_id) > 64 or s.get(Group, group_id) is None or not (
            people.is_member(s, me, group_id) or people.is_admin(s, me)):
        raise ApiProblem(404, f"There is no queue {group_id[:64]} you work in.")
    mine = request.args.get("assignee")
    if mine not in (None, "", "mine", "unassigned"):
        raise InvalidInput("unknown assignee filter", {"assignee": ["One of: mine, unassigned."]})
    page = queries.queue(s, group_id, me, _int_arg("page", 1, 1, 10**6), mine=mine == "mine",
                         assignee=mine if mine == "unassigned" else None)
    return jsonify({"items": [task_json(t, str(r.number)) for t, r in page.rows],
                    "page": page.page, "pages": page.pages, "total": page.total,
                    "more": page.more})


@bp.get("/v1/tasks/<id:task_id>")
def task_detail(task_id: int) -> Any:
    """A task with its form (JSON Schema of the answers `complete` takes) and its outcomes."""
    task, req = load(task_id)
    holder, outcomes = _task_form(req, task)
    return jsonify({**task_json(task, str(req.number)), "instructions": task.instructions or "",
                    "outcomes": outcomes, "version": req.lock_version,
                    "schema": item_json_schema(holder, catalog())})


def _task_done(task_id: int) -> Any:
    session().rollback()  # a new snapshot: the read transaction began before the write
    task = session().get(Task, task_id)
    req = session().get(Request, task.request_id) if task else None
    assert task is not None and req is not None
    return jsonify(task_json(task, str(req.number)))


@bp.post("/v1/tasks/<id:task_id>/claim")
def claim_task(task_id: int) -> Any:
    load_to_act(task_id)  # who may not act is refused before the body is read
    body = checked("Claim", json_body(optional=True))
    service().claim_task(task_id, viewer(), seen_version=body.get("version"))
    return _task_done(task_id)


@bp.post("/v1/tasks/<id:task_id>/complete")
def complete_task(task_id: int) -> Any:
    task, req = load_to_act(task_id)
    body = checked("Completion", json_body(optional=True))
    holder, _ = _task_form(req, task)
    # the same pipeline as the task's HTML form (forms.answers), then the service's own check
    answers = clean_answers(holder, body.get("answers") or {}, catalog())
    if not answers.ok:
        raise ApiProblem(422, "The answers have errors.", _answer_errors(holder, answers.errors))
    try:
        service().complete_task(task_id, viewer(), outcome=body.get("outcome"),
                                answers=dict(answers.values), comment=body.get("comment", ""),
                                seen_version=body.get("version"))
    except InvalidInput as exc:
        raise ApiProblem(422, exc.message, _answer_errors(holder, exc.fields)) from None
    return _task_done(task_id)


@bp.post("/v1/tasks/<id:task_id>/escalate")
def escalate_task(task_id: int) -> Any:
    """Send the task up to its next tier's queue."""
    load_to_act(task_id)
    body = checked("Escalation", json_body(optional=True))
    service().escalate_task(task_id, viewer(), body.get("reason", ""), seen_version=body.get("version"))
    return _task_done(task_id)


@bp.post("/v1/tasks/<id:task_id>/reassign")
def reassign_task(task_id: int) -> Any:
    """Give the task to another member of its queue."""
    load_to_act(task_id)
    body = checked("Reassignment", json_body())
    service().reassign(task_id, viewer(), body["to"], seen_version=body.get("version"))
    return _task_done(task_id)


# ---------------------------------------------------------------- configuration items, knowledge


def _ci(ci: Asset) -> dict[str, Any]:
    return {"id": ci.id, "type": ci.type, "name": ci.name, "status": ci.status, "key": ci.key,
            "owner": ci.owner_id, "owner_group": ci.owner_group_id, "data": ci.data or {},
            "created_at": _when(ci.created_at), "updated_at": _when(ci.updated_at)}


def _ensure_browses_cis() -> None:
    if not cmdb.may_browse(session(), viewer(), catalog_queues()):
        raise NotAllowed("only agents see configuration items")


@bp.get("/v1/cis")
def cis_list() -> Any:
    """Configuration items by type and a text in their name or key (agents)."""
    _ensure_browses_cis()
    type_id = request.args.get("type") or None
    if type_id is not None and catalog().ci_type(type_id) is None:
        raise InvalidInput("unknown type", {"type": [f"{type_id[:64]} is not a configuration item type."]})
    text = " ".join((request.args.get("q") or "").split())[:MAX_QUERY]
    limit = _int_arg("limit", 100, 1, 500)
    return jsonify({"items": [_ci(c) for c in cmdb.search(session(), type_id, text, limit=limit)]})


@bp.get("/v1/cis/<id:ci_id>")
def ci_detail(ci_id: int) -> Any:
    _ensure_browses_cis()
    return jsonify(_ci(cmdb.get(session(), ci_id)))


def _article(a: Article) -> dict[str, Any]:
    return {"id": a.id, "title": a.title, "summary": a.summary, "category": a.category,
            "keywords": list(a.keywords), "items": list(a.items), "body": a.body,
            "updated": a.updated.isoformat() if a.updated else None}


@bp.get("/v1/knowledge")
def knowledge_search() -> Any:
    """Knowledge articles the viewer may read, found by the portal's search (all without `q`)."""
    cat, known = catalog(), {}  # type: ignore[var-annotated]
    query = " ".join((request.args.get("q") or "").split())[:MAX_QUERY]

    def allowed(thing: Any) -> bool:
        if not isinstance(thing, Article):
            return False
        if thing.visible_to not in known:
            known[thing.visible_to] = _audience().sees(thing.visible_to)
        return bool(known[thing.visible_to])

    if query:
        found = [h.thing for h in search_index(cat).hits(query, allowed) if h.kind == "article"]
    else:
        found = sorted((a for a in cat.articles if allowed(a)),
                       key=lambda a: (a.category.casefold(), a.title.casefold()))
    return jsonify({"items": [_article(a) for a in found]})


# ---------------------------------------------------------------- admin: the catalog


def _ensure_admin() -> None:
    if not people.is_admin(session(), viewer()):
        raise NotAllowed("only admins manage the catalog")


def _catalog_status() -> dict[str, Any]:
    state = portal_state()
    loaded, cat = state.current, state.catalog
    return {"version": cat.version, "loaded_at": _when(loaded.loaded_at), "site": cat.settings.name,
            "items": len(cat.items), "workflows": len(cat.workflows), "articles": len(cat.articles),
            "warnings": [w.render() for w in loaded.warnings],
            "last_refused": [e.render() for e in state.last_refused or ()],
            "commit": _commit(loaded.commit)}


def _commit(commit: CatalogCommit | None) -> dict[str, Any] | None:
    if commit is None:
        return None
    return {"hash": commit.hash, "short": commit.short, "subject": commit.subject,
            "dirty": commit.dirty}


@bp.get("/v1/admin/catalog")
def catalog_status() -> Any:
    _ensure_admin()
    return jsonify(_catalog_status())


@bp.post("/v1/admin/catalog/reload")
def catalog_reload() -> Any:
    """Reload the catalog from disk; on errors the old one keeps serving (422 with the list)."""
    _ensure_admin()
    checked("Reload", json_body(optional=True))
    serving = portal_state().catalog
    old = serving.version
    try:
        fresh = portal_state().reload()
    except CatalogInvalid as exc:
        n = len(exc.errors)
        raise ApiProblem(422, f"The catalog has {n} error{'s' * (n != 1)}; version {old} keeps "
                         "serving.", {"catalog": [e.render() for e in exc.errors]}) from None
    except DeskflowError as exc:  # the directory is gone, or far too large
        raise ApiProblem(422, f"The catalog could not be read; version {old} keeps serving.",
                         {"catalog": [str(exc)]}) from None
    diff = diff_catalogs(serving, fresh, old, fresh.version, in_flight=in_flight(session()))
    return jsonify({**_catalog_status(), "previous_version": old, "diff": json_data(diff)})


# ---------------------------------------------------------------- description and docs


@bp.get("/v1/openapi.json")
def openapi_json() -> Any:
    return jsonify(openapi())


@bp.get("/docs")
def docs() -> Any:
    """Swagger UI; its start script is web/static/api-docs.js (the CSP allows no inline script)."""
    return render_template("api/docs.html")


@bp.get("/docs/openapi-3.0.json")
def docs_openapi() -> Any:
    """The description as OpenAPI 3.0, derived from the 3.1 one: the packaged Swagger UI is 4.15."""
    return jsonify(downgrade(openapi()))


@bp.get("/docs/<name>")
def docs_asset(name: str) -> Response:
    """Swagger UI's own files, from the installed swagger-ui-bundle package (no CDN)."""
    if name not in SWAGGER_FILES:
        abort(404)
    response = Response(_swagger_file(name), mimetype=SWAGGER_FILES[name])
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@functools.cache
def _swagger_file(name: str) -> bytes:
    """One of three files, read once per process (about 1.5 MB together)."""
    return (Path(swagger_ui_path) / name).read_bytes()
