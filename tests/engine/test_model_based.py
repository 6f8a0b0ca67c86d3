"""Model-based test of the request service (docs/reliability-tests.md, test 1).

A Hypothesis `RuleBasedStateMachine` submits acme requests (laptops of both models, normal
changes of low and high risk, onboarding, incidents, cheap and dear licences, read and admin
access; valid answers and invalid ones) and then approves, rejects, delegates, sets
standing delegations, claims, completes, escalates and reassigns tasks, cancels, comments,
asks and answers, lets time pass and fires timers, publishes new catalog versions (a state
added or renamed in four workflows) and restarts the service, warm or with cold caches.
Actors are legal and illegal alike: the approver, a delegate, the requester, an admin, a
queue member, a stranger. Every call must succeed or raise NotAllowed, NotFound, Conflict
or InvalidInput; where the model knows the answer, it must be the right one; a refused
call writes nothing; a successful one changes only the rows of its own request.

After every step `check_invariants` reads the whole database:
- each request's state is declared in the workflow version it pinned (parsed from
  `WorkflowVersion.definition`, whose hash must still be its version), and the pin never moves;
- its audit rows that change state are the `submitted` row then `transition` rows, each a
  declared (from, trigger, to), chained, ending in the current state, one per state entered;
- a closed request never changes again; open ⇔ not in an end state;
- an approval is decided at most once (one audit row), a decision never changes, pending
  rows turn `closed` only when their visit ended and `delegated`/`escalated` only with an
  audit row; nobody decides their own request; one person casts one vote per approval;
  leaving an approval state `approved` meets its policy (any, all, quorum of distinct people);
- only the current visit has pending approvals or open tasks; a timer of an ended visit never
  fires; a task state is left only by its task's outcome, or when all parallel tasks are done;
- the database matches the machine's model of which requests exist and which are closed.

Each example runs on a fresh SQLite file (and, when DESKFLOW_TEST_DATABASE_URL is set, on
PostgreSQL with a quarter of the examples). The default budget (60 examples of 30 steps)
suits CI on 2 cores; nightly runs raise it with the environment, and `-rP` prints what was
covered (calls by outcome, states reached):

    DESKFLOW_HYPOTHESIS_EXAMPLES=10000 DESKFLOW_HYPOTHESIS_STEPS=50 \
        pytest tests/engine/test_model_based.py -rP
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.catalog import Catalog
from catalog.loader import load_catalog
from catalog.source import SourceDoc
from catalog.workflow import StateKind, Workflow
from catalog.workflow_parser import parse_workflow, workflow_version
from engine import versions
from engine.db import create_schema, make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.models import (
    Approval,
    AuditEvent,
    Base,
    Delegation,
    Request,
    Task,
    Timer,
    WorkflowVersion,
)
from engine.permissions import can_order
from engine.service import RequestService
from tests.acme import ACME, ACME_ANSWERS
from tests.engine.conftest import Clock
from workflows import compiler

EXAMPLES = int(os.environ.get("DESKFLOW_HYPOTHESIS_EXAMPLES", "60"))
STEPS = int(os.environ.get("DESKFLOW_HYPOTHESIS_STEPS", "30"))
TYPED = (NotAllowed, NotFound, Conflict, InvalidInput)
START = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)  # Monday 09:30 in Amsterdam
REQUEST_LEVEL = -1
DIRECTORY_TABLES = {"people", "groups", "memberships", "roles", "person_roles"}

#: (label, item, answers changed from ACME_ANSWERS, whether the answers are valid)
ORDERS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("laptop-std14", "new-laptop", {}, True),
    ("laptop-pro16", "new-laptop",
     {"model": "pro16", "justification": "I render 3D models all day long."}, True),
    ("laptop-pro16-no-reason", "new-laptop", {"model": "pro16"}, False),
    ("change-low", "normal-change", {}, True),
    ("change-high", "normal-change", {"customer_facing": True, "rollback_plan": "Restore the image."},
     True),
    ("change-short-title", "normal-change", {"change_title": "Fix"}, False),
    ("onboarding", "new-hire-onboarding", {}, True),
    ("onboarding-no-end-date", "new-hire-onboarding", {"contract_type": "fixed-term"}, False),
    ("incident", "report-incident", {}, True),
    ("incident-low", "report-incident", {"impact": "low", "urgency": "low"}, True),
    ("licence-figma", "software-licence", {}, True),
    ("licence-adobe", "software-licence", {"software": "adobe-creative-cloud"}, True),
    ("access-read", "system-access", {}, True),
    ("access-admin", "system-access",
     {"level": "admin", "role": "crm-admin", "access_until": "2027-01-31"}, True),
]
TASK_VALUES = {"string": "user.one", "textarea": "Completed as planned, with no problems at all.",
               "integer": 0, "number": 0, "boolean": False}
CLOCK_STEPS = [timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6), timedelta(days=1),
               timedelta(days=3), timedelta(days=8)]


# ------------------------------------------------------------------ catalog versions

def _edit(path: Path, *replacements: tuple[str, str]) -> None:
    """Apply each replacement exactly once, so a changed acme fails loudly here."""
    body = path.read_text()
    for old, new in replacements:
        assert body.count(old) == 1, f"{path.name}: expected one {old!r} to edit"
        body = body.replace(old, new)
    path.write_text(body)


def publish_variants(acme_dir: Path, into: Path) -> dict[str, Catalog]:
    """Acme, and two later versions of it: states added and renamed in four workflows."""
    v2, v3 = into / "v2", into / "v3"
    for target in (v2, v3):
        shutil.copytree(acme_dir, target)
    # v2: the laptop workflow gets an extra task state; the incident's first state is renamed
    _edit(v2 / "workflows" / "laptop-request.yaml",
          ("on: {approved: check_model, rejected: rejected}",
           "on: {approved: asset_check, rejected: rejected}"),
          ("\n  check_model:\n",
           "\n  asset_check:\n    label: Checking the asset register\n    task:\n"
           "      title: Check for an old laptop\n      queue: it-hardware\n"
           "      outcomes: [clear, has_old_laptop]\n"
           "    on: {clear: check_model, has_old_laptop: rejected}\n\n  check_model:\n"))
    _edit(v2 / "workflows" / "incident.yaml",
          ("start: triage", "start: first_line"), ("\n  triage:\n", "\n  first_line:\n"))
    # v3: the change review is renamed; onboarding gets a quorum of two directors
    _edit(v3 / "workflows" / "normal-change.yaml",
          ("next: review", "next: board_review"), ("\n  review:\n", "\n  board_review:\n"))
    _edit(v3 / "workflows" / "onboarding.yaml",
          ("on: {approved: prepare, rejected: rejected}",
           "on: {approved: budget_approval, rejected: rejected}"),
          ("\n  prepare:\n",
           "\n  budget_approval:\n    label: Waiting for two directors\n    approval:\n"
           "      approvers: \"role:director\"\n      policy: {quorum: 2}\n"
           "      timeout: 2 business days\n      on_timeout: escalate\n"
           "    on: {approved: prepare, rejected: rejected}\n\n  prepare:\n"))
    catalogs = {"acme": load_catalog(acme_dir), "v2": load_catalog(v2), "v3": load_catalog(v3)}
    for name, cat in catalogs.items():
        assert cat.ok, (name, [e.render() for e in cat.errors])
    return catalogs


# ------------------------------------------------------------------ invariants

_parsed: dict[str, Workflow] = {}


def pinned(row: Any) -> Workflow:
    """The workflow of a stored version, parsed here from its stored definition."""
    assert workflow_version(row.definition) == row.version, (
        f"workflow version {row.workflow_id} {row.version}: stored definition was changed")
    wf = _parsed.get(row.version)
    if wf is None:
        parsed = parse_workflow(SourceDoc(PurePosixPath(f"workflow_versions/{row.id}"),
                                          row.definition, ""))
        assert parsed.model is not None, [p.render() for p in parsed.problems]
        wf = _parsed[row.version] = parsed.model
    return wf


@dataclass
class Seen:
    """What earlier checks saw, for the invariants that compare with the past."""

    versions: dict[int, int] = field(default_factory=dict)        # request -> version row
    closed: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    approvals: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    tasks: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    timers: dict[int, str] = field(default_factory=dict)
    stale_timers: set[int] = field(default_factory=set)


def _rows(session: Session, model: type[Base]) -> list[Any]:
    """Plain rows (no ORM objects: this runs after every step)."""
    table = model.__table__
    return list(session.execute(select(table).order_by(table.c.id)))


def _by_request(rows: Iterable[Any]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        out[r.request_id].append(r)
    return out


def check_invariants(session: Session, seen: Seen) -> None:
    """Raise AssertionError unless the database is one the engine may legally produce."""
    wvs = {v.id: v for v in _rows(session, WorkflowVersion)}
    audit = _by_request(_rows(session, AuditEvent))
    approvals = _by_request(_rows(session, Approval))
    tasks = _by_request(_rows(session, Task))
    timers = _by_request(_rows(session, Timer))
    for req in _rows(session, Request):
        n = req.number
        assert seen.versions.setdefault(req.id, req.workflow_version_id) == req.workflow_version_id, (
            f"{n} moved from version row {seen.versions[req.id]} to {req.workflow_version_id}")
        wf = pinned(wvs[req.workflow_version_id])
        state = wf.state(req.state)
        assert state is not None, f"{n}: state {req.state} is not declared in {wf.id} {wf.version}"
        assert req.status in ("open", "closed"), f"{n}: status {req.status}"
        assert (req.status == "closed") == state.is_end, f"{n}: {req.status} in {req.state}"
        if state.is_end:
            assert req.outcome == (state.outcome or state.name), f"{n}: outcome {req.outcome}"
        snap = (req.status, req.state, req.outcome, req.visit, req.closed_at)
        if req.id in seen.closed:
            was = seen.closed[req.id]
            assert was == snap, f"{n} changed after it closed: {was} -> {snap}"
        elif req.status == "closed":
            seen.closed[req.id] = snap
        moves = _check_audit_path(req, wf, audit.get(req.id, []))
        _check_approvals(req, wf, approvals.get(req.id, []), audit.get(req.id, []), moves, seen)
        _check_tasks(req, wf, tasks.get(req.id, []), moves, seen)
        _check_timers(req, timers.get(req.id, []), seen)
        if req.waiting_on_requester:
            assert req.status == "open" and req.sla_paused_at is not None, f"{n}: waiting but clocks run"
            assert not [t for t in timers.get(req.id, []) if t.status == "pending"
                        and t.kind.startswith("sla_")], f"{n}: SLA timers pending while paused"


def _check_audit_path(req: Any, wf: Workflow, rows: list[Any]) -> list[Any]:
    """Every state change is one audit row on a declared transition, ending in the state."""
    n = req.number
    declared = {(t.source, t.trigger, t.dest) for t in wf.transitions()}
    moves = [a for a in rows if a.from_state is not None or a.to_state is not None]
    assert moves and moves[0].event == "submitted", f"{n}: first state change is not the submission"
    assert (moves[0].from_state, moves[0].to_state) == (None, wf.start), f"{n}: submitted wrongly"
    for prev, row in zip(moves, moves[1:], strict=False):
        assert row.event == "transition", f"{n}: audit {row.id} {row.event} changes the state"
        assert row.from_state == prev.to_state, f"{n}: audit {row.id} starts from {row.from_state}"
        move = (row.from_state, row.detail.get("trigger"), row.to_state)
        assert move in declared, f"{n}: audit {row.id} {move} is not a declared transition"
    assert moves[-1].to_state == req.state, f"{n}: audit path ends in {moves[-1].to_state}, not {req.state}"
    assert len(moves) == req.visit, f"{n}: {req.visit} states entered, {len(moves)} audit rows"
    return moves


def _left(moves: list[Any], trigger: str) -> Iterable[tuple[str, int]]:
    """(state left, its visit) for every move made with `trigger`."""
    for visit, row in enumerate(moves[1:], start=1):
        if row.detail.get("trigger") == trigger:
            yield row.from_state, visit


def _check_approvals(req: Any, wf: Workflow, rows: list[Any], audit: list[Any],
                     moves: list[Any], seen: Seen) -> None:
    n, parties = req.number, {req.requester_id, req.requested_for_id}
    decided_audit = Counter(a.detail.get("approval") for a in audit
                            if a.event in ("approval_approved", "approval_rejected"))
    handed_on = {(a.event, a.detail.get("approval")) for a in audit
                 if a.event in ("approval_delegated", "approval_escalated")}
    for a in rows:
        assert a.decision in ("pending", "approved", "rejected", "delegated", "escalated", "closed")
        if a.decision == "pending":
            assert req.status == "open" and a.visit == req.visit and a.state == req.state, (
                f"{n}: approval {a.id} pending in visit {a.visit} ({a.state}); the request is in "
                f"visit {req.visit} ({req.state}, {req.status})")
        if a.decision in ("approved", "rejected"):
            assert a.decided_at is not None, f"{n}: approval {a.id} decided at no time"
            assert a.decided_by_id not in parties, f"{n}: {a.decided_by_id} decided their own request"
        assert decided_audit[a.id] <= 1, f"{n}: approval {a.id} decided {decided_audit[a.id]} times"
        if a.decided_by_id is not None:
            assert decided_audit[a.id] == 1, f"{n}: approval {a.id} decided without an audit row"
        now = (a.decision, a.decided_by_id, a.decided_at)
        before = seen.approvals.get(a.id)
        if before is not None and before != now:
            assert before[0] == "pending", f"{n}: approval {a.id} went from {before} to {now}"
            if a.decision == "closed":
                assert a.visit != req.visit or req.status == "closed", (
                    f"{n}: approval {a.id} closed while its visit is still open")
            elif a.decision in ("delegated", "escalated"):
                assert (f"approval_{a.decision}", a.id) in handed_on, (
                    f"{n}: approval {a.id} {a.decision} without an audit row")
        seen.approvals[a.id] = now
    votes = Counter((a.visit, a.name, a.decided_by_id) for a in rows
                    if a.decision in ("approved", "rejected") and a.decided_by_id)
    for (visit, name, person), count in votes.items():
        assert count == 1, f"{n}: {person} voted {count} times in {name} (visit {visit})"
    seats = Counter((a.visit, a.name, a.approver_id) for a in rows
                    if a.decision in ("pending", "approved", "rejected"))
    for (visit, name, person), count in seats.items():
        assert count == 1, f"{n}: {person} holds {count} seats in {name} (visit {visit})"
    for state_name, visit in _left(moves, "approved"):
        state = wf.state(state_name)
        if state is None or state.kind is not StateKind.APPROVAL:
            continue
        for spec in state.approvals:
            mine = [a for a in rows if a.visit == visit and a.name == spec.name]
            live = [a for a in mine if a.decision not in ("delegated", "escalated")]
            yes = [a for a in live if a.decision == "approved"]
            policy = live[0].policy if live else "any"
            assert yes, f"{n}: left {state_name} (visit {visit}) approved without an approval of {spec.name}"
            if policy == "all":
                assert len(yes) == len(live), f"{n}: {spec.name} needs all, got {len(yes)}/{len(live)}"
            elif policy.startswith("quorum:"):
                people = {a.decided_by_id or a.approver_id for a in yes}
                need = int(policy.split(":", 1)[1])
                assert len(people) >= need, (
                    f"{n}: {spec.name} needs {need} approvers, approved by {sorted(people)} only "
                    f"(approvals {[a.id for a in yes]})")
    for state_name, visit in _left(moves, "rejected"):
        state = wf.state(state_name)
        if state is not None and state.kind is StateKind.APPROVAL:
            assert [a for a in rows if a.visit == visit and a.decision == "rejected"], (
                f"{n}: left {state_name} rejected without a rejection")


def _check_tasks(req: Any, wf: Workflow, rows: list[Any], moves: list[Any], seen: Seen) -> None:
    n = req.number
    for t in rows:
        assert t.status in ("open", "done", "cancelled"), f"{n}: task {t.id} is {t.status}"
        if t.status == "open":
            assert req.status == "open" and t.visit == req.visit and t.state == req.state, (
                f"{n}: task {t.id} open in visit {t.visit} ({t.state}); the request is in "
                f"visit {req.visit} ({req.state}, {req.status})")
        if t.status == "done":
            assert t.completed_by_id and t.outcome, f"{n}: task {t.id} done by nobody"
        now = (t.status, t.outcome, t.completed_by_id)
        before = seen.tasks.get(t.id)
        if before is not None and before[0] != "open":
            assert before == now, f"{n}: task {t.id} went from {before} to {now}"
        seen.tasks[t.id] = now
    for visit, row in enumerate(moves[1:], start=1):
        state, trigger = wf.state(row.from_state or ""), row.detail.get("trigger")
        if state is None or state.kind is not StateKind.TASK or trigger == "cancel":
            continue
        mine = [t for t in rows if t.visit == visit]
        if len(state.tasks) > 1:
            assert len(mine) == len(state.tasks) and all(t.status == "done" for t in mine), (
                f"{n}: left {state.name} before all its tasks were done")
        else:
            assert [t.outcome for t in mine if t.status == "done"] == [trigger], (
                f"{n}: left {state.name} by {trigger}; tasks {[(t.status, t.outcome) for t in mine]}")


def _check_timers(req: Any, rows: list[Any], seen: Seen) -> None:
    """Timers of a visit that ended stay pending (they cancel themselves when due), but never fire."""
    for t in rows:
        if t.status == "pending":
            assert req.status == "open", f"{req.number}: timer {t.id} ({t.kind}) pending after it closed"
            if t.visit not in (REQUEST_LEVEL, req.visit):
                seen.stale_timers.add(t.id)
        if t.id in seen.stale_timers:
            assert t.status != "fired", (
                f"{req.number}: timer {t.id} ({t.kind}) of visit {t.visit} fired after the visit ended")
        before = seen.timers.get(t.id)
        assert before in (None, "pending", t.status), f"{req.number}: timer {t.id} {before} -> {t.status}"
        seen.timers[t.id] = t.status


#: what a call may change, as (request id, row id, columns...); plain SQL, as it runs every step
FINGERPRINT = {
    "request": "SELECT id, id, state, status, outcome, visit, lock_version, waiting_on_requester, "
               "sla_state, updated_at FROM requests",
    "approval": "SELECT request_id, id, decision, approver_id, decided_by_id, lock_version "
                "FROM approvals",
    "task": "SELECT request_id, id, status, assignee_id, queue, lock_version FROM tasks",
    "timer": "SELECT request_id, id, status, due_at FROM timers",
    "comment": "SELECT request_id, id FROM comments",
    "audit": "SELECT request_id, id, event FROM audit_events WHERE event <> 'security_denied'",
    "outbox": "SELECT request_id, id FROM outbox",
    "asset": "SELECT request_id, id FROM assets",
    "delegation": "SELECT NULL, id FROM delegations",
    "version": "SELECT NULL, id, version FROM workflow_versions",
}
Fingerprint = dict[int | None, tuple[Any, ...]]


def fingerprint(session: Session) -> Fingerprint:
    """Every row a call may change, grouped by request (None: rows of no request)."""
    parts: dict[int | None, list[Any]] = defaultdict(list)
    conn = session.connection()
    for name, sql in FINGERPRINT.items():
        for row in conn.exec_driver_sql(f"{sql} ORDER BY 2"):
            parts[row[0]].append((name, *row[1:]))
    return {k: tuple(v) for k, v in parts.items()}


def guarded_call(sessions: sessionmaker[Session], label: str, call: Callable[[], Any],
                 expect: bool | None, touches: set[int | None],
                 before: Fingerprint | None = None) -> tuple[str, Any, Fingerprint]:
    """Make one call: a typed refusal writes nothing, a success touches only `touches`.

    `expect` says whether the call must succeed (True), must be refused (False), or either.
    Returns the outcome, the result and the fingerprint after the call.
    """
    if before is None:
        with sessions() as s:
            before = fingerprint(s)
    try:
        result = call()
    except TYPED as exc:
        with sessions() as s:
            after = fingerprint(s)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert not changed, f"{label} raised {exc!r} but changed rows of requests {changed}"
        assert expect is not True, f"{label} should have succeeded, got {exc!r}"
        return type(exc).__name__, None, after
    assert expect is not False, f"{label} should have been refused"
    with sessions() as s:
        after = fingerprint(s)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    if isinstance(result, Request):
        touches = touches | {result.id}
    assert changed <= touches, f"{label} changed requests {changed - touches}"
    return "ok", result, after


def other_votes(approvals: Iterable[Any], appr: Any, cast: bool) -> set[str]:
    """Who holds another live seat in `appr`'s approval (with `cast`: who voted in it)."""
    found: set[str | None] = set()
    for o in approvals:
        if o.id == appr.id or o.name != appr.name or o.visit != appr.visit:
            continue
        if o.decision in ("approved", "rejected"):
            found.add(o.decided_by_id)
        if not cast and o.decision in ("pending", "approved", "rejected"):
            found.add(o.approver_id)
    return {p for p in found if p}


# ------------------------------------------------------------------ databases

class Databases:
    """A fresh database per example: a copied SQLite template, or a truncated PostgreSQL."""

    def __init__(self, backend: str, root: Path, acme: Catalog, pg_url: str | None) -> None:
        self.backend, self.root, self.pg_url, self.count = backend, root, pg_url, 0
        url = pg_url if backend == "postgresql" else f"sqlite:///{root / 'template.sqlite'}"
        assert url is not None
        engine = make_engine(url)
        create_schema(engine)
        with make_sessionmaker(engine).begin() as s:
            sync_directory(s, acme.directory)
        engine.dispose()

    def fresh(self) -> str:
        self.count += 1
        if self.backend == "sqlite":
            path = self.root / f"example-{self.count}.sqlite"
            src, dst = sqlite3.connect(self.root / "template.sqlite"), sqlite3.connect(path)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            return f"sqlite:///{path}"
        assert self.pg_url is not None
        engine = make_engine(self.pg_url)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables
                           if t.name not in DIRECTORY_TABLES)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return self.pg_url

    def engine(self, url: str) -> Engine:
        if self.backend == "sqlite":
            return make_engine(url)
        # a crash never matters here, so PostgreSQL need not wait for its disk at each commit
        return make_engine(url, connect_args={"options": "-c synchronous_commit=off"})

    def drop(self, url: str) -> None:
        if self.backend == "sqlite":
            path = Path(url.removeprefix("sqlite:///"))
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)


# ------------------------------------------------------------------ the machine

class DeskflowMachine(RuleBasedStateMachine):
    """Random operations on the request service; the database checked after every step."""

    catalogs: dict[str, Catalog]
    databases: Databases
    traces: list[list[str]] | None = None
    tally: Counter[str]

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.url = self.databases.fresh()
        self.clock = Clock(START)
        self.published = "acme"
        self.engine = self.databases.engine(self.url)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.service = self._service()
        self.seen = Seen()
        self.numbers: dict[str, int] = {}       # the model: every request that exists ...
        self.closed: set[str] = set()           # ... and those known to be closed
        self.trace: list[str] = []
        self.last: Fingerprint | None = None
        self._orderers: dict[str, list[str]] = {}
        self.reached: set[tuple[str, str, str]] = set()
        acme = self.catalogs["acme"]
        self.people = sorted(p.id for p in acme.directory.people)
        self.admins = sorted(p.id for p in acme.directory.people if "admin" in p.roles)

    def _service(self) -> RequestService:
        return RequestService(self.sessions, lambda: self.catalogs[self.published], self.clock)

    def teardown(self) -> None:
        self.engine.dispose()
        self.databases.drop(self.url)
        if self.traces is not None:
            self.traces.append(self.trace)

    # -------------------------------------------------------------- helpers

    def record(self, label: str, outcome: str) -> None:
        event(f"{label}: {outcome}")
        self.trace.append(f"{label}: {outcome}")
        self.tally[f"{label}: {outcome}"] += 1

    def act(self, label: str, call: Callable[[], Any], expect: bool | None,
            touches: set[int | None]) -> Any:
        # nothing writes between two calls, so the last fingerprint is the one before this call
        outcome, result, self.last = guarded_call(self.sessions, label, call, expect, touches,
                                                  self.last)
        self.record(label, outcome)
        return result

    def load(self, number: str) -> tuple[Request, list[Approval], list[Task]]:
        with self.sessions() as s:
            req = s.scalar(select(Request).where(Request.number == number))
            assert req is not None
            approvals = list(s.scalars(select(Approval).where(Approval.request_id == req.id)
                                       .order_by(Approval.id)))
            tasks = list(s.scalars(select(Task).where(Task.request_id == req.id).order_by(Task.id)))
            return req, approvals, tasks

    def delegates_of(self, person: str) -> list[str]:
        now = self.clock()
        with self.sessions() as s:
            return sorted(set(s.scalars(select(Delegation.delegate_id).where(
                Delegation.person_id == person, Delegation.starts_at <= now,
                Delegation.ends_at > now))))

    def members(self, group: str) -> list[str]:
        found = self.catalogs["acme"].directory.group(group)
        return sorted(found.members) if found else []

    def pick(self, data: st.DataObject, current: list[Any], others: list[Any], label: str) -> Any:
        """Mostly a row of the current visit, sometimes any row (stale, decided, closed)."""
        pool = st.sampled_from([r.id for r in current]) if current else st.nothing()
        wanted = data.draw(st.one_of(pool, pool, st.sampled_from([r.id for r in others])), label=label)
        return next(r for r in others if r.id == wanted)

    def who(self, data: st.DataObject, roles: dict[str, list[str]],
            weights: dict[str, int] | None = None) -> tuple[str, str]:
        """A role (the first, legal ones are listed first so failures shrink to them), then a person."""
        names = [r for r, people in roles.items() if people for _ in range((weights or {}).get(r, 1))]
        role = data.draw(st.sampled_from(names), label="role")
        return role, data.draw(st.sampled_from(roles[role]), label="person")

    def orderers(self, item_id: str) -> list[str]:
        found = self._orderers.get(item_id)
        if found is None:
            item = self.catalogs["acme"].item(item_id)
            with self.sessions() as s:
                found = self._orderers[item_id] = [p for p in self.people if can_order(s, p, item)]
        return found

    # -------------------------------------------------------------- rules

    @initialize(target=requests, data=st.data())
    def first_request(self, data: st.DataObject) -> Any:
        return self.submit_one(data, [o for o in ORDERS if o[3]])

    @rule(target=requests, data=st.data())
    def submit(self, data: st.DataObject) -> Any:
        return self.submit_one(data, ORDERS)

    def submit_one(self, data: st.DataObject, orders: list[tuple[str, str, dict[str, Any], bool]]) -> Any:
        label, item_id, changes, valid = data.draw(st.sampled_from(orders), label="order")
        _, actor = self.who(data, {"orderer": self.orderers(item_id), "anyone": self.people},
                            {"orderer": 3})
        requested_for = data.draw(st.one_of(st.none(), st.none(), st.sampled_from(self.people)),
                                  label="requested_for")
        cat = self.catalogs[self.published]
        item = cat.item(item_id)
        assert item is not None
        may = actor in self.orderers(item_id)
        expect = valid and may and (requested_for in (None, actor) or item.order_for_others)
        req = self.act(f"submit {label}", lambda: self.service.submit(
            item_id, actor, {**ACME_ANSWERS[item_id], **changes}, requested_for=requested_for),
            expect, {None})
        if req is None:
            return multiple()
        assert req.number not in self.numbers
        self.numbers[req.number] = req.id
        with self.sessions() as s:
            row = s.get(WorkflowVersion, req.workflow_version_id)
            assert row is not None
            assert row.version == cat.workflow(item.workflow).version, (
                f"{req.number} pinned {row.version}, the published version is "
                f"{cat.workflow(item.workflow).version}")
        return req.number

    @rule(number=requests, data=st.data(), verb=st.sampled_from(["approve", "reject"]),
          comment=st.sampled_from(["ok", "Not in the budget.", " "]))
    def decide(self, number: str, data: st.DataObject, verb: str, comment: str) -> None:
        req, approvals, _ = self.load(number)
        if not approvals:
            return
        current = [a for a in approvals if a.decision == "pending"]
        appr = self.pick(data, current, approvals, "approval")
        role, actor = self.who(data, {
            "approver": [appr.approver_id], "delegate": self.delegates_of(appr.approver_id),
            "requester": sorted({req.requester_id, req.requested_for_id}), "admin": self.admins,
            "stranger": self.people}, {"approver": 3, "delegate": 2})
        legal = actor not in (req.requester_id, req.requested_for_id) and (
            actor == appr.approver_id or actor in self.delegates_of(appr.approver_id))
        live = appr.decision == "pending" and appr.visit == req.visit and req.status == "open"
        wording = verb == "approve" or bool(comment.strip())
        once = actor not in other_votes(approvals, appr, cast=True)  # one person counts once
        expect = legal and live and wording and once
        call = self.service.approve if verb == "approve" else self.service.reject
        self.act(f"{verb} as {role}", lambda: call(appr.id, actor, comment), expect, {req.id})

    @rule(number=requests, data=st.data())
    def delegate(self, number: str, data: st.DataObject) -> None:
        req, approvals, _ = self.load(number)
        if not approvals:
            return
        appr = self.pick(data, [a for a in approvals if a.decision == "pending"], approvals,
                         "approval")
        role, actor = self.who(data, {"approver": [appr.approver_id], "admin": self.admins,
                                      "stranger": self.people})
        peers = sorted({a.approver_id for a in approvals if a.visit == appr.visit} - {appr.approver_id})
        to = data.draw(st.sampled_from(peers + self.people), label="to")
        # segregation of duties: a party to the request never picks its approver, admins included
        may = actor not in (req.requester_id, req.requested_for_id) and (
            actor == appr.approver_id or actor in self.admins)
        live = appr.decision == "pending" and appr.visit == req.visit
        fine = to not in (req.requester_id, req.requested_for_id, appr.approver_id,
                          *other_votes(approvals, appr, cast=False))
        self.act(f"delegate as {role}", lambda: self.service.delegate(appr.id, actor, to),
                 may and live and fine, {req.id})

    @rule(data=st.data(), start=st.sampled_from([-48, -1, 0, 2, 30]),
          hours=st.sampled_from([0, 1, 24, 200]))
    def set_delegation(self, data: st.DataObject, start: int, hours: int) -> None:
        actor = data.draw(st.sampled_from(self.people), label="actor")
        delegate = data.draw(st.sampled_from(self.people), label="delegate")
        starts = self.clock() + timedelta(hours=start)
        with self.sessions() as s:  # a delegation starting now tells the delegate what waits
            waiting = set(s.scalars(select(Approval.request_id).where(
                Approval.approver_id == actor, Approval.decision == "pending")))
        self.act("set_delegation", lambda: self.service.set_delegation(
            actor, delegate, starts, starts + timedelta(hours=hours)),
            delegate != actor and hours > 0, {None} | waiting)

    @rule(number=requests, data=st.data(),
          verb=st.sampled_from(["claim", "complete", "escalate", "reassign"]))
    def work_task(self, number: str, data: st.DataObject, verb: str) -> None:
        req, _, tasks = self.load(number)
        if not tasks:
            return
        task = self.pick(data, [t for t in tasks if t.status == "open"], tasks, "task")
        role, actor = self.who(data, {
            "assignee": [task.assignee_id] if task.assignee_id else [],
            "member": self.members(task.queue), "admin": self.admins, "stranger": self.people},
            {"assignee": 2, "member": 2})
        may = actor in self.members(task.queue) or actor == task.assignee_id or actor in self.admins
        live = task.status == "open" and task.visit == req.visit and req.status == "open"
        with self.sessions() as s:
            wf = pinned(s.get(WorkflowVersion, req.workflow_version_id))
        state = wf.state(task.state)
        spec = next(t for t in state.tasks if t.name == task.name) if state else None
        if verb == "claim":
            expect = may and live and task.assignee_id in (None, actor)
            self.act(f"claim as {role}", lambda: self.service.claim_task(task.id, actor),
                     expect, {req.id})
        elif verb == "reassign":
            to = data.draw(st.sampled_from(self.members(task.queue) + self.people), label="to")
            self.act(f"reassign as {role}", lambda: self.service.reassign(task.id, actor, to),
                     may and live and to in self.members(task.queue), {req.id})
        elif verb == "escalate":
            last = spec is None or task.tier + 1 >= len(spec.tiers)
            self.act(f"escalate as {role}", lambda: self.service.escalate_task(task.id, actor, "slow"),
                     may and live and not last, {req.id})
        else:
            outcomes = list(spec.outcomes) if spec else ["done"]
            outcome = data.draw(st.sampled_from([*outcomes, "bogus"]), label="outcome")
            complete = data.draw(st.booleans(), label="answers filled in")
            fields = spec.fields if spec else ()
            answers = {f.name: TASK_VALUES[f.type.value] for f in fields if f.required and complete}
            valid = outcome in outcomes and (complete or not any(f.required for f in fields))
            free = task.assignee_id in (None, actor) or actor in self.admins
            self.act(f"complete as {role}", lambda: self.service.complete_task(
                task.id, actor, outcome=outcome, answers=answers),
                may and live and free and valid, {req.id})

    @rule(number=requests, data=st.data())
    def cancel(self, number: str, data: st.DataObject) -> None:
        req, _, _ = self.load(number)
        role, actor = self.who(data, {"requester": [req.requester_id],
                                      "requested_for": [req.requested_for_id],
                                      "admin": self.admins, "stranger": self.people})
        may = actor in (req.requester_id, req.requested_for_id) or actor in self.admins
        done = self.act(f"cancel as {role}", lambda: self.service.cancel(number, actor, "not needed"),
                        may and req.status == "open", {req.id})
        if done is not None:
            after, _, _ = self.load(number)
            assert (after.status, after.state, after.outcome) == ("closed", "cancelled", "cancelled")
            self.closed.add(number)

    @rule(number=requests, data=st.data(), verb=st.sampled_from(["comment", "note", "ask", "answer"]))
    def converse(self, number: str, data: st.DataObject, verb: str) -> None:
        req, _, tasks = self.load(number)
        # the record's agents: its tasks' queues and assignees, its assignment group, its assignee
        queues = sorted({p for t in tasks for p in self.members(t.queue)}
                        | {t.assignee_id for t in tasks if t.assignee_id}
                        | (set(self.members(req.assignment_group_id)) if req.assignment_group_id
                           else set())
                        | ({req.assignee_id} if req.assignee_id else set()))
        role, actor = self.who(data, {"requester": [req.requester_id], "agent": queues,
                                      "admin": self.admins, "stranger": self.people})
        agent = actor in queues or actor in self.admins
        party = actor in (req.requester_id, req.requested_for_id)
        calls: dict[str, tuple[Callable[[], Any], bool | None]] = {
            # anyone who may see the request may comment; approvers see it too, hence None
            "comment": (lambda: self.service.comment(number, actor, "Any news?"),
                        True if party or agent else None),
            "note": (lambda: self.service.comment(number, actor, "Call him.", internal=True),
                     agent if party or agent else None),
            "ask": (lambda: self.service.ask_requester(number, actor, "Which floor?"),
                    agent and req.status == "open" and not req.waiting_on_requester),
            "answer": (lambda: self.service.answer(number, actor, "The third floor."),
                       party and req.waiting_on_requester),
        }
        call, expect = calls[verb]
        before = self.load(number)[0]
        self.act(f"{verb} as {role}", call, expect, {req.id})
        after = self.load(number)[0]
        assert (after.state, after.visit, after.status) == (before.state, before.visit, before.status)

    @rule(number=requests, data=st.data(), steps=st.integers(1, 4))
    def progress(self, number: str, data: st.DataObject, steps: int) -> None:
        """Legal next steps by the right people, so requests get deep into their workflows."""
        for i in range(steps):
            if i:
                self.database_is_consistent()
            if not self.step_forward(number, data):
                return

    @rule(number=requests, data=st.data(), steps=st.integers(1, 4))
    def progress_again(self, number: str, data: st.DataObject, steps: int) -> None:
        """The same as `progress`: a second entry makes it twice as likely to be chosen."""
        self.progress(number, data, steps)

    def step_forward(self, number: str, data: st.DataObject) -> bool:
        req, approvals, tasks = self.load(number)
        if req.status != "open":
            return False
        pending = [a for a in approvals if a.decision == "pending"
                   and a.approver_id not in other_votes(approvals, a, cast=True)]
        open_tasks = [t for t in tasks if t.status == "open"]
        if pending:
            wanted = data.draw(st.sampled_from([a.id for a in pending]), label="approval")
            appr = next(a for a in pending if a.id == wanted)
            if data.draw(st.sampled_from([True] * 5 + [False]), label="approve"):
                self.act("progress: approve", lambda: self.service.approve(appr.id, appr.approver_id),
                         True, {req.id})
            else:
                self.act("progress: reject", lambda: self.service.reject(
                    appr.id, appr.approver_id, "Not now."), True, {req.id})
        elif open_tasks:
            wanted = data.draw(st.sampled_from([t.id for t in open_tasks]), label="task")
            task = next(t for t in open_tasks if t.id == wanted)
            worker = task.assignee_id or data.draw(st.sampled_from(self.members(task.queue)),
                                                   label="worker")
            with self.sessions() as s:
                wf = pinned(s.get(WorkflowVersion, req.workflow_version_id))
            state = wf.state(task.state)
            assert state is not None
            spec = next(t for t in state.tasks if t.name == task.name)
            outcome = data.draw(st.sampled_from(spec.outcomes), label="outcome")
            answers = {f.name: TASK_VALUES[f.type.value] for f in spec.fields if f.required}
            if data.draw(st.booleans(), label="claim first"):
                self.act("progress: claim", lambda: self.service.claim_task(task.id, worker),
                         True, {req.id})
            self.act("progress: complete", lambda: self.service.complete_task(
                task.id, worker, outcome=outcome, answers=answers), True, {req.id})
        elif any(a.decision == "pending" for a in approvals):
            return False  # every pending seat is held by someone who already voted
        else:  # a wait state
            self.fire_timers(data.draw(st.sampled_from(CLOCK_STEPS[1:]), label="wait"))
        return True

    @rule(step=st.sampled_from(CLOCK_STEPS))
    def fire_timers(self, step: timedelta) -> None:
        self.clock.advance(seconds=step.total_seconds())
        fired = self.act("run_due", self.service.run_due, True, set(self.numbers.values()) | {None})
        event(f"timers fired: {min(fired, 3)}{'+' if fired >= 3 else ''}")

    @rule(name=st.sampled_from(["v2", "v3", "acme"]),
          restart=st.sampled_from(["no restart", "restart", "cold restart"]))
    def publish_version(self, name: str, restart: str) -> None:
        """Publish a catalog version; maybe restart (a new service on the same database)."""
        self.published = name
        self.record("publish", name)
        if restart == "no restart":
            return
        self.engine.dispose()
        if restart == "cold restart":  # a new process: nothing cached
            with versions._lock:
                versions._cache.clear()
            compiler.machine_for.cache_clear()
        self.engine = self.databases.engine(self.url)
        self.sessions = make_sessionmaker(self.engine)
        self.service = self._service()
        self.record("restart", restart)

    # -------------------------------------------------------------- invariants

    @invariant()
    def database_is_consistent(self) -> None:
        with self.sessions() as s:
            check_invariants(s, self.seen)
            rows = {r.number: (r.id, r.status) for r in s.scalars(select(Request))}
            reached = set(s.execute(select(WorkflowVersion.workflow_id, WorkflowVersion.version,
                                           Request.state).join(Request.workflow_version)))
        for wf_id, version, state in reached - self.reached:  # coverage, for the report
            self.tally[f"reached {wf_id}@{version[:4]}.{state}"] += 1
        self.reached |= reached
        assert {k: v[0] for k, v in rows.items()} == self.numbers, "requests appeared or vanished"
        for number in self.closed:
            assert rows[number][1] == "closed", f"{number} reopened"
        self.closed |= {k for k, v in rows.items() if v[1] == "closed"}


# ------------------------------------------------------------------ tests

@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Catalog]:
    return publish_variants(ACME, tmp_path_factory.mktemp("catalogs"))


def machine(catalogs: dict[str, Catalog], databases: Databases,
            traces: list[list[str]] | None = None) -> type[DeskflowMachine]:
    return type("DeskflowMachine", (DeskflowMachine,),
                {"catalogs": catalogs, "databases": databases, "traces": traces, "tally": Counter()})


def budget(backend: str) -> settings:
    examples = EXAMPLES if backend == "sqlite" else max(5, EXAMPLES // 4)
    return settings(max_examples=examples, stateful_step_count=STEPS, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_request_service_keeps_its_invariants(request, tmp_path, catalogs, backend):
    pg_url = request.getfixturevalue("pg_database") if backend == "postgresql" else None
    if backend == "postgresql" and pg_url is None:
        pytest.skip("PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL")
    databases = Databases(backend, tmp_path, catalogs["acme"], pg_url)
    cls = machine(catalogs, databases)
    try:
        run_state_machine_as_test(cls, settings=budget(backend))
    finally:  # what was covered: shown with -rP, or on failure
        print(f"{databases.count} examples, {sum(cls.tally.values())} calls")
        for what, count in sorted(cls.tally.items()):
            print(f"{count:6d}  {what}")


def test_a_fixed_seed_replays_the_same_steps(tmp_path, catalogs):
    """The same seed gives the same steps and outcomes, so a report can be replayed."""
    runs = []
    for attempt in range(2):
        traces: list[list[str]] = []
        (tmp_path / str(attempt)).mkdir()
        databases = Databases("sqlite", tmp_path / str(attempt), catalogs["acme"], None)
        cls = seed(20261123)(machine(catalogs, databases, traces))
        run_state_machine_as_test(cls, settings=settings(
            max_examples=4, stateful_step_count=15, deadline=None, database=None,
            phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
        runs.append(traces)
    assert runs[0] == runs[1]
    assert sum(len(t) for t in runs[0]) > 20


# ------------------------------------------------------------------ the checker itself

def _scene(service: RequestService, sessions: sessionmaker[Session]) -> dict[str, Request]:
    """A laptop at its task, a cancelled laptop, and a change approved by the board."""
    a = ACME_ANSWERS
    laptop = service.submit("new-laptop", "alice", a["new-laptop"])
    with sessions() as s:
        [appr] = s.scalars(select(Approval).where(Approval.request_id == laptop.id))
    service.approve(appr.id, "bob", "fine")
    cancelled = service.submit("new-laptop", "alice", a["new-laptop"])
    service.cancel(cancelled.number, "alice", "oops")
    change = service.submit("normal-change", "frank", a["normal-change"])
    with sessions() as s:
        board = list(s.scalars(select(Approval).where(Approval.request_id == change.id)
                               .order_by(Approval.id)))
    service.approve(board[0].id, board[0].approver_id, "ok")
    service.approve(board[1].id, board[1].approver_id, "ok")
    return {"laptop": laptop, "cancelled": cancelled, "change": change}


def _last_move(s: Session, req: Request) -> AuditEvent:
    return s.scalars(select(AuditEvent).where(AuditEvent.request_id == req.id,
                                              AuditEvent.to_state.is_not(None))
                     .order_by(AuditEvent.id.desc())).first()


def _first(s: Session, model: type[Any], req: Request, **where: Any) -> Any:
    q = select(model).where(model.request_id == req.id, *(getattr(model, k) == v for k, v in where.items()))
    return s.scalars(q.order_by(model.id)).first()


def _undeclared_state(s, r):
    s.execute(update(Request).where(Request.id == r["laptop"].id).values(state="nowhere"))


def _lost_audit_row(s, r):
    s.delete(_last_move(s, r["laptop"]))


def _extra_audit_row(s, r):
    row = _last_move(s, r["laptop"])
    s.add(AuditEvent(request_id=row.request_id, event=row.event, from_state=row.from_state,
                     to_state=row.to_state, detail=dict(row.detail), at=row.at))


def _undeclared_transition(s, r):
    row = _last_move(s, r["laptop"])
    row.detail = {**row.detail, "trigger": "teleport"}


def _closed_request_moves(s, r):
    # a closed request rewritten to another end state, audit and all, stays "consistent"
    # except that it changed after it closed
    req = s.get(Request, r["cancelled"].id)
    row = _last_move(s, req)
    row.to_state, row.detail = "rejected", {"trigger": "rejected"}
    s.execute(update(Request).where(Request.id == req.id).values(state="rejected", outcome="rejected"))


def _decision_changes(s, r):
    s.execute(update(Approval).where(Approval.request_id == r["laptop"].id).values(decision="rejected"))


def _decided_twice(s, r):
    appr = _first(s, Approval, r["laptop"], decision="approved")
    s.add(AuditEvent(request_id=appr.request_id, event="approval_approved",
                     detail={"approval": appr.id}, at=START))


def _pending_in_old_visit(s, r):
    appr = _first(s, Approval, r["laptop"])
    s.add(Approval(request_id=appr.request_id, visit=appr.visit, state=appr.state, name=appr.name,
                   policy="any", approver_id="carol", created_at=START))


def _task_of_closed_request(s, r):
    task = _first(s, Task, r["laptop"])
    s.execute(update(Task).where(Task.id == task.id).values(request_id=r["cancelled"].id))


def _board(s, r):
    return list(s.scalars(select(Approval).where(Approval.request_id == r["change"].id)
                          .order_by(Approval.id)))


def _one_person_votes_twice(s, r):
    board = _board(s, r)
    board[1].decided_by_id = board[0].decided_by_id


def _quorum_not_met(s, r):
    for a in _board(s, r):
        a.policy = "quorum:3"


def _two_seats(s, r):
    board = _board(s, r)
    board[1].approver_id = board[0].approver_id


def _stale_timer_fires(s, r):
    timer = _first(s, Timer, r["laptop"], kind="approval_timeout")
    timer.status = "fired"


def _definition_edited(s, r):
    row = s.get(WorkflowVersion, s.get(Request, r["laptop"].id).workflow_version_id)
    s.execute(update(WorkflowVersion).where(WorkflowVersion.id == row.id).values(
        definition=json.loads(json.dumps(row.definition).replace("manager_approval", "boss_approval"))))


@pytest.mark.parametrize(("tamper", "message", "needs_history"), [
    (_undeclared_state, "state nowhere is not declared", False),
    (_lost_audit_row, "audit path ends in check_model, not prepare", False),
    (_extra_audit_row, "starts from check_model", False),
    (_undeclared_transition, "is not a declared transition", False),
    (_closed_request_moves, "changed after it closed", True),
    (_decision_changes, r"went from \('approved'", True),
    (_decided_twice, "decided 2 times", False),
    (_pending_in_old_visit, "pending in visit 1", False),
    (_task_of_closed_request, "open in visit 3", False),
    (_one_person_votes_twice, "voted 2 times in cab_approval", False),
    (_quorum_not_met, "needs 3 approvers", False),
    (_two_seats, "holds 2 seats in cab_approval", False),
    (_definition_edited, "stored definition was changed", False),
    (_stale_timer_fires, "fired after the visit ended", True),
])
def test_the_checker_catches_a_broken_database(service, sessions, tamper, message, needs_history):
    scene = _scene(service, sessions)
    seen = Seen()
    with sessions() as s:
        check_invariants(s, seen)
    with sessions.begin() as s:
        tamper(s, scene)
    with sessions() as s, pytest.raises(AssertionError, match=message):
        check_invariants(s, seen if needs_history else Seen())


def test_a_refused_call_that_writes_is_caught(service, sessions):
    """The machine's own check: a typed error after a write fails the step."""
    req = _scene(service, sessions)["laptop"]

    def write_then_refuse() -> None:
        with sessions.begin() as s:
            s.execute(update(Request).where(Request.id == req.id).values(visit=99))
        raise Conflict("too late")

    with pytest.raises(AssertionError, match=re.escape(f"changed rows of requests {{{req.id}}}")):
        guarded_call(sessions, "probe", write_then_refuse, None, set())


def test_an_unexpected_success_is_caught(service, sessions):
    req = _scene(service, sessions)["laptop"]
    with pytest.raises(AssertionError, match="should have been refused"):
        guarded_call(sessions, "comment", lambda: service.comment(req.number, "alice", "hi"),
                     False, {req.id})



# ------------------------------------------------------------------ engine bugs the machine found

def test_escalation_never_gives_one_person_two_seats(service, sessions, clock, catalogs):
    # v3 of acme: onboarding needs two directors after HR, escalating on timeout
    v3 = RequestService(sessions, lambda: catalogs["v3"], clock)
    req = v3.submit("new-hire-onboarding", "alice", ACME_ANSWERS["new-hire-onboarding"])
    with sessions() as s:
        hr = s.scalars(select(Approval).where(Approval.request_id == req.id)).first()
    v3.approve(hr.id, hr.approver_id)
    clock.advance(days=4)  # Friday: past the 2 business days
    v3.run_due()
    with sessions() as s:
        seats = [(a.id, a.approver_id) for a in s.scalars(select(Approval).where(
            Approval.request_id == req.id, Approval.name == "budget_approval",
            Approval.decision == "pending").order_by(Approval.id))]
    holders = [p for _, p in seats]
    assert len(holders) == len(set(holders)), f"seats after the timeout: {seats}"
    for approval_id, person in seats:  # every director votes once: that must meet a quorum of 2
        try:
            v3.approve(approval_id, person)
        except Conflict:
            pass
    with sessions() as s:
        assert s.get(Request, req.id).state == "prepare"

