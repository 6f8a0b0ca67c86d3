"""The API's schemas, one source of truth: bodies are validated with them, responses are
described by them, and /api/v1/openapi.json is built from them (never a hand-kept copy)."""

from __future__ import annotations

from typing import Any

from catalog.view_parser import FILTERS as WORKLIST_FILTERS
from engine.idempotency import MAX_KEY
from engine.inputs import MAX_COMMENT
from engine.records import LINK_KINDS

VERSION = "1.0.0"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
PROBLEM_TYPE = "application/problem+json"

_TEXT = {"type": "string", "maxLength": MAX_COMMENT}
_WHEN = {"type": "string", "format": "date-time"}
_MAYBE_WHEN = {"type": ["string", "null"], "format": "date-time"}
_ID = {"type": "string", "maxLength": 64}
_MAYBE_ID = {"type": ["string", "null"], "maxLength": 64}
_VERSION = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_STRINGS = {"type": "array", "items": {"type": "string"}}

#: request bodies: what the API validates (web.api.base.body) and what the description says
BODIES: dict[str, dict[str, Any]] = {
    "Order": {
        "type": "object",
        "description": "Order a catalog item. `answers` follows the item's `schema` "
                       "(GET /api/v1/catalog/{item}).",
        "properties": {
            "item": {"type": "string", "minLength": 1, "maxLength": 64,
                     "description": "The catalog item's id."},
            "answers": {"type": "object", "description": "The order form's answers, by field name. "
                        "A file field takes `{filename, content}` with the content in base64 "
                        "(a list of them when it takes several files); the record's answer "
                        "then names the attachment and its `content_url`."},
            "requested_for": {**_MAYBE_ID, "description": "Order for this person (items that allow it)."},
        },
        "required": ["item", "answers"],
        "additionalProperties": False,
    },
    "Decision": {
        "type": "object",
        "description": "Approve or reject. `version` is the request's `version` you decided on: "
                       "if the request moved on since, the answer is 409.",
        "properties": {
            "comment": {**_TEXT, "description": "Why (required to reject)."},
            "version": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        },
        "additionalProperties": False,
    },
    "Comment": {
        "type": "object",
        "description": "A comment on a request you take part in; `internal` notes are for the "
                       "people working on it.",
        "properties": {"body": {**_TEXT, "minLength": 1}, "internal": {"type": "boolean"}},
        "required": ["body"],
        "additionalProperties": False,
    },
    "Cancellation": {
        "type": "object",
        "description": "Cancel your request. `version` as for a decision.",
        "properties": {"reason": _TEXT,
                       "version": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}},
        "additionalProperties": False,
    },
    "Claim": {
        "type": "object",
        "description": "Take a task. `version` as for a decision.",
        "properties": {"version": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}},
        "additionalProperties": False,
    },
    "Completion": {
        "type": "object",
        "description": "Complete a task: `answers` follows the task's `schema`, `outcome` is one "
                       "of its `outcomes` (default: the first).",
        "properties": {
            "outcome": {"type": "string", "maxLength": 64},
            "answers": {"type": "object"},
            "comment": {**_TEXT, "description": "A closing comment."},
            "version": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        },
        "additionalProperties": False,
    },
    "Delegation": {
        "type": "object",
        "description": "Hand a pending approval to someone else (`to`: a person's id). "
                       "`version` as for a decision.",
        "properties": {"to": {"type": "string", "minLength": 1, "maxLength": 64},
                       "comment": _TEXT, "version": _VERSION},
        "required": ["to"],
        "additionalProperties": False,
    },
    "Escalation": {
        "type": "object",
        "description": "Send a task to its next tier's queue. `version` as for a decision.",
        "properties": {"reason": _TEXT, "version": _VERSION},
        "additionalProperties": False,
    },
    "Reassignment": {
        "type": "object",
        "description": "Give a task to another member of its queue (`to`: a person's id).",
        "properties": {"to": {"type": "string", "minLength": 1, "maxLength": 64}, "version": _VERSION},
        "required": ["to"],
        "additionalProperties": False,
    },
    "RecordChanges": {
        "type": "object",
        "description": "Change a record's fields (its agents); send only what changes. `null` "
                       "clears a field. `version` as for a decision: if the record moved on, 409.",
        "properties": {
            "title": {"type": "string", "maxLength": 200},
            "impact": {"type": ["string", "null"], "maxLength": 32},
            "urgency": {"type": ["string", "null"], "maxLength": 32},
            "category": {"type": ["string", "null"], "maxLength": 120},
            "assignment_group": _MAYBE_ID,
            "assignee": _MAYBE_ID,
            "version": _VERSION,
        },
        "additionalProperties": False,
    },
    "Reopening": {
        "type": "object",
        "description": "Reopen a resolved record within the reopen window: say why.",
        "properties": {"reason": {**_TEXT, "minLength": 1}},
        "required": ["reason"],
        "additionalProperties": False,
    },
    "Answer": {
        "type": "object",
        "description": "Answer the question an agent asked you on your request.",
        "properties": {"answer": {**_TEXT, "minLength": 1}},
        "required": ["answer"],
        "additionalProperties": False,
    },
    "Link": {
        "type": "object",
        "description": "Link this record to `other`: this record is <kind> `other`.",
        "properties": {"other": {"type": "string", "minLength": 1, "maxLength": 64},
                       "kind": {"enum": list(LINK_KINDS)}},
        "required": ["other", "kind"],
        "additionalProperties": False,
    },
    "Reload": {
        "type": "object",
        "description": "Reload the catalog from disk: no fields (send nothing, or {}).",
        "properties": {},
        "additionalProperties": False,
    },
}

#: responses: what the API sends (tests validate every answer against these)
RESPONSES: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details; `errors` maps a field's path to its messages.",
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
            "request_id": {"type": "string", "description": "Also in the X-Request-ID header."},
            "errors": {"type": "object",
                       "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        },
        "required": ["type", "title", "status", "detail"],
    },
    "CatalogEntry": {
        "type": "object",
        "properties": {"id": _ID, "name": {"type": "string"}, "summary": {"type": "string"},
                       "category": {"type": "string"}, "record_type": {"type": "string"},
                       "order_for_others": {"type": "boolean"}},
        "required": ["id", "name", "summary", "category", "record_type", "order_for_others"],
        "additionalProperties": False,
    },
    "CatalogList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/CatalogEntry"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
    "CatalogItem": {
        "type": "object",
        "properties": {"id": _ID, "name": {"type": "string"}, "summary": {"type": "string"},
                       "category": {"type": "string"}, "record_type": {"type": "string"},
                       "order_for_others": {"type": "boolean"}, "description": {"type": "string"},
                       "schema": {"type": "object",
                                  "description": "JSON Schema (2020-12) of the `answers` object."}},
        "required": ["id", "name", "summary", "category", "record_type", "order_for_others",
                     "description", "schema"],
        "additionalProperties": False,
    },
    "RequestSummary": {
        "type": "object",
        "properties": {"number": {"type": "string"}, "item": _ID, "item_name": {"type": "string"},
                       "record_type": {"type": "string"}, "state": {"type": "string"},
                       "state_label": {"type": "string"}, "status": {"enum": ["open", "closed"]},
                       "outcome": {"type": ["string", "null"]}, "priority": {"type": ["string", "null"]},
                       "requester": _ID, "requested_for": _ID, "created_at": _WHEN,
                       "updated_at": _WHEN, "version": {"type": "integer"},
                       "title": {"type": "string"}, "assignment_group": _MAYBE_ID,
                       "assignee": _MAYBE_ID, "channel": {"type": "string"}},
        "required": ["number", "item", "item_name", "record_type", "state", "state_label", "status",
                     "outcome", "priority", "requester", "requested_for", "created_at",
                     "updated_at", "version", "title", "assignment_group", "assignee", "channel"],
        "additionalProperties": False,
    },
    "RequestList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/RequestSummary"}},
                       "next_cursor": {"type": ["string", "null"]}},
        "required": ["items", "next_cursor"],
        "additionalProperties": False,
    },
    "Approval": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "request": {"type": "string"},
                       "name": {"type": "string"}, "approver": _ID, "decision": {"type": "string"},
                       "decided_by": _MAYBE_ID, "decided_at": _MAYBE_WHEN, "comment": {"type": "string"},
                       "due_at": _MAYBE_WHEN, "created_at": _WHEN},
        "required": ["id", "request", "name", "approver", "decision", "decided_by", "decided_at",
                     "comment", "due_at", "created_at"],
        "additionalProperties": False,
    },
    "Task": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "title": {"type": "string"},
                       "queue": _ID, "assignee": _MAYBE_ID, "status": {"type": "string"},
                       "outcome": {"type": ["string", "null"]}, "due_at": _MAYBE_WHEN,
                       "created_at": _WHEN, "completed_at": _MAYBE_WHEN},
        "required": ["id", "name", "title", "queue", "assignee", "status", "outcome", "due_at",
                     "created_at", "completed_at"],
        "additionalProperties": False,
    },
    "TimelineEntry": {
        "type": "object",
        "properties": {"at": _WHEN, "kind": {"enum": ["event", "comment"]}, "actor": _MAYBE_ID,
                       "event": {"type": "string"}, "from_state": {"type": ["string", "null"]},
                       "to_state": {"type": ["string", "null"]}, "body": {"type": "string"},
                       "internal": {"type": "boolean"}},
        "required": ["at", "kind", "actor"],
        "additionalProperties": False,
    },
    "Attachment": {
        "type": "object",
        "description": "A file kept for a request (docs/attachments.md).",
        "properties": {"id": {"type": "integer"}, "request": {"type": "string"},
                       "filename": {"type": "string"}, "size": {"type": "integer"},
                       "content_type": {"type": "string"}, "uploaded_by": _ID,
                       "comment": {"type": ["integer", "null"]}, "created_at": _WHEN,
                       "content_url": {"type": "string"}},
        "required": ["id", "request", "filename", "size", "content_type", "uploaded_by",
                     "comment", "created_at", "content_url"],
        "additionalProperties": False,
    },
    "AttachmentList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Attachment"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
    "CommentResult": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "request": {"type": "string"}, "author": _ID,
                       "body": {"type": "string"}, "internal": {"type": "boolean"},
                       "created_at": _WHEN},
        "required": ["id", "request", "author", "body", "internal", "created_at"],
        "additionalProperties": False,
    },
    "QueueTasks": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/QueueTask"}},
                       "page": {"type": "integer"}, "pages": {"type": "integer"},
                       "total": {"type": "integer"}, "more": {"type": "boolean"}},
        "required": ["items", "page", "pages", "total", "more"],
        "additionalProperties": False,
    },
    "ApprovalList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Approval"}},
                       "page": {"type": "integer"}, "pages": {"type": "integer"},
                       "total": {"type": "integer"}, "more": {"type": "boolean"}},
        "required": ["items", "page", "pages", "total", "more"],
        "additionalProperties": False,
    },
}


RESPONSES |= {
    "RecordLink": {
        "type": "object",
        "properties": {"kind": {"enum": list(LINK_KINDS)}, "words": {"type": "string"},
                       "side": {"enum": ["source", "target"]}, "other": {"type": "string"}},
        "required": ["kind", "words", "side", "other"],
        "additionalProperties": False,
    },
    "ConfigurationItem": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "type": {"type": "string"},
                       "name": {"type": "string"}, "status": {"type": "string"},
                       "key": {"type": ["string", "null"]}, "owner": _MAYBE_ID,
                       "owner_group": _MAYBE_ID, "data": {"type": "object"},
                       "created_at": _WHEN, "updated_at": _WHEN},
        "required": ["id", "type", "name", "status", "key", "owner", "owner_group", "data",
                     "created_at", "updated_at"],
        "additionalProperties": False,
    },
    "ConfigurationItemList": {
        "type": "object",
        "properties": {"items": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/ConfigurationItem"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
    "Article": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                       "summary": {"type": "string"}, "category": {"type": "string"},
                       "keywords": _STRINGS, "items": _STRINGS,
                       "body": {"type": "string", "description": "Markdown."},
                       "updated": {"type": ["string", "null"], "format": "date"}},
        "required": ["id", "title", "summary", "category", "keywords", "items", "body", "updated"],
        "additionalProperties": False,
    },
    "ArticleList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Article"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
    "CatalogDiff": {
        "type": "object",
        "description": "After a reload: what changed, as `deskflow diff --format json` prints it "
                       "(docs/changing-the-catalog.md), with the open requests each change touches.",
        "properties": {
            "shape": {"type": "integer"}, "old": {"type": "string"}, "new": {"type": "string"},
            "changes": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string"}, "sign": {"type": "string", "enum": ["+", "-", "~"]},
                    "subject": {"type": "string"}, "id": {"type": "string"},
                    "message": {"type": "string"}, "file": {"type": "string"},
                    "line": {"type": "integer"}, "side": {"type": "string", "enum": ["new", "old"]},
                    "before": {"type": ["string", "null"]}, "after": {"type": ["string", "null"]},
                    "open_requests": {"type": ["array", "null"], "items": {
                        "type": "object",
                        "properties": {"version": {"type": "string"}, "count": {"type": "integer"}},
                        "required": ["version", "count"], "additionalProperties": False}}},
                "required": ["kind", "sign", "subject", "id", "message", "file", "line", "side",
                             "before", "after", "open_requests"],
                "additionalProperties": False}}},
        "required": ["shape", "old", "new", "changes"],
        "additionalProperties": False,
    },
    "CatalogStatus": {
        "type": "object",
        "properties": {"version": {"type": "string"}, "loaded_at": _WHEN, "site": {"type": "string"},
                       "items": {"type": "integer"}, "workflows": {"type": "integer"},
                       "articles": {"type": "integer"}, "warnings": _STRINGS,
                       "last_refused": {**_STRINGS, "description": "The errors of the last "
                                        "refused reload (the version above kept serving)."},
                       "commit": {
                           "type": ["object", "null"],
                           "description": "The git commit the catalog directory was checked out at "
                                          "when it was loaded; null when it is not in a git "
                                          "repository (or git is not installed).",
                           "properties": {"hash": {"type": "string"}, "short": {"type": "string"},
                                          "subject": {"type": "string"},
                                          "dirty": {"type": "boolean", "description":
                                                    "Files differed from the commit (uncommitted "
                                                    "changes)."}},
                           "required": ["hash", "short", "subject", "dirty"],
                           "additionalProperties": False},
                       "previous_version": {"type": "string",
                                            "description": "After a reload: the version before."},
                       "diff": {"$ref": "#/components/schemas/CatalogDiff"}},
        "required": ["version", "loaded_at", "site", "items", "workflows", "articles", "warnings",
                     "last_refused"],
        "additionalProperties": False,
    },
}


_SUMMARY = RESPONSES["RequestSummary"]
RESPONSES["RequestDetail"] = {
    "type": "object",
    "properties": {
        **_SUMMARY["properties"],
        "answers": {"type": "object"},
        "impact": {"type": ["string", "null"]},
        "urgency": {"type": ["string", "null"]}, "category": {"type": "string"},
        "links": {"type": "array", "items": {"$ref": "#/components/schemas/RecordLink"}},
        "approvals": {"type": "array", "items": {"$ref": "#/components/schemas/Approval"}},
        "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
        "timeline": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEntry"}},
    },
    "required": [*_SUMMARY["required"], "answers", "impact", "urgency", "category", "links",
                 "approvals", "tasks", "timeline"],
    "additionalProperties": False,
}


_TASK = RESPONSES["Task"]
RESPONSES["QueueTask"] = {
    "type": "object",
    "properties": {**_TASK["properties"], "request": {"type": "string"}},
    "required": [*_TASK["required"], "request"],
    "additionalProperties": False,
}
RESPONSES["TaskDetail"] = {
    "type": "object",
    "properties": {**RESPONSES["QueueTask"]["properties"], "instructions": {"type": "string"},
                   "outcomes": {"type": "array", "items": {"type": "string"}},
                   "version": {"type": "integer"},
                   "schema": {"type": "object",
                              "description": "JSON Schema (2020-12) of the `answers` of `complete`."}},
    "required": [*RESPONSES["QueueTask"]["required"], "instructions", "outcomes", "version", "schema"],
    "additionalProperties": False,
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(name: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": _ref(name)}}}}


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{s}"} for s in statuses}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


_NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}
_APPROVAL = {"name": "approval_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
        "description": "Send the same key with the same body again and get the first result "
                       "(the same key with another body: 422).",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY}}
_READ = (401, 404, 429)
_WRITE = (400, 401, 403, 404, 409, 413, 415, 422, 429)


def _decide(verb: str) -> dict[str, Any]:
    return {"post": {"operationId": f"{verb}Approval", "summary": f"{verb.capitalize()} an approval",
                     "tags": ["approvals"], "parameters": [_APPROVAL],
                     "requestBody": {**_body("Decision"), "required": False},
                     "responses": {**_ok("Approval", f"The approval, {verb}d."), **_problems(*_WRITE)}}}


#: the operations that take a record's `number` (what a client can do next with one)
_ON_RECORD = ("getRequest", "editRecord", "commentOnRequest", "cancelRequest", "reopenRequest",
              "answerQuestion", "linkRecord", "listAttachments")
_ON_APPROVAL = ("approveApproval", "rejectApproval", "delegateApproval")
_ON_TASK = ("getTask", "claimTask", "completeTask", "escalateTask", "reassignTask")


def _follow(operations: tuple[str, ...], parameter: str, value: str) -> dict[str, Any]:
    return {op: {"operationId": op, "parameters": {parameter: value}} for op in operations}


#: OpenAPI links: (operationId, status) -> the operations an answer's ids lead to, and where
#: in the answer the id is (runtime expressions); schemathesis's state machine follows them
LINKS: dict[tuple[str, str], dict[str, Any]] = {
    ("listCatalog", "200"): _follow(("getCatalogItem",), "item_id", "$response.body#/items/0/id"),
    ("orderItem", "201"): _follow(_ON_RECORD, "number", "$response.body#/number"),
    ("orderItem", "200"): _follow(_ON_RECORD, "number", "$response.body#/number"),
    ("listMyRequests", "200"): _follow(_ON_RECORD, "number", "$response.body#/items/0/number"),
    ("listRecords", "200"): _follow(_ON_RECORD, "number", "$response.body#/items/0/number"),
    ("getRequest", "200"): {
        **_follow(_ON_APPROVAL, "approval_id", "$response.body#/approvals/0/id"),
        **_follow(_ON_TASK, "task_id", "$response.body#/tasks/0/id")},
    ("commentOnRequest", "201"): _follow(("getRequest",), "number", "$response.body#/request"),
    ("cancelRequest", "200"): _follow(("getRequest", "reopenRequest"), "number",
                                      "$response.body#/number"),
    ("listMyApprovals", "200"): _follow(_ON_APPROVAL, "approval_id", "$response.body#/items/0/id"),
    ("listQueueTasks", "200"): _follow(_ON_TASK, "task_id", "$response.body#/items/0/id"),
    ("getTask", "200"): _follow(_ON_TASK[1:], "task_id", "$response.body#/id"),
    ("claimTask", "200"): _follow(("completeTask", "escalateTask", "reassignTask"), "task_id",
                                  "$response.body#/id"),
    ("listConfigurationItems", "200"): _follow(("getConfigurationItem",), "ci_id",
                                               "$response.body#/items/0/id"),
}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 description of /api/v1, with its links (LINKS)."""
    description = _description()
    for operations in description["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                links = LINKS.get((operation["operationId"], status))
                if links:
                    response["links"] = links
    return description


def _description() -> dict[str, Any]:
    titles = {400: "Malformed JSON or header", 401: "No valid token or session",
              403: "Not allowed", 404: "Not found (or not yours)", 405: "Method not allowed",
              409: "The request moved on: reload it", 413: "Body too large",
              415: "The body must be JSON", 422: "Invalid input: see `errors`",
              429: "Too many requests"}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": DIALECT,
        "info": {"title": "Deskflow API", "version": VERSION,
                 "description": "Order, approve and follow records. See docs/api.md."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "tags": [{"name": "catalog"}, {"name": "requests"}, {"name": "approvals"}, {"name": "tasks"},
                 {"name": "cmdb"}, {"name": "knowledge"}, {"name": "admin"}],
        "paths": {
            "/api/v1/catalog": {"get": {
                "operationId": "listCatalog", "summary": "Items you may order", "tags": ["catalog"],
                "parameters": [{"name": "q", "in": "query", "required": False,
                                "schema": {"type": "string", "maxLength": 100},
                                "description": "Search words (as the portal's search box)."}],
                "responses": {**_ok("CatalogList", "The items."), **_problems(*_READ)}}},
            "/api/v1/catalog/{item_id}": {"get": {
                "operationId": "getCatalogItem", "summary": "One item, with its form as JSON Schema",
                "tags": ["catalog"],
                "parameters": [{"name": "item_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {**_ok("CatalogItem", "The item."), **_problems(*_READ)}}},
            "/api/v1/requests": {
                "get": {"operationId": "listMyRequests", "summary": "My requests, newest first",
                        "tags": ["requests"],
                        "parameters": [
                            {"name": "cursor", "in": "query", "required": False,
                             "schema": {"type": "string", "maxLength": 40},
                             "description": "`next_cursor` of the previous page."},
                            {"name": "limit", "in": "query", "required": False,
                             "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
                            {"name": "status", "in": "query", "required": False,
                             "schema": {"enum": ["open", "closed"]}}],
                        "responses": {**_ok("RequestList", "One page."), **_problems(401, 422, 429)}},
                "post": {"operationId": "orderItem", "summary": "Order an item", "tags": ["requests"],
                         "parameters": [_KEY], "requestBody": _body("Order"),
                         "responses": {**_ok("RequestDetail", "The new request.", "201"),
                                       **_ok("RequestDetail", "The first result of this Idempotency-Key."),
                                       **_problems(*_WRITE)}}},
            "/api/v1/requests/{number}": {"get": {
                "operationId": "getRequest", "summary": "One request: answers, state, approvals, "
                                                       "tasks, timeline",
                "tags": ["requests"], "parameters": [_NUMBER],
                "responses": {**_ok("RequestDetail", "The request."), **_problems(*_READ)}},
                "patch": {
                "operationId": "editRecord", "summary": "Change a record's fields (its agents)",
                "tags": ["requests"], "parameters": [_NUMBER], "requestBody": _body("RecordChanges"),
                "responses": {**_ok("RequestDetail", "The record, changed."), **_problems(*_WRITE)}}},
            "/api/v1/approvals": {"get": {
                "operationId": "listMyApprovals", "summary": "Approvals waiting for me",
                "tags": ["approvals"],
                "parameters": [{"name": "page", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "default": 1}}],
                "responses": {**_ok("ApprovalList", "One page."), **_problems(401, 422, 429)}}},
            "/api/v1/requests/{number}/comments": {"post": {
                "operationId": "commentOnRequest", "summary": "Comment on a request",
                "tags": ["requests"], "parameters": [_NUMBER], "requestBody": _body("Comment"),
                "responses": {**_ok("CommentResult", "The comment.", "201"), **_problems(*_WRITE)}}},
            "/api/v1/requests/{number}/attachments": {
                "get": {"operationId": "listAttachments", "summary": "A request's attachments",
                        "tags": ["requests"], "parameters": [_NUMBER],
                        "responses": {**_ok("AttachmentList", "The attachments you may see."),
                                      **_problems(*_READ)}},
                "post": {"operationId": "uploadAttachment", "summary": "Attach a file",
                         "tags": ["requests"], "parameters": [_NUMBER],
                         "requestBody": {"required": True, "content": {"multipart/form-data": {
                             "schema": {"type": "object", "required": ["file"],
                                        "properties": {"file": {"type": "string",
                                                                "contentMediaType":
                                                                    "application/octet-stream"}}}}}},
                         "responses": {**_ok("Attachment", "The attachment.", "201"),
                                       **_problems(*_WRITE)}}},
            "/api/v1/attachments/{attachment_id}/content": {"get": {
                "operationId": "getAttachmentContent", "summary": "An attachment's bytes (a download)",
                "tags": ["requests"],
                "parameters": [{"name": "attachment_id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "The file, as `Content-Disposition: attachment`.",
                                      "content": {"application/octet-stream": {
                                          "schema": {"type": "string",
                                                     "contentMediaType": "application/octet-stream"}}}},
                              **_problems(*_READ)}}},
            "/api/v1/requests/{number}/cancel": {"post": {
                "operationId": "cancelRequest", "summary": "Cancel my request", "tags": ["requests"],
                "parameters": [_NUMBER], "requestBody": {**_body("Cancellation"), "required": False},
                "responses": {**_ok("RequestDetail", "The request, cancelled."), **_problems(*_WRITE)}}},
            "/api/v1/queues/{group_id}/tasks": {"get": {
                "operationId": "listQueueTasks", "summary": "Open tasks of a queue I work in",
                "tags": ["tasks"],
                "parameters": [{"name": "group_id", "in": "path", "required": True,
                                "schema": {"type": "string"}},
                               {"name": "assignee", "in": "query", "required": False,
                                "schema": {"enum": ["mine", "unassigned"]}},
                               {"name": "page", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "default": 1}}],
                "responses": {**_ok("QueueTasks", "One page."), **_problems(*_READ, 422)}}},
            "/api/v1/tasks/{task_id}": {"get": {
                "operationId": "getTask", "summary": "A task, with its form as JSON Schema",
                "tags": ["tasks"], "parameters": [_TASK_ID],
                "responses": {**_ok("TaskDetail", "The task."), **_problems(*_READ)}}},
            "/api/v1/tasks/{task_id}/claim": {"post": {
                "operationId": "claimTask", "summary": "Take a task", "tags": ["tasks"],
                "parameters": [_TASK_ID], "requestBody": {**_body("Claim"), "required": False},
                "responses": {**_ok("QueueTask", "The task, mine now."), **_problems(*_WRITE)}}},
            "/api/v1/tasks/{task_id}/complete": {"post": {
                "operationId": "completeTask", "summary": "Complete a task", "tags": ["tasks"],
                "parameters": [_TASK_ID], "requestBody": {**_body("Completion"), "required": False},
                "responses": {**_ok("QueueTask", "The task, done."), **_problems(*_WRITE)}}},
            "/api/v1/approvals/{approval_id}/approve": _decide("approve"),
            "/api/v1/approvals/{approval_id}/delegate": {"post": {
                "operationId": "delegateApproval", "summary": "Hand an approval to someone else",
                "tags": ["approvals"], "parameters": [_APPROVAL], "requestBody": _body("Delegation"),
                "responses": {**_ok("Approval", "The approval, now with `approver` the delegate."),
                              **_problems(*_WRITE)}}},
            "/api/v1/tasks/{task_id}/escalate": {"post": {
                "operationId": "escalateTask", "summary": "Send a task to its next tier",
                "tags": ["tasks"], "parameters": [_TASK_ID],
                "requestBody": {**_body("Escalation"), "required": False},
                "responses": {**_ok("QueueTask", "The task, in its new queue."), **_problems(*_WRITE)}}},
            "/api/v1/tasks/{task_id}/reassign": {"post": {
                "operationId": "reassignTask", "summary": "Give a task to another queue member",
                "tags": ["tasks"], "parameters": [_TASK_ID], "requestBody": _body("Reassignment"),
                "responses": {**_ok("QueueTask", "The task, theirs now."), **_problems(*_WRITE)}}},
            "/api/v1/requests/{number}/reopen": {"post": {
                "operationId": "reopenRequest", "summary": "Reopen a resolved record",
                "tags": ["requests"], "parameters": [_NUMBER], "requestBody": _body("Reopening"),
                "responses": {**_ok("RequestDetail", "The record, back with the team."),
                              **_problems(*_WRITE)}}},
            "/api/v1/requests/{number}/answer": {"post": {
                "operationId": "answerQuestion", "summary": "Answer an agent's question",
                "tags": ["requests"], "parameters": [_NUMBER], "requestBody": _body("Answer"),
                "responses": {**_ok("CommentResult", "The answer.", "201"), **_problems(*_WRITE)}}},
            "/api/v1/requests/{number}/links": {"post": {
                "operationId": "linkRecord", "summary": "Link a record to another (agents)",
                "tags": ["requests"], "parameters": [_NUMBER], "requestBody": _body("Link"),
                "responses": {**_ok("RequestDetail", "The record, with its links.", "201"),
                              **_problems(*_WRITE)}}},
            "/api/v1/requests/{number}/links/{kind}/{other}": {"delete": {
                "operationId": "unlinkRecord", "summary": "Remove a link (agents)",
                "tags": ["requests"],
                "parameters": [_NUMBER,
                               {"name": "kind", "in": "path", "required": True,
                                "schema": {"enum": list(LINK_KINDS)}},
                               {"name": "other", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {**_ok("RequestDetail", "The record, with its links."),
                              **_problems(*_WRITE)}}},
            "/api/v1/records": {"get": {
                "operationId": "listRecords",
                "summary": "Records of my groups (agents), newest first: the filters of /records",
                "tags": ["requests"],
                "parameters": [
                    {"name": "cursor", "in": "query", "required": False,
                     "schema": {"type": "string", "maxLength": 40}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
                    *({"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                       "description": "A filter of the agents' list (docs/api.md)."}
                      for name in WORKLIST_FILTERS)],
                "responses": {**_ok("RequestList", "One page."), **_problems(401, 403, 422, 429)}}},
            "/api/v1/cis": {"get": {
                "operationId": "listConfigurationItems",
                "summary": "Configuration items by type and text (agents)", "tags": ["cmdb"],
                "parameters": [
                    {"name": "type", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "required": False,
                     "schema": {"type": "string", "maxLength": 100}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}],
                "responses": {**_ok("ConfigurationItemList", "The items."),
                              **_problems(401, 403, 422, 429)}}},
            "/api/v1/cis/{ci_id}": {"get": {
                "operationId": "getConfigurationItem", "summary": "One configuration item (agents)",
                "tags": ["cmdb"],
                "parameters": [{"name": "ci_id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {**_ok("ConfigurationItem", "The item."), **_problems(401, 403, 404, 429)}}},
            "/api/v1/knowledge": {"get": {
                "operationId": "searchKnowledge", "summary": "Knowledge articles I may read",
                "tags": ["knowledge"],
                "parameters": [{"name": "q", "in": "query", "required": False,
                                "schema": {"type": "string", "maxLength": 100},
                                "description": "Search words (as the portal's search box)."}],
                "responses": {**_ok("ArticleList", "The articles."), **_problems(401, 429)}}},
            "/api/v1/admin/catalog": {"get": {
                "operationId": "catalogStatus", "summary": "The catalog serving now (admins)",
                "tags": ["admin"],
                "responses": {**_ok("CatalogStatus", "The status."), **_problems(401, 403, 429)}}},
            "/api/v1/admin/catalog/reload": {"post": {
                "operationId": "reloadCatalog",
                "summary": "Reload the catalog (admins); on errors the old one keeps serving",
                "tags": ["admin"], "requestBody": {**_body("Reload"), "required": False},
                "responses": {**_ok("CatalogStatus", "The catalog now serving."),
                              **_problems(400, 401, 403, 413, 415, 422, 429)}}},
            "/api/v1/approvals/{approval_id}/reject": _decide("reject"),
        },
        "components": {
            "schemas": {**BODIES, **RESPONSES},
            "responses": {str(s): {"description": t, "content": {PROBLEM_TYPE: {"schema": _ref("Problem")}}}
                          for s, t in titles.items()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A personal API token (profile page, or "
                                          "`deskflow token create`)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "deskflow",
                            "description": "The portal's session; writes then need the "
                                           "X-CSRFToken header."}},
        },
    }


def schema_of(name: str) -> dict[str, Any]:
    """A body or response schema, standalone (its `$ref`s resolvable), for jsonschema."""
    return {"$schema": DIALECT, **(BODIES.get(name) or RESPONSES[name]),
            "components": {"schemas": {**BODIES, **RESPONSES}}}
