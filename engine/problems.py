"""Problem management: problems from incidents, root cause and workaround, known errors.

A mixin of `RequestService` (engine.service): each public method is one unit of work.
A problem is a record of type `problem` (an item's `record_type`) with a `ProblemRecord`
row: root cause, workaround, the known-error flag, and the service and configuration item
it concerns (from the answers its item's `concerns:` names). `problem_of` links tie it to
its incidents. A known error (flag set, problem open and not resolved) is published to
everyone who may report incidents and shown on the incident form when the service or the
configuration item chosen matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.catalog import Catalog
from catalog.models import CatalogItem
from engine import email_links, intake, lifecycle, notifications, permissions, runtime
from engine.errors import Conflict, DeskflowError, InvalidInput, NotAllowed, NotFound
from engine.inputs import checked_text, fresh
from engine.models import Asset, ProblemRecord, RecordLink, Request
from engine.tasks import spec_of
from engine.unit import UnitOfWork, UnitRunner, audit, tasks_of_visit, touch

#: the outcome of a problem's task that marks it a known error (acme: investigate's)
KNOWN_ERROR = "known_error"
#: the fields `edit_problem` accepts, in the order the timeline lists their changes
EDITABLE = ("root_cause", "workaround", "service", "ci", "known_error")
#: at most this many incidents make one problem
MAX_INCIDENTS = 100
NEEDS_WORKAROUND = "Write the workaround before marking this a known error."
STAYS_KNOWN = "A known error stays one until its problem is resolved."
YES = ("yes", "on", "true", "1")


@dataclass(frozen=True, slots=True)
class KnownError:
    """A published known error: its problem's number and title, the workaround, what it concerns."""

    number: str
    title: str
    workaround: str
    service: str | None
    ci_id: int | None
    ci_name: str
    since: datetime


# ---------------------------------------------------------------- reads


def problem_of(session: Session, req: Request) -> ProblemRecord | None:
    return session.get(ProblemRecord, req.id) if req.record_type == "problem" else None


def known_errors(session: Session) -> list[KnownError]:
    """Every open known error, newest first (there are few: one query, no index per request)."""
    rows = session.execute(
        select(Request.number, Request.title, ProblemRecord.workaround, ProblemRecord.service,
               ProblemRecord.ci_id, Asset.name, ProblemRecord.known_error_at)
        .join(Request, Request.id == ProblemRecord.request_id)
        .outerjoin(Asset, Asset.id == ProblemRecord.ci_id)
        .where(ProblemRecord.known_error.is_(True), Request.status == "open",
               Request.resolved_at.is_(None))
        .order_by(ProblemRecord.known_error_at.desc(), Request.id.desc()))
    return [KnownError(number or "", title, workaround, service, ci_id, ci_name or "", since)
            for number, title, workaround, service, ci_id, ci_name, since in rows
            if since is not None]


def matching(errors: Sequence[KnownError], service: Any, ci: Any) -> list[KnownError]:
    """The known errors about this service or this configuration item (answers as posted)."""
    ci_id = int(ci) if isinstance(ci, str) and ci.isdigit() and len(ci) < 18 else ci
    return [k for k in errors if (service and k.service == service)
            or (isinstance(ci_id, int) and k.ci_id == ci_id)]


def service_labels(cat: Catalog) -> dict[str, str]:
    """Service value -> label, from the choice fields that items' `concerns.service` names."""
    labels: dict[str, str] = {}
    for item in cat.items:
        name = item.concerns.service if item.concerns else None
        found = item.get_field(name) if name else None
        for choice in (found.choices if found else ()):
            labels.setdefault(choice.value, choice.label)
    return labels


def may_read_known_errors(session: Session, cat: Catalog, person: str) -> bool:
    """Whoever may report an incident (order an item whose record type is incident)."""
    return any(i.record_type == "incident" and permissions.can_order(session, person, i)
               for i in cat.items)


def problem_items(session: Session, cat: Catalog, person: str) -> list[CatalogItem]:
    """The problem items the person may open (acme: Problem, for the desk's agents)."""
    return [i for i in cat.items if i.record_type == "problem"
            and permissions.can_order(session, person, i)]


def linked_incidents(session: Session, problem: Request, open_only: bool = False) -> list[Request]:
    """The incidents the problem is behind (its `problem_of` links), oldest first."""
    q = (select(Request).join(RecordLink, RecordLink.target_id == Request.id)
         .where(RecordLink.source_id == problem.id, RecordLink.kind == "problem_of"))
    if open_only:
        q = q.where(Request.status == "open", Request.resolved_at.is_(None))
    return list(session.scalars(q.order_by(Request.id)))


def concerned(cat: Catalog, req: Request) -> tuple[Any, Any]:
    """The service and the configuration item a record's answers name (item's `concerns`)."""
    item = cat.item(req.item_id)
    if item is None or item.concerns is None:
        return None, None
    c = item.concerns
    return (req.answers.get(c.service) if c.service else None,
            req.answers.get(c.ci) if c.ci else None)


def prefill(cat: Catalog, item: CatalogItem, incidents: Sequence[Request]) -> dict[str, Any]:
    """A problem item's answers from its incidents: the first's title, service and CI."""
    out: dict[str, Any] = {}
    if not incidents:
        return out
    first = incidents[0]
    if item.get_field("short_description") is not None:
        out["short_description"] = first.title
    if item.get_field("description") is not None:
        out["description"] = "Created from " + ", ".join(i.number or "" for i in incidents) + "."
    services = [s for s, _ in (concerned(cat, i) for i in incidents) if s]
    cis = [ci for _, ci in (concerned(cat, i) for i in incidents) if ci]
    if item.concerns and item.concerns.service and services:
        out[item.concerns.service] = services[0]
    if item.concerns and item.concerns.ci and cis:
        out[item.concerns.ci] = cis[0]
    return out


def stamp_problem(unit: UnitOfWork, item: CatalogItem, answers: Mapping[str, Any], req: Request) -> None:
    """A new problem's row: the service and CI its answers name (others: nothing)."""
    if req.record_type != "problem":
        return
    c = item.concerns
    service = answers.get(c.service) if c and c.service else None
    ci = answers.get(c.ci) if c and c.ci else None
    unit.session.add(ProblemRecord(
        request_id=req.id, root_cause="", workaround="", known_error=False,
        service=service if isinstance(service, str) and service else None,
        ci_id=int(ci) if isinstance(ci, str) and ci.isdigit() else None))


def mark_known_error(unit: UnitOfWork, req: Request) -> bool:
    """Set the flag (InvalidInput without a workaround); False when it was set already."""
    row = problem_of(unit.session, req)
    if row is None:
        raise Conflict(f"{req.number} is a {req.record_type}; only problems become known errors")
    if not row.workaround.strip():
        raise InvalidInput(f"{req.number} has no workaround", {"workaround": [NEEDS_WORKAROUND]})
    if row.known_error:
        return False
    row.known_error, row.known_error_at = True, unit.now
    return True


class Problems:
    """Opening problems from incidents, keeping them, resolving their incidents."""

    unit: UnitRunner

    def _submitted(self, unit: UnitOfWork, item_id: str, actor: str, answers: dict[str, Any],
                   requested_for: str | None, channel: str) -> Request:
        raise NotImplementedError  # RequestService's

    def _problem(self, unit: UnitOfWork, number: str, actor: str) -> tuple[Request, ProblemRecord]:
        req = unit.session.scalar(select(Request).where(Request.number == number))
        if req is None or not permissions.can_view_request(unit.session, actor, req, unit.now):
            raise NotFound(f"no request {number}")
        row = problem_of(unit.session, req)
        if row is None:
            raise NotFound(f"{number} is not a problem")
        return req, row

    # ------------------------------------------------------------ create

    def create_problem(self, actor: str, incidents: Sequence[str], answers: Mapping[str, Any],
                       item_id: str | None = None) -> Request:
        """Open a problem (the item's form answers) behind incidents, linked in one unit."""

        def work(unit: UnitOfWork) -> Request:
            s, cat = unit.session, unit.catalog
            found = self._incidents(unit, actor, incidents)
            choices = problem_items(s, cat, actor)
            item = next((i for i in choices if i.id == item_id), None) if item_id else \
                (choices[0] if choices else None)
            if item is None:
                raise NotFound(f"no problem item {item_id or ''}".strip())
            problem = self._submitted(unit, item.id, actor, dict(answers), None, "portal")
            for inc in found:
                s.add(RecordLink(source_id=problem.id, target_id=inc.id, kind="problem_of",
                                 created_at=unit.now, created_by_id=actor))
                for a, b, side in ((problem, inc, "source"), (inc, problem, "target")):
                    touch(unit, a)
                    audit(unit, a, "linked", kind="problem_of", other=b.number, side=side)
            return problem

        return self.unit(actor, work)

    def _incidents(self, unit: UnitOfWork, actor: str, numbers: Sequence[str]) -> list[Request]:
        s = unit.session
        wanted = list(dict.fromkeys(n.strip().upper() for n in numbers if isinstance(n, str)
                                    and n.strip()))
        if len(wanted) > MAX_INCIDENTS:
            raise InvalidInput("too many incidents", {"incidents": [
                f"Choose at most {MAX_INCIDENTS} incidents."]})
        found = []
        for number in wanted:
            inc = s.scalar(select(Request).where(Request.number == number))
            if inc is None or not permissions.can_view_request(s, actor, inc, unit.now):
                raise InvalidInput(f"no record {number}",
                                   {"incidents": [f"There is no record {number}."]})
            if inc.record_type != "incident":
                raise InvalidInput(f"{number} is a {inc.record_type}", {"incidents": [
                    f"{number} is a {inc.record_type}; a problem is created from incidents."]})
            if not permissions.is_agent(s, actor, inc):
                raise NotAllowed(f"only agents of {number} can create a problem from it")
            found.append(inc)
        return found

    # ------------------------------------------------------------ edit

    def edit_problem(self, number: str, actor: str, changes: Mapping[str, Any],
                     seen_version: int | None = None) -> Request:
        """Change a problem's root cause, workaround, service, CI or known-error flag (agents)."""

        def work(unit: UnitOfWork) -> Request:
            req, row = self._problem(unit, number, actor)
            if not permissions.is_agent(unit.session, actor, req):
                raise NotAllowed(f"only agents of {req.number} can edit its problem")
            fresh(req, seen_version)
            if req.status != "open":
                raise Conflict(f"{req.number} is already {req.outcome}; its record is closed")
            new = _checked(unit, req, row, changes)
            old = _values(row)
            for key in ("root_cause", "workaround", "service"):
                if key in new:
                    setattr(row, key, new[key])
            if "ci" in new:
                row.ci_id = new["ci"]
            if new.get("known_error") and not row.known_error:
                mark_known_error(unit, req)
                _advance(unit, req, actor)
            changed = {k: [old[k], v] for k, v in _values(row).items() if old[k] != v}
            if changed:
                touch(unit, req)
                audit(unit, req, "problem_changed", changes=changed)
            return req

        return self.unit(actor, work)

    # ------------------------------------------------------------ resolve incidents

    def resolve_linked_incidents(self, number: str, actor: str) -> list[tuple[str, str]]:
        """Resolve the resolved problem's open incidents with its resolution, each in its own
        unit of work; returns (incident, `resolved` or why not) per incident."""

        def listed(unit: UnitOfWork) -> list[str]:
            req, _ = self._problem(unit, number, actor)
            if not permissions.is_agent(unit.session, actor, req):
                raise NotAllowed(f"only agents of {req.number} can resolve its incidents")
            if req.resolved_at is None:
                raise Conflict(f"{req.number} is not resolved; resolve it first")
            return [i.number or "" for i in linked_incidents(unit.session, req, open_only=True)]

        results = []
        for inc in self.unit(actor, listed):

            def work(unit: UnitOfWork, inc: str = inc) -> None:
                self._resolve_incident(unit, number, inc, actor)

            try:
                self.unit(actor, work)
            except DeskflowError as exc:
                results.append((inc, f"not resolved: {exc}"))
            else:
                results.append((inc, "resolved"))
        return results

    def _resolve_incident(self, unit: UnitOfWork, number: str, inc_number: str, actor: str) -> None:
        s = unit.session
        problem, _ = self._problem(unit, number, actor)
        inc = s.scalar(select(Request).where(Request.number == inc_number))
        if inc is None or inc not in linked_incidents(s, problem):
            raise NotFound(f"{inc_number} is not an incident of {number}")
        if inc.status != "open" or inc.resolved_at is not None:
            raise Conflict(f"{inc_number} is already {inc.outcome or 'resolved'}")
        task = lifecycle.resolving_task(s, inc)
        if task is None:
            raise Conflict(f"{inc_number} has no open task that can be resolved (it is {inc.state})")
        notes = f"Resolved with problem {problem.number}: {problem.resolution_notes or problem.title}"
        spec = spec_of(inc, task)
        fields = spec.fields if spec else ()
        given = {"resolution_code": problem.resolution_code, "resolution_notes": notes}
        task.answers = intake.check_task_answers(
            s, unit.catalog, fields, {f.name: given[f.name] for f in fields if f.name in given})
        task.status, task.outcome = "done", lifecycle.RESOLVED
        task.assignee_id = task.assignee_id or actor
        task.completed_at, task.completed_by_id = unit.now, actor
        inc.responded_at = inc.responded_at or unit.now
        lifecycle.mark_resolved(unit, inc, task, problem.resolution_code, notes)
        audit(unit, inc, "resolved_by_problem", problem=problem.number)
        runtime.transition(unit, inc, lifecycle.RESOLVED)
        notifications.tell(
            unit, inc, notifications.RESOLVED, [inc.requester_id, inc.requested_for_id],
            f"{inc.number} is resolved: {notifications.excerpt(notes)}",
            key=f"problem:{problem.id}", email="record_resolved",
            resolution={"code": problem.resolution_code or "", "notes": notes,
                        "problem": problem.number},
            personal=email_links.resolution_links(unit, inc))


# ---------------------------------------------------------------- helpers


def _values(row: ProblemRecord) -> dict[str, Any]:
    return {"root_cause": row.root_cause, "workaround": row.workaround, "service": row.service,
            "ci": row.ci_id, "known_error": row.known_error}


def _advance(unit: UnitOfWork, req: Request, actor: str) -> None:
    """Complete the open task that has a `known_error` outcome, if the workflow has one."""
    for task in tasks_of_visit(unit.session, req):
        spec = spec_of(req, task)
        if task.status == "open" and spec is not None and KNOWN_ERROR in spec.outcomes:
            task.status, task.outcome = "done", KNOWN_ERROR
            task.assignee_id = task.assignee_id or actor
            task.completed_at, task.completed_by_id = unit.now, actor
            audit(unit, req, "task_completed", task=task.id, outcome=KNOWN_ERROR, comment="")
            runtime.transition(unit, req, KNOWN_ERROR)
            return


def _checked(unit: UnitOfWork, req: Request, row: ProblemRecord,
             changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes, cleaned; InvalidInput with a message per field."""
    if not isinstance(changes, Mapping):
        raise InvalidInput("the changes must be a mapping of field to value",
                           {"_form": ["The changes must be a mapping of field to value."]})
    item = unit.catalog.item(req.item_id)
    concerns = item.concerns if item else None
    service_field = item.get_field(concerns.service) if item and concerns and concerns.service else None
    ci_field = item.get_field(concerns.ci) if item and concerns and concerns.ci else None
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in EDITABLE or (key == "service" and service_field is None) \
                or (key == "ci" and ci_field is None):
            errors.setdefault("_unknown", []).append(f"Unknown field {key}.")
            continue
        if key == "known_error":
            clean[key] = value is True or (isinstance(value, str) and value.strip().lower() in YES)
            if row.known_error and not clean[key]:
                errors[key] = [STAYS_KNOWN]
            continue
        try:
            text = checked_text(value if value is not None else "", key, required=False)
        except InvalidInput as exc:
            errors.update(exc.fields)
            continue
        if key == "service" and service_field is not None:
            values = [c.value for c in service_field.choices]
            if text and text not in values:
                errors[key] = [f"{text} is not one of the choices."]
            clean[key] = text or None
        elif key == "ci" and ci_field is not None:
            clean[key] = None
            if text:
                ci = unit.session.get(Asset, int(text)) if text.isdigit() and len(text) < 18 else None
                ci_type = unit.catalog.ci_type(ci_field.ci_type or "")
                noun = (ci_type.name if ci_type else ci_field.ci_type or "item").lower()
                if ci is None or ci.type != ci_field.ci_type:
                    errors[key] = [f"There is no {noun} {text}."]
                elif ci.status == "retired":
                    errors[key] = [f"{ci.name} is retired."]
                else:
                    clean[key] = ci.id
        else:
            clean[key] = text
    workaround = clean.get("workaround", row.workaround)
    if clean.get("known_error") and not row.known_error and not (workaround or "").strip():
        errors.setdefault("workaround", []).append(NEEDS_WORKAROUND)
    if row.known_error and "workaround" in clean and not clean["workaround"]:
        errors.setdefault("workaround", []).append("A known error keeps its workaround.")
    if errors:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), errors)
    return clean
