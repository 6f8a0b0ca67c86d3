"""Dry runs: the real request service on a throw-away in-memory database.

`simulate` submits an item as a person, approves every approval (or rejects the one
named), completes every task with its first outcome, lets waits pass, and reports the
path of states with the approvers and tasks each step created. Nothing is sent and no
real database is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from catalog.loader import Catalog
from catalog.models import FieldType
from catalog.workflow import StateKind
from engine.db import configure_sqlite, create_schema, make_sessionmaker
from engine.directory import sync_directory
from engine.errors import InvalidInput
from engine.models import Approval, AuditEvent, OutboxMessage, Request, Task
from engine.service import RequestService

MAX_STEPS = 200
_TASK_VALUES: dict[FieldType, Any] = {
    FieldType.STRING: "simulated", FieldType.TEXTAREA: "Simulated completion of this task.",
    FieldType.INTEGER: 0, FieldType.NUMBER: 0, FieldType.BOOLEAN: False,
}


@dataclass
class StepReport:
    state: str
    kind: str
    label: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Simulation:
    number: str
    item: str
    workflow: str
    version: str
    requester: str
    steps: list[StepReport]
    outcome: str | None
    emails: int
    webhooks: int
    assumed: dict[str, Any]

    def render(self) -> str:
        out = [f"{self.number}: {self.item} ordered by {self.requester}, workflow "
               f"{self.workflow} (version {self.version})"]
        if self.assumed:
            out.append("  assumed answers: " + ", ".join(f"{k}={v!r}" for k, v in self.assumed.items()))
        for i, step in enumerate(self.steps, 1):
            label = f" ({step.label})" if step.label and step.label != step.state else ""
            out.append(f"  {i}. {step.state} [{step.kind}]{label}")
            out.extend(f"       {line}" for line in step.lines)
        out.append(f"  ends: {self.outcome or 'still open'}")
        out.append(f"  would send {self.emails} email(s) and {self.webhooks} webhook(s); "
                   "nothing was sent or stored")
        return "\n".join(out)


def coerce(item_field: Any, text: str) -> Any:
    """A `--set name=value` value in the field's type."""
    t = item_field.type
    if t is FieldType.INTEGER:
        return int(text)
    if t is FieldType.NUMBER:
        return float(text)
    if t is FieldType.BOOLEAN:
        return text.strip().lower() in ("1", "true", "yes", "on")
    if t is FieldType.MULTICHOICE:
        return [v.strip() for v in text.split(",") if v.strip()]
    if t is FieldType.TABLE:
        import json

        return json.loads(text)
    return text


def simulate(catalog: Catalog, item_id: str, person: str, values: Mapping[str, str],
             reject: str | None = None, outcomes: Mapping[str, str] | None = None,
             now: datetime | None = None) -> Simulation:
    """Run `item_id` for `person` to its end on an in-memory copy; report what happened."""
    item = catalog.item(item_id)
    if item is None:
        raise InvalidInput(f"no catalog item {item_id}", {"item": ["Unknown item."]})
    if catalog.directory.person(person) is None:
        raise InvalidInput(f"no person {person} in the directory", {"as": ["Unknown person."]})
    answers, assumed = _answers(catalog, item, values)
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})
    configure_sqlite(engine)
    create_schema(engine)
    sessions = make_sessionmaker(engine)
    clock = {"now": now or datetime.now(UTC)}
    with sessions.begin() as s:
        sync_directory(s, catalog.directory)
    service = RequestService(sessions, lambda: catalog, lambda: clock["now"])
    req = service.submit(item_id, person, answers)
    wf = catalog.workflow(item.workflow)
    assert wf is not None
    for _ in range(MAX_STEPS):
        with sessions() as s:
            current = s.scalar(select(Request).where(Request.id == req.id))
            assert current is not None
            if current.status == "closed":
                break
            state = wf.state(current.state)
            assert state is not None
            pending = list(s.scalars(select(Approval).where(
                Approval.request_id == req.id, Approval.visit == current.visit,
                Approval.decision == "pending").order_by(Approval.id)))
            open_tasks = list(s.scalars(select(Task).where(
                Task.request_id == req.id, Task.visit == current.visit,
                Task.status == "open").order_by(Task.id)))
        if state.kind is StateKind.APPROVAL and pending:
            a = pending[0]
            if reject == state.name:
                service.reject(a.id, a.approver_id, "rejected in a simulation")
            else:
                service.approve(a.id, a.approver_id, "approved in a simulation")
        elif state.kind is StateKind.TASK and open_tasks:
            t = open_tasks[0]
            spec = next(x for x in state.tasks if x.name == t.name)
            outcome = (outcomes or {}).get(state.name) if len(state.tasks) == 1 else None
            fill = {f.name: _TASK_VALUES.get(f.type) for f in spec.fields if f.required}
            worker = t.assignee_id or _member(catalog, t.queue) or person
            service.complete_task(t.id, worker, outcome, fill)
        elif state.kind is StateKind.WAIT:
            clock["now"] += timedelta(days=60)
            service.run_due()
        else:
            break
    return _report(sessions, catalog, req.id, wf, person, assumed)


def _member(catalog: Catalog, group_id: str) -> str | None:
    group = catalog.directory.group(group_id)
    return group.members[0] if group and group.members else None


def _answers(catalog: Catalog, item: Any, values: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The given answers, with a plausible value assumed for each other needed field."""
    answers: dict[str, Any] = {}
    assumed: dict[str, Any] = {}
    unknown = sorted(set(values) - {f.name for f in item.fields})
    if unknown:
        raise InvalidInput(f"{item.id} has no field {unknown[0]}",
                           {unknown[0]: [f"Fields: {', '.join(f.name for f in item.fields)}."]})
    for f in item.fields:
        if f.name in values:
            try:
                answers[f.name] = coerce(f, values[f.name])
            except ValueError:
                article = "an" if f.type.value[0] in "aeiou" else "a"
                raise InvalidInput(f"{f.name}={values[f.name]} is not {article} {f.type.value}",
                                   {f.name: [f"Must be {article} {f.type.value}."]}) from None
        elif f.default is not None:
            answers[f.name] = f.default
        elif f.required or f.required_if is not None:
            value = sample(catalog, f, answers)
            if value is not None:
                answers[f.name] = assumed[f.name] = value
    return answers, assumed


def sample(catalog: Catalog, f: Any, answers: Mapping[str, Any]) -> Any:
    """A value the field accepts, for dry runs; None when none can be guessed."""
    t = f.type
    if t in (FieldType.CHOICE, FieldType.MULTICHOICE):
        options = [c.value for c in f.choices
                   if not f.depends_on or c.parent == answers.get(f.depends_on)]
        source = f.choices_from or ""
        if not options and source.startswith("lookup:"):
            lookup = catalog.lookup(source[7:])
            options = [v.value for v in lookup.values
                       if not f.depends_on or v.parent == answers.get(f.depends_on)] if lookup else []
        elif not options and source == "people":
            options = [p.id for p in catalog.directory.people if p.active]
        elif not options and source == "groups":
            options = [g.id for g in catalog.directory.groups]
        elif not options and source.startswith("group:"):
            group = catalog.directory.group(source[6:])
            options = list(group.members) if group else []
        if not options:
            return None
        return [options[0]] if t is FieldType.MULTICHOICE else options[0]
    if t is FieldType.PERSON:
        return next((p.id for p in catalog.directory.people if p.active), None)
    if t is FieldType.BOOLEAN:
        return True
    if t in (FieldType.INTEGER, FieldType.NUMBER):
        low = f.min if isinstance(f.min, int | float) else 0
        return int(low) if t is FieldType.INTEGER else float(low)
    if t is FieldType.DATE:
        return (f.min if f.min is not None else datetime.now(UTC).date()).isoformat()
    if t is FieldType.EMAIL:
        return "someone@example.com"
    if t is FieldType.URL:
        return "https://example.com/"
    if t is FieldType.TABLE:
        row = {c.name: sample(catalog, c, {}) for c in f.columns if c.required}
        return [row]
    if f.pattern:
        return pattern_sample(f.pattern)
    text = "Simulated answer for a dry run of this workflow."
    return text.ljust(f.min_length or 0, ".")[: f.effective_max_length or len(text)]


def pattern_sample(pattern: str) -> str | None:
    """A string the pattern fully matches, for the simple patterns forms use."""
    import re
    import re._constants as c
    import re._parser as sre

    def gen(items: Any) -> str:
        out = []
        for op, arg in items:
            if op == c.LITERAL:
                out.append(chr(arg))
            elif op == c.NOT_LITERAL:
                out.append("a" if chr(arg) != "a" else "b")
            elif op == c.ANY:
                out.append("a")
            elif op == c.IN:
                out.append(_in(arg))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                low, _high, sub = arg
                out.append(gen(sub) * max(low, 1))
            elif op == c.SUBPATTERN:
                out.append(gen(arg[-1]))
            elif op == c.BRANCH:
                out.append(gen(arg[1][0]))
            elif op == c.CATEGORY:
                out.append(_category(arg))
        return "".join(out)

    def _in(arg: Any) -> str:
        for op, value in arg:
            if op == c.LITERAL:
                return chr(value)
            if op == c.RANGE:
                return chr(value[0])
            if op == c.CATEGORY:
                return _category(value)
        return "a"

    def _category(cat: Any) -> str:
        return {c.CATEGORY_DIGIT: "1", c.CATEGORY_SPACE: " "}.get(cat, "a")

    try:
        candidate = gen(sre.parse(pattern))
        return candidate if re.fullmatch(pattern, candidate) else None
    except Exception:  # noqa: BLE001 - any pattern we cannot sample: the user gives a value
        return None


def _report(sessions: Any, catalog: Catalog, request_id: int, wf: Any, person: str,
            assumed: dict[str, Any]) -> Simulation:
    with sessions() as s:
        req = s.get(Request, request_id)
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id)
                                .order_by(AuditEvent.id)))
        approvals = list(s.scalars(select(Approval).where(Approval.request_id == request_id)
                                   .order_by(Approval.id)))
        tasks = list(s.scalars(select(Task).where(Task.request_id == request_id).order_by(Task.id)))
        outbox = list(s.scalars(select(OutboxMessage.kind)))
        steps: list[StepReport] = []
        visit = 0
        for e in events:
            if e.to_state is None or e.event not in ("submitted", "transition"):
                continue
            visit += 1
            state = wf.state(e.to_state)
            step = StepReport(e.to_state, state.kind.value if state else "?",
                              state.label if state else "")
            for a in approvals:
                if a.visit == visit:
                    step.lines.append(f"approval {a.name}: {a.approver_id} via {a.source} "
                                      f"({a.policy}) -> {a.decision}")
            for t in tasks:
                if t.visit == visit:
                    step.lines.append(f"task {t.name} in queue {t.queue}: {t.title!r} -> "
                                      f"{t.outcome or t.status}")
            if state is not None and state.kind is StateKind.DECISION:
                nxt = next((x.to_state for x in events if x.from_state == e.to_state), None)
                step.lines.append(f"decides: -> {nxt}")
            if state is not None and state.actions:
                step.lines.append("actions: " + ", ".join(a.kind for a in state.actions))
            if state is not None and state.is_end:
                step.lines.append(f"end: {state.outcome}")
            steps.append(step)
        kept = {k: v for k, v in assumed.items() if req.answers.get(k) is not None}
        return Simulation(req.number or "", req.item_id, wf.id, wf.version, person, steps,
                          req.outcome, outbox.count("email"), outbox.count("webhook"), kept)
