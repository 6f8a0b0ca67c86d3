"""Dry runs: the real request service on a throw-away in-memory database.

`simulate` submits an item as a person, approves every approval (or rejects the one
named), completes every task with its first outcome, lets waits pass, and reports the
answers it assumed and the path of states with the approvers and tasks each step created,
each decision explained (`engine.why`): the priority, the SLA due times and approval deadlines
on the business calendar, why each approver and branch, and the notifications it would send.
The answers go through the portal's own pipeline (`catalog.answers`), typed as the order
form sends them; a scenario (`tests/*.yaml`) can give them instead. Nothing is sent and no
real database is touched.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from catalog.answers import check_item_answers, defaults_for, from_form
from catalog.catalog import Catalog
from catalog.choices import choices_for
from catalog.errors import UsageError, suggest
from catalog.fields import is_empty
from catalog.models import FieldType
from catalog.patterns import sample_match
from catalog.scenario_parser import Scenario
from catalog.workflow import StateKind
from engine import people, why
from engine.businesstime import BusinessCalendar
from engine.db import configure_sqlite, create_schema, make_sessionmaker
from engine.directory import sync_directory
from engine.errors import InvalidInput
from engine.models import Approval, AuditEvent, Notification, OutboxMessage, Request, Task
from engine.service import RequestService
from engine.unit import calendar_of

MAX_STEPS = 200
_TASK_VALUES: dict[FieldType, Any] = {
    FieldType.STRING: "simulated", FieldType.TEXTAREA: "Simulated completion of this task.",
    FieldType.INTEGER: 0, FieldType.NUMBER: 0, FieldType.BOOLEAN: True,
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
    #: answers not given with --set, in form order; those in `defaulted` are the field's default
    assumed: dict[str, Any]
    defaulted: frozenset[str] = frozenset()
    requested_for: str | None = None
    #: when it was ordered, on the business calendar
    started: str = ""
    #: the priority and the SLA due times, each with its reason
    facts: list[str] = field(default_factory=list)
    #: the emails, webhooks and in-app notifications queued, in order, with their recipients
    notifications: list[str] = field(default_factory=list)

    def render(self) -> str:
        target = f" for {self.requested_for}" if self.requested_for else ""
        out = [f"{self.number}: {self.item} ordered by {self.requester}{target}, workflow "
               f"{self.workflow} (version {self.version})"]
        if self.started:
            out.append(f"  Ordered {self.started}")
        out.extend(f"  {fact}" for fact in self.facts)
        if self.assumed:
            out.append("  Assumed answers (not given with --set):")
            out.extend(f"    {k}={shown(v)}" + (" (the field's default)" if k in self.defaulted else "")
                       for k, v in self.assumed.items())
        for i, step in enumerate(self.steps, 1):
            label = f" ({step.label})" if step.label and step.label != step.state else ""
            out.append(f"  {i}. {step.state} [{step.kind}]{label}")
            out.extend(f"       {line}" for line in step.lines)
        out.append(f"  ends: {self.outcome or 'still open'}")
        if self.notifications:
            out.append("  Notifications:")
            out.extend(f"    {line}" for line in self.notifications)
        out.append(f"  would send {self.emails} email(s) and {self.webhooks} webhook(s); "
                   "nothing was sent or stored")
        return "\n".join(out)


def shown(value: Any) -> str:
    """An answer as `--set` takes it: lists comma-separated, tables as JSON, booleans lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def form_value(item_field: Any, text: str) -> Any:
    """A `--set name=value` text typed as the order form would send it: a list for multichoice,
    rows for a table (a JSON list of objects), else the text in the field's type if it has one."""
    if item_field.type is FieldType.MULTICHOICE:
        return [v.strip() for v in text.split(",") if v.strip()]
    if item_field.type is FieldType.TABLE:
        name = item_field.name
        column = item_field.columns[0].name if item_field.columns else "column"
        how = f"a table takes a JSON list of rows, like --set '{name}=[{{\"{column}\": \"...\"}}]'"
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--set {name}: {exc.msg} at character {exc.pos + 1} ({how})") from None
        if not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
            raise UsageError(f"--set {name}: not a list of rows ({how})")
        return [{c.name: from_form(c, row.get(c.name)) for c in item_field.columns} for row in rows]
    return from_form(item_field, text)


def simulate(catalog: Catalog, item_id: str, person: str, values: Mapping[str, str],
             reject: str | None = None, outcomes: Mapping[str, str] | None = None,
             now: datetime | None = None, *, strict: bool = False,
             answers: Mapping[str, Any] | None = None,
             requested_for: str | None = None) -> Simulation:
    """Run `item_id` for `person` to its end on an in-memory copy; report what happened.

    `values` are `--set` texts, over `answers` (typed, as a scenario gives them); each other
    field takes its default (as the order form fills it in), and unless `strict` a needed field
    with none gets a sample value.
    """
    item = catalog.item(item_id)
    if item is None:
        close = difflib.get_close_matches(item_id, [i.id for i in catalog.items], n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise UsageError(f"no catalog item {item_id}{hint}")
    if catalog.directory.person(person) is None:
        raise UsageError(f"--as {person}: no person {person} in the directory")
    wf = catalog.workflow(item.workflow)
    assert wf is not None
    _check_states(wf, reject, outcomes or {})
    given = _given(item, values)
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})
    configure_sqlite(engine)
    create_schema(engine)
    sessions = make_sessionmaker(engine)
    clock = {"now": now or datetime.now(UTC)}
    with sessions.begin() as s:
        sync_directory(s, catalog.directory)
        requester = people.person_context(s, person)
    prefilled = defaults_for(item, requester, catalog)
    given = {**(answers or {}), **given}
    raw = {**prefilled, **given}
    assumed = {} if strict else _assume(catalog, item, raw)
    unticked = {f.name: False for f in item.fields if f.type is FieldType.BOOLEAN}
    checked = check_item_answers(item, {**unticked, **raw, **assumed}, catalog, requester)
    if not checked.ok:
        raise InvalidInput("the answers have errors", checked.errors)
    service = RequestService(sessions, lambda: catalog, lambda: clock["now"])
    req = service.submit(item_id, person, dict(checked.values), requested_for=requested_for)
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
    return _report(sessions, catalog, req.id, wf, person, assumed,
                   [k for k in prefilled if k not in given])


def pick_scenario(catalog: Catalog, spec: str) -> Scenario:
    """The scenario `FILE[:NAME]` names: FILE is a scenario file of the catalog (its path in
    the catalog, or a path to it); NAME is needed when the file holds several scenarios."""
    file, sep, name = spec.partition(":")
    ids = [f.id for f in catalog.scenarios]
    found = next((f for f in catalog.scenarios if f.id == Path(file).as_posix()), None)
    if found is None:
        wanted = {Path(file).resolve(), (catalog.root / file).resolve()}
        found = next((f for f in catalog.scenarios if (catalog.root / f.id).resolve() in wanted),
                     None)
    if found is None:
        hint = suggest(Path(file).as_posix(), ids)
        if Path(file).is_file() or (catalog.root / file).is_file():
            raise UsageError(f"--scenario {spec}: {file} is not one of the catalog's scenario "
                             f"files, its tests/*.yaml ({hint})")
        raise UsageError(f"--scenario {spec}: no scenario file {file} in the catalog ({hint})")
    names = [sc.name for sc in found.scenarios]
    if not sep:
        if len(names) == 1:
            return found.scenarios[0]
        raise UsageError(f"--scenario {spec}: the file has {len(names)} scenarios; name one "
                         f"as {found.id}:NAME (scenarios: {', '.join(names)})")
    scenario = next((sc for sc in found.scenarios if sc.name == name), None)
    if scenario is None:
        raise UsageError(f"--scenario {spec}: {found.id} has no scenario {name!r} "
                         f"({suggest(name, names)})")
    return scenario


def start_time(catalog: Catalog, at: datetime) -> datetime:
    """A start time in UTC; one without a time zone is on the catalog's business calendar."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=calendar_of(catalog).zone)
    return at.astimezone(UTC)


def _member(catalog: Catalog, group_id: str) -> str | None:
    group = catalog.directory.group(group_id)
    return group.members[0] if group and group.members else None


def _check_states(wf: Any, reject: str | None, outcomes: Mapping[str, str]) -> None:
    """Refuse a --reject or --outcome that names no state the option can act on."""
    approvals = [st.name for st in wf.states if st.kind is StateKind.APPROVAL]
    if reject is not None:
        known = f"approval states: {', '.join(approvals)}" if approvals else "it has no approval states"
        state = wf.state(reject)
        if state is None:
            raise UsageError(f"--reject {reject}: workflow {wf.id} has no state {reject} ({known})")
        if state.kind is not StateKind.APPROVAL:
            raise UsageError(f"--reject {reject}: {reject} is a {state.kind.value} state; "
                             f"--reject names an approval state ({known})")
    tasks = [st.name for st in wf.states if st.kind is StateKind.TASK and len(st.tasks) == 1]
    for name, outcome in outcomes.items():
        known = f"task states: {', '.join(tasks)}" if tasks else "it has no task states"
        state = wf.state(name)
        if state is None:
            raise UsageError(f"--outcome {name}: workflow {wf.id} has no state {name} ({known})")
        if state.kind is not StateKind.TASK or len(state.tasks) != 1:
            what = (f"has {len(state.tasks)} tasks" if state.kind is StateKind.TASK
                    else f"is a {state.kind.value} state")
            raise UsageError(f"--outcome {name}: {name} {what}; --outcome names a state with "
                             f"one task ({known})")
        if outcome not in state.tasks[0].outcomes:
            raise UsageError(f"--outcome {name}={outcome}: the task in {name} has no outcome "
                             f"{outcome} (outcomes: {', '.join(state.tasks[0].outcomes)})")


def _given(item: Any, values: Mapping[str, str]) -> dict[str, Any]:
    """The `--set` answers as form values; an unknown field is refused."""
    unknown = sorted(set(values) - {f.name for f in item.fields})
    if unknown:
        raise InvalidInput(f"{item.id} has no field {unknown[0]}",
                           {unknown[0]: [f"Fields: {', '.join(f.name for f in item.fields)}."]})
    return {f.name: form_value(f, values[f.name]) for f in item.fields if f.name in values}


def _assume(catalog: Catalog, item: Any, answers: Mapping[str, Any]) -> dict[str, Any]:
    """A plausible value for each needed field that has no answer."""
    assumed: dict[str, Any] = {}
    for f in item.fields:
        if is_empty(answers.get(f.name)) and (f.required or f.required_if is not None):
            value = sample(catalog, f, {**answers, **assumed})
            if value is not None:
                assumed[f.name] = value
    return assumed


def sample(catalog: Catalog, f: Any, answers: Mapping[str, Any]) -> Any:
    """A value the field accepts, for dry runs; None when none can be guessed."""
    t = f.type
    if t in (FieldType.CHOICE, FieldType.MULTICHOICE):
        options = [c.value for c in choices_for(f, catalog, answers)]
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
        return sample_match(f.pattern)
    text = "Simulated answer for a dry run of this workflow."
    return text.ljust(f.min_length or 0, ".")[: f.effective_max_length or len(text)]


def local(at: datetime, calendar: BusinessCalendar) -> str:
    """`Fri 1 May 2026 16:00 Europe/Amsterdam`: a moment on the business calendar."""
    shown = at.astimezone(calendar.zone)
    return (f"{shown:%a} {shown.day} {shown:%b %Y %H:%M} {calendar.settings.time_zone}")


def _facts(catalog: Catalog, calendar: BusinessCalendar, wf: Any, req: Request) -> list[str]:
    """The record's priority and its SLA due times, each with why."""
    item = catalog.item(req.item_id)
    out = [f"Priority: {why.priority(item, catalog.settings, req.answers, req.priority)}"]
    dues = {"Response": req.response_due, "Resolution": req.resolution_due}
    for what, target, source in why.sla_targets(catalog.settings, wf, req.priority):
        due = dues[what]
        if due is not None:
            out.append("SLA: " + why.sla_due(calendar, what, target, source, req.created_at, due))
    return out


def _approval_lines(a: Approval, state: Any, names: Mapping[str, str],
                    calendar: BusinessCalendar) -> list[str]:
    lines = [f"approval {a.name}: {a.approver_id} via {a.source} ({a.policy}) -> {a.decision}",
             "  why: " + why.approver(a.source, a.approver_id, names, a.delegated_from_id,
                                      a.decided_by_id)]
    if a.due_at is not None:
        spec = next((x for x in state.approvals if x.name == a.name), None) if state else None
        then = f"; on timeout: {spec.on_timeout}" if spec and spec.on_timeout else ""
        lines.append(f"  deadline: {local(a.due_at, calendar)}{then}")
    return lines


def _sent(catalog: Catalog, messages: list[OutboxMessage],
          notes: list[Notification]) -> list[str]:
    """Each email and webhook in the outbox and each in-app notification, with its recipients;
    an address that belongs to a person in the directory shows as their id."""
    by_address = {p.email.lower(): p.id for p in catalog.directory.people if p.email}
    out = []
    for m in messages:
        if m.kind == "email":
            to = [by_address.get(str(x).lower(), str(x)) for x in m.payload.get("to", [])]
            template = m.payload.get("template")
            how = f" (template {template})" if template and template != m.event else ""
            out.append(f"email {m.event}{how} to {', '.join(to) or 'nobody'}")
        else:
            out.append(f"{m.kind} {m.event} to {m.payload.get('url', '?')}")
    out.extend(f"in-app {n.kind} to {n.person_id}: {n.text}" for n in notes)
    return out


def _report(sessions: Any, catalog: Catalog, request_id: int, wf: Any, person: str,
            assumed: Mapping[str, Any], defaulted: list[str]) -> Simulation:
    calendar = calendar_of(catalog)
    names = {p.id: p.name for p in catalog.directory.people}
    with sessions() as s:
        req = s.get(Request, request_id)
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id)
                                .order_by(AuditEvent.id)))
        approvals = list(s.scalars(select(Approval).where(Approval.request_id == request_id)
                                   .order_by(Approval.id)))
        tasks = list(s.scalars(select(Task).where(Task.request_id == request_id).order_by(Task.id)))
        messages = list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        outbox = [m.kind for m in messages]
        notes = list(s.scalars(select(Notification).order_by(Notification.id)))
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
                    step.lines.extend(_approval_lines(a, state, names, calendar))
            for t in tasks:
                if t.visit == visit:
                    step.lines.append(f"task {t.name} in queue {t.queue}: {t.title!r} -> "
                                      f"{t.outcome or t.status}")
                    if t.due_at is not None:
                        step.lines.append(f"  due: {local(t.due_at, calendar)}")
            if state is not None and state.kind is StateKind.DECISION:
                route = next((x for x in events if x.id > e.id and x.from_state == e.to_state),
                             None)
                reason = (route.detail or {}).get("why") if route is not None else None
                step.lines.append(f"decides: {reason}" if reason
                                  else f"decides: -> {route.to_state if route else None}")
            if state is not None and state.actions:
                step.lines.append("actions: " + ", ".join(a.kind for a in state.actions))
            if state is not None and state.is_end:
                step.lines.append(f"end: {state.outcome}")
            steps.append(step)
        if req.attention_error and steps:  # a step failed: the run stops where the request halted
            steps[-1].lines.append(f"needs attention: {req.attention_error}")
        taken = {k: v for k, v in req.answers.items()
                 if (k in assumed or k in defaulted) and not is_empty(v)}
        return Simulation(req.number or "", req.item_id, wf.id, wf.version, person, steps,
                          req.outcome, outbox.count("email"), outbox.count("webhook"),
                          taken, frozenset(defaulted) - set(assumed),
                          req.requested_for_id if req.requested_for_id != person else None,
                          local(req.created_at, calendar), _facts(catalog, calendar, wf, req),
                          _sent(catalog, messages, notes))
