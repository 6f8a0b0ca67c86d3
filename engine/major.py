"""Major incidents: flagged by a rule or by an agent, a group told at once, children resolved
with their parent.

deskflow.yaml `major_incident: {group, when}` names the group told and the rule (an
expression over `request`) that flags an incident by itself: at submit, and whenever
`edit_record` changes its priority so the rule holds (never unflagged by the rule).
Agents declare or stand down a major incident by hand (`declare_major`,
`stand_down_major`, mixed into `RequestService`). On becoming major, the group's active
members are told (`notifications.tell`, kind `major_incident`: in-app and the
`major_incident` email, as each prefers), in the same unit of work.

A major incident is a parent: incidents are linked to it as `child_of` (engine.records).
Resolving the parent (engine.lifecycle `resolve`) resolves each open child in the parent's
unit of work (`resolve_children`): through the child's own resolving task when it has one,
else closed administratively with the resolution stored and its callers emailed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.expressions import ExpressionError
from engine import notifications, permissions, runtime, sla
from engine.errors import Conflict, EngineError, InvalidInput, NotAllowed, NotFound
from engine.inputs import checked_text, fresh
from engine.models import AuditEvent, RecordLink, Request
from engine.unit import UnitOfWork, UnitRunner, audit, context, touch

INCIDENT = "incident"
MAJOR_INCIDENT = notifications.MAJOR_INCIDENT
#: how many numbers one "Attach incidents" may name
ATTACH_MAX = 50
_NUMBERS = re.compile(r"[\s,;]+")

#: resolves one child through its own workflow (engine.lifecycle.resolve_through_workflow):
#: (unit, child, code, notes, article) -> False when the child has no task that can resolve it
ResolveOne = Callable[[UnitOfWork, Request, str | None, str, str | None], bool]


@dataclass(frozen=True, slots=True)
class Attached:
    """What "Attach incidents" did with one number: attached, or why not."""

    number: str
    error: str = ""


# ---------------------------------------------------------------- reading


def children_of(session: Session, req: Request) -> list[Request]:
    """The records linked to `req` as its children (`child_of`), by number."""
    return list(session.scalars(select(Request).join(RecordLink, RecordLink.source_id == Request.id)
                                .where(RecordLink.target_id == req.id, RecordLink.kind == "child_of")
                                .order_by(Request.id)))


def parent_of(session: Session, req: Request) -> Request | None:
    return session.scalar(select(Request).join(RecordLink, RecordLink.target_id == Request.id)
                          .where(RecordLink.source_id == req.id, RecordLink.kind == "child_of"))


# ---------------------------------------------------------------- inside a unit


def rule_holds(unit: UnitOfWork, req: Request) -> bool:
    """Whether the settings' rule says this incident is major (a failing rule says no)."""
    rule = unit.catalog.settings.major_incident
    if rule is None or rule.when is None or req.record_type != INCIDENT:
        return False
    try:
        return rule.when.test({"request": context(unit, req)["request"]}, unit.functions)
    except ExpressionError:
        return False


def flag_by_rule(unit: UnitOfWork, req: Request) -> None:
    """At submit or after a priority change: flag the incident when the rule holds."""
    if not req.major and req.status == "open" and rule_holds(unit, req):
        rule = unit.catalog.settings.major_incident
        assert rule is not None and rule.when is not None
        declare(unit, req, f"rule: {rule.when.source}", by_rule=True)


def declare(unit: UnitOfWork, req: Request, reason: str, by_rule: bool = False) -> None:
    """Flag `req` major and tell the major-incident group at once."""
    req.major, req.major_at = True, unit.now
    req.major_by_id = None if by_rule else unit.actor
    touch(unit, req)
    audit(unit, req, "major_declared", reason=reason, by_rule=by_rule)
    rule = unit.catalog.settings.major_incident
    members = unit.members(rule.group) if rule is not None else []
    who = "the rule" if by_rule else notifications.name_of(unit, unit.actor)
    told = [pid for pid in members if pid != unit.actor]
    line = notifications.record_line(req)
    notifications.tell(
        unit, req, MAJOR_INCIDENT, told,
        f"{line} is a major incident ({reason})" if by_rule else
        f"{who} declared {line} a major incident: {notifications.excerpt(reason)}",
        key=f"major:{unit.now.isoformat()}", email="major_incident",
        major={"reason": reason, "by": who, "title": req.title, "priority": req.priority or ""})


def resolve_children(unit: UnitOfWork, parent: Request, code: str | None, notes: str,
                     article: str | None, resolve_one: ResolveOne) -> dict[str, list[str]]:
    """Resolve the parent's open children with its resolution; what happened to each.

    All in the parent's unit of work: if anything fails, nothing is kept, the parent included.
    A child already resolved (waiting for its caller) is left alone and reported.
    """
    report: dict[str, list[str]] = {"resolved": [], "closed": [], "skipped": []}
    text = f"Resolved with major incident {parent.number}: {notes}".strip()
    for child in children_of(unit.session, parent):
        if child.status != "open":
            continue
        number = child.number or ""
        if child.resolved_at is not None:
            report["skipped"].append(f"{number}: already resolved, waiting for its caller")
            continue
        if resolve_one(unit, child, code, text, article):
            report["resolved"].append(number)
            continue
        _close_resolved(unit, child, parent, code, text, article)
        report["closed"].append(number)
    return report


def _close_resolved(unit: UnitOfWork, child: Request, parent: Request, code: str | None,
                    text: str, article: str | None) -> None:
    """A child with no task that can resolve it: close it administratively, resolution stored."""
    child.resolved_at, child.resolution_code, child.resolution_notes = unit.now, code, text
    child.solution_article = article
    if child.sla_paused_at is None:
        sla.pause(unit, child)
    touch(unit, child)
    audit(unit, child, "closed_administratively", child.state, child.state, outcome="resolved",
          parent=parent.number, code=code, notes=text)
    runtime.clear(child)
    runtime.close_visit(unit, child)
    child.visit += 1
    runtime.finish(unit, child, "resolved")
    unit.queue_email(child, "major_incident_resolved",
                     [child.requester_id, child.requested_for_id], key=f"resolved-with:{parent.id}",
                     resolution={"parent": parent.number, "code": code or "", "notes": text})


# ---------------------------------------------------------------- use cases


class MajorIncidents:
    """Declaring and standing down major incidents, attaching incidents to them."""

    unit: UnitRunner
    link: Callable[..., RecordLink]

    def _incident(self, unit: UnitOfWork, number: str, actor: str, what: str) -> Request:
        s = unit.session
        req = s.scalar(select(Request).where(Request.number == number))
        if req is None or not permissions.can_view_request(s, actor, req, unit.now):
            raise NotFound(f"no request {number}")
        if not permissions.is_agent(s, actor, req):
            raise NotAllowed(f"only agents of {req.number} can {what}")
        if req.record_type != INCIDENT:
            raise Conflict(f"{req.number} is a {req.record_type}; only incidents can be major")
        if req.status != "open":
            raise Conflict(f"{req.number} is already {req.outcome}")
        return req

    def declare_major(self, number: str, actor: str, reason: str,
                      seen_version: int | None = None) -> Request:
        """Declare the incident major (agents): the major-incident group is told at once."""

        def work(unit: UnitOfWork) -> Request:
            req = self._incident(unit, number, actor, "declare it a major incident")
            fresh(req, seen_version)
            why = checked_text(reason, "reason")
            if req.major:
                raise Conflict(f"{req.number} is already a major incident")
            declare(unit, req, why)
            return req

        return self.unit(actor, work)

    def stand_down_major(self, number: str, actor: str, reason: str,
                         seen_version: int | None = None) -> Request:
        """It is not a major incident after all (agents); its children stay linked."""

        def work(unit: UnitOfWork) -> Request:
            req = self._incident(unit, number, actor, "stand down its major incident")
            fresh(req, seen_version)
            why = checked_text(reason, "reason")
            if not req.major:
                raise Conflict(f"{req.number} is not a major incident")
            req.major, req.major_at, req.major_by_id = False, None, None
            touch(unit, req)
            audit(unit, req, "major_stood_down", reason=why)
            return req

        return self.unit(actor, work)

    def children_report(self, number: str, actor: str) -> dict[str, list[str]]:
        """What the last resolve of `number` did with its children (read after `resolve`)."""
        return self.unit(actor, lambda unit: last_children_report(unit.session, number))

    def attach_incidents(self, number: str, actor: str, numbers: str) -> list[Attached]:
        """Link incidents to the major incident `number` as its children, each on its own.

        The numbers are separated by spaces, commas or semicolons. Each link is its own unit
        of work through `link`, so one refused number does not undo the others.
        """
        wanted = [n.upper() for n in _NUMBERS.split(numbers.strip())
                  if n] if isinstance(numbers, str) else []
        if not wanted:
            raise InvalidInput("say which incidents to attach", {"numbers": ["This field is required."]})
        if len(wanted) > ATTACH_MAX:
            raise InvalidInput("too many incidents at once",
                               {"numbers": [f"Attach at most {ATTACH_MAX} incidents at once."]})

        def check(unit: UnitOfWork) -> dict[str, str]:
            parent = self._incident(unit, number, actor, "attach incidents to it")
            if not parent.major:
                raise Conflict(f"{parent.number} is not a major incident")
            rows = dict(unit.session.execute(select(Request.number, Request.record_type)
                                             .where(Request.number.in_(wanted))).all())
            return {n: f"{n} is a {rows[n]}; only incidents can be attached."
                    for n in wanted if n in rows and rows[n] != INCIDENT}

        refused = self.unit(actor, check)
        out = []
        for child in dict.fromkeys(wanted):
            if child in refused:
                out.append(Attached(child, refused[child]))
                continue
            try:
                self.link(child, actor, number, "child_of")
            except InvalidInput as exc:
                out.append(Attached(child, " ".join(m for ms in (exc.fields or {}).values()
                                                    for m in ms) or exc.message))
            except NotFound:
                out.append(Attached(child, f"There is no record {child}."))
            except EngineError as exc:
                out.append(Attached(child, _sentence(str(exc))))
            else:
                out.append(Attached(child))
        return out


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")



def last_children_report(session: Session, number: str) -> dict[str, list[str]]:
    """What the last resolve of `number` did with its children (its `children_resolved` event,
    written right after its `resolved` one; empty when that resolve had no children)."""
    row = session.execute(select(AuditEvent.event, AuditEvent.detail)
                          .join(Request, Request.id == AuditEvent.request_id)
                          .where(Request.number == number,
                                 AuditEvent.event.in_(("resolved", "children_resolved")))
                          .order_by(AuditEvent.id.desc()).limit(1)).first()
    return dict(row.detail or {}) if row is not None and row.event == "children_resolved" else {}
