"""What the request, approval and task pages share: answers, states and events in words, the
action form that carries the version a page was loaded at, paging."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cachetools import LRUCache, cached
from flask import request
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import Field as WTField
from wtforms import IntegerField
from wtforms.validators import InputRequired
from wtforms.widgets import HiddenInput

from catalog.catalog import Catalog
from catalog.choices import choice_labels
from catalog.fields import is_empty
from catalog.models import CatalogItem, Field, FieldType
from catalog.workflow import Workflow
from engine import queries
from engine.attachments import IMAGES
from engine.errors import InvalidInput
from engine.models import Comment, Person, Request
from engine.records import LINK_KINDS as LINK_WORDS
from engine.versions import workflow_of
from web import urls
from web.context import catalog, now, service, session, viewer
from web.ids import number

RELOAD = "The page is out of date or incomplete; reload it and try again."

EVENTS = {
    "submitted": "Submitted", "transition": "Moved on", "comment": "Comment",
    "approval_requested": "Approval requested", "approval_approved": "Approved",
    "approval_rejected": "Rejected", "approval_delegated": "Approval delegated",
    "approval_escalated": "Approval escalated", "approval_timeout": "Approval timed out",
    "task_created": "Task created", "task_claimed": "Task claimed",
    "task_reassigned": "Task reassigned", "task_completed": "Task completed",
    "task_escalated": "Task escalated", "asked_requester": "Question for the requester",
    "answered": "Question answered", "asset_created": "Asset recorded",
    "timer_fired": "Waiting time over", "sla_warning": "Target at risk",
    "sla_breach": "Target missed", "security_denied": "Refused",
    "needs_attention": "Held up: needs attention", "attention_retried": "Step retried",
    "attention_routed": "Moved on by hand",
    "migrated": "Migrated to another workflow version",
    "record_changed": "Record changed", "linked": "Linked", "unlinked": "Link removed",
    "watcher_added": "Watcher added", "watcher_removed": "Watcher removed",
    "problem_changed": "Problem changed", "resolved_by_problem": "Resolved with its problem",
    "major_declared": "Major incident declared", "major_stood_down": "Major incident stood down",
    "children_resolved": "Child incidents resolved with it",
    "email_action": "Done from an email link",
}
#: the record model's audit events (engine.records), worded by `record_detail`
RECORD_EVENTS = frozenset({"record_changed", "linked", "unlinked", "watcher_added", "watcher_removed",
                           "problem_changed", "resolved_by_problem"})
#: a problem's fields (engine.problems) as `problem_changed` lists them
PROBLEM_FIELDS = {"root_cause": "Root cause", "workaround": "Workaround", "service": "Service",
                  "ci": "Configuration item", "known_error": "Known error"}
RECORD_FIELDS = {"title": "Title", "impact": "Impact", "urgency": "Urgency", "category": "Category",
                 "assignment_group": "Group", "assignee": "Assignee", "priority": "Priority",
                 "tier": "Support tier"}


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = " ".join(str(value or "").split()) or "—"
    return text if len(text) <= 60 else text[:59] + "…"


def record_detail(event: str, detail: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """What a record event changed, in words: "Impact: high → medium; Assignee: — → Grace"."""
    if event == "record_changed":
        parts = []
        for key, (old, new) in (detail.get("changes") or {}).items():
            if key in RECORD_FIELDS:
                shown = [names.get(v, v) if key == "assignee" else v for v in (old, new)]
                parts.append(f"{RECORD_FIELDS[key]}: {shown[0] or '—'} → {shown[1] or '—'}")
        return "; ".join(parts)
    if event == "problem_changed":
        return "; ".join(f"{PROBLEM_FIELDS.get(k, k)}: {_short(old)} → {_short(new)}"
                         for k, (old, new) in (detail.get("changes") or {}).items())
    if event == "resolved_by_problem":
        return str(detail.get("problem", ""))
    if event in ("linked", "unlinked"):
        from_source, from_target = LINK_WORDS.get(detail.get("kind", ""), ("", ""))
        words = from_source if detail.get("side") == "source" else from_target
        return f"{words} {detail.get('other', '')}"
    person = str(detail.get("person", ""))
    return names.get(person, person)


# ---------------------------------------------------------------- states and events in words


def state_label(wf: Workflow | None, name: str) -> str:
    """A state in words: its label, else its name made readable."""
    state = wf.state(name) if wf is not None else None
    return state.label if state is not None and state.label else name.replace("_", " ").capitalize()


def state_words(req: Request) -> str:
    """The request's current state in words (its outcome once closed)."""
    if req.status == "closed":
        return req.outcome or req.state
    return state_label(workflow_of(req.workflow_version), req.state)


def comment_title(comment: Comment) -> str:
    """What a comment is, in a word or two: a question, an answer, an internal note, a comment."""
    return {"question": "Asked a question", "answer": "Answered"}.get(
        comment.kind, "Internal note" if comment.internal else "Comment")


def event_text(entry: queries.TimelineEntry, req: Request) -> str:
    """A timeline entry in a few words (the request page has the details)."""
    if entry.comment is not None:
        return comment_title(entry.comment)
    e = entry.event
    assert e is not None
    if e.event in ("submitted", "transition") and e.to_state:
        return f"Now: {state_label(workflow_of(req.workflow_version), e.to_state)}"
    return EVENTS.get(e.event, e.event.replace("_", " ").capitalize())


def request_url(number: str) -> str:
    return urls.url_for("requests.detail", number=number)


# ---------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class ShownFile:
    """A file a file field's answer references (engine.file_answers): a download link."""

    attachment: int
    filename: str
    size: int
    image: bool


@dataclass(frozen=True, slots=True)
class ShownAnswer:
    """One answer as the page shows it: text, a table of rows, or files (their names as text)."""

    label: str
    text: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    files: tuple[ShownFile, ...] = ()


def _shown_files(value: Any) -> tuple[ShownFile, ...]:
    refs = value if isinstance(value, list) else [value]
    return tuple(ShownFile(r["attachment"], str(r.get("filename", "")), int(r.get("size") or 0),
                           r.get("content_type") in IMAGES)
                 for r in refs if isinstance(r, Mapping) and isinstance(r.get("attachment"), int))


def _value_text(f: Field | None, value: Any, labels: Mapping[str, str]) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(_value_text(f, v, labels) for v in value)
    if f is not None and f.type in (FieldType.CHOICE, FieldType.MULTICHOICE, FieldType.PERSON):
        return labels.get(str(value), str(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _labels_of(f: Field, answers: Mapping[str, Any], item_id: str, path: str) -> Mapping[str, str]:
    """Labels of the field's values (`path`: its name, or table.column, in item `item_id`); a
    cascading field's through the parent in `answers`, the others' read once per catalog."""
    if f.type not in (FieldType.CHOICE, FieldType.MULTICHOICE, FieldType.PERSON):
        return {}
    if f.depends_on is not None:
        return choice_labels(f, catalog(), answers)
    return _fixed_labels(catalog(), item_id, path, f)


@cached(LRUCache(maxsize=4096), key=lambda cat, item_id, path, f: (cat.version, item_id, path),
        lock=threading.Lock())
def _fixed_labels(cat: Catalog, item_id: str, path: str, f: Field) -> Mapping[str, str]:
    """A non-cascading field's labels: each list row would otherwise list every choice again
    (a person field: the whole directory)."""
    return MappingProxyType(choice_labels(f, cat))


def shown_answers(item: CatalogItem | None, answers: Mapping[str, Any]) -> list[ShownAnswer]:
    """Answers in form order with the fields' labels; empty and hidden ones left out."""
    fields = list(item.fields) if item is not None else []
    item_id = item.id if item is not None else ""
    known = {f.name for f in fields}
    out: list[ShownAnswer] = []
    for f, name in [*((f, f.name) for f in fields),
                    *((None, k) for k in answers if k not in known)]:
        value = answers.get(name)
        if is_empty(value):
            continue
        if f is not None and f.type is FieldType.TABLE and isinstance(value, list):
            cols = f.columns
            # a cell's labels depend on its row when its column cascades on another column
            rows = tuple(tuple("" if is_empty(row.get(c.name)) else
                               _value_text(c, row.get(c.name),
                                           _labels_of(c, row, item_id, f"{f.name}.{c.name}"))
                               for c in cols)
                         for row in value if isinstance(row, Mapping))
            out.append(ShownAnswer(f.label, columns=tuple(c.label for c in cols), rows=rows))
            continue
        label = f.label if f is not None else name.replace("_", " ").capitalize()
        if f is not None and f.type is FieldType.FILE:
            files = _shown_files(value)
            out.append(ShownAnswer(label, ", ".join(x.filename for x in files), files=files))
            continue
        out.append(ShownAnswer(label, _value_text(f, value, _labels_of(f, answers, item_id, name)
                                                   if f else {})))
    return out


def answer_rows(req: Request, limit: int | None = None) -> list[ShownAnswer]:
    """The request's non-empty answers with their labels, in form order (the first `limit`)."""
    return shown_answers(catalog().item(req.item_id), req.answers or {})[:limit]


# ---------------------------------------------------------------- acting on a request


class VersionField(IntegerField):
    """The request's lock_version as the page was loaded (hidden)."""

    widget = HiddenInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            self.data = number(valuelist[0])
            if self.data is None:
                raise ValueError(RELOAD)


class ActionForm(FlaskForm):
    """A form acting on a request, as loaded at `seen_version` (a stale page gets 409)."""

    class Meta:
        csrf = False  # CSRFProtect checks the token of every POST before the view runs

    seen_version = VersionField(validators=[InputRequired(RELOAD)])


def show_errors(form: FlaskForm, fields: Mapping[str, Sequence[str]],
                where: Mapping[str, WTField] | None = None) -> list[str]:
    """Put the service's per-field messages on the form's fields; return the ones left over."""
    left: list[str] = []
    for name, messages in fields.items():
        bound = (where or {}).get(name)
        bound = bound if bound is not None else form._fields.get(name)
        if bound is None or name in ("csrf_token", "seen_version"):
            left.extend(messages)
        else:
            bound.errors = [*bound.errors, *messages]
    return left


def people_choices(exclude: Iterable[str] = ()) -> list[tuple[str, str]]:
    skip = set(exclude)
    return [(p.id, f"{p.name} ({p.id})") for p in session().scalars(
        select(Person).where(Person.active.is_(True)).order_by(Person.name)) if p.id not in skip]


# ---------------------------------------------------------------- paging


def page_arg() -> int:
    value = number(request.args.get("page"))
    return value if value is not None and value < 10**6 else 1


def load_request(number: str) -> Request:
    """The request, if the viewer may see it; NotFound (404) otherwise."""
    return service().request(session(), number, viewer(), now())


def form_seen_version(required: bool = True) -> int | None:
    """The request version the form was rendered with (stale forms get a 409 from the service);
    None when the form gives none and none is `required`."""
    text = (request.form.get("seen_version") or "").strip()
    if not text and not required:
        return None
    if not re.fullmatch(r"[0-9]{1,12}", text):  # isdigit() takes '²', which int() refuses
        raise InvalidInput("the form does not say which version of the request it was loaded with",
                           {"seen_version": ["Reload the page and try again."]})
    return int(text)
