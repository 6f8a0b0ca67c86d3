"""Shared views of the agents' list (`views/*.yaml`): named filters every agent gets.

The filter names and their choices live here, below the engine, so that a view is checked
when the catalog loads and the engine's list (engine.worklist) reads the same rules.
"""

from __future__ import annotations

from datetime import date
from types import MappingProxyType
from typing import Any

from catalog.errors import suggest
from catalog.models import View
from catalog.parse import Parsed
from catalog.source import SourceDoc

RECORD_TYPES = ("request", "incident", "problem", "change")
STATUSES = ("open", "closed")
#: on track: sla_state ok; at risk: warning; breached: breached; paused: sla_paused_at set
SLA_STATUSES = ("on_track", "at_risk", "breached", "paused")
SORTS = tuple(s for name in ("updated", "created", "priority", "number") for s in (name, f"-{name}"))
DATE_FILTERS = ("created_from", "created_to", "updated_from", "updated_to")
#: every filter of the list, in the order the list's form shows them
FILTERS = ("q", "kind", "status", "state", "priority", "group", "assignee", "requester",
           "category", "sla", "major", *DATE_FILTERS)
CHOICES = MappingProxyType({"kind": RECORD_TYPES, "status": STATUSES, "sla": SLA_STATUSES,
                            "major": ("yes", "no"),
                            "sort": SORTS})
TEXT_MAX = MappingProxyType({"q": 100, "state": 64, "category": 120})


def value_problem(key: str, text: str) -> str:
    """What is wrong with one filter value that needs no directory or settings, or ""."""
    if key in CHOICES:
        return "" if text in CHOICES[key] else f"{text} is not one of: {', '.join(CHOICES[key])}."
    if key in DATE_FILTERS:
        try:
            date.fromisoformat(text)
        except ValueError:
            return f"{text} is not a date (YYYY-MM-DD)."
        return "" if len(text) == 10 else f"{text} is not a date (YYYY-MM-DD)."
    if key in TEXT_MAX:
        if "\x00" in text:
            return "Must not contain NUL characters."
        return "" if len(text) <= TEXT_MAX[key] else f"Must be at most {TEXT_MAX[key]} characters."
    return ""


def parse_view(doc: SourceDoc) -> Parsed:
    p, d = Parsed("View", doc), doc.data
    if d["id"] != doc.path.stem:
        p.error(("id",), f"view id {d['id']} differs from its file name {doc.path.name}",
                "name the file after the id")
    filters: dict[str, str] = {}
    for key, value in d.get("filters", {}).items():
        path = ("filters", key)
        if key not in FILTERS:
            p.error(path, f"unknown filter {key}", suggest(key, FILTERS), at_key=True)
            continue
        if not isinstance(value, str):
            p.error(path, f"filter {key} must be text, not {_type(value)}",
                    "write the value in quotes")
            continue
        problem = value_problem(key, value)
        if problem:
            p.error(path, problem.rstrip("."))
            continue
        if key == "priority":
            p.ref("priority", value, path)
        elif key == "group":
            p.ref("group", value, path)
        elif key in ("assignee", "requester") and value not in ("me", "unassigned"):
            p.ref("person", value, path)
        elif key == "requester" and value == "unassigned":
            p.error(path, "a record always has a requester", "use me or a person id")
        filters[key] = value
    sort = d.get("sort", "-updated")
    if sort not in SORTS:
        p.error(("sort",), f"unknown sort {sort}", suggest(sort, SORTS))
    p.model = View(d["id"], d["name"], MappingProxyType(filters), sort)
    return p


def _type(value: Any) -> str:
    return {bool: "true or false", int: "a number", float: "a number", date: "a date",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
