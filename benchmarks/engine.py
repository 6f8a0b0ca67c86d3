"""Benchmark: the request engine against hand-written ORM code, against SpiffWorkflow, and at scale.

Prints, measured in one run (medians):
  (a) the floor: plain SQLAlchemy ORM code writing exactly the rows Deskflow writes when a
      manager approves a mobile phone (approval and request updated; task, audit and
      outbox rows inserted), one transaction, same engine, sessions and database file;
  (b) the same approval through `RequestService.approve`; b/a on SQLite and PostgreSQL,
      and the SQL statements each side issues;
  (c) two-approval requests run to completion per second, every step persisted: Deskflow
      (submit, approve A, approve B; three transactions) against SpiffWorkflow made fair:
      the same three transactions, each loading the workflow's JSON, running it, storing the
      JSON and writing, with plain SQLAlchemy Core in the same SQLite file and transaction,
      the rows Deskflow wrote in that step (request row, approvals, audit, outbox, figures),
      as spiff-arena's backend writes its process_instance, human_task and event-log rows
      next to its JSON; and the bytes each keeps per finished request. The old comparison
      (Spiff storing its JSON only) is printed for information;
  (d) resident memory of a process running 200 service operations on a database holding
      1,000 and then 100,000 requests.
Targets: b/a <= 1.3 on each database (and statements per approval at most the floor's + 1:
tests/engine/test_statement_budget.py); Deskflow >= 1.0x the fair SpiffWorkflow's completions/s;
Deskflow's state per request <= 0.1x SpiffWorkflow's JSON; RSS growth <= 10%.

    python benchmarks/engine.py [--db sqlite|postgresql|both] [--requests 300] [--rounds 3] [--profile]

PostgreSQL: DESKFLOW_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
names the server; the benchmark creates a database deskflow_bench_<random> and drops it.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import re
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder heads sys.path and this file, engine.py, would shadow the
# `engine` package it measures.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from sqlalchemy import (  # noqa: E402
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from catalog.catalog import Catalog  # noqa: E402
from catalog.loader import load_catalog  # noqa: E402
from engine.db import create_schema, make_engine, make_sessionmaker  # noqa: E402
from engine.directory import sync_directory  # noqa: E402
from engine.models import (  # noqa: E402
    Approval,
    AuditEvent,
    Base,
    OutboxMessage,
    Request,
    Task,
    WorkflowVersion,
)
from engine.service import RequestService  # noqa: E402

BPMN = Path(__file__).resolve().parent / "bpmn" / "two_approvals.bpmn"
PG_URL = os.environ.get("DESKFLOW_BENCH_DATABASE_URL",
                        "postgresql://postgres@127.0.0.1:5432/postgres")
START = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)  # a Monday, 09:30 in Amsterdam
WARMUP = 5
PROFILED = 100
RSS_SIZES = (1_000, 100_000)
RSS_OPERATIONS = 200

#: valid answers for acme's mobile-phone item (workflow hardware-request: manager approval -> task)
PHONE = {"device": "pixel", "data_plan": "10gb", "cost_center": "CC-1234", "building": "ams-hq",
         "floor": 3}

TINY = {
    "deskflow.yaml": """kind: Settings
name: Bench Desk
time_zone: UTC
business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
""",
    "directory.yaml": """kind: Directory
people:
  - {id: rita, name: Rita Requester, email: rita@example.com, manager: anna}
  - {id: anna, name: Anna Approver, email: anna@example.com}
  - {id: bert, name: Bert Approver, email: bert@example.com}
""",
    "items/purchase.yaml": """kind: CatalogItem
id: purchase
name: Purchase
category: Bench
summary: Something bought after two approvals.
workflow: two-approvals
form:
  - {name: reason, type: string, required: true}
""",
    "workflows/two-approvals.yaml": """kind: Workflow
id: two-approvals
start: approval_a
states:
  approval_a:
    approval: {approvers: "person:anna"}
    on: {approved: approval_b, rejected: rejected}
  approval_b:
    approval: {approvers: "person:bert"}
    on: {approved: approved, rejected: rejected}
  approved: {end: approved}
  rejected: {end: rejected}
""",
}
TINY_ANSWERS = {"reason": "A second monitor for the home office."}


class Clock:
    """A clock that moves one millisecond each time it is read, so every write changes updated_at."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


# ---------------------------------------------------------------- statements

class Statements:
    """Every SQL statement an engine sends while `recording`, with where it came from; commits too."""

    def __init__(self, engine: Engine) -> None:
        self.recording = False
        self.log: list[tuple[str, str]] = []
        self.commits = 0
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "commit", self._committed)

    def _executed(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.recording:
            self.log.append((statement, origin()))

    def _committed(self, conn: Any) -> None:
        if self.recording:
            self.commits += 1

    @contextmanager
    def record(self) -> Iterator[Statements]:
        self.log, self.commits, self.recording = [], 0, True
        try:
            yield self
        finally:
            self.recording = False

    def copy(self) -> Statements:
        """What was recorded, kept apart from the next recording."""
        kept = Statements.__new__(Statements)
        kept.log, kept.commits, kept.recording = list(self.log), self.commits, False
        return kept

    def kinds(self) -> Counter[str]:
        """Statements by verb and table, e.g. 'SELECT people'."""
        return Counter(describe(s) for s, _ in self.log)

    def origins(self) -> Counter[tuple[str, str]]:
        """Statements by (verb and table, the engine code that issued them)."""
        return Counter((describe(s), where) for s, where in self.log)

    def summary(self) -> str:
        verbs = Counter(describe(s).split(" ")[0] for s, _ in self.log)
        parts = ", ".join(f"{n} {v}" for v, n in verbs.most_common())
        return f"{len(self.log)} statements ({parts}) + {self.commits} COMMIT"


def origin() -> str:
    """The innermost engine functions on the stack, e.g. 'runtime.move < unit.context'."""
    frames = []
    for frame in traceback.extract_stack()[:-2]:
        path = Path(frame.filename)
        if path.parent.name == "engine" and path.parent.parent == ROOT:
            frames.append(f"{path.stem}.{frame.name}")
    return " > ".join(frames[-3:]) or "-"


def describe(statement: str) -> str:
    words = statement.split(None, 3)
    verb = words[0].upper()
    if verb == "SELECT":
        found = re.search(r"\bFROM\s+\"?(\w+)", statement, re.IGNORECASE)
        return f"SELECT {found.group(1) if found else '-'}"
    if verb == "INSERT":
        return f"INSERT {words[2].strip(chr(34))}"
    if verb == "UPDATE":
        return f"UPDATE {words[1].strip(chr(34))}"
    return verb


def table_counts(sessions: sessionmaker[Session]) -> Counter[str]:
    with sessions() as s:
        return Counter({t.name: s.scalar(select(func.count()).select_from(t)) or 0
                        for t in Base.metadata.sorted_tables})


def request_rows(sessions: sessionmaker[Session], request_id: int) -> dict[tuple[str, tuple], dict]:
    """Every row of the request: its requests row and the rows that point at it."""
    out = {}
    with sessions() as s:
        for t in Base.metadata.sorted_tables:
            if t.name == "requests":
                where = t.c.id == request_id
            elif "request_id" in t.c:
                where = t.c.request_id == request_id
            else:
                continue
            key = [c.name for c in t.primary_key]
            for row in s.execute(select(t).where(where)).mappings():
                out[(t.name, tuple(row[c] for c in key))] = dict(row)
    return out


#: one row a step wrote: ("insert", table, old key, the row) or ("update", table, old key,
#: the changed columns)
Change = tuple[str, str, tuple, dict[str, Any]]


def row_changes(before: dict[tuple[str, tuple], dict], after: dict[tuple[str, tuple], dict]
                ) -> list[Change]:
    """What a step wrote to a request's rows, inserts in foreign-key order."""
    out: list[Change] = []
    for (table, key), row in after.items():
        old = before.get((table, key))
        if old is None:
            out.append(("insert", table, key, row))
        elif old != row:
            out.append(("update", table, key, {c: v for c, v in row.items() if old[c] != v}))
    return out


def written_rows(sessions: sessionmaker[Session], stats: Statements, request_id: int,
                 op: Callable[[], object]) -> tuple[Counter[str], Statements]:
    """Run `op` on the request once; return the rows it inserted and changed, and its statements."""
    counts, rows = table_counts(sessions), request_rows(sessions, request_id)
    with stats.record():
        op()
    counts_after, rows_after = table_counts(sessions), request_rows(sessions, request_id)
    written: Counter[str] = Counter()
    for key, row in rows_after.items():
        old = rows.get(key)
        if old is None:
            written[f"insert {key[0]}"] += 1
        elif old != row:
            written[f"update {key[0]} ({', '.join(c for c in row if row[c] != old[c])})"] += 1
    elsewhere = {t: counts_after[t] - counts[t] for t in counts
                 if counts_after[t] - counts[t] != written[f"insert {t}"]}
    if elsewhere or len(rows_after) < len(rows):
        raise SystemExit(f"rows written outside the request or deleted: {elsewhere}")
    return written, stats.copy()


# ---------------------------------------------------------------- databases

@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        path = tmp / f"bench-{secrets.token_hex(3)}.sqlite"
        yield f"sqlite:///{path}"
        return
    name = f"deskflow_bench_{secrets.token_hex(5)}"
    server = make_url(PG_URL).set(drivername="postgresql+psycopg")
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def service_on(url: str, catalog: Catalog) -> tuple[Engine, sessionmaker[Session], RequestService]:
    engine = make_engine(url)
    create_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        sync_directory(s, catalog.directory)
    return engine, sessions, RequestService(sessions, lambda: catalog, Clock())


def pending_approval(sessions: sessionmaker[Session], request_id: int) -> tuple[int, str]:
    with sessions() as s:
        row = s.execute(select(Approval.id, Approval.approver_id).where(
            Approval.request_id == request_id, Approval.decision == "pending")).one()
        return row.id, row.approver_id


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


# ---------------------------------------------------------------- (a) the floor

class Floor:
    """Hand-written ORM code for the manager approving a mobile phone: the rows, nothing else.

    What goes in the rows (task title, email text) is taken from the transition Deskflow made
    once, so both sides write the same bytes; only the request number changes in it.
    """

    def __init__(self, sessions: sessionmaker[Session], sample_request: int) -> None:
        self.sessions = sessions
        with sessions() as s:
            req = s.get(Request, sample_request)
            task = s.scalars(select(Task).where(Task.request_id == sample_request)).one()
            mails = s.scalars(select(OutboxMessage).where(
                OutboxMessage.request_id == sample_request,
                OutboxMessage.event == "task_assigned").order_by(OutboxMessage.id)).all()
            assert req is not None and req.number and task.due_at is not None
            self.number = req.number
            self.title, self.queue, self.sla = task.title, task.queue, task.due_at - task.created_at
            # keys start with the request id: f"{id}:task_assigned:{visit}:deliver:0:{person}"
            self.mails = [(m.idempotency_key.split(":", 1)[1], m.payload) for m in mails]

    def approve(self, approval_id: int, actor: str, now: datetime) -> None:
        session = self.sessions()
        try:
            with session.begin():
                appr = session.get(Approval, approval_id)
                assert appr is not None
                req = session.get(Request, appr.request_id)
                assert req is not None
                appr.decision, appr.decided_by_id, appr.decided_at = "approved", actor, now
                source = req.state
                req.state, req.visit, req.updated_at = "deliver", req.visit + 1, now
                task = Task(request_id=req.id, visit=req.visit, state="deliver", name="deliver",
                            title=self.title, instructions="", queue=self.queue, tier=0,
                            assignee_id=None, status="open", answers={}, due_at=now + self.sla,
                            created_at=now)
                session.add(task)
                session.flush()
                session.add_all([
                    AuditEvent(request_id=req.id, actor_id=actor, event="approval_approved",
                               detail={"approval": appr.id, "name": appr.name, "on_behalf_of": None},
                               at=now),
                    AuditEvent(request_id=req.id, actor_id=actor, event="transition",
                               from_state=source, to_state="deliver",
                               detail={"trigger": "approved"}, at=now),
                    AuditEvent(request_id=req.id, actor_id=None, event="task_created",
                               detail={"task": task.id, "queue": self.queue, "assignee": None},
                               at=now),
                ])
                for key, payload in self.mails:
                    session.add(OutboxMessage(
                        request_id=req.id, kind="email", event="task_assigned",
                        idempotency_key=f"{req.id}:{key}",
                        payload={k: v.replace(self.number, req.number or "") if isinstance(v, str)
                                 else v for k, v in payload.items()},
                        status="pending", attempts=0, next_attempt_at=now, last_error="",
                        created_at=now))
        finally:
            session.close()


# ---------------------------------------------------------------- (a) + (b)

def bench_transition(kind: str, url: str, acme: Catalog, n: int, rounds: int,
                     profile: bool) -> float:
    """Print the floor and Deskflow's cost of one approval on `url`; return b/a."""
    engine, sessions, service = service_on(url, acme)
    stats = Statements(engine)
    extra = PROFILED if profile else 0
    started = time.perf_counter()
    pairs = []
    for _ in range(2 * (n + WARMUP) + extra):
        req = service.submit("mobile-phone", "alice", dict(PHONE))
        pairs.append(pending_approval(sessions, req.id))
    setup = time.perf_counter() - started
    desk_ids, floor_ids = pairs[0::2], pairs[1::2]
    clock = service.clock

    def desk(i: int) -> None:
        approval_id, actor = desk_ids[i]
        service.approve(approval_id, actor)

    def request_of(approval_id: int) -> int:
        with sessions() as s:
            return s.scalars(select(Approval.request_id).where(Approval.id == approval_id)).one()

    desk(0)
    floor = Floor(sessions, request_of(desk_ids[0][0]))

    def low(i: int) -> None:
        approval_id, actor = floor_ids[i]
        floor.approve(approval_id, actor, clock())

    desk_rows, desk_stmts = written_rows(sessions, stats, request_of(desk_ids[1][0]), lambda: desk(1))
    floor_rows, floor_stmts = written_rows(sessions, stats, request_of(floor_ids[0][0]), lambda: low(0))
    if desk_rows != floor_rows:
        raise SystemExit(f"the floor writes other rows than Deskflow: {dict(floor_rows)} "
                         f"!= {dict(desk_rows)}")
    for i in range(2, WARMUP):
        desk(i)
    for i in range(1, WARMUP):
        low(i)

    a_rounds: list[float] = []
    b_rounds: list[float] = []
    per_round = n // rounds
    gc.collect()
    for r in range(rounds):
        a_samples: list[float] = []
        b_samples: list[float] = []
        for k in range(per_round):
            i = WARMUP + r * per_round + k
            # alternate who goes first, so that neither always runs on a warmer cache
            order = ((low, a_samples), (desk, b_samples))
            for fn, samples in order if k % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                fn(i)
                samples.append(time.perf_counter() - t0)
        a_rounds.append(median_us(a_samples))
        b_rounds.append(median_us(b_samples))
    a, b = statistics.median(a_rounds), statistics.median(b_rounds)

    print(f"\n== (a)/(b) one approval -> task, {kind}: {rounds} rounds x {per_round} fresh approvals "
          f"per side ({2 * (n + WARMUP) + extra} requests submitted in {setup:.1f} s)")
    print("rows written per approval (both sides):")
    for name, count in sorted(desk_rows.items()):
        print(f"  {count} x {name}")
    print(f"(a) floor, hand-written ORM        {a:9.0f} µs   rounds: "
          + " ".join(f"{x:.0f}" for x in a_rounds))
    print(f"(b) RequestService.approve         {b:9.0f} µs   rounds: "
          + " ".join(f"{x:.0f}" for x in b_rounds))
    print(f"b/a = {b / a:.2f}")
    print(f"statements: floor {floor_stmts.summary()}")
    print(f"            deskflow {desk_stmts.summary()}")
    floor_kinds, desk_kinds = floor_stmts.kinds(), desk_stmts.kinds()
    print("  statement                        floor  deskflow")
    for name in sorted(set(floor_kinds) | set(desk_kinds), key=lambda k: (-desk_kinds[k], k)):
        print(f"  {name:32} {floor_kinds[name]:5}  {desk_kinds[name]:8}")

    print("  deskflow's statements by origin (innermost engine functions):")
    for (name, where), count in sorted(desk_stmts.origins().items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {count:3} x {name:22} {where}")

    if profile and kind == "sqlite":
        prof = cProfile.Profile()
        prof.enable()
        for i in range(n + WARMUP, n + WARMUP + extra // 2):
            desk(i)
        prof.disable()
        print(f"\ncProfile of {extra // 2} RequestService.approve calls (tottime, top 25):")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)
        print(f"cProfile of {extra // 2} RequestService.approve calls (cumulative, top 40):")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(40)
    engine.dispose()
    return b / a


# ---------------------------------------------------------------- (c) against SpiffWorkflow

def row_bytes(session: Session, table: str, where: str, params: dict[str, Any]) -> int:
    """Bytes of the matching rows: length() of every column as stored, summed."""
    columns = Base.metadata.tables[table].columns
    total = " + ".join(f'coalesce(length(CAST("{c.name}" AS BLOB)), 0)' for c in columns)
    return int(session.execute(text(f"SELECT coalesce(sum({total}), 0) FROM {table} WHERE {where}"),
                               params).scalar_one())


def bench_deskflow_completions(tmp: Path, n: int) -> tuple[float, dict[str, str], dict[str, int],
                                                           AppRows]:
    """Run `n` two-approval requests to the end; return completions/s, per-step figures, bytes,
    and the rows each step wrote (inserted and changed), for the fair Spiff run to write too."""
    root = tmp / "tiny-catalog"
    for name, body in TINY.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    catalog = load_catalog(root)
    assert catalog.ok, [e.render() for e in catalog.errors[:5]]
    with database("sqlite", tmp) as url:
        engine, sessions, service = service_on(url, catalog)
        stats = Statements(engine)
        steps: dict[str, list[float]] = {"submit": [], "approve A": [], "approve B": []}
        counts: dict[str, int] = {}
        numbers: list[int] = []

        changes: list[list[Change]] = []

        def timed(name: str, op: Callable[[], Any], count: bool) -> Any:
            if count:  # a warm-up run: recording slows it down; what it wrote is kept for Spiff
                before = request_rows(sessions, numbers[-1]) if name != "submit" else {}
                with stats.record():
                    result = op()
                counts[name] = len(stats.log)
                rid = result.id if name == "submit" else numbers[-1]
                changes.append(row_changes(before, request_rows(sessions, rid)))
            else:
                t0 = time.perf_counter()
                result = op()
                steps[name].append(time.perf_counter() - t0)
            return result

        for i in range(n + WARMUP):
            count = i == WARMUP - 1
            req = timed("submit", lambda: service.submit("purchase", "rita", dict(TINY_ANSWERS)), count)
            numbers.append(req.id)
            for name in ("approve A", "approve B"):
                approval_id, actor = pending_approval(sessions, req.id)  # the inbox, untimed
                timed(name, partial(service.approve, approval_id, actor), count)
        steps = {k: v[WARMUP - 1:] for k, v in steps.items()}
        spent = sum(sum(v) for v in steps.values())
        with sessions() as s:
            done = s.scalar(select(func.count()).select_from(Request).where(
                Request.outcome == "approved")) or 0
            assert done == n + WARMUP, done
            sizes: dict[str, list[int]] = {"requests": [], "approvals": [], "audit_events": [],
                                           "timers": [], "outbox": []}
            for rid in numbers[WARMUP:WARMUP + 50]:
                sizes["requests"].append(row_bytes(s, "requests", "id = :id", {"id": rid}))
                for table in ("approvals", "audit_events", "timers", "outbox"):
                    sizes[table].append(row_bytes(s, table, "request_id = :id", {"id": rid}))
            rows = {t: s.scalar(text(f"SELECT count(*) FROM {t} WHERE request_id = :id"),
                                {"id": numbers[-1]}) for t in ("approvals", "audit_events", "outbox")}
            # the workflow version the requests point at: written once, not per request
            versions = [dict(r) for r in s.execute(select(WorkflowVersion.__table__)).mappings()]
        engine.dispose()
    state = {k: int(statistics.median(v)) for k, v in sizes.items()}
    state.update({f"{k}_rows": int(v or 0) for k, v in rows.items()})
    figures = {k: f"{median_us(v):.0f} µs, {counts[k]} statements" for k, v in steps.items()}
    return n / spent, figures, state, AppRows(changes, {"workflow_versions": versions})


def complete(workflow: Any, name: str, approver: str) -> None:
    """Spiff: approve the ready user task `name` as `approver`, then run on to the next wait."""
    from SpiffWorkflow.util.task import TaskState  # SpiffWorkflow is optional: imported late

    task = workflow.get_next_task(state=TaskState.READY, manual=True)
    assert task is not None and task.task_spec.name == name, task
    task.data.update({f"{name}_decision": "approved", f"{name}_by": approver,
                      f"{name}_at": datetime.now(UTC).isoformat()})
    task.run()
    workflow.do_engine_steps()


def bench_spiff_completions(tmp: Path, n: int) -> tuple[float, int, int]:
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("two_approvals")  # parsed once, like a loaded catalog
    subprocesses = parser.get_subprocess_specs("two_approvals")
    serializer = BpmnWorkflowSerializer()
    con = sqlite3.connect(tmp / "spiff.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE instances (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")

    def store(sql: str, *params: Any) -> None:
        con.execute("BEGIN IMMEDIATE")
        con.execute(sql, params)
        con.execute("COMMIT")

    spent = 0.0
    sizes = []
    for i in range(n + WARMUP):
        t0 = time.perf_counter()
        wf = BpmnWorkflow(spec, subprocesses)
        wf.data.update({"form": dict(TINY_ANSWERS), "requester": "rita"})
        wf.do_engine_steps()
        complete(wf, "approval_a", "anna")
        store("INSERT INTO instances (id, state) VALUES (?, ?)", i, serializer.serialize_json(wf))
        loaded = serializer.deserialize_json(
            con.execute("SELECT state FROM instances WHERE id = ?", (i,)).fetchone()[0])
        complete(loaded, "approval_b", "bert")
        assert loaded.is_completed()
        final = serializer.serialize_json(loaded)
        store("UPDATE instances SET state = ? WHERE id = ?", final, i)
        if i >= WARMUP:
            spent += time.perf_counter() - t0
            sizes.append(len(final.encode()))
    con.close()
    spec_bytes = len(json.dumps(json.loads(final)["spec"]).encode())
    return n / spent, int(statistics.median(sizes)), spec_bytes


class AppRows:
    """What the application around SpiffWorkflow writes per step, as spiff-arena's backend does
    (its process_instance, human_task and process_instance_event rows): here exactly the rows
    Deskflow wrote in the same step (the request row, approvals, audit, outbox, figures),
    copied with the new request's ids, by plain SQLAlchemy Core in the transaction that stores
    the workflow's JSON. Rows a later step changes get their new id back (RETURNING); the
    others go in one executemany per table."""

    def __init__(self, steps: list[list[Change]], once: dict[str, list[dict[str, Any]]]) -> None:
        self.steps, self.once = steps, once
        self.later = {(t, k) for step in steps for op, t, k, _ in step if op == "update"}
        self.ids: dict[tuple[str, tuple], int] = {}

    def write(self, conn: Any, step: int, request_id: int | None, n: int) -> int:
        """Write step `step`'s rows for request `n` (`request_id` once it exists); return the id."""
        tables = Base.metadata.tables
        bulk: dict[str, list[dict[str, Any]]] = {}
        for op, name, key, values in self.steps[step]:
            table = tables[name]
            pk = [c.name for c in table.primary_key]
            if op == "update":
                where = [table.c[c] == (request_id if c == "request_id" or name == "requests"
                                        else self.ids[(name, key)] if c == "id" else old)
                         for c, old in zip(pk, key, strict=True)]
                conn.execute(table.update().where(*where), values)
                continue
            row = dict(values)
            if name == "requests":
                row.pop("id")
                row["number"] = f"SPIFF-{n:06d}"
                request_id = conn.execute(table.insert().returning(table.c.id), row).scalar_one()
                continue
            row["request_id"] = request_id
            if "idempotency_key" in row:
                row["idempotency_key"] = f"{request_id}:{row['idempotency_key'].split(':', 1)[1]}"
            if pk == ["id"]:
                row.pop("id")
                if (name, key) in self.later:  # changed later: keep its new id
                    self.ids[(name, key)] = conn.execute(table.insert().returning(table.c.id),
                                                         row).scalar_one()
                    continue
            bulk.setdefault(name, []).append(row)
        for name, rows in bulk.items():
            conn.execute(tables[name].insert(), rows)
        assert request_id is not None
        return request_id

    def summary(self) -> str:
        counts = [Counter(f"{op} {t}" for op, t, _, _ in step) for step in self.steps]
        return "; ".join(", ".join(f"{n} {k}" for k, n in sorted(c.items())) for c in counts)


def bench_spiff_fair(tmp: Path, n: int, app: AppRows, catalog_root: Path
                     ) -> tuple[float, dict[str, str]]:
    """SpiffWorkflow with the application it needs: per step, one transaction that loads the
    workflow's JSON, runs it, stores the JSON and writes the same rows Deskflow writes."""
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("two_approvals")  # parsed once, like a loaded catalog
    subprocesses = parser.get_subprocess_specs("two_approvals")
    serializer = BpmnWorkflowSerializer()
    catalog = load_catalog(catalog_root)
    with database("sqlite", tmp) as url:
        engine = make_engine(url)  # Deskflow's engine settings (WAL, busy timeout)
        create_schema(engine)
        with make_sessionmaker(engine).begin() as s:
            sync_directory(s, catalog.directory)
            for name, once in app.once.items():
                s.execute(Base.metadata.tables[name].insert(), once)
        state = Table("spiff_instances", MetaData(), Column("id", Integer, primary_key=True),
                      Column("state", Text, nullable=False))
        state.create(engine)

        def create(i: int) -> int:
            with engine.begin() as conn:
                wf = BpmnWorkflow(spec, subprocesses)
                wf.data.update({"form": dict(TINY_ANSWERS), "requester": "rita"})
                wf.do_engine_steps()
                rid = app.write(conn, 0, None, i)
                conn.execute(state.insert(), {"id": rid, "state": serializer.serialize_json(wf)})
                return rid

        def approve(rid: int, step: int, name: str, approver: str) -> None:
            with engine.begin() as conn:
                wf = serializer.deserialize_json(conn.execute(
                    select(state.c.state).where(state.c.id == rid)).scalar_one())
                complete(wf, name, approver)
                assert wf.is_completed() == (step == 2)
                app.write(conn, step, rid, 0)
                conn.execute(state.update().where(state.c.id == rid),
                             {"state": serializer.serialize_json(wf)})

        times: dict[str, list[float]] = {"create": [], "complete A": [], "complete B": []}
        for i in range(n + WARMUP):
            t0 = time.perf_counter()
            rid = create(i)
            t1 = time.perf_counter()
            approve(rid, 1, "approval_a", "anna")
            t2 = time.perf_counter()
            approve(rid, 2, "approval_b", "bert")
            t3 = time.perf_counter()
            if i >= WARMUP:
                for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                    times[k].append(v)
        with engine.connect() as conn:
            done = conn.scalar(select(func.count()).select_from(Request).where(
                Request.outcome == "approved", Request.number.like("SPIFF-%")))
            assert done == n + WARMUP, done
        engine.dispose()
    spent = sum(sum(v) for v in times.values())
    return n / spent, {k: f"{median_us(v):.0f} µs" for k, v in times.items()}


# ---------------------------------------------------------------- (d) memory

def make_store(path: Path, acme: Catalog, size: int) -> float:
    """An acme database with `size` requests: a few made by the service, cloned with executemany."""
    url = f"sqlite:///{path}"
    engine, sessions, service = service_on(url, acme)
    templates = []
    for stage in range(4):  # pending approval, being delivered, delivered, rejected
        req = service.submit("mobile-phone", "alice", dict(PHONE))
        templates.append(req.id)
        if stage == 0:
            continue
        approval_id, actor = pending_approval(sessions, req.id)
        if stage == 3:
            service.reject(approval_id, actor, "Not in this quarter's budget.")
            continue
        service.approve(approval_id, actor)
        if stage == 2:
            with sessions() as s:
                task_id = s.scalars(select(Task.id).where(Task.request_id == req.id)).one()
            service.claim_task(task_id, "frank")
            service.complete_task(task_id, "frank")
    engine.dispose()

    started = time.perf_counter()
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    ids = ",".join(map(str, templates))
    base = {r["id"]: dict(r) for r in con.execute(f"SELECT * FROM requests WHERE id IN ({ids})")}
    children = {t: [dict(r) for r in con.execute(f"SELECT * FROM {t} WHERE request_id IN ({ids})")]
                for t in ("approvals", "tasks", "timers", "audit_events", "outbox")}
    first = max(base) + 1
    rows: dict[str, list[dict[str, Any]]] = {"requests": []}
    rows.update({t: [] for t in children})
    for new_id in range(first, first + size - len(templates)):
        old = templates[new_id % len(templates)]
        rows["requests"].append(dict(base[old], id=new_id, number=f"REQ-{new_id:06d}"))
        for table, found in children.items():
            for child in found:
                if child["request_id"] != old:
                    continue
                row = dict(child, id=None, request_id=new_id)
                if table == "outbox":
                    row["idempotency_key"] = f"{new_id}:{child['idempotency_key'].split(':', 1)[1]}"
                rows[table].append(row)
    with con:
        for table, found in rows.items():
            if not found:
                continue
            cols = list(found[0])
            con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                            f"({', '.join('?' * len(cols))})", [tuple(r[c] for c in cols) for r in found])
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    count = con.execute("SELECT count(*) FROM requests").fetchone()[0]
    con.close()
    assert count == size, (count, size)
    return time.perf_counter() - started


def rss_child(path: str) -> None:
    """Run 200 service operations on the database at `path`; print the memory it took, as JSON."""
    acme = load_catalog(ROOT / "examples" / "acme")
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_sessionmaker(engine)
    service = RequestService(sessions, lambda: acme, Clock(START + timedelta(days=1)))
    started = time.perf_counter()
    for _ in range(RSS_OPERATIONS // 4):  # submit, approve, claim, complete
        req = service.submit("mobile-phone", "alice", dict(PHONE))
        approval_id, actor = pending_approval(sessions, req.id)
        service.approve(approval_id, actor)
        with sessions() as s:
            task_id = s.scalars(select(Task.id).where(Task.request_id == req.id)).one()
        service.claim_task(task_id, "frank")
        service.complete_task(task_id, "frank")
    elapsed = time.perf_counter() - started
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith(("VmRSS", "VmHWM")))
    kb = {k: int(v.split()[0]) for k, v in status.items()}
    print(json.dumps({"rss_kb": kb["VmRSS"], "hwm_kb": kb["VmHWM"], "seconds": elapsed}))
    engine.dispose()


def bench_memory(tmp: Path, acme: Catalog) -> float:
    print(f"\n== (d) memory: a process running {RSS_OPERATIONS} service operations "
          "(submit, approve, claim, complete), SQLite")
    results = {}
    for size in RSS_SIZES:
        path = tmp / f"store-{size}.sqlite"
        filling = make_store(path, acme, size)
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(path)], check=True,
                             capture_output=True, text=True, cwd=ROOT)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results[size] = result
        print(f"{size:>7} stored requests (bulk insert {filling:5.1f} s, "
              f"{path.stat().st_size / 2**20:6.1f} MiB): VmRSS {result['rss_kb'] / 1024:6.1f} MiB, "
              f"peak VmHWM {result['hwm_kb'] / 1024:6.1f} MiB, "
              f"{result['seconds'] * 1e3 / RSS_OPERATIONS:5.2f} ms per operation")
    small, large = (results[s] for s in RSS_SIZES)
    growth = (large["hwm_kb"] - small["hwm_kb"]) / small["hwm_kb"] * 100
    print(f"peak RSS growth 1k -> 100k: {growth:+.1f}%   (VmRSS after the operations: "
          f"{(large['rss_kb'] - small['rss_kb']) / small['rss_kb'] * 100:+.1f}%)")
    return growth


# ---------------------------------------------------------------- main

def target(name: str, measured: float, op: str, goal: float) -> str:
    ok = measured <= goal if op == "<=" else measured >= goal
    return f"target {name} {measured:.3f} {op} {goal} {'PASS' if ok else 'MISS'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--requests", type=int, default=300,
                    help="fresh approvals per side for (a)/(b); requests per side for (c)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile Deskflow's approvals on SQLite")
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    started = time.perf_counter()
    acme = load_catalog(ROOT / "examples" / "acme")
    assert acme.ok, [e.render() for e in acme.errors[:5]]
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    lines = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for kind in kinds:
            with database(kind, tmp) as url:
                ratio = bench_transition(kind, url, acme, args.requests, args.rounds, args.profile)
            lines.append(target(f"engine.transition_vs_floor_{kind}", ratio, "<=", 1.3))

        desk_rate, desk_steps, state, app = bench_deskflow_completions(tmp, args.requests)
        fair_rate, fair_steps = bench_spiff_fair(tmp, args.requests, app, tmp / "tiny-catalog")
        spiff_rate, spiff_bytes, spec_bytes = bench_spiff_completions(tmp, args.requests)
        desk_bytes = state["requests"] + state["approvals"] + state["audit_events"]
        print(f"\n== (c) two approvals run to completion, persisted between steps, SQLite file, "
              f"{args.requests} requests each")
        print(f"deskflow  (submit, approve A, approve B: 3 transactions)  {desk_rate:8.1f} completions/s")
        print(f"spiff     (the same 3 transactions: load JSON, run, store JSON + the same rows)"
              f" {fair_rate:8.1f} completions/s")
        print("deskflow per step (median): " + "; ".join(f"{k} {v}" for k, v in desk_steps.items()))
        print("spiff per step (median):    " + "; ".join(f"{k} {v}" for k, v in fair_steps.items()))
        print(f"rows each writes per step besides Spiff's JSON: {app.summary()}")
        print(f"deskflow / fair spiff = {desk_rate / fair_rate:.3f}")
        print(f"(for information, unfair: spiff storing only its JSON, create+A then load+B, "
              f"{spiff_rate:.1f} completions/s; deskflow / that = {desk_rate / spiff_rate:.3f})")
        print(f"state per finished request: deskflow {desk_bytes} B = requests row {state['requests']}"
              f" + {state['approvals_rows']} approvals {state['approvals']}"
              f" + {state['audit_events_rows']} audit rows {state['audit_events']}"
              f" (besides: {state['outbox_rows']} outbox emails {state['outbox']} B,"
              f" timers {state['timers']} B)")
        print(f"                            spiff {spiff_bytes} B of JSON (BpmnWorkflowSerializer), "
              f"of which the process spec {spec_bytes} B")
        print(f"deskflow / spiff = {desk_bytes / spiff_bytes:.3f}")
        lines.append(target("engine.completions_vs_fair_spiff", desk_rate / fair_rate, ">=", 1.0))
        lines.append(target("engine.state_size_vs_spiff", desk_bytes / spiff_bytes, "<=", 0.1))

        growth = bench_memory(tmp, acme)
        lines.append(target("engine.rss_growth_pct", growth, "<=", 10))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
