"""The record model's use cases: editing a record's fields, linking records, watchers.

A mixin of `RequestService` (engine.service): each public method is one unit of work. A
request is a *record* of one type (request, incident, problem, change: the item's
`record_type`) with fields agents keep up to date: title, impact, urgency, category,
assignment group and assignee. `stamp` fills them in when a record is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, or_, select

from catalog.catalog import Catalog
from catalog.models import CatalogItem
from engine import major, people, permissions, sla
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.inputs import fresh
from engine.models import AuditEvent, Group, RecordLink, Request, Watcher
from engine.unit import UnitOfWork, UnitRunner, audit, touch, workflow

#: how a record came in; only agents log records from a channel other than the portal
CHANNELS = ("portal", "phone", "email", "walk-in", "chat", "monitoring", "api")
#: kind -> (words from the source's side, words from the target's side)
LINK_KINDS: Mapping[str, tuple[str, str]] = {
    "related_to": ("Related to", "Related to"),
    "child_of": ("Child of", "Parent of"),
    "duplicate_of": ("Duplicate of", "Duplicated by"),
    "caused_by": ("Caused by", "Caused"),
    "problem_of": ("Problem behind", "Caused by problem"),
}
#: kinds where a record has at most one target and following them must never come back
TREE_KINDS = ("child_of", "duplicate_of")
#: the fields `edit_record` accepts, in the order the timeline lists their changes
EDITABLE = ("title", "impact", "urgency", "category", "assignment_group", "assignee")
TITLE_MAX, CATEGORY_MAX = 200, 120
REQUIRED = "This field is required."


def stamp(session: Any, cat: Catalog, item: CatalogItem, answers: Mapping[str, Any],
          req: Request, channel: str, owner_exists: bool | None = None) -> None:
    """Fill in a new record's fields from its item and the answers; `owner_exists`: whether
    the item's owner group exists, when the caller has read that already."""
    req.record_type, req.channel, req.category = item.record_type, channel, item.category[:CATEGORY_MAX]
    chosen = answers.get(item.category_from) if item.category_from else None
    if isinstance(chosen, str) and chosen.strip():
        req.category = chosen.strip()[:CATEGORY_MAX]  # the answer routes tiers `by_category`
    summary = answers.get("short_description") if item.get_field("short_description") else None
    req.title = (summary.strip() if isinstance(summary, str) and summary.strip()
                 else item.name)[:TITLE_MAX]
    rule = item.priority
    if rule is not None and rule.impact_field and rule.urgency_field:
        impact, urgency = answers.get(rule.impact_field), answers.get(rule.urgency_field)
        req.impact = impact if isinstance(impact, str) and impact else None
        req.urgency = urgency if isinstance(urgency, str) and urgency else None
    if owner_exists is None:
        owner_exists = bool(item.owner) and session.get(Group, item.owner) is not None
    if item.owner and owner_exists:
        req.assignment_group_id = item.owner


def checked_channel(session: Any, cat: Catalog, actor: str, item: CatalogItem, channel: Any) -> str:
    """The channel of a new record; only agents log one that did not come through the portal."""
    if channel is None or channel == "portal":
        return "portal"
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise InvalidInput(f"unknown channel {channel}",
                           {"channel": [f"{channel} is not one of the choices."]})
    if not can_log_for_callers(session, cat, actor, item):
        raise NotAllowed(f"only agents can log a record from the {channel} channel")
    return channel


def can_log_for_callers(session: Any, cat: Catalog, actor: str, item: CatalogItem | None = None) -> bool:
    """Admins, members of the item's owner group, or of any group some workflow sends tasks to."""
    if people.is_admin(session, actor):
        return True
    groups = set(people.groups_of(session, actor))
    if item is not None and item.owner in groups:
        return True
    owners = {i.owner for i in cat.items if i.owner}
    queues = {q for wf in cat.workflows for s in wf.states for t in s.tasks for q in t.groups}
    return not groups.isdisjoint(owners | queues)


def links_of(session: Any, req: Request) -> list[tuple[str, RecordLink, Request]]:
    """The record's links both ways: (words from this record's side, link, other record)."""
    rows = session.execute(
        select(RecordLink, Request).join(Request, or_(
            and_(RecordLink.source_id == req.id, Request.id == RecordLink.target_id),
            and_(RecordLink.target_id == req.id, Request.id == RecordLink.source_id)))
        .where(or_(RecordLink.source_id == req.id, RecordLink.target_id == req.id))
        .order_by(RecordLink.id)).all()
    return [(LINK_KINDS[link.kind][0 if link.source_id == req.id else 1], link, other)
            for link, other in rows]


def watchers_of(session: Any, req: Request) -> list[str]:
    return list(session.scalars(select(Watcher.person_id).where(Watcher.request_id == req.id)
                                .order_by(Watcher.person_id)))


def is_watching(session: Any, req: Request, person_id: str) -> bool:
    return session.get(Watcher, (req.id, person_id)) is not None


class Records:
    """Agents keeping a record's fields, links and watchers up to date."""

    unit: UnitRunner

    def _record(self, unit: UnitOfWork, number: str, actor: str) -> Request:
        req = unit.session.scalar(select(Request).where(Request.number == number))
        if req is None or not permissions.can_view_request(unit.session, actor, req, unit.now):
            raise NotFound(f"no request {number}")
        return req

    @staticmethod
    def _ensure_agent(unit: UnitOfWork, req: Request, actor: str, what: str) -> None:
        if not permissions.is_agent(unit.session, actor, req):
            raise NotAllowed(f"only agents of {req.number} can {what}")

    # ------------------------------------------------------------ fields

    def edit_record(self, number: str, actor: str, changes: Mapping[str, Any],
                    seen_version: int | None = None) -> Request:
        """Change a record's fields (agents); a new impact or urgency re-ranks its priority."""

        def work(unit: UnitOfWork) -> Request:
            req = self._record(unit, number, actor)
            self._ensure_agent(unit, req, actor, "edit its record")
            fresh(req, seen_version)
            if req.status != "open":
                raise Conflict(f"{req.number} is already {req.outcome}; its record is closed")
            new = _checked_changes(unit, req, actor, changes)
            old = _values(req)
            if "assignment_group" in new and "assignee" not in new and req.assignee_id and not \
                    people.is_member(unit.session, req.assignee_id, new["assignment_group"] or ""):
                new["assignee"] = None  # a new group picks its own assignee
            for key in ("title", "impact", "urgency", "category"):
                if key in new:
                    setattr(req, key, new[key])
            if "assignment_group" in new:
                req.assignment_group_id = new["assignment_group"]
            if "assignee" in new:
                req.assignee_id = new["assignee"]
            changed = {k: [old[k], v] for k, v in _values(req).items() if old[k] != v}
            if not changed:
                return req
            if {"impact", "urgency"} & changed.keys():
                _rerank(unit, req, changed)
            touch(unit, req)
            audit(unit, req, "record_changed", changes=changed)
            if "priority" in changed:
                major.flag_by_rule(unit, req)
            return req

        return self.unit(actor, work)

    # ------------------------------------------------------------ links

    def link(self, number: str, actor: str, other_number: str, kind: str) -> RecordLink:
        """Link the record to another one (agents): `number` <kind> `other_number`."""

        def work(unit: UnitOfWork) -> RecordLink:
            req, other = self._pair(unit, number, actor, other_number, kind, "link it")
            s = unit.session
            if other.id == req.id:
                raise InvalidInput(f"{number} cannot be linked to itself",
                                   {"other": ["A record cannot be linked to itself."]})
            both = [(req.id, other.id)] + ([(other.id, req.id)] if kind == "related_to" else [])
            if any(_link(s, a, b, kind) for a, b in both):
                raise Conflict(f"{number} is already linked to {other.number} as {_words(kind)}")
            if kind in TREE_KINDS:
                current = s.scalar(select(Request.number).join(
                    RecordLink, RecordLink.target_id == Request.id).where(
                    RecordLink.source_id == req.id, RecordLink.kind == kind))
                if current is not None:
                    raise Conflict(f"{number} is already {_words(kind)} {current}; remove that link first")
                if _reaches(s, other.id, req.id, kind):
                    raise Conflict(f"{number} cannot be {_words(kind)} {other.number}: "
                                   f"{other.number} is already {_words(kind)} {number}, "
                                   "directly or through others")
            link = RecordLink(source_id=req.id, target_id=other.id, kind=kind, created_at=unit.now,
                              created_by_id=actor)
            s.add(link)
            s.flush()
            for a, b, side in ((req, other, "source"), (other, req, "target")):
                touch(unit, a)
                audit(unit, a, "linked", kind=kind, other=b.number, side=side)
            return link

        return self.unit(actor, work)

    def unlink(self, number: str, actor: str, other_number: str, kind: str) -> None:
        """Remove the link of that kind between two records, whichever way it points (agents)."""

        def work(unit: UnitOfWork) -> None:
            req, other = self._pair(unit, number, actor, other_number, kind, "unlink it")
            s = unit.session
            link = _link(s, req.id, other.id, kind) or _link(s, other.id, req.id, kind)
            if link is None:
                raise NotFound(f"{number} has no {_words(kind)} link with {other.number}")
            source, target = (req, other) if link.source_id == req.id else (other, req)
            s.delete(link)
            for a, b, side in ((source, target, "source"), (target, source, "target")):
                touch(unit, a)
                audit(unit, a, "unlinked", kind=kind, other=b.number, side=side)

        self.unit(actor, work)

    def _pair(self, unit: UnitOfWork, number: str, actor: str, other_number: str, kind: str,
              what: str) -> tuple[Request, Request]:
        req = self._record(unit, number, actor)
        self._ensure_agent(unit, req, actor, what)
        if kind not in LINK_KINDS:
            raise InvalidInput(f"unknown link kind {kind}",
                               {"kind": [f"{kind} is not one of the choices."]})
        wanted = (other_number or "").strip().upper() if isinstance(other_number, str) else ""
        if not wanted:
            raise InvalidInput("say which record to link", {"other": [REQUIRED]})
        other = unit.session.scalar(select(Request).where(Request.number == wanted))
        if other is None or not permissions.can_view_request(unit.session, actor, other, unit.now):
            raise InvalidInput(f"no record {wanted}", {"other": [f"There is no record {wanted}."]})
        return req, other

    # ------------------------------------------------------------ watchers

    def watch(self, number: str, actor: str, person: str | None = None) -> None:
        """Add a watcher: oneself on a record one can see, or anyone active (agents)."""
        self._watchers(number, actor, person or actor, add=True)

    def unwatch(self, number: str, actor: str, person: str | None = None) -> None:
        """Remove a watcher: oneself, or anyone (agents)."""
        self._watchers(number, actor, person or actor, add=False)

    def _watchers(self, number: str, actor: str, person: str, add: bool) -> None:
        def work(unit: UnitOfWork) -> None:
            req = self._record(unit, number, actor)
            s = unit.session
            if person != actor:
                self._ensure_agent(unit, req, actor, "add or remove other watchers")
            row = s.get(Watcher, (req.id, person)) if isinstance(person, str) else None
            if add:
                if not isinstance(person, str) or people.active_person(s, person) is None:
                    raise InvalidInput(f"no active person {person}",
                                       {"person": [f"{person} is not an active person."]})
                if row is not None:
                    return
                s.add(Watcher(request_id=req.id, person_id=person))
            else:
                if row is None:
                    return
                s.delete(row)
            touch(unit, req)
            audit(unit, req, "watcher_added" if add else "watcher_removed", person=person)

        self.unit(actor, work)


# ---------------------------------------------------------------- helpers


def _values(req: Request) -> dict[str, str | None]:
    return {"title": req.title, "impact": req.impact, "urgency": req.urgency,
            "category": req.category, "assignment_group": req.assignment_group_id,
            "assignee": req.assignee_id}


def _checked_changes(unit: UnitOfWork, req: Request, actor: str,
                     changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes, cleaned; InvalidInput with a message per field like the order form's."""
    if not isinstance(changes, Mapping):
        raise InvalidInput("the changes must be a mapping of field to value",
                           {"_form": ["The changes must be a mapping of field to value."]})
    s, settings = unit.session, unit.catalog.settings
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in EDITABLE:
            errors.setdefault("_unknown", []).append(f"Unknown field {key}.")
            continue
        if value is not None and not isinstance(value, str):
            errors[key] = ["Must be text."]
            continue
        text = (value or "").strip()
        if "\x00" in text:
            errors[key] = ["Must not contain NUL characters."]
        elif key == "title":
            if not text:
                errors[key] = [REQUIRED]
            elif len(text) > TITLE_MAX:
                errors[key] = [f"Must be at most {TITLE_MAX} characters."]
        elif key == "category" and len(text) > CATEGORY_MAX:
            errors[key] = [f"Must be at most {CATEGORY_MAX} characters."]
        elif key in ("impact", "urgency"):
            levels = settings.impacts if key == "impact" else settings.urgencies
            if text and text not in levels:
                errors[key] = [f"{text} is not one of the choices."]
        elif key == "assignment_group" and text and s.get(Group, text) is None:
            errors[key] = [f"{text} is not a known group."]
        clean[key] = text if text or key in ("title", "category") else None
    group = clean["assignment_group"] if "assignment_group" in clean else req.assignment_group_id
    assignee = clean.get("assignee")
    if assignee and "assignee" not in errors:
        if people.active_person(s, assignee) is None:
            errors["assignee"] = [f"{assignee} is not an active person."]
        elif not people.is_admin(s, actor) and not (group and people.is_member(s, assignee, group)):
            errors["assignee"] = [f"{assignee} is not a member of the assignment group."
                                  if group else "Choose an assignment group first."]
    if errors:
        raise InvalidInput(f"the changes to {req.number} have errors", errors)
    return clean


def _rerank(unit: UnitOfWork, req: Request, changed: dict[str, list[Any]]) -> None:
    """New priority from the matrix; SLA targets from it when the workflow's SLA follows priority."""
    if not (req.impact and req.urgency):
        return
    prio = unit.catalog.settings.priority_for(req.impact, req.urgency)
    if prio is None or prio == req.priority:
        return
    changed["priority"] = [req.priority, prio]
    req.priority = prio
    wf = workflow(req)
    if wf.sla is not None and wf.sla.from_priority:
        before = (req.response_due, req.resolution_due)
        sla.retarget(unit, req, wf, _paused_minutes(unit, req))
        if (req.response_due, req.resolution_due) != before:
            changed["sla"] = [[_iso(before[0]), _iso(before[1])],
                              [_iso(req.response_due), _iso(req.resolution_due)]]


def _paused_minutes(unit: UnitOfWork, req: Request) -> int:
    """Business minutes the clocks stood still so far (waits on the requester that ended)."""
    rows = unit.session.execute(select(AuditEvent.event, AuditEvent.at).where(
        AuditEvent.request_id == req.id, AuditEvent.event.in_(("asked_requester", "answered")))
        .order_by(AuditEvent.id)).all()
    total, since = 0, None
    for event, at in rows:
        if event == "asked_requester":
            since = at
        elif since is not None:
            total += unit.calendar.between(since, at)
            since = None
    return total


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _link(session: Any, source_id: int, target_id: int, kind: str) -> RecordLink | None:
    return session.scalar(select(RecordLink).where(
        RecordLink.source_id == source_id, RecordLink.target_id == target_id,
        RecordLink.kind == kind))


def _reaches(session: Any, start: int, goal: int, kind: str) -> bool:
    """Whether following `kind` links from `start` arrives at `goal` (one target each)."""
    seen, current = set(), start
    while current is not None and current not in seen:
        if current == goal:
            return True
        seen.add(current)
        current = session.scalar(select(RecordLink.target_id).where(
            RecordLink.source_id == current, RecordLink.kind == kind))
    return False


def _words(kind: str) -> str:
    return LINK_KINDS[kind][0].lower() if kind in LINK_KINDS else kind
