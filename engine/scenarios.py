"""Scenario tests: the real request service on an in-memory database with a controlled clock.

The schema and the directory are written once into a template database; each scenario
starts from a copy of it (SQLite's backup API), so one costs a copy, not a schema.
A step that cannot be done (approve when no approval is pending) and an expectation that
does not hold are failures with the step's file:line:col; nothing raises to the caller.
Timers fire only in `wait` steps, each at its own due time, as the worker would fire them.
"""

from __future__ import annotations

import sqlite3
import time as wallclock
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from catalog.answers import check_item_answers, defaults_for
from catalog.catalog import Catalog
from catalog.errors import DeskflowError, Location
from catalog.expressions import ExpressionError
from catalog.scenario_parser import Scenario, ScenarioFile, Step
from engine import people
from engine.businesstime import BusinessCalendar
from engine.db import configure_sqlite, create_schema, make_sessionmaker
from engine.directory import sync_directory
from engine.errors import InvalidInput
from engine.models import Approval, OutboxMessage, Request, Task, Timer
from engine.service import RequestService

#: timers fired by one `wait` before it gives up (a loop of reminders)
MAX_FIRINGS = 1000


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a scenario failed: at which step, a headline, and expected/actual lines."""

    where: Location
    step: int
    message: str
    diff: tuple[str, ...] = ()

    def render(self) -> str:
        step = f"step {self.step}: " if self.step else ""
        return "\n".join([f"{self.where}: {step}{self.message}",
                          *(f"    {line}" for line in self.diff)])


@dataclass(frozen=True, slots=True)
class Result:
    scenario: Scenario
    file: str
    steps: int
    seconds: float
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


class StepFailed(Exception):
    def __init__(self, message: str, diff: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message, self.diff = message, tuple(diff)


class ScenarioRunner:
    """Runs scenarios of one catalog; build once, `run` many."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.calendar = BusinessCalendar(catalog.settings)
        self.emails = {p.email.lower(): p.id for p in catalog.directory.people if p.email}
        self._template = _memory_engine()
        create_schema(self._template)
        with make_sessionmaker(self._template).begin() as s:
            sync_directory(s, catalog.directory)
        self._engine = _memory_engine()
        self._sessions = make_sessionmaker(self._engine)
        self.clock = datetime(2026, 11, 30, 8, tzinfo=UTC)
        self.service = RequestService(self._sessions, lambda: catalog, lambda: self.clock)

    def run_files(self, files: Iterable[ScenarioFile]) -> list[Result]:
        return [self.run(sc, f.id) for f in files for sc in f.scenarios]

    def run(self, sc: Scenario, file: str) -> Result:
        """Run one scenario from a fresh copy of the template database."""
        started = wallclock.perf_counter()
        _copy(self._template, self._engine)
        self.clock = sc.at.replace(tzinfo=self.calendar.zone).astimezone(UTC)
        self._seen_mail = 0
        done = 0
        failure = None
        try:
            number = self._submit(sc)
            for done, step in enumerate(sc.steps, 1):
                try:
                    self._step(sc, number, step)
                except StepFailed as exc:
                    failure = Failure(step.where, done, exc.message, exc.diff)
                    break
                except DeskflowError as exc:
                    failure = Failure(step.where, done, f"{step.kind}: {_message(exc)}")
                    break
        except StepFailed as exc:
            failure = Failure(sc.where, 0, exc.message, exc.diff)
        except DeskflowError as exc:
            failure = Failure(sc.where, 0, f"cannot order {sc.item}: {_message(exc)}")
        return Result(sc, file, done, wallclock.perf_counter() - started, failure)

    # ---------------------------------------------------------------- actions

    def _submit(self, sc: Scenario) -> str:
        item = self.catalog.item(sc.item)
        if item is None:
            raise StepFailed(f"no catalog item {sc.item}")
        with self._sessions() as s:
            requester = people.person_context(s, sc.requester)
        answers = {**defaults_for(item, requester, self.catalog), **sc.answers}
        req = self.service.submit(sc.item, sc.requester, answers, requested_for=sc.requested_for)
        return req.number or ""

    def _step(self, sc: Scenario, number: str, step: Step) -> None:
        a, svc = step.args, self.service
        if step.kind == "expect":
            self._expect(sc, number, a)
            return
        if step.kind in ("approve", "reject"):
            approval = self._pending_approval(number, step.kind, a["as"])
            if step.kind == "approve":
                svc.approve(approval, a["as"], a.get("comment", ""))
            else:
                svc.reject(approval, a["as"], a.get("comment", "rejected in a scenario test"))
        elif step.kind == "complete":
            task = self._open_task(number, a["task"])
            svc.complete_task(task, a["as"], a.get("outcome"), dict(a.get("answers", {})))
        elif step.kind == "wait":
            self._wait(step)
        elif step.kind == "ask":
            svc.ask_requester(number, a["as"], a["text"])
        elif step.kind == "reply":
            svc.answer(number, a["as"], a["text"])
        elif step.kind == "comment":
            svc.comment(number, a["as"], a["text"], internal=bool(a.get("internal", False)))
        elif step.kind == "cancel":
            svc.cancel(number, a["as"], a.get("reason", ""))

    def _wait(self, step: Step) -> None:
        """Move the clock on, firing each timer at its own due time, in order."""
        assert step.wait is not None
        wait = step.wait
        end = (self.calendar.add(self.clock, wait) if wait.business
               else self.clock + timedelta(minutes=wait.minutes))
        for _ in range(MAX_FIRINGS):
            with self._sessions() as s:
                due = s.scalar(select(func.min(Timer.due_at)).where(Timer.status == "pending"))
            if due is None or _utc(due) > end:
                break
            self.clock = max(self.clock, _utc(due))
            self.service.run_due()
        else:
            raise StepFailed(f"wait: more than {MAX_FIRINGS} timers fired; a reminder loop?")
        self.clock = end

    def _request(self, s: Session, number: str) -> Request:
        req = s.scalar(select(Request).where(Request.number == number))
        assert req is not None
        return req

    def _pending_approval(self, number: str, verb: str, who: str) -> int:
        with self._sessions() as s:
            req = self._request(s, number)
            pending = list(s.scalars(select(Approval).where(
                Approval.request_id == req.id, Approval.visit == req.visit,
                Approval.decision == "pending").order_by(Approval.id)))
            mine = next((x for x in pending if x.approver_id == who), None)
            if mine is None:
                waiting = ", ".join(x.approver_id for x in pending) or "nobody"
                raise StepFailed(f"{verb}: {who} has no pending approval; the request is "
                                 f"{_where(req)} (approvals pending from: {waiting})")
            return mine.id

    def _open_task(self, number: str, name: str) -> int:
        with self._sessions() as s:
            req = self._request(s, number)
            tasks = list(s.scalars(select(Task).where(
                Task.request_id == req.id, Task.visit == req.visit,
                Task.status == "open").order_by(Task.id)))
            task = next((t for t in tasks if t.name == name), None)
            if task is None:
                shown = ", ".join(t.name for t in tasks) or "none"
                raise StepFailed(f"complete: no open task {name}; the request is {_where(req)} "
                                 f"(open tasks: {shown})")
            return task.id

    # ---------------------------------------------------------------- expectations

    def _expect(self, sc: Scenario, number: str, expected: Mapping[str, Any]) -> None:
        with self._sessions() as s:
            actual = self._actual(s, sc, self._request(s, number), expected)
        diff: list[str] = []
        for key, want in expected.items():
            got = actual[key]
            if _normal(key, want) != _normal(key, got):
                diff += [f"{key}:", f"  - expected: {_shown(key, want)}",
                         f"  + actual:   {_shown(key, got)}"]
        if diff:
            raise StepFailed("expectation not met", diff)

    def _actual(self, s: Session, sc: Scenario, req: Request,
                wanted: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"state": req.state, "status": req.status, "outcome": req.outcome,
                               "priority": req.priority, "sla": req.sla_state}
        if "approvers" in wanted or "approvals" in wanted:
            pending = list(s.scalars(select(Approval).where(
                Approval.request_id == req.id, Approval.visit == req.visit,
                Approval.decision == "pending").order_by(Approval.id)))
            out["approvers"] = [a.approver_id for a in pending]
            keys = {k for x in wanted.get("approvals", ()) for k in x}
            out["approvals"] = [{k: v for k, v in (("approver", a.approver_id),
                                                  ("source", a.source), ("name", a.name))
                                 if k in keys} for a in pending]
        if "tasks" in wanted:
            keys = {k for x in wanted["tasks"] for k in x}
            tasks = s.scalars(select(Task).where(Task.request_id == req.id,
                                                 Task.status == "open").order_by(Task.id))
            out["tasks"] = [{k: v for k, v in (("name", t.name), ("queue", t.queue),
                                               ("assignee", t.assignee_id)) if k in keys}
                            for t in tasks]
        if "due" in wanted:
            out["due"] = {k: self._local(v) for k, v in (("response", req.response_due),
                                                         ("resolution", req.resolution_due))
                          if k in wanted["due"]}
        if "emails" in wanted:
            rows = list(s.scalars(select(OutboxMessage).where(
                OutboxMessage.kind == "email", OutboxMessage.id > self._seen_mail)
                .order_by(OutboxMessage.id)))
            self._seen_mail = max([self._seen_mail, *(r.id for r in rows)])
            out["emails"] = [{"to": self.emails.get(str(to).lower(), str(to)), "event": r.event}
                             for r in rows for to in r.payload.get("to", [])]
        if "hidden" in wanted or "required" in wanted:
            out["hidden"], out["required"] = self._form_rules(s, sc)
        return out

    def _form_rules(self, s: Session, sc: Scenario) -> tuple[list[str], list[str]]:
        item = self.catalog.item(sc.item)
        assert item is not None
        requester = people.person_context(s, sc.requester)
        answers = {**defaults_for(item, requester, self.catalog), **sc.answers}
        checked = check_item_answers(item, answers, self.catalog, requester)
        names = {"form": checked.values, "requester": dict(requester or {})}
        required = []
        for f in item.fields:
            if f.name in checked.hidden:
                continue
            try:
                if f.required or (f.required_if is not None
                                  and f.required_if.test(names, self.catalog.functions())):
                    required.append(f.name)
            except ExpressionError as exc:
                raise StepFailed(f"expect: cannot decide whether {f.name} is required: "
                                 f"{exc.message}") from None
        return sorted(checked.hidden), required

    def _local(self, at: datetime | None) -> str | None:
        return None if at is None else _utc(at).astimezone(self.calendar.zone).strftime(
            "%Y-%m-%d %H:%M")


def run_scenarios(catalog: Catalog, files: Iterable[ScenarioFile]) -> list[Result]:
    """Run every scenario of `files` against `catalog`, in order."""
    return ScenarioRunner(catalog).run_files(files)


def _memory_engine() -> Engine:
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})
    configure_sqlite(engine)
    return engine


def _copy(source: Engine, target: Engine) -> None:
    src, dst = source.raw_connection(), target.raw_connection()
    try:
        a, b = src.driver_connection, dst.driver_connection
        assert isinstance(a, sqlite3.Connection) and isinstance(b, sqlite3.Connection)
        a.backup(b)
    finally:
        src.close()
        dst.close()


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _where(req: Request) -> str:
    return f"in state {req.state}" if req.status == "open" else f"closed ({req.outcome})"


def _message(exc: DeskflowError) -> str:
    if isinstance(exc, InvalidInput) and exc.fields:
        return str(exc)
    return getattr(exc, "message", None) or str(exc)


def _normal(key: str, value: Any) -> Any:
    """A value as compared: lists in any order, an email's `to` one person each."""
    if key == "emails":
        rows = []
        for mail in value:
            to = mail["to"] if isinstance(mail["to"], list) else [mail["to"]]
            rows += [(who, mail["event"]) for who in to]
        return sorted(rows)
    if key in ("approvers", "hidden", "required"):
        return sorted(value)
    if key in ("approvals", "tasks"):
        return sorted(sorted((k, str(v)) for k, v in x.items()) for x in value)
    if key == "due":
        return dict(value)
    return value


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if key == "emails":
        rows = _normal(key, value)
        return ", ".join(f"{event} to {who}" for who, event in rows) or "no emails"
    if key in ("approvers", "hidden", "required"):
        return ", ".join(sorted(value)) or "none"
    if key in ("approvals", "tasks"):
        return "; ".join(", ".join(f"{k} {v}" for k, v in row) for row in _normal(key, value)) \
            or "none"
    if key == "due":
        return ", ".join(f"{k} {v or 'none'}" for k, v in sorted(value.items())) or "none"
    return str(value)

