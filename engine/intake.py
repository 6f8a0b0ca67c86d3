"""Checking what is submitted: the order form's answers and a fulfiller's task form.

Both go through `catalog.answers.check_answers`, the pipeline the portal's forms run,
with the choices this database offers (`DatabaseChoices`), so nothing reaches the
database unchecked and the engine refuses what the portal refuses, in its words.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cachetools import LRUCache, cached
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.answers import check_answers as check
from catalog.catalog import Catalog
from catalog.choices import all_choices, person_label
from catalog.expressions import Expression
from catalog.models import CatalogItem, Choice, Field, FieldType
from engine import people
from engine.attachment_store import AttachmentStore
from engine.errors import InvalidInput
from engine.file_answers import file_errors, without_files
from engine.models import Asset, Group, Person

MAX_ANSWERS_BYTES = 256 * 1024


class DatabaseChoices:
    """Choices from the catalog's files, but groups and people as this database has them."""

    def __init__(self, session: Session, catalog: Catalog,
                 requested_for: str | None = None) -> None:
        self.session, self.catalog, self.requested_for = session, catalog, requested_for

    def offered(self, field: Field) -> Sequence[Choice]:
        if field.type is FieldType.ASSET:
            return [Choice(str(a.id), _asset_label(a)) for a in self._assets(field)]
        source = "people" if field.type is FieldType.PERSON else field.choices_from or ""
        if source == "groups":
            return [Choice(g.id, g.name) for g in self.session.scalars(
                select(Group).order_by(Group.id))]
        if source == "people":
            return self._people(Person.active.is_(True))
        if source.startswith("group:"):
            return self._people(Person.id.in_(people.members(self.session,
                                                             source.removeprefix("group:"))))
        return all_choices(field, self.catalog)  # static choices and lookups

    def asset_errors(self, field: Field, value: str) -> list[str]:
        """What is wrong with choosing configuration item `value` in an asset field."""
        ci = self.session.get(Asset, int(value)) if value.isdigit() and len(value) < 18 else None
        ci_type = self.catalog.ci_type(field.ci_type or "")
        noun = (ci_type.name if ci_type else field.ci_type or "item").lower()
        if ci is None or ci.type != field.ci_type:
            return [f"there is no {noun} {value}"]
        if ci.status == "retired":
            return [f"{ci.name} is retired"]
        if field.owned_by == "requester" and ci.owner_id != self.requested_for:
            person = people.person(self.session, self.requested_for)
            return [f"{ci.name} is not assigned to {person.name if person else 'you'}"]
        return []

    def _assets(self, field: Field) -> list[Asset]:
        q = select(Asset).where(Asset.type == (field.ci_type or ""), Asset.status != "retired")
        if field.owned_by == "requester":
            q = q.where(Asset.owner_id == (self.requested_for or ""))
        return list(self.session.scalars(q.order_by(Asset.name).limit(500)))

    def _people(self, where: Any) -> list[Choice]:
        found = self.session.scalars(select(Person).where(where).order_by(Person.id))
        return [Choice(p.id, person_label(p)) for p in found]


def check_answers(session: Session, catalog: Catalog, item: CatalogItem, answers: Any,
                  requester: Mapping[str, Any] | None,
                  requested_for: str | None = None,
                  files: AttachmentStore | None = None) -> dict[str, Any]:
    """Return the answers to store (hidden fields None; file fields' uploads, checked against
    the store `files`, still to keep: engine.file_answers) or raise InvalidInput per field."""
    who = requested_for or (requester or {}).get("id")
    result = check(item.fields, answers, DatabaseChoices(session, catalog, who), checks=item.checks,
                   requester=requester, functions=catalog.functions())
    errors = {**result.errors, **file_errors(files, item.fields, result.values, result.errors)}
    if errors:
        raise InvalidInput("the answers have errors", errors)
    if len(json.dumps(without_files(item.fields, result.values), default=str)) > MAX_ANSWERS_BYTES:
        raise InvalidInput("the answers are too large", {"_form": ["The answers are too large."]})
    return result.values


@cached(LRUCache(maxsize=1024), key=lambda catalog, item: (catalog.version, item.id),
        lock=threading.Lock())
def reads_lists(catalog: Catalog, item: CatalogItem) -> bool:
    """Whether the item's form conditions, checks or change risk read the requester's roles or
    groups (or the requester as a whole): only then does a submit read them."""
    exprs: list[Expression] = [c.when for c in item.checks]
    if item.change is not None and item.change.risk is not None:
        exprs.append(item.change.risk)
    todo = list(item.fields)
    while todo:
        f = todo.pop()
        exprs += [e for e in (f.show_if, f.required_if) if e is not None]
        todo += f.columns
    return any(path[0] == "requester" and (len(path) == 1 or path[1] in ("roles", "groups"))
               for e in exprs for path in e.paths)


def check_task_answers(session: Session, catalog: Catalog, fields: Iterable[Field],
                       answers: Any) -> dict[str, Any]:
    """A fulfiller's form on completing a task."""
    result = check(tuple(fields), answers, DatabaseChoices(session, catalog),
                   functions=catalog.functions())
    if not result.ok:
        raise InvalidInput("the task form has errors", result.errors)
    return result.values


def priority(catalog: Catalog, item: CatalogItem, answers: Mapping[str, Any]) -> str | None:
    rule = item.priority
    if rule is not None and rule.fixed:
        return rule.fixed
    if rule is not None and rule.impact_field and rule.urgency_field:
        found = catalog.settings.priority_for(str(answers.get(rule.impact_field)),
                                              str(answers.get(rule.urgency_field)))
        if found:
            return found
    return catalog.settings.default_priority


def _asset_label(asset: Asset) -> str:
    """How a configuration item is offered: `Name (key)`."""
    return f"{asset.name} ({asset.key})" if asset.key else asset.name
