"""A plausible year of service-desk history for the demo, written as an import.

`deskflow demo --with-history` imports the ServiceNow log when it finds it (`find_export`),
else `generate` makes ~3,000 incidents over the 12 months before `now`: fewer at weekends, a
few bursts, priorities, six groups on three support tiers, reassignments and L1 → L2/L3
escalations, resolutions, some reopens, made and missed SLAs. The rows have the ServiceNow
mapping's shape (plus a tier) and go through the importer's own bulk path (`run_import`) as
source `generated`: generated records are exactly like imported ones. A fixed seed makes
every run the same; a source imported once (a finished import run) is not imported again.
docs/import.md, "Demo history".
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from engine.db import make_sessionmaker
from engine.history.importer import Summary, run_import
from engine.history.mapping import (
    CHANNELS,
    FieldSpec,
    HistoryMapping,
    built_in_path,
    load_mapping,
)
from engine.history.reader import Case, ReadResult, Row, read_cases
from engine.models import ImportRun

SOURCE = "generated"
SEED = 2016
#: the ServiceNow log's name in ../shared/data (and in a directory given as PATH)
EXPORT_NAME = "servicenow-incident-event-log.csv.zip"
#: group -> support tier
GROUPS = {"Service Desk": "L1", "Deskside Support": "L1", "Network Operations": "L2",
          "Business Applications": "L2", "Database Administration": "L3",
          "Infrastructure Engineering": "L3"}
FIRST_LINE = ("Service Desk", "Deskside Support")
SECOND_LINE = ("Network Operations", "Business Applications")
THIRD_LINE = ("Database Administration", "Infrastructure Engineering")
_AGENTS = ("Anna", "Bram", "Chen", "Dana", "Emre", "Fleur", "Gijs", "Hana", "Iris", "Joost",
           "Kim", "Lars", "Mila", "Noor", "Omar", "Pim", "Roos", "Sem")
#: (category, subcategory, symptom, the second-line group it escalates to)
_TOPICS = (("Email", "Outlook", "Cannot send mail", "Business Applications"),
           ("Email", "Mailbox", "Mailbox full", "Business Applications"),
           ("Network", "VPN", "VPN drops", "Network Operations"),
           ("Network", "Wi-Fi", "No connection", "Network Operations"),
           ("Hardware", "Laptop", "Does not start", "Network Operations"),
           ("Hardware", "Printer", "Prints blank pages", "Network Operations"),
           ("Software", "CRM", "Error after sign-in", "Business Applications"),
           ("Software", "ERP", "Report is slow", "Business Applications"),
           ("Access", "Password", "Account locked", "Business Applications"))
#: priority -> (share of incidents, median hours to resolve, hours the SLA allows)
_PRIORITIES = {"p1": (0.03, 3.0, 8.0), "p2": (0.12, 10.0, 24.0), "p3": (0.55, 30.0, 72.0),
               "p4": (0.30, 60.0, 120.0)}
_IMPACT = {"p1": ("high", "high"), "p2": ("high", "medium"), "p3": ("medium", "medium"),
           "p4": ("low", "low")}
_CHANNELS = (("phone", 0.35), ("email", 0.3), ("portal", 0.3), ("walk-in", 0.05))
_CODES = ("Solved (Permanently)", "Solved (Work Around)", "Solved Remotely", "Not Solved")


@dataclass(slots=True)
class HistoryOutcome:
    """What `demo_history` did: the source, the file (or None when generated), the import's
    summary (None when the source was imported before)."""

    source: str
    file: str | None
    summary: Summary | None


def servicenow_mapping() -> HistoryMapping:
    return load_mapping(built_in_path("servicenow"), "servicenow.yaml")


def generated_mapping() -> HistoryMapping:
    """The ServiceNow mapping as source `generated`, with the support tier as a field."""
    base = servicenow_mapping()
    return replace(base, id=SOURCE, name="Generated demo history", number_prefix="GEN-",
                   fields={**base.fields, "tier": FieldSpec("tier", ("u_support_tier",))})


def find_export(path: Path | None, search: Sequence[Path]) -> Path | None:
    """The ServiceNow log to import: `path` when it is a file, EXPORT_NAME in `path` when it is
    a directory (and nowhere else), else the first `search` directory holding EXPORT_NAME."""
    if path is not None:
        if path.is_file():
            return path
        return path / EXPORT_NAME if (path / EXPORT_NAME).is_file() else None
    return next((d / EXPORT_NAME for d in search if (d / EXPORT_NAME).is_file()), None)


def demo_history(engine: Engine, priorities: set[str], now: datetime, export: Path | None,
                 seed: int = SEED) -> HistoryOutcome:
    """Import `export` with the ServiceNow mapping, or generate a year before `now`; nothing
    when that source was imported before."""
    mapping = servicenow_mapping() if export is not None else generated_mapping()
    file = str(export) if export is not None else None
    with make_sessionmaker(engine)() as session:
        done = session.scalar(select(ImportRun.id).where(
            ImportRun.source == mapping.id, ImportRun.finished_at.is_not(None)).limit(1))
    if done is not None:
        return HistoryOutcome(mapping.id, file, None)
    if export is not None:
        def priority(value: Any) -> str | None:
            return None if value in priorities else f"{value!r} is not a priority of the catalog"

        def channel(value: Any) -> str | None:
            return None if value in CHANNELS else f"{value!r} is not one of {', '.join(CHANNELS)}"

        read = read_cases(export, mapping, file, {"priority": priority, "channel": channel})
    else:
        read = generate(now, seed)
    return HistoryOutcome(mapping.id, file, run_import(engine, mapping, read, now))


def generate(now: datetime, seed: int = SEED, scale: float = 1.0) -> ReadResult:
    """About 3,000 incidents opened in the 365 days before `now` (`scale` times as many), as
    cases of typed rows."""
    rng = random.Random(seed)
    start = (now - timedelta(days=365)).replace(hour=0, minute=0, second=0, microsecond=0)
    bursts = {rng.randrange(7, 350) for _ in range(4)}
    result = ReadResult("generated", [], {})
    number = 0
    for day in range(365):
        date = start + timedelta(days=day + 1)
        weekend = date.weekday() >= 5
        mean = (2.0 if weekend else 9.5) * scale
        if day in bursts or day - 1 in bursts:
            mean *= 3.5
        for _ in range(max(0, round(rng.gauss(mean, math.sqrt(mean))))):
            opened = date + timedelta(minutes=rng.randrange(7 * 60, 19 * 60))
            if opened >= now:
                continue
            number += 1
            case = _incident(rng, f"GEN{number:05d}", opened, now)
            result.cases[case.external_id] = case
            result.rows_read += len(case.rows)
    return result


def _agent(rng: random.Random, group: str) -> str:
    i = list(GROUPS).index(group)
    return f"{rng.choice(_AGENTS[i * 3:i * 3 + 3])} ({group})"


def _incident(rng: random.Random, ext: str, opened: datetime, now: datetime) -> Case:
    """One incident's updates: New, Active (assigned), reassignments, Resolved, maybe a reopen,
    Closed three days after resolving; those later than `now` have not happened yet."""
    prio = rng.choices(list(_PRIORITIES), [p[0] for p in _PRIORITIES.values()])[0]
    _, median, allowed = _PRIORITIES[prio]
    category, sub, symptom, second = rng.choice(_TOPICS)
    caller = f"Caller {rng.randrange(1, 400):03d}"
    group = rng.choices(FIRST_LINE, (0.8, 0.2))[0]
    fixed: dict[str, Any] = {"case": ext, "title": f"{category} / {sub} / {symptom}", "category": category,
             "channel": rng.choices([c for c, _ in _CHANNELS], [w for _, w in _CHANNELS])[0],
             "priority": prio, "impact": _IMPACT[prio][0], "urgency": _IMPACT[prio][1],
             "requester": caller, "opened_by": caller if rng.random() < 0.3 else _agent(rng, group),
             "opened_at": opened}
    path = [group]
    roll = rng.random()
    if roll < 0.28:  # escalated to the second line, some on to the third
        path.append(second)
        if rng.random() < 0.3:
            path.append(rng.choice(THIRD_LINE))
        if rng.random() < 0.15:  # ping-pong: back to the first line, then again up
            path += [group, second]
    elif roll < 0.36:  # passed to the other first-line group
        path.append(FIRST_LINE[1 - FIRST_LINE.index(group)])
    hours = median * math.exp(rng.gauss(0, 0.9)) * (1 + 0.6 * (len(path) - 1))
    if rng.random() < 0.02:  # a few that stay stuck for months
        hours += 24 * rng.randrange(60, 200)
    resolved = opened + timedelta(hours=hours)
    made_sla = hours <= allowed
    reopened = rng.random() < 0.05
    rows: list[dict[str, Any]] = []
    state = {"state": "New", "assignment_group": group, "assignee": None, "tier": GROUPS[group],
             "reassignment_count": 0, "reopen_count": 0, "made_sla": True, "resolved_at": None,
             "resolved_by": None, "resolution_code": None, "closed_at": None}

    def update(at: datetime, actor: str, **changes: Any) -> None:
        if at <= now:
            state.update(changes)
            rows.append({**fixed, **state, "at": at, "actor": actor})

    update(opened, fixed["opened_by"])
    step = (resolved - opened) / (len(path) + 1)
    assignee = _agent(rng, group)
    update(opened + min(step / 3, timedelta(minutes=rng.randrange(5, 90))), assignee,
           state="Active", assignee=assignee)
    for i, g in enumerate(path[1:], 1):
        assignee = _agent(rng, g)
        update(opened + step * i, assignee, assignment_group=g, tier=GROUPS[g], assignee=assignee,
               reassignment_count=i, made_sla=step * i <= timedelta(hours=allowed))
    code = rng.choices(_CODES, (0.6, 0.2, 0.15, 0.05))[0]
    update(resolved, assignee, state="Resolved", resolved_at=resolved, resolved_by=assignee,
           resolution_code=code, made_sla=made_sla)
    if reopened:
        back = resolved + timedelta(hours=rng.uniform(2, 48))
        update(back, fixed["requester"], state="Active", reopen_count=1, resolved_at=None,
               resolved_by=None, resolution_code=None)
        resolved = back + timedelta(hours=rng.uniform(1, 24))
        update(resolved, assignee, state="Resolved", resolved_at=resolved, resolved_by=assignee,
               resolution_code=code)
    update(resolved + timedelta(days=3), "system", state="Closed", closed_at=resolved + timedelta(days=3))
    case = Case(ext)
    for seq, values in enumerate(rows):
        values["sequence"] = seq
        cells = tuple("" if v is None else v.isoformat() if isinstance(v, datetime) else str(v)
                      for _, v in sorted(values.items()))
        case.rows.append(Row(seq + 1, values, {}, cells))
    return case
