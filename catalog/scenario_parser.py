"""Scenario tests (`tests/*.yaml`): their models, parser and the checks against the catalog.

A file holds scenarios; each orders one item as a person and runs steps (approve, reject,
complete, wait, ask, reply, comment, cancel) and expectations. `engine.scenarios` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from catalog.errors import Location, SpecError, suggest
from catalog.models import CatalogItem, Directory, Duration, Settings
from catalog.parse import Parsed
from catalog.source import MAX_BYTES, SourceDoc, parse_yaml, too_large
from catalog.validation import schema_errors
from catalog.workflow import Workflow

#: a Monday, 09:00 in the catalog's time zone: due times come out the same on every run
DEFAULT_START = "2026-11-30 09:00"
ACTIONS = ("approve", "reject", "complete", "wait", "ask", "reply", "comment", "cancel")


@dataclass(frozen=True, slots=True)
class Step:
    """One action or expectation: its kind (`approve`, `expect`, ...), its arguments, where."""

    kind: str
    args: Mapping[str, Any]
    where: Location
    #: the step's place in the file, for pointing at one of its keys
    path: tuple[str | int, ...]
    wait: Duration | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    item: str
    requester: str
    requested_for: str | None
    at: datetime
    answers: Mapping[str, Any]
    steps: tuple[Step, ...]
    where: Location
    path: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ScenarioFile:
    """One `tests/*.yaml` file; `id` is its path in the catalog."""

    id: str
    doc: SourceDoc
    scenarios: tuple[Scenario, ...]


def parse_scenarios(doc: SourceDoc) -> Parsed:
    """Model a schema-valid scenario file; a scenario without an item is a problem."""
    data = doc.data
    result = Parsed("Scenarios", doc)
    scenarios = []
    for i, raw in enumerate(data["scenarios"]):
        path: tuple[str | int, ...] = ("scenarios", i)
        item = raw.get("item", data.get("item"))
        if item is None:
            result.problems.append(doc.error(path, "the scenario names no item",
                                             "give item: here or at the top of the file"))
            continue
        steps = []
        for j, step in enumerate(raw["steps"]):
            kind, args = next(iter(step.items()))
            spath = (*path, "steps", j)
            if kind == "wait":
                steps.append(Step(kind, {}, doc.locate_key((*spath, kind)), spath,
                                  Duration.parse(args)))
            else:
                steps.append(Step(kind, args, doc.locate_key((*spath, kind)), spath))
        at_path = (*path, "at") if "at" in raw else ("at",)
        try:
            at = datetime.strptime(raw.get("at", data.get("at", DEFAULT_START)), "%Y-%m-%d %H:%M")
        except ValueError:
            shown = raw.get("at", data.get("at"))
            result.problems.append(doc.error(at_path, f"{shown} is not a date and time",
                                             "write YYYY-MM-DD HH:MM, in quotes"))
            continue
        scenarios.append(Scenario(raw["name"], item, raw["as"], raw.get("for"), at,
                                  raw.get("answers", {}), tuple(steps),
                                  doc.locate_key((*path, "name")), path))
    result.model = ScenarioFile(doc.path.as_posix(), doc, tuple(scenarios))
    return result


def check_scenarios(files: list[ScenarioFile], items: Mapping[str, CatalogItem],
                    workflows: Mapping[str, Workflow], directory: Directory,
                    settings: Settings) -> list[SpecError]:
    """Every item, person, group, state, task, outcome, field and priority a scenario names exists."""
    people = {p.id for p in directory.people}
    groups = {g.id for g in directory.groups}
    problems: list[SpecError] = []
    for f in files:
        doc = f.doc

        def unknown(path: tuple[str | int, ...], what: str, name: Any, known: Any,
                    doc: SourceDoc = doc) -> None:
            if name not in known:
                noun, _, owner = what.partition(" of ")
                where = f" in {owner}" if owner else ""
                problems.append(doc.error(path, f"unknown {noun} {name}{where}",
                                          suggest(str(name), {str(k) for k in known})))

        for sc in f.scenarios:
            unknown((*sc.path, "as"), "person", sc.requester, people)
            if sc.requested_for is not None:
                unknown((*sc.path, "for"), "person", sc.requested_for, people)
            item = items.get(sc.item)
            if item is None:
                where = (*sc.path, "item") if "item" in doc.data["scenarios"][sc.path[1]] else ("item",)
                unknown(where, "item", sc.item, items)
                continue
            fields = {x.name for x in item.fields}
            for name in sc.answers:
                unknown((*sc.path, "answers", name), f"field of item {item.id}", name, fields)
            wf = workflows.get(item.workflow)
            if wf is None:
                continue
            states = {s.name: s for s in wf.states}
            tasks = {t.name: t for s in wf.states for t in s.tasks}
            for step in sc.steps:
                a, p = step.args, step.path
                if "as" in a:
                    unknown((*p, step.kind, "as"), "person", a["as"], people)
                if step.kind == "complete":
                    unknown((*p, "complete", "task"), f"task of workflow {wf.id}", a["task"], tasks)
                    task = tasks.get(a["task"])
                    if task is not None and "outcome" in a:
                        unknown((*p, "complete", "outcome"), f"outcome of task {task.name}",
                                a["outcome"], task.outcomes)
                if step.kind != "expect":
                    continue
                if "state" in a:
                    unknown((*p, "expect", "state"), f"state of workflow {wf.id}", a["state"], states)
                for k, who in enumerate(a.get("approvers", ())):
                    unknown((*p, "expect", "approvers", k), "person", who, people)
                for k, appr in enumerate(a.get("approvals", ())):
                    unknown((*p, "expect", "approvals", k, "approver"), "person", appr["approver"],
                            people)
                for k, t in enumerate(a.get("tasks", ())):
                    unknown((*p, "expect", "tasks", k, "name"), f"task of workflow {wf.id}",
                            t["name"], tasks)
                    if t.get("queue") is not None:
                        unknown((*p, "expect", "tasks", k, "queue"), "group", t["queue"], groups)
                for k, mail in enumerate(a.get("emails", ())):
                    to = mail["to"] if isinstance(mail["to"], list) else [mail["to"]]
                    for who in to:
                        unknown((*p, "expect", "emails", k, "to"), "person", who, people)
                for key in ("hidden", "required"):
                    for k, name in enumerate(a.get(key, ())):
                        unknown((*p, "expect", key, k), f"field of item {item.id}", name, fields)
                if a.get("priority") is not None:
                    unknown((*p, "expect", "priority"), "priority", a["priority"],
                            {x.id for x in settings.priorities})
    return problems


def read_scenario_file(path: Path, shown: PurePosixPath) -> tuple[ScenarioFile | None, list[SpecError]]:
    """Parse and schema-check one scenario file outside a catalog load; `shown` names it in errors."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [SpecError(Location(shown, 1, 1), "", f"cannot read file: {exc.strerror}")]
    if len(raw) > MAX_BYTES:
        return None, [too_large(shown)]
    try:
        doc = parse_yaml(raw, shown)
    except SpecError as exc:
        return None, [exc]
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else f"a {type(doc.data).__name__}"
        return None, [SpecError(doc.locate(()), "", f"file is {what}, expected a mapping with "
                                "kind: Scenarios")]
    errors = schema_errors(doc, "scenario")
    if errors:
        return None, errors
    parsed = parse_scenarios(doc)
    return parsed.model, parsed.problems
