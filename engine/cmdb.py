"""Configuration items: create, update, retire, relate; impact, "my assets", a record's CIs.

A CI's typed fields are checked by `catalog.answers.check_answers`, the pipeline order
forms go through, against its CI type (`kind: CIType`). Admins and members of a CI's
owner group may change it; every change is an audit event (with no request).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog.answers import check_answers
from catalog.catalog import Catalog
from catalog.ci_types import STATUSES, CIType
from catalog.models import FieldType
from engine import people
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.intake import DatabaseChoices
from engine.models import Asset, AssetRelation, AuditEvent, Request

RELATION_KINDS = ("runs_on", "depends_on", "used_by")
#: how far the impact query follows depends_on/runs_on edges
IMPACT_DEPTH = 10
#: open requests looked through for asset answers naming a CI
MAX_SCANNED = 5000
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class CIInput:
    """What a person or an import row gives for one CI (fields as typed values)."""

    name: str
    fields: Mapping[str, Any]
    owner_id: str | None = None
    owner_group_id: str | None = None
    status: str = "in_use"


def ci_type_of(catalog: Catalog, type_id: str) -> CIType:
    found = catalog.ci_type(type_id)
    if found is None:
        raise NotFound(f"unknown CI type {type_id}")
    return found


def get(session: Session, ci_id: int) -> Asset:
    ci = session.get(Asset, ci_id)
    if ci is None:
        raise NotFound(f"no configuration item {ci_id}")
    return ci


def can_manage(session: Session, actor: str, ci: Asset | None = None,
               owner_group_id: str | None = None) -> bool:
    """Admins manage every CI; members of its owner group manage that CI."""
    if people.is_admin(session, actor):
        return True
    group = ci.owner_group_id if ci is not None else owner_group_id
    return group is not None and people.is_member(session, actor, group)


def checked(session: Session, catalog: Catalog, ci_type: CIType, given: CIInput) -> dict[str, Any]:
    """The clean values of a CI (name, owners, status, data) or InvalidInput, field by field."""
    result = check_answers(ci_type.fields, dict(given.fields), DatabaseChoices(session, catalog))
    errors = dict(result.errors)
    name = (given.name or "").strip()
    if not name:
        errors["name"] = ["This field is required."]
    elif len(name) > MAX_NAME:
        errors["name"] = [f"Must be at most {MAX_NAME} characters."]
    if given.status not in STATUSES:
        errors["status"] = [f"Choose one of: {', '.join(STATUSES)}."]
    if given.owner_id and people.active_person(session, given.owner_id) is None:
        errors["owner"] = [f"{given.owner_id} is not a known person."]
    if given.owner_group_id and not people.group_exists(session, given.owner_group_id):
        errors["owner_group"] = [f"{given.owner_group_id} is not a known group."]
    if ci_type.owner == "group" and not given.owner_group_id:
        errors["owner_group"] = ["This field is required."]
    if ci_type.owner == "person" and not given.owner_id and given.status == "in_use":
        errors["owner"] = ["An item in use needs an owner."]
    if errors:
        raise InvalidInput("the configuration item has errors", errors)
    data = {k: v for k, v in result.values.items() if v is not None}
    key = str(data[ci_type.key])[:200] if ci_type.key and ci_type.key in data else None
    return {"name": name, "owner_id": given.owner_id or None,
            "owner_group_id": given.owner_group_id or None, "status": given.status,
            "data": data, "key": key}


def find_by_key(session: Session, type_id: str, key: str) -> Asset | None:
    return session.scalars(select(Asset).where(Asset.type == type_id, Asset.key == key)).first()


def create(session: Session, catalog: Catalog, actor: str, type_id: str, given: CIInput,
           now: datetime, request_id: int | None = None) -> Asset:
    """Record a new CI of a declared type."""
    ci_type = ci_type_of(catalog, type_id)
    values = checked(session, catalog, ci_type, given)
    if not can_manage(session, actor, owner_group_id=values["owner_group_id"]):
        raise NotAllowed("only admins and members of the owner group may add this item")
    if values["key"] is not None and find_by_key(session, type_id, values["key"]):
        raise Conflict(f"a {ci_type.name} with {ci_type.key} {values['key']} exists already")
    ci = Asset(type=type_id, request_id=request_id, created_at=now, updated_at=now, **values)
    session.add(ci)
    session.flush()
    _audit(session, actor, "ci_created", now, ci, type=type_id, name=ci.name)
    return ci


def update(session: Session, catalog: Catalog, actor: str, ci_id: int, given: CIInput,
           now: datetime) -> Asset:
    """Change a CI's fields, owners or status."""
    ci = get(session, ci_id)
    if not can_manage(session, actor, ci):
        raise NotAllowed("only admins and members of the owner group may change this item")
    values = checked(session, catalog, ci_type_of(catalog, ci.type), given)
    if values["key"] is not None:
        other = find_by_key(session, ci.type, values["key"])
        if other is not None and other.id != ci.id:
            raise Conflict(f"item {other.id} has that key already")
    changed = sorted(k for k, v in values.items() if getattr(ci, k) != v)
    for k in changed:
        setattr(ci, k, values[k])
    if changed:
        ci.updated_at = now
        _audit(session, actor, "ci_updated", now, ci, changed=changed)
    return ci


def retire(session: Session, actor: str, ci_id: int, now: datetime) -> Asset:
    ci = get(session, ci_id)
    if not can_manage(session, actor, ci):
        raise NotAllowed("only admins and members of the owner group may retire this item")
    if ci.status == "retired":
        raise Conflict(f"item {ci_id} is retired already")
    ci.status, ci.updated_at = "retired", now
    _audit(session, actor, "ci_retired", now, ci)
    return ci


def set_status(session: Session, ci: Asset, status: str, now: datetime,
               request_id: int | None = None) -> None:
    """Move a CI to a status as a workflow step does (no permission check: the workflow decides)."""
    if ci.status != status:
        _audit(session, None, "ci_status", now, ci, request_id=request_id, status=status,
               was=ci.status)
        ci.status, ci.updated_at = status, now


def relate(session: Session, actor: str, source_id: int, kind: str, target_id: int,
           now: datetime) -> AssetRelation:
    """Record that source `kind` target (e.g. app depends_on database); no depends_on cycles."""
    if kind not in RELATION_KINDS:
        raise InvalidInput("unknown relationship", {"kind": [
            f"Choose one of: {', '.join(RELATION_KINDS)}."]})
    source, target = get(session, source_id), get(session, target_id)
    if not can_manage(session, actor, source):
        raise NotAllowed("only admins and members of the owner group may relate this item")
    if source.id == target.id:
        raise InvalidInput("an item cannot relate to itself", {"target": [
            "Choose another item."]})
    if session.scalars(select(AssetRelation).where(
            AssetRelation.source_id == source.id, AssetRelation.target_id == target.id,
            AssetRelation.kind == kind)).first():
        raise Conflict(f"{source.name} {kind} {target.name} is recorded already")
    if kind == "depends_on" and source.id in _reach(session, target.id, ("depends_on",),
                                                    forward=True):
        raise Conflict(f"{target.name} already depends on {source.name}: that would be a cycle")
    edge = AssetRelation(source_id=source.id, target_id=target.id, kind=kind, created_at=now)
    session.add(edge)
    session.flush()
    _audit(session, actor, "ci_related", now, source, kind=kind, target=target.id)
    return edge


def unrelate(session: Session, actor: str, relation_id: int, now: datetime,
             ci_id: int | None = None) -> None:
    """Remove a relationship (one of CI `ci_id`'s, when given)."""
    edge = session.get(AssetRelation, relation_id)
    if edge is None or (ci_id is not None and ci_id not in (edge.source_id, edge.target_id)):
        raise NotFound(f"no relationship {relation_id}")
    source = get(session, edge.source_id)
    if not can_manage(session, actor, source):
        raise NotAllowed("only admins and members of the owner group may relate this item")
    _audit(session, actor, "ci_unrelated", now, source, kind=edge.kind, target=edge.target_id)
    session.delete(edge)
    session.flush()


def relations(session: Session, ci_id: int) -> tuple[list[tuple[AssetRelation, Asset]],
                                                      list[tuple[AssetRelation, Asset]]]:
    """(outgoing edges with their targets, incoming edges with their sources)."""
    out = session.execute(select(AssetRelation, Asset).join(
        Asset, Asset.id == AssetRelation.target_id).where(AssetRelation.source_id == ci_id)
        .order_by(AssetRelation.kind, Asset.name)).all()
    into = session.execute(select(AssetRelation, Asset).join(
        Asset, Asset.id == AssetRelation.source_id).where(AssetRelation.target_id == ci_id)
        .order_by(AssetRelation.kind, Asset.name)).all()
    return [(r, c) for r, c in out], [(r, c) for r, c in into]


def impacted(session: Session, ci_id: int, depth: int = IMPACT_DEPTH) -> list[Asset]:
    """The CIs that depend on or run on this one, transitively, at most `depth` hops away."""
    get(session, ci_id)
    ids = _reach(session, ci_id, ("depends_on", "runs_on"), forward=False, depth=depth)
    ids.discard(ci_id)
    if not ids:
        return []
    return list(session.scalars(select(Asset).where(Asset.id.in_(ids)).order_by(Asset.name)))


def _reach(session: Session, start: int, kinds: tuple[str, ...], *, forward: bool,
           depth: int = IMPACT_DEPTH) -> set[int]:
    """CI ids reachable from `start` along edges of `kinds` (forward: source -> target)."""
    seen, frontier = {start}, {start}
    for _ in range(depth):
        if not frontier:
            break
        here = AssetRelation.source_id if forward else AssetRelation.target_id
        there = AssetRelation.target_id if forward else AssetRelation.source_id
        found = set(session.scalars(select(there).where(here.in_(frontier),
                                                        AssetRelation.kind.in_(kinds))))
        frontier = found - seen
        seen |= found
    return seen


def records_touching(session: Session, ci_id: int, *, open_only: bool = False,
                     catalog: Catalog | None = None) -> list[Request]:
    """Requests that created or moved this CI, or (given the catalog) name it in an asset field.

    Asset answers are looked for in open requests of the items that have an asset
    field of the CI's type, at most MAX_SCANNED of them.
    """
    ci = get(session, ci_id)
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.event.in_(("asset_created", "ci_status")), AuditEvent.request_id.is_not(None)))
    ids = {e.request_id for e in events if e.detail.get("asset") == ci_id}
    if ci.request_id is not None:
        ids.add(ci.request_id)
    fields = {item.id: [f.name for f in item.fields
                        if f.type is FieldType.ASSET and f.ci_type == ci.type]
              for item in (catalog.items if catalog is not None else ())}
    fields = {k: v for k, v in fields.items() if v}
    if fields:
        for req in session.scalars(select(Request).where(
                Request.item_id.in_(fields), Request.status == "open").limit(MAX_SCANNED)):
            if any(str(req.answers.get(name)) == str(ci_id) for name in fields[req.item_id]):
                ids.add(req.id)
    q = select(Request).where(Request.id.in_(ids)).order_by(Request.id.desc())
    if open_only:
        q = q.where(Request.status == "open")
    return list(session.scalars(q))


def my_assets(session: Session, person_id: str) -> list[Asset]:
    """The CIs a person owns, in use first."""
    return list(session.scalars(select(Asset).where(Asset.owner_id == person_id).order_by(
        Asset.status != "in_use", Asset.type, Asset.name)))


def of_request(session: Session, request_id: int) -> list[Asset]:
    """The CIs a request created."""
    return list(session.scalars(select(Asset).where(Asset.request_id == request_id)
                                .order_by(Asset.id)))


def search(session: Session, type_id: str | None = None, text: str = "",
           limit: int = 200) -> list[Asset]:
    """CIs by type and a text found in the name or key."""
    q = select(Asset)
    if type_id:
        q = q.where(Asset.type == type_id)
    if text.strip():
        like = f"%{text.strip()[:100]}%"
        q = q.where(or_(Asset.name.ilike(like), Asset.key.ilike(like)))
    return list(session.scalars(q.order_by(Asset.type, Asset.name).limit(limit)))


def _audit(session: Session, actor: str | None, event: str, now: datetime, ci: Asset,
           request_id: int | None = None, **detail: Any) -> None:
    session.add(AuditEvent(request_id=request_id,
                           actor_id=actor, event=event, detail={"asset": ci.id, **detail}, at=now))


def may_browse(session: Session, person_id: str, queues: frozenset[str]) -> bool:
    """Agents (members of a queue some workflow uses) and admins see every CI."""
    return people.is_admin(session, person_id) or any(
        g in queues for g in people.groups_of(session, person_id))
