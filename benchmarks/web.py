"""Benchmark: the portal under gunicorn on 1,000,000 records (PostgreSQL) and 100,000 (SQLite).

Prints, measured in one run, on SQLite and on PostgreSQL:
  (0) memory: the pages of (b) on a database of 1,000 records first, the gunicorn workers'
      largest RSS afterwards, to compare with the same after (b) at full size;
  (a) the data: the acme catalog's directory and `--requests` stored requests (a tenth of them
      waiting on approvals spread over the approvers, open tasks spread over the queues, the
      rest closed) — a few hundred made by the request service, the rest cloned from those
      with executemany/COPY under new ids, numbers, dates, and with record fields drawn
      afresh (types by RECORD_SHARES, assignment groups and assignees, priorities, categories,
      SLA states, titles; SEARCH_WORD in about 0.5% of them), each clone's dashboards row
      computed from its own columns (engine.record_figures.fact_row); the inbox, queue and
      agents' list query plans;
  (b) the approver inbox (/approvals), a fulfiller queue (/queues/<group>) and a request page
      (/requests/<number>), the agents' list (/records) unfiltered and with three filters
      and a text search (kind, status, the busiest assignment group, q=SEARCH_WORD) as an
      agent of that group (the sidebar's view counts run too), and the dashboards (/reports,
      every figure, as a person with the reporting role: served from the shared snapshot,
      docs/reports.md; the first view computes it; for information, the same page computed
      live in process is timed too), each signed in through /login as the person who would
      open it,
      served by gunicorn with 2 sync workers on 127.0.0.1 and loaded by closed-loop clients
      in other processes for `--duration` seconds: p50/p95/p99 latency and requests/s;
  (c) orders submitted per second (POST /items/mobile-phone with a valid form and CSRF token:
      form validation, transition, audit, outbox) against a hand-written Flask view doing the
      same work on the same database (benchmarks/web_support/bare.py): the sign-in lookup from
      the same session cookie, Flask-WTF's CSRF check, the form parsed into the answers, and
      with SQLAlchemy Core in one transaction the rows one real order wrote (found by diffing
      every table around a test order, printed per table, and checked on one floor order
      before the run); same gunicorn settings, same duration and concurrency.
A page that misses its target (or every page with --profile) is then run in process with
Flask's test client: SQL statements per request and where they come from, time in SQL and
in templates, and the functions that take the time.
Targets: p95 <= 15 ms on SQLite and <= 20 ms on PostgreSQL for each page and the agents'
list; the dashboards p95 <= 500 ms; the workers' RSS within 10% of the 1,000-record run's;
orders/s >= 0.5x the hand-written view's orders/s on each database.

    python benchmarks/web.py [--db sqlite|postgresql|both] [--duration 15] [--requests N]
                             [--concurrency 2] [--profile] [--no-rss]

PostgreSQL: a server of the benchmark's own (initdb in a temporary folder, the settings
docs/operations.md recommends: benchmarks/web_support/pg_server.py PRODUCTION), or the server
DESKFLOW_BENCH_DATABASE_URL names; the benchmark creates a database deskflow_webbench_<random>
there and drops it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import re
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = Path(__file__).resolve().parent / "web_support"
# Run as a script, this file's folder heads sys.path and this file, web.py, would shadow the
# `web` package it measures.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(1, str(SUPPORT))


import gunicorn_run  # noqa: E402
import loadgen  # noqa: E402
from pg_server import PRODUCTION, Postgres  # noqa: E402
from sqlalchemy import Engine, create_engine, event, func, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402
from sqlalchemy.types import JSON, Boolean  # noqa: E402

from catalog.catalog import Catalog  # noqa: E402
from catalog.loader import load_catalog  # noqa: E402
from catalog.workflow import StateKind  # noqa: E402
from engine import people, queries, search_index, worklist  # noqa: E402
from engine.db import make_engine, make_sessionmaker  # noqa: E402
from engine.directory import sync_directory  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import Approval, Base, Membership, Person, Request, Task, UTCDateTime  # noqa: E402
from engine.permissions import can_order  # noqa: E402
from engine.record_figures import fact_row  # noqa: E402
from engine.service import RequestService  # noqa: E402

ACME = ROOT / "examples" / "acme"
#: an existing server to use instead of one of our own with pg_server.PRODUCTION's settings
PG_URL = os.environ.get("DESKFLOW_BENCH_DATABASE_URL")
PASSWORD = "correct horse battery staple"
SECRET_KEY = "deskflow-web-benchmark-not-a-secret"
WORKERS = 2
WARMUP_S = 2.0
GOALS_MS = {"sqlite": 15.0, "postgresql": 20.0}
#: the dashboards (/reports: every figure's chart and table), on each database
DASHBOARD_GOAL_MS = 500.0
#: stored records by default: a company's years of history on PostgreSQL, less on SQLite
DEFAULT_RECORDS = {"sqlite": 100_000, "postgresql": 1_000_000}
#: the small database the gunicorn workers' memory is first measured on (RSS at SMALL vs the
#: full size: flat within RSS_GOAL_PCT)
SMALL_RECORDS, RSS_GOAL_PCT = 1_000, 10.0
#: the records' fields on the clones, as a service desk has them: types, groups, priorities
RECORD_SHARES = {"incident": 0.45, "request": 0.45, "change": 0.07, "problem": 0.03}
GROUP_SHARES = {"service-desk": 0.35, "it-ops": 0.15, "apps-team": 0.12, "it-hardware": 0.10,
                "network-team": 0.08, "identity": 0.08, "security": 0.05,
                "software-licensing": 0.04, "facilities": 0.03}
PRIORITY_SHARES = {"p1": 0.02, "p2": 0.10, "p3": 0.48, "p4": 0.40}
SUBJECTS = ("Laptop", "VPN", "Printer", "Outlook", "CRM", "Badge", "Monitor", "Wi-Fi",
            "SharePoint", "Teams", "Desk phone", "Docking station", "Password", "Jira", "SAP",
            "Payroll portal", "Shared drive", "Headset", "Calendar", "Expense tool")
TROUBLES = ("does not start", "is slow", "keeps disconnecting", "shows an error",
            "needs replacing", "access needed", "not syncing", "locked out", "new one please",
            "broken after the update", "cannot log in", "missing licence")
CATEGORIES = ("Hardware", "Software", "Network", "Access", "Email", "Facilities", "Security")
#: in about SEARCH_SHARE of the clones' titles and nowhere else: the filtered list's `q`
SEARCH_WORD, SEARCH_SHARE = "kerberos", 0.005
SUBMIT_GOAL = 0.5
ORDER_ITEM = "mobile-phone"
ORDER_AS = "alice"
#: acme's agent with the reporting role: the dashboards
REPORTER = "ivan"
CHUNK = 5_000
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite

#: valid answers for every acme item (after tests/engine/conftest.py)
ANSWERS: dict[str, dict[str, Any]] = {
    "system-access": {"system": "crm", "role": "crm-read", "level": "read",
                      "reason": "I support the sales team with their pipeline."},
    "shared-folder": {"site_url": "https://acme.sharepoint.com/sites/sales", "access": "read",
                      "approver": "carol"},
    "shared-mailbox": {"action": "add-members", "mailbox_address": "sales@acme.example",
                       "members": ["alice", "bob"], "approver": "carol"},
    "vpn-access": {"vpn_profile": "standard"},
    "normal-change": {"change_title": "Upgrade the mail relay", "description": "Upgrade the "
                      "outbound mail relay to the current release to fix delivery delays.",
                      "risk": "low", "affected_systems": ["crm"], "implementer": "heidi",
                      "planned_date": "2026-12-01"},
    "standard-change": {"change_template": "restart-service", "target": "mail01.acme.example",
                        "planned_date": "2026-12-01"},
    "meeting-room-equipment": {"room": "vermeer", "meeting_date": "2026-12-01",
                               "start_time": "10:00", "attendees": 6, "equipment": ["projector"]},
    "badge-replacement": {"badge_reason": "damaged", "building": "home",
                          "home_address": "Keizersgracht 1, Amsterdam"},
    "mobile-phone": {"device": "pixel", "data_plan": "10gb", "cost_center": "CC-1234",
                     "building": "ams-hq", "floor": 3},
    "monitor-peripherals": {"accessories": [{"accessory": "dock", "quantity": 1}],
                            "building": "ams-hq", "floor": 2},
    "new-laptop": {"model": "std14", "cost_center": "CC-1234", "building": "ams-hq", "floor": 4},
    "new-hire-onboarding": {"new_hire_name": "Sam Smith", "personal_email": "sam@example.com",
                            "job_title": "Analyst", "start_date": "2027-01-04",
                            "hiring_manager": "bob", "contract_type": "permanent",
                            "office": "ams-hq", "equipment": ["laptop"]},
    "offboarding": {"leaving_person": "peter", "last_day": "2026-12-31", "reason": "resignation",
                    "handover_to": "grace"},
    "software-licence": {"software": "figma-professional",
                         "business_reason": "Design work for the portal.", "cost_center": "CC-1234"},
    "report-incident": {"short_description": "Mail is down", "affected_service": "email",
                        "description": "Nobody on the third floor can send or receive mail.",
                        "impact": "high", "people_affected": 40, "urgency": "high",
                        "contact_email": "alice@acme.example"},
    "password-unlock": {"account": "acme"},
}
#: a second route through some workflows (directors' quorum, security review, ...)
VARIANTS: dict[str, dict[str, Any]] = {
    "new-laptop": {"model": "pro16", "justification": "I render 3D models all day long."},
    "system-access": {"level": "admin", "role": "crm-admin", "access_until": "2027-01-31"},
    "software-licence": {"software": "adobe-creative-cloud"},
    "normal-change": {"risk": "high", "rollback_plan": "Restore the previous image."},
}
TASK_VALUES = {"string": "user.one", "textarea": "Completed as planned, with no problems at all.",
               "integer": 0, "number": 0, "boolean": False}
#: how far each made request is driven; cycled over (item, requester) pairs
STAGES = ("approval", "task", "closed", "approval", "task", "closed", "rejected", "cancelled",
          "task", "closed")
CHILD_TABLES = ("approvals", "tasks", "timers", "comments", "audit_events", "outbox", "assets")
#: one row per record, computed from the clone's own columns (engine.record_figures.fact_row)
FACTS = "record_facts"


class Clock:
    """Starts a month ago; moves a millisecond per read, and by hand across wait states."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) - timedelta(days=30)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, int(-(-len(ordered) * p // 100)) - 1))]


# ---------------------------------------------------------------- databases

@contextmanager
def database(kind: str, tmp: Path, pg_url: str) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'webbench-{secrets.token_hex(3)}.sqlite'}"
        return
    name = f"deskflow_webbench_{secrets.token_hex(5)}"
    server = make_url(pg_url).set(drivername="postgresql+psycopg")
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


# ---------------------------------------------------------------- (a) the data

@dataclass
class Dataset:
    kind: str
    url: str
    made: int = 0
    made_seconds: float = 0.0
    cloned_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    classes: Counter[str] = field(default_factory=Counter)
    approver: str = ""
    approver_pending: int = 0
    approvers: list[tuple[str, int]] = field(default_factory=list)
    queue: str = ""
    #: the assignment group with most open records, and an agent in it (the agents' list)
    desk_group: str = ""
    desk_agent: str = ""
    list_counts: dict[str, int] = field(default_factory=dict)
    agent: str = ""
    queues: list[tuple[str, int]] = field(default_factory=list)
    requester: str = ""
    numbers: list[str] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)


def drive(service: RequestService, sessions: sessionmaker[Session], acme: Catalog, clock: Clock,
          req_id: int, until: str, rng: random.Random) -> None:
    """Move a request on through the service until it reaches the stage `until` names."""
    for _ in range(40):
        with sessions() as s:
            req = s.get(Request, req_id)
            assert req is not None
            if req.status != "open":
                return
            wf = acme.workflow(req.workflow_version.workflow_id)
            state = wf.state(req.state) if wf else None
            pending = list(s.scalars(select(Approval).where(
                Approval.request_id == req.id, Approval.visit == req.visit,
                Approval.decision == "pending").order_by(Approval.id)))
            tasks = list(s.scalars(select(Task).where(
                Task.request_id == req.id, Task.visit == req.visit,
                Task.status == "open").order_by(Task.id)))
            members = {t.id: people.members(s, t.queue) for t in tasks}
            number, requester = req.number or "", req.requester_id
        if pending:
            if until == "approval":
                return
            a = pending[0]
            if until == "rejected":
                service.reject(a.id, a.approver_id, "Not in this quarter's budget, sorry.")
            else:
                service.approve(a.id, a.approver_id, "Fine by me.")
        elif tasks:
            t = tasks[0]
            worker = t.assignee_id or members[t.id][0]
            if until in ("approval", "task"):
                if rng.random() < 0.4:
                    service.claim_task(t.id, worker)
                if rng.random() < 0.5:
                    service.comment(number, requester, "Any news on this? I need it this week.")
                    service.comment(number, worker, "On it; it should be done by Thursday.")
                return
            spec = next((x for x in (state.tasks if state else ()) if x.name == t.name), None)
            answers = {f.name: TASK_VALUES.get(f.type.value, "x")
                       for f in (spec.fields if spec else ()) if f.required}
            service.claim_task(t.id, worker)
            service.complete_task(t.id, worker, answers=answers)
        elif state is not None and state.kind is StateKind.WAIT and until not in ("approval", "task"):
            clock.now += timedelta(days=10)
            service.run_due()
        else:
            return


def make_requests(url: str, acme: Catalog) -> tuple[int, float]:
    """Directory, passwords, and a few hundred genuine requests made by the request service."""
    from web.passwords import hash_password

    started = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        sync_directory(s, acme.directory)
        s.execute(update(Person).values(password_hash=hash_password(PASSWORD)))  # hashed once
    clock = Clock()
    service = RequestService(sessions, lambda: acme, clock)
    rng = random.Random(4)
    made = 0
    with sessions() as s:
        everyone = [p.id for p in acme.directory.people]
        orderers = {item.id: [p for p in everyone if can_order(s, p, item)] for item in acme.items}
    plan = []
    for item in acme.items:
        for who in orderers[item.id]:
            answers = dict(ANSWERS.get(item.id, {}))
            if item.id in VARIANTS and len(plan) % 3 == 0:
                answers.update(VARIANTS[item.id])
            plan.append((item.id, who, answers, STAGES[len(plan) % len(STAGES)]))
    # Requests that finish first: driving them through wait states moves the clock on, and
    # that would time out (and escalate) any approval still pending. Then the open ones.
    ending = [p for p in plan if p[3] not in ("approval", "task")]
    staying = [p for p in plan if p[3] in ("approval", "task")]
    for batch in (ending, staying):
        if batch is staying:
            clock.now = datetime.now(UTC) - timedelta(days=2)
        for item_id, who, answers, until in batch:
            try:
                req = service.submit(item_id, who, answers)
                made += 1
                if until == "cancelled":
                    if req.status == "open":
                        service.cancel(req.number or "", who, "Ordered the wrong thing.")
                else:
                    drive(service, sessions, acme, clock, req.id, until, rng)
            except EngineError:
                continue  # e.g. someone who would approve their own request
    engine.dispose()
    return made, time.perf_counter() - started


@dataclass
class Shape:
    """A table's columns, and which need shifting in time or serialising."""

    name: str
    cols: list[str]
    times: list[int]
    jsons: list[int]
    bools: list[int]


def shapes() -> dict[str, Shape]:
    out = {}
    for name in ("requests", *CHILD_TABLES, FACTS):
        table = Base.metadata.tables[name]
        cols = [c.name for c in table.columns]
        out[name] = Shape(name, cols,
                          [i for i, c in enumerate(table.columns) if isinstance(c.type, UTCDateTime)],
                          [i for i, c in enumerate(table.columns) if isinstance(c.type, JSON)],
                          [i for i, c in enumerate(table.columns) if isinstance(c.type, Boolean)])
    return out


def classify(conn: Any) -> dict[int, str]:
    """Each made request: 'approval' (open, waiting on an approval), 'task', 'closed' or 'other'."""
    pending = select(Approval.id).where(Approval.request_id == Request.id,
                                        Approval.visit == Request.visit,
                                        Approval.decision == "pending").exists()
    working = select(Task.id).where(Task.request_id == Request.id, Task.visit == Request.visit,
                                    Task.status == "open").exists()
    out = {}
    for rid, status, has_approval, has_task in conn.execute(
            select(Request.id, Request.status, pending, working)):
        out[rid] = ("closed" if status == "closed" else "approval" if has_approval
                    else "task" if has_task else "other")
    return out


def clone_requests(kind: str, url: str, total: int, rng: random.Random) -> tuple[Counter[str], float]:
    """Fill up to `total` requests by cloning the made ones: a tenth waiting on approvals,
    15% with open tasks, the rest closed; new ids and numbers, dates spread over two years."""
    started = time.perf_counter()
    engine = make_engine(url)
    table_shapes = shapes()
    with engine.connect() as conn:
        kinds = classify(conn)
        tmpl_rows: dict[str, dict[int, list[tuple[Any, ...]]]] = {}
        for name in ("requests", *CHILD_TABLES):
            table = Base.metadata.tables[name]
            by_req: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
            key = "id" if name == "requests" else "request_id"
            at = table_shapes[name].cols.index(key)
            for row in conn.execute(select(table).where(table.c[key].is_not(None))
                                    .order_by(table.c.id)):
                by_req[row[at]].append(tuple(row))
            tmpl_rows[name] = by_req
        next_id = {name: (conn.scalar(select(func.max(Base.metadata.tables[name].c.id))) or 0) + 1
                   for name in ("requests", *CHILD_TABLES)}
        members: dict[str, list[str]] = defaultdict(list)
        for group, person in conn.execute(select(Membership.group_id, Membership.person_id)
                                          .order_by(Membership.person_id)):
            members[group].append(person)
    engine.dispose()
    type_at = table_shapes["requests"].cols.index("record_type")
    record_type = {rid: rows[0][type_at] for rid, rows in tmpl_rows["requests"].items()}

    def pick(pool: list[int]) -> int:
        """A template, its record type drawn by RECORD_SHARES among the types in the pool."""
        by_type: dict[str, list[int]] = defaultdict(list)
        for rid in pool:
            by_type[record_type[rid]].append(rid)
        types = sorted(by_type)
        chosen = rng.choices(types, [RECORD_SHARES.get(t, 0.01) for t in types])[0]
        return rng.choice(by_type[chosen])

    made = Counter(kinds.values())
    pools = {k: [rid for rid, v in kinds.items() if v == k] for k in ("approval", "task", "closed")}
    want = {"approval": total // 10, "task": total * 15 // 100}
    want["closed"] = total - want["approval"] - want["task"] - made["other"]
    now = datetime.now(UTC)
    spread = {"approval": (timedelta(hours=1), timedelta(days=30)),
              "task": (timedelta(hours=1), timedelta(days=60)),
              "closed": (timedelta(days=30), timedelta(days=730))}
    plan: list[tuple[datetime, int]] = []
    for cls, pool in pools.items():
        if not pool:
            raise SystemExit(f"no made request ended up as '{cls}'; cannot clone")
        lo, hi = spread[cls]
        for _ in range(max(0, want[cls] - len(pool))):
            plan.append((now - lo - (hi - lo) * rng.random(), pick(pool)))
    plan.sort()

    def native_time(value: datetime) -> Any:
        return value.strftime(SQLITE_TIME) if kind == "sqlite" else value

    # each template row once: values ready for the driver, times kept apart for shifting
    prepared: dict[str, dict[int, list[tuple[list[Any], list[tuple[int, datetime]], str]]]] = {}
    for name, by_req in tmpl_rows.items():
        shp = table_shapes[name]
        prepared[name] = {}
        for rid, rows in by_req.items():
            out = []
            for row in rows:
                values = list(row)
                times = [(i, values[i]) for i in shp.times if values[i] is not None]
                for i in shp.jsons:
                    values[i] = json.dumps(values[i]) if values[i] is not None else None
                if kind == "sqlite":
                    for i in shp.bools:
                        values[i] = None if values[i] is None else int(values[i])
                out.append((values, times, ""))
            prepared[name][rid] = out
    numbers = {rid: rows[0][0][table_shapes["requests"].cols.index("number")]
               for rid, rows in prepared["requests"].items()}
    created_ix = table_shapes["requests"].cols.index("created_at")
    req_cols = table_shapes["requests"].cols
    facts = table_shapes[FACTS]

    def fact(row: list[Any], shifted: dict[int, datetime]) -> list[Any]:
        """The clone's dashboards row, from its own columns as the engine computes it."""
        where = {name: i for i, name in enumerate(req_cols)}
        got = fact_row(lambda name: shifted.get(where[name], row[where[name]]))
        out = [got[name] for name in facts.cols]
        for i in facts.times:
            out[i] = None if out[i] is None else native_time(out[i])
        if kind == "sqlite":
            for i in facts.bools:
                out[i] = None if out[i] is None else int(out[i])
        return out

    loader = _SqliteLoader(url) if kind == "sqlite" else _PostgresLoader(url)
    try:
        for start in range(0, len(plan), CHUNK):
            batch: dict[str, list[list[Any]]] = defaultdict(list)
            for created, tmpl in plan[start:start + CHUNK]:
                new_id = next_id["requests"]
                next_id["requests"] += 1
                old_number, new_number = numbers[tmpl], f"REQ-{new_id:06d}"
                tmpl_created = dict(prepared["requests"][tmpl][0][1])[created_ix]
                delta = created - tmpl_created
                for name in ("requests", *CHILD_TABLES):
                    shp = table_shapes[name]
                    for values, times, _ in prepared[name].get(tmpl, ()):
                        row = list(values)
                        shifted = {i: t + delta for i, t in times}
                        for i, t in shifted.items():
                            row[i] = native_time(t)
                        if name == "requests":
                            row[0], row[shp.cols.index("number")] = new_id, new_number
                            desk_fields(row, shp.cols, rng, members)
                            batch[FACTS].append(fact(row, shifted))
                        else:
                            row[0] = next_id[name]
                            next_id[name] += 1
                            row[shp.cols.index("request_id")] = new_id
                            for i in shp.jsons:
                                if row[i] and old_number in row[i]:
                                    row[i] = row[i].replace(old_number, new_number)
                            if name == "outbox":
                                ik = shp.cols.index("idempotency_key")
                                row[ik] = f"{new_id}:{row[ik].split(':', 1)[1]}"
                            if name == "assets" and row[shp.cols.index("key")] is not None:
                                row[shp.cols.index("key")] += f"-{new_id}"  # unique per type
                        batch[name].append(row)
            for name in ("requests", *CHILD_TABLES, FACTS):
                if batch[name]:
                    loader.load(table_shapes[name], batch[name])
            loader.commit()
        loader.finish(list(next_id))
    finally:
        loader.close()
    classes = Counter(made)
    for _, tmpl in plan:
        classes[kinds[tmpl]] += 1
    return classes, time.perf_counter() - started


def desk_fields(row: list[Any], cols: list[str], rng: random.Random,
                members: dict[str, list[str]]) -> None:
    """A clone's record fields drawn afresh: title, assignment group and assignee, priority,
    category, SLA state; SEARCH_WORD in about SEARCH_SHARE of the titles."""
    def put(name: str, value: Any) -> None:
        row[cols.index(name)] = value

    shares = {g: w for g, w in GROUP_SHARES.items() if members.get(g)}
    group = rng.choices(list(shares), list(shares.values()))[0]
    is_open = row[cols.index("status")] == "open"
    title = f"{rng.choice(SUBJECTS)} {rng.choice(TROUBLES)}"
    if rng.random() < SEARCH_SHARE:
        title += f" ({SEARCH_WORD} ticket)"
    put("title", title)
    put("assignment_group_id", group)
    put("group_path", group)
    put("assignee_id", rng.choice(members[group]) if not is_open or rng.random() < 0.55 else None)
    put("priority", rng.choices(list(PRIORITY_SHARES), list(PRIORITY_SHARES.values()))[0])
    put("category", rng.choice(CATEGORIES))
    put("sla_state", rng.choices(("ok", "warning", "breached"),
                                 (0.85, 0.08, 0.07) if is_open else (0.9, 0.0, 0.1))[0])


class _SqliteLoader:
    def __init__(self, url: str) -> None:
        self.con = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute("BEGIN")

    def load(self, shp: Shape, rows: list[list[Any]]) -> None:
        self.con.executemany(f"INSERT INTO {shp.name} ({', '.join(shp.cols)}) VALUES "
                             f"({', '.join('?' * len(shp.cols))})", rows)

    def commit(self) -> None:
        self.con.execute("COMMIT")
        self.con.execute("BEGIN")

    def finish(self, tables: list[str]) -> None:
        self.con.execute("COMMIT")
        self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.con.close()


class _PostgresLoader:
    """COPY, PostgreSQL's executemany, with foreign-key triggers off while loading."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.con = psycopg.connect(make_url(url).set(drivername="postgresql")
                                   .render_as_string(hide_password=False))
        self.con.execute("SET session_replication_role = replica")

    def load(self, shp: Shape, rows: list[list[Any]]) -> None:
        with self.con.cursor() as cur, \
                cur.copy(f"COPY {shp.name} ({', '.join(shp.cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def commit(self) -> None:
        self.con.commit()

    def finish(self, tables: list[str]) -> None:
        for name in tables:
            self.con.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                             f"(SELECT max(id) FROM {name}))")
        self.con.commit()
        for statement in search_index.REBUILD["postgresql"]:  # its triggers were off too
            self.con.execute(statement)
        self.con.commit()
        self.con.autocommit = True
        self.con.execute("VACUUM ANALYZE")

    def close(self) -> None:
        self.con.close()


def plan_of(engine: Engine, query: Any) -> str:
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        prefix = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
        rows = conn.execute(text(f"{prefix} {compiled}")).all()
    steps = [str(r[-1]).strip() for r in rows]
    # keep the access paths (SQLite: SEARCH/SCAN; PostgreSQL: ... Scan ... on ...)
    return " | ".join(x.replace("->  ", "") for x in steps
                      if re.search(r"\b(SEARCH|SCAN|TEMP B-TREE|Scan|Join|Nested Loop|Sort|Limit|"
                                   r"Gather)\b", x))


def build(kind: str, url: str, acme: Catalog, total: int) -> Dataset:
    data = Dataset(kind, url)
    data.made, data.made_seconds = make_requests(url, acme)
    data.classes, data.cloned_seconds = clone_requests(kind, url, total, random.Random(7))
    engine = make_engine(url)
    with engine.connect() as conn:
        for name in ("requests", *CHILD_TABLES, "people"):
            data.counts[name] = conn.scalar(text(f"SELECT count(*) FROM {name}")) or 0
        inbox = (select(Approval.approver_id, func.count())
                 .join(Request, Request.id == Approval.request_id)
                 .where(Approval.decision == "pending", Approval.visit == Request.visit,
                        Request.status == "open")
                 .group_by(Approval.approver_id).order_by(func.count().desc()))
        data.approvers = [(a, n) for a, n in conn.execute(inbox)]
        data.approver, data.approver_pending = data.approvers[0]
        busy = (select(Task.queue, func.count()).join(Request, Request.id == Task.request_id)
                .where(Task.status == "open").group_by(Task.queue).order_by(func.count().desc()))
        data.queues = [(q, n) for q, n in conn.execute(busy)]
        data.queue = data.queues[0][0]
        data.agent = conn.scalar(select(Membership.person_id).where(
            Membership.group_id == data.queue).order_by(Membership.person_id)) or ""
        mine = conn.scalar(select(func.count()).select_from(Request).where(
            Request.requester_id == ORDER_AS)) or 0
        data.requester = ORDER_AS if mine >= 100 else conn.scalar(
            select(Request.requester_id).group_by(Request.requester_id)
            .order_by(func.count().desc()).limit(1)) or ORDER_AS
        numbers = list(conn.scalars(select(Request.number).where(
            Request.requester_id == data.requester).order_by(Request.id)))
    random.Random(11).shuffle(numbers)
    data.numbers = numbers[:2000]
    # the two statements engine.queries._paginate runs for page 1
    for name, query in (("inbox", queries.inbox_query(data.approver, [])),
                        ("queue", queries.queue_query(data.queue, viewer=data.agent))):
        data.plans[f"{name} page"] = plan_of(engine, query.limit(queries.PAGE_SIZE).offset(0))
        data.plans[f"{name} count"] = plan_of(engine, select(func.count()).select_from(
            query.order_by(None).subquery()))
    # the agents' list: the group with most open records, an agent in it, both views
    with engine.connect() as conn:
        data.desk_group = conn.scalar(
            select(Request.assignment_group_id).where(Request.status == "open",
                                                      Request.assignment_group_id.is_not(None))
            .group_by(Request.assignment_group_id).order_by(func.count().desc()).limit(1)) or ""
        data.desk_agent = conn.scalar(select(Membership.person_id).where(
            Membership.group_id == data.desk_group).order_by(Membership.person_id)) or ""
        data.list_counts["open in the group"] = conn.scalar(select(func.count()).where(
            Request.status == "open", Request.assignment_group_id == data.desk_group)) or 0
        data.list_counts[f"with {SEARCH_WORD} in the title"] = conn.scalar(
            select(func.count()).where(Request.title.contains(SEARCH_WORD))) or 0
    with Session(engine) as s:
        for name, raw in list_views(data).items():
            found = worklist.parse_filters(s, acme, data.desk_agent, raw)
            data.list_counts[name] = worklist.count(s, acme, data.desk_agent, found)[0]
            if found.q:  # a search's count and page are one statement (engine.worklist.worklist)
                data.plans[f"{name} page and count"] = plan_of(
                    engine, worklist.found_query(s, acme, data.desk_agent, found))
                continue
            data.plans[f"{name} page"] = plan_of(
                engine, worklist.page_query(s, acme, data.desk_agent, found))
            data.plans[f"{name} count"] = plan_of(
                engine, worklist.count_query(s, acme, data.desk_agent, found))
    engine.dispose()
    return data


def list_views(data: Dataset) -> dict[str, dict[str, str]]:
    """The agents' list's two measured views: the default one, three filters and a search."""
    return {"agents_list": {},
            "agents_list_filtered": {"kind": "incident", "status": "open",
                                     "group": data.desk_group, "q": SEARCH_WORD}}


def print_dataset(data: Dataset) -> None:
    c = data.counts
    print(f"made through the request service: {data.made} requests in {data.made_seconds:.1f} s "
          f"(migrations, directory, passwords included); cloned the rest in "
          f"{data.cloned_seconds:.1f} s")
    print(f"rows: {c['requests']:,} requests ({data.classes['approval']:,} waiting on an approval, "
          f"{data.classes['task']:,} with open tasks, {data.classes['closed']:,} closed, "
          f"{data.classes['other']:,} other open), {c['approvals']:,} approvals, "
          f"{c['tasks']:,} tasks, {c['timers']:,} timers, {c['comments']:,} comments, "
          f"{c['audit_events']:,} audit events, {c['outbox']:,} outbox messages, "
          f"{c['assets']:,} assets, {c['people']} people")
    spread = [n for _, n in data.approvers]
    print(f"pending approvals over {len(spread)} approvers: max {spread[0]:,} ({data.approver}), "
          f"median {int(statistics.median(spread)):,}, min {spread[-1]:,}")
    tasks = [n for _, n in data.queues]
    print(f"open tasks over {len(tasks)} queues: max {tasks[0]:,} ({data.queue}), "
          f"median {int(statistics.median(tasks)):,}, min {tasks[-1]:,}")
    print(f"the agents' list as {data.desk_agent} of {data.desk_group}: " + ", ".join(
        f"{name} {n:,}" for name, n in data.list_counts.items()) + " (views count up to "
        f"{worklist.COUNT_CAP + 1:,})")
    for name, shown in data.plans.items():
        index = ("ix_approvals_inbox" if name.startswith("inbox") else
                 "record_search" if name.startswith("agents_list_filtered") else
                 "ix_requests_" if name.startswith("agents_list") else "ix_tasks_queue")
        verdict = "uses" if index in shown else "DOES NOT USE"
        print(f"plan of the {name} query ({verdict} {index}): {shown[:400]}")


# ---------------------------------------------------------------- gunicorn

free_port = gunicorn_run.free_port


def server_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKFLOW_")}
    env.update(DESKFLOW_DATABASE_URL=url, DESKFLOW_CATALOG=str(ACME),
               DESKFLOW_SECRET_KEY=SECRET_KEY, DESKFLOW_SECURE_COOKIES="false",
               DESKFLOW_RATELIMIT_STORAGE="memory://", PYTHONPATH=str(ROOT))
    return env


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


def _jiffies(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def worker_rss_mib(server: Server) -> float:
    """The largest resident set of the gunicorn workers, MiB (/proc/<pid>/status VmRSS)."""
    sizes = [0]
    for pid in _children(server.pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            sizes.append(int(found.group(1)))
    return max(sizes) / 1024


def postgres_jiffies() -> dict[int, int]:
    """CPU used so far by each PostgreSQL server process (they run this benchmark's queries)."""
    out = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "postgres":
                    out[int(proc.name)] = _jiffies(int(proc.name))
            except OSError:
                continue
    return out


def cpu_snapshot(server: Server) -> tuple[int, int]:
    """(CPU busy on the machine, CPU used by this benchmark's own processes), in jiffies."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(x) for i, x in enumerate(first) if i not in (3, 4))  # all but idle, iowait
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = _jiffies(os.getpid()) + int((kids.ru_utime + kids.ru_stime) * os.sysconf("SC_CLK_TCK"))
    ours += sum(_jiffies(p) for p in (server.pid, *_children(server.pid)))
    return busy, ours


@contextmanager
def gunicorn(app: str, env: dict[str, str], log: Path, ready: str) -> Iterator[Server]:
    """gunicorn with 2 sync workers on 127.0.0.1:<free port>; stopped afterwards."""
    with gunicorn_run.serve(app, env, log, ready, WORKERS) as (port, pid):
        yield Server(port, pid)


def load(server: Server, method: str, paths: list[str], cookie: str | None, body: str | None,
         ok: tuple[int, ...], args: argparse.Namespace) -> dict[str, Any]:
    """Run the clients in another process (benchmarks/web_support/loadgen.py)."""
    job = {"port": server.port, "method": method, "paths": paths, "cookie": cookie, "body": body,
           "ok": list(ok), "concurrency": args.concurrency, "duration": args.duration,
           "warmup": WARMUP_S}
    before, pg_before, t0 = cpu_snapshot(server), postgres_jiffies(), time.monotonic()
    out = subprocess.run([sys.executable, str(SUPPORT / "loadgen.py")], input=json.dumps(job),
                         capture_output=True, text=True, timeout=args.duration + WARMUP_S + 120,
                         cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"load generator failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    after, pg_after, spent = cpu_snapshot(server), postgres_jiffies(), time.monotonic() - t0
    pg = sum(j - pg_before.get(pid, 0) for pid, j in pg_after.items())
    foreign = (after[0] - before[0]) - (after[1] - before[1]) - pg
    share = os.sysconf("SC_CLK_TCK") * spent * (os.cpu_count() or 1)
    result["foreign_cpu"], result["postgres_cpu"] = max(0.0, foreign / share), pg / share
    lat = result["latencies"]
    result.update(p50=percentile(lat, 50), p95=percentile(lat, 95), p99=percentile(lat, 99))
    return result


def show(label: str, r: dict[str, Any]) -> None:
    bad = {k: v for k, v in r["statuses"].items() if int(k) not in r.get("ok_codes", ())}
    print(f"{label:<44} p50 {r['p50']:6.2f} ms  p95 {r['p95']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
          f"{r['per_second']:7.1f} req/s  (n={r['count']:,}, {r['median_bytes']:,} B"
          + (f", statuses {dict(r['statuses'])}" if bad else "")
          + (f"; postgres {r['postgres_cpu'] * 100:.0f}%" if r["postgres_cpu"] > 0.005 else "")
          + f"; other processes {r['foreign_cpu'] * 100:.0f}% of the CPUs)")
    if r["first_error"]:
        print(f"    first unexpected answer: {r['first_error'][:300]!r}")


# ---------------------------------------------------------------- (b) pages, (c) ordering

@dataclass
class PageRun:
    name: str
    label: str
    user: str
    paths: list[str]
    result: dict[str, Any] | None = None
    why_not: str = ""
    body: str | None = None  # a POST of this form, else a GET
    goals: dict[str, float] = field(default_factory=lambda: GOALS_MS)
    #: what the page must show to count as served (else the request number in the path)
    expect: str = "REQ-"
    #: requests per profiling pass (fewer for a slow page)
    profile_n: int | None = None


def bench_pages(server: Server, data: Dataset, args: argparse.Namespace,
                strict: bool = True) -> list[PageRun]:
    """Each page under load; `strict`: only a page showing what it should (at 1,000 records the
    filtered list may rightly be empty, and is loaded all the same for the memory figure)."""
    runs = [PageRun("inbox", f"approver inbox /approvals as {data.approver}", data.approver,
                    ["/approvals"]),
            PageRun("queue", f"queue /queues/{data.queue} as {data.agent}", data.agent,
                    [f"/queues/{data.queue}"]),
            PageRun("request", f"request page /requests/<n> as {data.requester} "
                               f"({len(data.numbers)} numbers)", data.requester,
                    [f"/requests/{n}" for n in data.numbers])]
    runs += [PageRun(name, f"agents' list /records{'?' if raw else ''}{urlencode(raw)} as "
                           f"{data.desk_agent}", data.desk_agent,
                     [f"/records{'?' if raw else ''}{urlencode(raw)}"])
             for name, raw in list_views(data).items()]
    runs.append(PageRun("dashboards", f"dashboards /reports as {REPORTER}", REPORTER,
                        ["/reports"], goals=dict.fromkeys(GOALS_MS, DASHBOARD_GOAL_MS),
                        expect="<svg", profile_n=10))
    clients: dict[str, loadgen.Client] = {}
    for run in runs:
        try:
            client = clients.get(run.user) or loadgen.sign_in(server.port, run.user, PASSWORD)
            clients[run.user] = client
            status, _, html = client.request("GET", run.paths[0])
        except (RuntimeError, OSError) as exc:
            run.why_not = str(exc)
            print(f"{run.label:<44} not measured: {run.why_not}")
            continue
        expected = run.paths[0].rsplit("/", 1)[1] if run.name == "request" else run.expect
        if status != 200:
            run.why_not = f"GET {run.paths[0]} answered {status}"
        elif expected not in html and strict:
            run.why_not = f"GET {run.paths[0]} shows no {expected} ({len(html)} B)"
        if run.why_not:
            print(f"{run.label:<44} not measured: {run.why_not}")
            continue
        run.result = load(server, "GET", run.paths, client.cookie_header(), None, (200,), args)
        run.result["ok_codes"] = (200,)
        if run.name == "inbox":
            shown = len(set(re.findall(r"REQ-\d{6,}", html)))
            run.label += f" [{data.approver_pending:,} pending, {shown} shown]"
        show(run.label, run.result)
    return runs


def order_body(client: loadgen.Client, path: str) -> tuple[str | None, str]:
    """A valid order form for ORDER_ITEM, as the browser would post it, with its CSRF token."""
    status, _, html = client.request("GET", path)
    if status != 200:
        return None, f"GET {path} answered {status}"
    forms = [f for f in loadgen.post_forms(html)
             if any(n == "csrf_token" for n, _ in f["fields"]) and f["action"] in ("", path)]
    if not forms:
        return None, f"GET {path} shows no order form with a CSRF token"
    fields = [(n, v) for n, v in forms[0]["fields"] if n not in ANSWERS[ORDER_ITEM]]
    fields += [(n, str(v)) for n, v in ANSWERS[ORDER_ITEM].items()]
    return urlencode(fields), ""


def count_requests(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM requests")) or 0
    finally:
        engine.dispose()


def bench_submit(server: Server, data: Dataset, env: dict[str, str], tmp: Path,
                 args: argparse.Namespace) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
    """Orders/s through Deskflow, then through the floor writing the same rows; same load.

    One test order through the page first: the rows it wrote (every table diffed around it)
    are what the floor writes per order; one order through the floor is checked to write the
    same rows before the floor is loaded.
    """
    from bare import differences, rows_written, table_marks  # benchmarks/web_support/bare.py

    path = f"/items/{ORDER_ITEM}"
    try:
        client = loadgen.sign_in(server.port, ORDER_AS, PASSWORD)
    except (RuntimeError, OSError) as exc:
        return None, None, str(exc)
    body, why_not = order_body(client, path)
    if body is None:
        return None, None, why_not
    before, marks = count_requests(data.url), table_marks(data.url)
    status, headers, html = client.request("POST", path, loadgen_form(body))
    if status not in (302, 303) or count_requests(data.url) != before + 1:
        errors = re.findall(r'class="invalid-feedback[^"]*"[^>]*>\s*([^<]+)', html)
        return None, None, (f"a test order answered {status} "
                            f"{headers.get('Location', '')} {errors[:5] or html[:300]!r}")
    written = rows_written(data.url, marks)
    print("the floor writes per order: "
          + ", ".join(f"{table} {n}" for table, n in written.counts().items())
          + "".join(f"; {table} {n} once for all orders, not copied"
                    for table, n in written.shared.items())
          + (f"; the order also changed {', '.join(written.uncopied)}: not copied"
             if written.uncopied else ""))
    cookie = client.cookie_header()
    floor_env = dict(env, DESKFLOW_BENCH_FLOOR_ROWS=json.dumps(written.rows))
    with gunicorn("benchmarks.web_support.bare:create_app()", floor_env,
                  tmp / f"bare-{data.kind}.log", "/health") as bare_server:
        probe = loadgen.Client(bare_server.port)
        probe.cookies = dict(client.cookies)  # Deskflow's session cookie: the floor reads it
        before, marks = count_requests(data.url), table_marks(data.url)
        status, _, answer = probe.request("POST", path, loadgen_form(body))
        if status != 200 or count_requests(data.url) != before + 1:
            return None, None, f"a test order through the floor answered {status} {answer[:300]!r}"
        unlike = differences(data.url, written, rows_written(data.url, marks))
        if unlike:
            return None, None, "the floor's order differs from Deskflow's: " + "; ".join(unlike[:5])
        print(f"one order through the floor ({answer}) wrote the same rows as Deskflow's "
              "(ids, numbers, times, nonces and link tokens aside)")
        before = count_requests(data.url)
        bare = load(bare_server, "POST", [path], cookie, body, (200,), args)
        bare["ok_codes"] = (200,)
        bare["stored"] = count_requests(data.url) - before
    print(f"the floor's requests grew by {bare['stored']:,} during its run (warm-up included); "
          f"it answered {bare['ok']:,} orders with 200 in the measured window"
          + ("" if bare["stored"] >= bare["ok"] else ": FEWER ROWS THAN ANSWERS"))
    before = count_requests(data.url)
    desk = load(server, "POST", [path], cookie, body, (302, 303), args)
    desk["ok_codes"] = (302, 303)
    desk["stored"] = count_requests(data.url) - before
    desk["body"] = body
    return desk, bare, ""


def loadgen_form(body: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(body, keep_blank_values=True)


# ---------------------------------------------------------------- profiling a page in process

def describe(statement: str) -> str:
    """'SELECT approvals', 'INSERT outbox', 'UPDATE login_sessions', ..."""
    words = statement.split(None, 3)
    verb = words[0].upper()
    if verb == "SELECT" and re.match(r"SELECT count\(\*\)", statement, re.IGNORECASE):
        found = re.search(r"\bFROM\s+\"?(\w+)", statement, re.IGNORECASE)
        return f"COUNT {found.group(1) if found else '-'}"
    if verb == "SELECT":
        found = re.search(r"\bFROM\s+\"?(\w+)", statement, re.IGNORECASE)
        return f"SELECT {found.group(1) if found else '-'}"
    if verb in ("INSERT", "DELETE") and len(words) > 2:
        return f"{verb} {words[2].strip(chr(34))}"
    if verb == "UPDATE" and len(words) > 1:
        return f"UPDATE {words[1].strip(chr(34))}"
    return verb


PROJECT = ("web", "engine", "forms", "catalog", "workflows")


def origin() -> str:
    """The innermost Deskflow frames (Python or template) that led to a statement."""
    frames = []
    for frame in traceback.extract_stack()[:-3]:
        path = Path(frame.filename)
        if path.suffix == ".html":
            frames.append(f"{path.parent.name}/{path.name}:{frame.name}")
        elif path.parent.name in PROJECT and path.parent.parent == ROOT:
            frames.append(f"{path.parent.name}.{path.stem}.{frame.name}")
    return " > ".join(frames[-3:]) or "-"


def area(filename: str, name: str) -> str:
    """Where a profiled function lives, coarsely."""
    if filename.endswith(".html"):
        return "jinja templates (compiled template code)"
    if filename == "~":
        if "sqlite3" in name:
            return "sqlite3 (C)"
        if "psycopg" in name or "pq" in name:
            return "psycopg (C)"
        return "builtins (C)"
    for pkg in ("sqlalchemy", "jinja2", "markupsafe", "werkzeug", "flask_wtf", "wtforms",
                "flask_login", "flask_limiter", "limits", "flask_sqlalchemy", "flask", "psycopg",
                "argon2", "zoneinfo", "json", "re"):
        if f"/{pkg}/" in filename or filename.endswith(f"/{pkg}.py"):
            return pkg
    path = Path(filename)
    if path.parent.name in PROJECT and path.parent.parent == ROOT:
        return f"deskflow {path.parent.name}/"
    return "other python"


class SqlLog:
    """Statements an engine runs while `on`: kind, where from (when `origins`), seconds,
    whether a template was rendering, whether SQLAlchemy had the compiled statement cached."""

    def __init__(self, engine: Engine) -> None:
        self.on = self.origins = False
        self.rendering = 0
        self.rows: list[tuple[str, str, float, bool, bool]] = []
        self.examples: dict[tuple[str, str], tuple[str, Any]] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        for verb in ("commit", "rollback"):  # the driver's COMMIT/ROLLBACK, timed too
            setattr(engine.dialect, f"do_{verb}", self._timed(verb.upper(),
                                                               getattr(engine.dialect, f"do_{verb}")))

    def _timed(self, verb: str, call: Callable[[Any], None]) -> Callable[[Any], None]:
        def timed(dbapi_connection: Any) -> None:
            t0 = time.perf_counter()
            try:
                call(dbapi_connection)
            finally:
                if self.on:
                    self.rows.append((verb, origin() if self.origins else "",
                                      time.perf_counter() - t0, self.rendering > 0, True))
        return timed

    def _before(self, conn: Any, *args: Any) -> None:
        conn.info.setdefault("webbench_started", []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               *args: Any) -> None:
        spent = time.perf_counter() - conn.info["webbench_started"].pop()
        if self.on:
            hit = getattr(context, "cache_hit", None)
            cached = hit is None or "hit" in str(hit).lower() or not statement.lstrip().upper() \
                .startswith(("SELECT", "INSERT", "UPDATE", "DELETE"))
            kind, where = describe(statement), origin() if self.origins else ""
            self.rows.append((kind, where, spent, self.rendering > 0, cached))
            if self.origins:
                self.examples.setdefault((kind, where), (statement, parameters))


def explain(app: Any, statement: str, parameters: Any, label: str) -> None:
    """The plan of one statement as the page ran it (PostgreSQL: EXPLAIN ANALYZE, run once)."""
    from web.extensions import db

    with app.app_context():
        engine = db.engine
        prefix = ("EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite"
                  else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)")
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"{prefix} {statement}", parameters).all()
    shown = " ".join(statement.split())
    print(f"  plan of {label}: {shown[:260]}{' ...' if len(shown) > 260 else ''}")
    for row in rows:
        print(f"      {str(row[-1]).rstrip()}")


def in_process_app(url: str, **extra: Any) -> Any:
    """The portal on the benchmark's database for Flask's test client (no throttling)."""
    from web import create_app

    return create_app({"DESKFLOW_DATABASE_URL": url, "DESKFLOW_CATALOG": str(ACME),
                       "SECRET_KEY": SECRET_KEY, "DESKFLOW_SECURE_COOKIES": False,
                       "RATELIMIT_ENABLED": False, **extra})


def profile_pages(url: str, runs: list[PageRun], default_n: int) -> None:
    """Each page in process (Flask test client, same database): where its time goes."""
    from flask import before_render_template, template_rendered

    from web.extensions import db

    app = in_process_app(url)
    with app.app_context():
        sql = SqlLog(db.engine)
    renders: Counter[str] = Counter()
    stack: list[tuple[str, float]] = []

    def rendering(sender: Any, template: Any, context: Any, **extra: Any) -> None:
        stack.append((template.name, time.perf_counter()))
        sql.rendering += 1

    def rendered(sender: Any, template: Any, context: Any, **extra: Any) -> None:
        name, t0 = stack.pop()
        renders[name] += time.perf_counter() - t0
        sql.rendering -= 1

    before_render_template.connect(rendering, app)
    template_rendered.connect(rendered, app)
    for run in runs:
        n = run.profile_n or default_n
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        form = {"username": run.user, "password": PASSWORD}
        token = loadgen.csrf_token(page)
        if token:
            form["csrf_token"] = token
        client.post("/login", data=form)
        paths = run.paths
        post: list[tuple[str, str]] | None = None
        if run.body is not None:  # the same order form, with this client's CSRF token
            token = loadgen.csrf_token(client.get(paths[0]).get_data(as_text=True)) or ""
            post = [(k, token if k == "csrf_token" else v) for k, v in loadgen_form(run.body)]

        def hit(i: int, paths: list[str] = paths, client: Any = client,
                post: list[tuple[str, str]] | None = post) -> None:
            path = paths[i % len(paths)]
            if post is None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
            else:
                from werkzeug.datastructures import MultiDict

                response = client.post(path, data=MultiDict(post))
                assert response.status_code in (302, 303), (path, response.status_code)

        for i in range(min(30, n)):
            hit(i)
        # pass 1: timings only (cheap hooks)
        times = []
        sql.rows, sql.on, sql.origins = [], True, False
        renders.clear()
        for i in range(n):
            t0 = time.perf_counter()
            hit(i)
            times.append((time.perf_counter() - t0) * 1e3)
        sql.on = False
        timed = list(sql.rows)
        render_ms = sum(renders.values()) * 1e3 / n
        # pass 2: where each statement comes from (walks the stack; not timed)
        sql.rows, sql.on, sql.origins = [], True, True
        sql.examples.clear()  # this page's statements, not an earlier page's of the same origin
        for i in range(n):
            hit(i)
        sql.on = False
        # pass 3: cProfile
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(n):
            hit(i)
        profiler.disable()

        mean = statistics.fmean(times)
        times.sort()
        print(f"\n-- profile: {run.label}: {n} requests in process (Flask test client, same database)")
        http = (f"; through gunicorn p50 {run.result['p50']:.2f} ms, p95 {run.result['p95']:.2f} ms"
                if run.result else "")
        print(f"in process: mean {mean:.2f} ms, p50 {percentile(times, 50):.2f} ms, "
              f"p95 {percentile(times, 95):.2f} ms per request{http}")
        sql_ms = sum(r[2] for r in timed) * 1e3 / n
        in_render = sum(r[2] for r in timed if r[3]) * 1e3 / n
        misses = sum(1 for r in timed if not r[4]) / n
        print(f"of the mean: SQL in the driver {sql_ms:.2f} ms ({len(timed) / n:.1f} statements, "
              f"{misses:.1f} compiled afresh, not from SQLAlchemy's cache); template rendering "
              f"{render_ms - in_render:.2f} ms (+ {in_render:.2f} ms of SQL run from templates: "
              f"{sum(1 for r in timed if r[3]) / n:.1f} statements); the rest "
              f"{mean - sql_ms - (render_ms - in_render):.2f} ms is Python around them "
              f"(ORM, view code, forms, Flask)")
        kinds: dict[tuple[str, str], list[float]] = defaultdict(list)
        for kind_, where, secs, _, _ in sql.rows:
            kinds[(kind_, where)].append(secs)
        print("statements per request (driver time), by where they come from:")
        ranked = sorted(kinds.items(), key=lambda kv: -sum(kv[1]))
        for (kind_, where), secs in [r for r in ranked if sum(r[1]) / n >= 0.00001][:12]:
            print(f"  {len(secs) / n:4.1f} x {kind_:<22} {sum(secs) * 1e3 / n:5.2f} ms  {where}")
        for (kind_, where), secs in ranked[:2]:
            if kind_.startswith(("SELECT", "COUNT", "WITH")) and sum(secs) / n > 0.0005:
                explain(app, *sql.examples[(kind_, where)], f"{kind_} from {where.split(' > ')[-1]}")
        stats = pstats.Stats(profiler)
        entries = stats.stats  # type: ignore[attr-defined]
        by_area: Counter[str] = Counter()
        for (filename, _, name), (_, _, tt, _, _) in entries.items():
            by_area[area(filename, name)] += tt
        whole = sum(by_area.values())
        print("own time by area (cProfile): " + ", ".join(
            f"{k} {v / whole * 100:.0f}%" for k, v in by_area.most_common(10)))
        hottest = sorted(((tt, nc, f, ln, nm) for (f, ln, nm), (_, nc, tt, _, _) in entries.items()),
                         reverse=True)[:8]
        print("hottest functions by own time (cProfile, per request):")
        for tt, nc, filename, line, name in hottest:
            short = "/".join(Path(filename).parts[-2:]) if filename != "~" else ""
            print(f"  {tt * 1e3 / n:6.2f} ms  {nc / n:7.1f} calls  {short}:{line}({name})")
        ours = [(ct, nc, filename, line, name)
                for (filename, line, name), (_, nc, _, ct, _) in entries.items()
                if filename.endswith(".html") or (Path(filename).parent.name in PROJECT
                                                  and Path(filename).parent.parent == ROOT)]
        print("Deskflow functions and template code by cumulative time (cProfile, per request):")
        for ct, nc, filename, line, name in sorted(ours, reverse=True)[:14]:
            where = Path(filename)
            print(f"  {ct * 1e3 / n:6.2f} ms  {nc / n:7.1f} calls  "
                  f"{where.parent.name}/{where.name}:{line}({name})")
    with app.app_context():
        db.engine.dispose()


def live_dashboards(url: str, views: int = 3) -> list[float]:
    """/reports computed live (DESKFLOW_REPORTS_MAX_AGE=0), in process, ms per view: what a
    view waits for when its snapshot is older than the max age (the worker keeps the
    unfiltered one fresh; the load above reads snapshots)."""
    from web.extensions import db

    app = in_process_app(url, WTF_CSRF_ENABLED=False, DESKFLOW_REPORTS_MAX_AGE=0)
    client = app.test_client()
    client.post("/login", data={"username": REPORTER, "password": PASSWORD})
    times = []
    for _ in range(views + 1):
        t0 = time.perf_counter()
        response = client.get("/reports")
        times.append((time.perf_counter() - t0) * 1e3)
        assert response.status_code == 200, response.status_code
    with app.app_context():
        db.engine.dispose()
    return sorted(times[1:])  # the first warms the process


# ---------------------------------------------------------------- the change calendar

CALENDAR_CHANGES = 5_000


def bench_change_calendar(server: Server, url: str, data: Dataset,
                          args: argparse.Namespace) -> dict[str, Any] | None:
    """The change calendar's month view over 5,000 changes with windows spread over 2027 (30 %
    of them on 60 shared CIs, the rest on a CI of their own), as an agent, month by month."""
    from engine.models import Asset, Change, ChangeCI

    rng, engine = random.Random(13), make_engine(url)
    year = datetime(2027, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        planned = select(Change.request_id).where(Change.request_id == Request.id).exists()
        ids = list(conn.scalars(select(Request.id).where(~planned).order_by(Request.id)
                                .limit(CALENDAR_CHANGES)))
        conn.execute(Asset.__table__.insert(), [
            {"type": "server", "name": f"bench-srv{i:05d}", "status": "in_use",
             "data": {"hostname": f"bench-srv{i:05d}"}, "key": f"bench-srv{i:05d}",
             "created_at": year, "updated_at": year} for i in range(len(ids) + 60)])
        cis = list(conn.scalars(select(Asset.id).where(Asset.name.like("bench-srv%"))
                                .order_by(Asset.id)))
        shared, own = cis[:60], cis[60:]
        windows, links = [], []
        for i, request_id in enumerate(ids):
            start = year + timedelta(minutes=rng.randrange(365 * 24 * 4) * 15)
            windows.append({"request_id": request_id, "change_type": rng.choice(
                ("standard", "normal", "emergency")), "risk": rng.choice(("low", "medium", "high")),
                "planned_start": start, "planned_end": start + timedelta(hours=rng.randint(1, 8))})
            links.append({"request_id": request_id,
                          "asset_id": rng.choice(shared) if rng.random() < 0.3 else own[i]})
        conn.execute(Change.__table__.insert(), windows)
        conn.execute(ChangeCI.__table__.insert(), links)
    engine.dispose()
    paths = [f"/changes/calendar?month=2027-{m:02d}" for m in range(1, 13)]
    label = f"change calendar month view ({len(ids):,} changes) as {data.desk_agent}"
    try:
        client = loadgen.sign_in(server.port, data.desk_agent, PASSWORD)
        status, _, html = client.request("GET", paths[0])
    except (RuntimeError, OSError) as exc:
        print(f"{label:<44} not measured: {exc}")
        return None
    if status != 200 or "df-change" not in html:
        print(f"{label:<44} not measured: GET {paths[0]} answered {status} ({len(html)} B)")
        return None
    result = load(server, "GET", paths, client.cookie_header(), None, (200,), args)
    result["ok_codes"] = (200,)
    show(label, result)
    return result


# ---------------------------------------------------------------- main

def target(name: str, measured: float | None, op: str, goal: float, digits: int = 2) -> str:
    if measured is None or measured != measured:
        return f"target {name} n/a {op} {goal:g} MISS"
    ok = measured <= goal if op == "<=" else measured >= goal
    return f"target {name} {measured:.{digits}f} {op} {goal:g} {'PASS' if ok else 'MISS'}"


def server_errors(log: Path) -> None:
    if not log.exists():
        return
    lines = log.read_text(errors="replace").splitlines()
    failures = [i for i, line in enumerate(lines) if "Traceback" in line or "ERROR" in line]
    if failures:
        print(f"server log {log.name}: {len(failures)} errors; the first:")
        print("\n".join("    " + line for line in lines[failures[0]:failures[0] + 25]))


def small_rss(kind: str, acme: Catalog, tmp: Path, args: argparse.Namespace) -> float | None:
    """The workers' memory after the same page loads on SMALL_RECORDS records."""
    print(f"\n-- {kind}: memory first, on {SMALL_RECORDS:,} records (the same pages, same load)")
    with database(kind, tmp, args.pg_url) as url:
        data = build(kind, url, acme, SMALL_RECORDS)
        with gunicorn("web:create_app()", server_env(url), tmp / f"small-{kind}.log",
                      "/login") as server:
            runs = bench_pages(server, data, args, strict=False)
            rss = worker_rss_mib(server)
    if not all(run.result for run in runs):
        return None
    print(f"gunicorn workers' RSS after the pages on {SMALL_RECORDS:,} records: {rss:.1f} MiB")
    return rss


def bench_database(kind: str, acme: Catalog, tmp: Path, args: argparse.Namespace) -> list[str]:
    records = args.requests or DEFAULT_RECORDS[kind]
    small = None if args.no_rss else small_rss(kind, acme, tmp, args)
    print(f"\n== {kind}: {records:,} stored requests, gunicorn {WORKERS} sync workers, "
          f"{args.concurrency} closed-loop clients, {args.duration:g} s per measurement "
          f"after {WARMUP_S:g} s warm-up")
    lines = []
    with database(kind, tmp, args.pg_url) as url:
        data = build(kind, url, acme, records)
        print_dataset(data)
        env = server_env(url)
        log = tmp / f"deskflow-{kind}.log"
        with gunicorn("web:create_app()", env, log, "/login") as server:
            runs = bench_pages(server, data, args)
            rss = worker_rss_mib(server)
            if small:
                print(f"gunicorn workers' RSS after the pages on {records:,} records: {rss:.1f} MiB "
                      f"({(rss - small) / small * 100:+.1f}% against {SMALL_RECORDS:,} records)")
            live = live_dashboards(url)
            print(f"{'dashboards computed live (max age 0), in process':<44} median "
                  f"{statistics.median(live):6.0f} ms of {len(live)} views (a view whose snapshot "
                  f"is older than DESKFLOW_REPORTS_MAX_AGE waits this long)")
            calendar = bench_change_calendar(server, url, data, args)
            desk, bare, why_not = bench_submit(server, data, env, tmp, args)
        if desk and bare:
            show(f"order POST /items/{ORDER_ITEM} as {ORDER_AS}", desk)
            show("hand-written Flask view, same rows", bare)
            ratio = desk["ok_per_second"] / bare["ok_per_second"]
            print(f"orders stored during the run (warm-up included): {desk['stored']:,}; "
                  f"Deskflow / bare = {desk['ok_per_second']:.1f} / {bare['ok_per_second']:.1f} "
                  f"= {ratio:.3f}")
        else:
            ratio = None
            print(f"ordering not measured: {why_not}")
        server_errors(log)
        server_errors(tmp / f"bare-{kind}.log")
        for run in runs:
            lines.append(target(f"web.{run.name}_p95_ms_{kind}",
                                run.result["p95"] if run.result else None, "<=", run.goals[kind]))
        lines.append(target(f"web.change_calendar_month_p95_ms_{kind}",
                            calendar["p95"] if calendar else None, "<=", 50))
        lines.append(target(f"web.submit_vs_bare_{kind}", ratio, ">=", SUBMIT_GOAL, 3))
        if not args.no_rss:
            growth = abs(rss - small) / small * 100 if small else None
            lines.append(target(f"web.rss_growth_pct_{kind}", growth, "<=", RSS_GOAL_PCT, 1))
        slow = [r for r in runs if r.result and (args.profile or r.result["p95"] > r.goals[kind])]
        if desk and (args.profile or (ratio or 0) < SUBMIT_GOAL):
            slow.append(PageRun("submit", f"order POST /items/{ORDER_ITEM}", ORDER_AS,
                                [f"/items/{ORDER_ITEM}"], desk, body=desk["body"]))
        if slow:
            profile_pages(url, slow, args.profile_requests)
    return lines


def describe_checkout() -> str:
    """Which code is measured: the commit, and files changed since (others work in this tree)."""
    def git(*cmd: str) -> str:
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain").splitlines()
               if line[3:].startswith(("web/", "engine/", "forms/", "catalog/", "workflows/"))]
    return (f"deskflow {git('rev-parse', '--short', 'HEAD')}"
            + (f" + uncommitted changes in {len(changed)} files under web/ engine/ forms/ catalog/ "
               f"workflows/" if changed else "") + f"; python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    ap.add_argument("--requests", type=int, default=None,
                    help="stored requests (default: 100,000 on SQLite, 1,000,000 on PostgreSQL)")
    ap.add_argument("--no-rss", action="store_true",
                    help=f"skip the memory comparison with {SMALL_RECORDS:,} records")
    ap.add_argument("--concurrency", type=int, default=WORKERS,
                    help="closed-loop clients (default: one per gunicorn worker)")
    ap.add_argument("--profile", action="store_true", help="profile every page, not only misses")
    ap.add_argument("--profile-requests", type=int, default=200, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    started = time.perf_counter()
    print(describe_checkout())
    acme = load_catalog(ACME)
    assert acme.ok, [e.render() for e in acme.errors[:5]]
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="deskflow-webbench-") as tmp_name:
        tmp = Path(tmp_name)
        own = None
        if "postgresql" in kinds and not PG_URL:
            own = Postgres(tmp, PRODUCTION)
            args.pg_url = own.start()
            print("PostgreSQL: a server of our own, " + ", ".join(
                f"{k}={v}" for k, v in PRODUCTION.items()) + " (docs/operations.md)")
        else:
            args.pg_url = PG_URL or ""
        try:
            for kind in kinds:
                lines += bench_database(kind, acme, tmp, args)
        finally:
            if own:
                own.stop()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
