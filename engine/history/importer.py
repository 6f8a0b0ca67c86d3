"""Write the cases of an export as records, timeline events, directory entries and CIs.

One transaction per batch of cases (`BATCH` of them), written with SQLAlchemy Core
executemany: an interrupted run keeps its finished batches, and running again skips the
cases already stored with the same rows (their digest) and continues. A case is written
whole or not at all. Records get the source and the case's id (`import_source`,
`external_id`, unique together): running twice updates, never duplicates.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from catalog.source import SourceDoc
from catalog.workflow_parser import parse_workflow
from engine import record_figures, search_index
from engine.db import make_sessionmaker
from engine.history.mapping import HistoryMapping, UnusableInput
from engine.history.reader import Case, ReadResult, Row
from engine.models import (
    Asset,
    AuditEvent,
    Base,
    Group,
    ImportRun,
    Person,
    Request,
    WorkflowVersion,
)
from engine.versions import store_version

BATCH = 1000
#: the one workflow every imported record points at: a single, final state; imported
#: records keep the source's state names in `state` and have no live workflow
IMPORTED_WORKFLOW: dict[str, Any] = {
    "kind": "Workflow", "id": "imported", "name": "Imported history",
    "description": "Records imported from another service desk: read-only history.",
    "start": "imported", "states": {"imported": {"label": "Imported history", "end": "imported"}},
}
#: the audit events an import writes (and replaces when a case changed)
IMPORT_EVENTS = ("submitted", "transition", "record_changed")
#: fields whose changes become `record_changed` events, as the timeline names them
TRACKED = (("assignment_group", "assignment_group"), ("priority", "priority"),
           ("assignee", "assignee"), ("tier", "tier"))
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(slots=True)
class Summary:
    source: str
    file: str
    rows_read: int = 0
    cases: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    people_created: int = 0
    groups_created: int = 0
    cis_created: int = 0
    events: int = 0
    stopped_after: int | None = None
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"rows_read": self.rows_read, "cases": self.cases, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged,
                "people_created": self.people_created, "groups_created": self.groups_created,
                "cis_created": self.cis_created, "rows_skipped": len(self.skipped)}


def imported_workflow(session: Session, now: datetime) -> WorkflowVersion:
    parsed = parse_workflow(SourceDoc(PurePosixPath("engine/history/imported"),
                                      IMPORTED_WORKFLOW, ""))
    assert parsed.model is not None, [p.render() for p in parsed.problems]
    return store_version(session, parsed.model, now)


def _table(model: type[Base]) -> Table:
    """The model's table: inserts on it are plain Core executemany, not the ORM's bulk path."""
    return Base.metadata.tables[model.__tablename__]


def slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-") or "x"


class Directory:
    """Source names of people, groups and CIs to ids; new ones are queued for insertion."""

    def __init__(self, session: Session, mapping: HistoryMapping) -> None:
        self.source = mapping.id
        self.ci_type = mapping.ci_type
        self.people: dict[str, str] = {}
        self.groups: dict[str, str] = {}
        self.person_ids: dict[str, str] = dict(session.execute(select(Person.id, Person.name)).all())
        self.group_ids: dict[str, str] = dict(session.execute(select(Group.id, Group.name)).all())
        self.cis: dict[str, int] = dict(session.execute(
            select(Asset.key, Asset.id).where(Asset.type == mapping.ci_type)).all())  # type: ignore[arg-type]
        self.new_people: list[dict[str, Any]] = []
        self.new_groups: list[dict[str, Any]] = []
        self.new_cis: list[str] = []
        problems = [f"{mapping.doc.path}: people.{name}: no person {pid} in the database"
                    for name, pid in mapping.people.items() if pid not in self.person_ids]
        problems += [f"{mapping.doc.path}: groups.{name}: no group {gid} in the database"
                     for name, gid in mapping.groups.items() if gid not in self.group_ids]
        if problems:
            raise UnusableInput(problems)
        self.people.update(mapping.people)
        self.groups.update(mapping.groups)

    def _new_id(self, name: str, taken: dict[str, str]) -> str:
        base = f"{self.source}-{slug(name)}"[:64]
        if base not in taken or taken[base] == name:
            return base
        return f"{base[:55]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"

    def person(self, name: str | None) -> str | None:
        if name is None:
            return None
        found = self.people.get(name)
        if found is None:
            found = self.people[name] = self._new_id(name, self.person_ids)
            if found not in self.person_ids:
                self.person_ids[found] = name
                self.new_people.append({"id": found, "name": name[:120], "email": "",
                                        "title": "", "department": "", "location": "",
                                        "active": False, "imported_from": self.source})
        return found

    def group(self, name: str | None) -> str | None:
        if name is None:
            return None
        found = self.groups.get(name)
        if found is None:
            found = self.groups[name] = self._new_id(name, self.group_ids)
            if found not in self.group_ids:
                self.group_ids[found] = name
                self.new_groups.append({"id": found, "name": name[:120], "email": "",
                                        "imported_from": self.source})
        return found

    def ci(self, name: str | None) -> str | None:
        """The CI's key; its id is known once the batch's new CIs are written."""
        if name is not None and name not in self.cis and name not in self.new_cis:
            self.new_cis.append(name)
        return name

    def flush(self, session: Session, now: datetime) -> tuple[int, int, int]:
        """Insert the queued people, groups and CIs; how many of each."""
        counts = (len(self.new_people), len(self.new_groups), len(self.new_cis))
        if self.new_people:
            session.execute(insert(_table(Person)), self.new_people)
        if self.new_groups:
            session.execute(insert(_table(Group)), self.new_groups)
        if self.new_cis:
            assets = _table(Asset)
            rows = session.execute(insert(assets).returning(assets.c.key, assets.c.id), [
                {"type": self.ci_type, "key": name, "name": name, "status": "in_use",
                 "data": {"imported_from": self.source}, "created_at": now, "updated_at": now}
                for name in self.new_cis]).all()
            self.cis.update({k: i for k, i in rows})
        self.new_people, self.new_groups, self.new_cis = [], [], []
        return counts


@dataclass(slots=True)
class Built:
    """One case as a requests row (without ids) and its timeline events."""

    values: dict[str, Any]
    events: list[dict[str, Any]]
    ci_name: str | None


def build(mapping: HistoryMapping, case: Case, d: Directory) -> Built:
    rows = case.ordered()
    first, last = rows[0], rows[-1]

    def latest(target: str) -> Any:
        for r in reversed(rows):
            if r.values.get(target) is not None:
                return r.values[target]
        return None

    v = last.values
    opened_at = latest("opened_at") or first.at
    closed_states, resolved_states = mapping.closed_states, mapping.resolved_states
    events: list[dict[str, Any]] = []
    current = {target: first.values.get(target) for target, _ in TRACKED}
    current["assignment_group"] = d.group(current["assignment_group"])
    current["assignee"] = d.person(current["assignee"])

    def event(row: Row, name: str, at: datetime, **extra: Any) -> dict[str, Any]:
        detail = {"source": mapping.id, "line": row.line, "group": current["assignment_group"],
                  "tier": current["tier"], **extra.pop("detail", {})}
        return {"actor_id": d.person(row.values.get("actor")), "event": name, "at": at,
                "detail": detail, **extra}

    opened = event(first, "submitted", opened_at, to_state=first.values["state"], from_state=None,
                   detail={"priority": current["priority"], "assignee": current["assignee"]})
    opened["actor_id"] = d.person(latest("opened_by")) or opened["actor_id"]
    events.append(opened)
    state = first.values["state"]
    responded_at: datetime | None = None
    reassignments = reopens = 0
    resolved_at: datetime | None = first.at if state in resolved_states else None
    closed_at: datetime | None = first.at if state in closed_states else None
    for row in rows[1:]:
        changes: dict[str, list[Any]] = {}
        for target, name in TRACKED:
            new = row.values.get(target)
            if target == "assignment_group":
                new = d.group(new)
            elif target == "assignee":
                new = d.person(new)
            if new != current[target]:
                changes[name] = [current[target], new]
                if target == "assignment_group" and current[target] is not None:
                    reassignments += 1
                current[target] = new
        new_state = row.values["state"]
        if new_state != state:
            if state in resolved_states and new_state not in resolved_states | closed_states:
                reopens += 1
            if new_state in resolved_states:
                resolved_at = row.at
            if new_state in closed_states:
                closed_at = row.at
            events.append(event(row, "transition", row.at, from_state=state, to_state=new_state))
            state = new_state
        if changes:
            events.append(event(row, "record_changed", row.at, from_state=None, to_state=None,
                                detail={"changes": changes}))
        if responded_at is None and (new_state != first.values["state"] or current["assignee"]):
            responded_at = row.at
    for e in events:
        e.setdefault("from_state", None)
        e.setdefault("to_state", None)
    final = state
    is_closed = final in closed_states
    mapped = mapping.fields
    answers = {k: val for k, val in {
        "source": mapping.name, "external_id": case.external_id,
        "configuration_item": latest("configuration_item"), "problem": latest("problem"),
        "change": latest("change"), "caused_by": latest("caused_by"),
        "resolved_by": latest("resolved_by"), **{k: x for r in rows for k, x in r.extra.items()},
    }.items() if val is not None}
    requester = d.person(latest("requester")) or d.person("Unknown caller")
    values = {
        "number": f"{mapping.number_prefix}{case.external_id}",
        "item_id": f"imported-{mapping.id}", "item_name": mapping.name[:120],
        "state": final, "status": "closed" if is_closed else "open",
        "outcome": (v.get("resolution_code") or final[:64]) if is_closed else None,
        "answers": answers, "requester_id": requester, "requested_for_id": requester,
        "priority": v.get("priority") or latest("priority"), "visit": 0,
        "waiting_on_requester": False, "created_at": opened_at, "updated_at": last.at,
        "closed_at": (v.get("closed_at") if "closed_at" in mapped else closed_at) if is_closed else None,
        "responded_at": responded_at, "response_due": None, "resolution_due": None,
        "sla_paused_at": None, "sla_state": "ok" if v.get("made_sla") in (True, None) else "breached",
        "record_type": mapping.record_type,
        "title": (latest("title") or case.external_id)[:200], "impact": v.get("impact"),
        "urgency": v.get("urgency"), "category": (latest("category") or "")[:120],
        "assignment_group_id": current["assignment_group"], "assignee_id": current["assignee"],
        "channel": latest("channel") or "api",
        "resolved_at": (v.get("resolved_at") if "resolved_at" in mapped else resolved_at)
        if final in resolved_states | closed_states else None,
        "resolution_code": v.get("resolution_code"), "resolution_notes": None,
        "reopen_count": v.get("reopen_count") if "reopen_count" in mapped else reopens,
        "import_source": mapping.id, "external_id": case.external_id,
        "made_sla": v.get("made_sla"),
        "reassignment_count": (v.get("reassignment_count") if "reassignment_count" in mapped
                               else reassignments),
        "support_tier": current["tier"],
    }
    values.update(record_figures.computed(
        opened["detail"]["tier"], (e["detail"]["changes"] for e in events
                                   if e["event"] == "record_changed")).columns())
    if values["reopen_count"] is None:
        values["reopen_count"] = 0
    return Built(values, events, d.ci(latest("configuration_item")))


def run_import(engine: Engine, mapping: HistoryMapping, read: ReadResult, now: datetime, *,
               dry_run: bool = False, stop_after: int | None = None, batch: int = BATCH,
               progress: Callable[[int], None] | None = None) -> Summary:
    """Import every case of `read`; in batches, each its own transaction (none if dry_run)."""
    summary = Summary(mapping.id, read.file, read.rows_read, len(read.cases),
                      skipped=list(read.skipped))
    sessions = make_sessionmaker(engine)
    cases = list(read.cases.values())
    if stop_after is not None:
        cases = cases[:stop_after]
        summary.stopped_after = stop_after if stop_after < len(read.cases) else None
    mapping_text = mapping.doc.text
    with sessions() as session:
        stored: dict[str, tuple[int, str | None]] = {
            str(ext): (rid, digest) for ext, rid, digest in session.execute(
                select(Request.external_id, Request.id, Request.import_digest)
                .where(Request.import_source == mapping.id))}
        directory = Directory(session, mapping)
        session.rollback()
        if dry_run:  # one transaction, rolled back: what later batches refer to still exists
            with session.begin():
                workflow_id = imported_workflow(session, now).id
                for start in range(0, len(cases), batch):
                    chunk = cases[start:start + batch]
                    _write_batch(session, mapping, mapping_text, chunk, stored, directory,
                                 workflow_id, summary, now)
                    if progress is not None:
                        progress(len(chunk))
                session.rollback()
            return summary
        with session.begin():
            run_id = session.scalar(insert(ImportRun).returning(ImportRun.id).values(
                source=mapping.id, file=read.file[-500:], started_at=now, finished_at=None,
                counts={}))
        for start in range(0, len(cases), batch):
            chunk = cases[start:start + batch]
            with session.begin():
                workflow_id = imported_workflow(session, now).id
                _write_batch(session, mapping, mapping_text, chunk, stored, directory, workflow_id,
                             summary, now)
                session.execute(update(ImportRun).where(ImportRun.id == run_id)
                                .values(counts=summary.counts()))
            if progress is not None:
                progress(len(chunk))
        with session.begin():
            session.execute(update(ImportRun).where(ImportRun.id == run_id).values(
                counts=summary.counts(),
                finished_at=None if summary.stopped_after else datetime.now(now.tzinfo)))
    refresh_statistics(engine)
    return summary


def refresh_statistics(engine: Engine) -> None:
    """After a bulk load, what the planner knows of the facts table (engine.reports reads it
    through index-only scans on PostgreSQL, which need its visibility map)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("VACUUM (ANALYZE) record_facts")
        else:
            conn.exec_driver_sql("ANALYZE record_facts")


def _write_batch(session: Session, mapping: HistoryMapping, mapping_text: str, chunk: list[Case],
                 stored: dict[str, tuple[int, str | None]], d: Directory, workflow_id: int,
                 summary: Summary, now: datetime) -> None:
    fresh: list[Built] = []
    changed: list[tuple[int, Built]] = []
    for case in chunk:
        digest = case.digest(mapping_text)
        known = stored.get(case.external_id)
        if known is not None and known[1] == digest:
            summary.unchanged += 1
            continue
        built = build(mapping, case, d)
        built.values["import_digest"] = digest
        built.values["workflow_version_id"] = workflow_id
        if known is None:
            fresh.append(built)
        else:
            changed.append((known[0], built))
    # the search index: paused for the batch's rows, then filled for them in one statement
    search_index.pause(session.connection())
    people, groups, cis = d.flush(session, now)
    summary.people_created += people
    summary.groups_created += groups
    summary.cis_created += cis
    for built in [*fresh, *(b for _, b in changed)]:
        built.values["ci_id"] = d.cis.get(built.ci_name) if built.ci_name else None
    ids: dict[str, int] = {}
    if fresh:
        # a plain executemany (no RETURNING: psycopg pipelines it), then the ids by external id
        session.execute(insert(_table(Request)), [{**b.values, "lock_version": 1} for b in fresh])
        ids = {str(ext): rid for ext, rid in session.execute(
            select(Request.external_id, Request.id).where(
                Request.import_source == mapping.id,
                Request.external_id.in_([b.values["external_id"] for b in fresh])))}
        summary.created += len(fresh)
    if changed:
        request_ids = [rid for rid, _ in changed]
        session.execute(delete(AuditEvent).where(AuditEvent.request_id.in_(request_ids),
                                                 AuditEvent.event.in_(IMPORT_EVENTS)))
        for rid, b in changed:
            session.execute(update(Request).where(Request.id == rid).values(
                **b.values, lock_version=Request.lock_version + 1))
        summary.updated += len(changed)
    record_figures.write_facts(session, [
        record_figures.fact_row({**b.values, "id": rid}.get) for rid, b in
        [*((ids[b.values["external_id"]], b) for b in fresh), *changed]])
    events = [{**e, "request_id": ids[b.values["external_id"]]} for b in fresh for e in b.events]
    events += [{**e, "request_id": rid} for rid, b in changed for e in b.events]
    if events:
        session.execute(insert(_table(AuditEvent)), events)
        summary.events += len(events)
    search_index.resume(session.connection(), [*ids.values(), *(rid for rid, _ in changed)])
    for b in fresh:
        stored[b.values["external_id"]] = (ids[b.values["external_id"]], b.values["import_digest"])
    for rid, b in changed:
        stored[b.values["external_id"]] = (rid, b.values["import_digest"])
