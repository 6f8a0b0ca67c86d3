"""Orders through an order guide: several records ordered at once, linked to one order.

`Orders.order_guide` checks every answer first — the shared questions, then each included
item's form — and only then submits each item the ordinary way (`_submitted`), all in one
unit of work: every record is created, or none. An order's state is derived from its
records, never stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.answers import check_answers
from catalog.models import CatalogItem
from engine import intake, people, permissions
from engine.errors import InvalidInput, NotAllowed, NotFound
from engine.intake import DatabaseChoices
from engine.models import Order, Request
from engine.unit import UnitOfWork, UnitRunner, audit

#: joins an item id and one of its field names in an order's error keys (and the portal's form)
SEPARATOR = "--"


def item_key(item_id: str, name: str) -> str:
    """The key of an item's field in a guide's combined form and its errors."""
    return f"{item_id}{SEPARATOR}{name}"


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order with its records, and the state they sum up to."""

    order: Order
    children: tuple[Request, ...]

    @property
    def done(self) -> int:
        return sum(1 for c in self.children if c.status == "closed")

    @property
    def status(self) -> str:
        """open while any record is open, closed once all are."""
        return "closed" if self.done == len(self.children) else "open"

    @property
    def summary(self) -> str:
        """`2 of 3 done`."""
        return f"{self.done} of {len(self.children)} done"

    @property
    def outcomes(self) -> dict[str, int]:
        """How many records ended with each outcome (closed ones only)."""
        return dict(Counter(c.outcome or c.state for c in self.children if c.status == "closed"))


class Orders:
    """Ordering a guide's items as one order, and reading an order back."""

    unit: UnitRunner

    def _submitted(self, unit: UnitOfWork, item_id: str, actor: str, answers: dict[str, Any],
                   requested_for: str | None, channel: str) -> Request:
        raise NotImplementedError  # RequestService's

    def _desk_reads_everything(self, session: Session, viewer: str) -> bool:
        raise NotImplementedError  # RequestService's

    def order_guide(self, guide_id: str, actor: str, shared_answers: Mapping[str, Any],
                    item_answers: Mapping[str, Mapping[str, Any]],
                    requested_for: str | None = None) -> Order:
        """Order a guide: check every answer, then create every included item's record (or none).

        Errors are keyed by shared question name, or `ITEM--FIELD` for an item's own field.
        """
        return self.unit(actor, lambda unit: self._ordered(unit, guide_id, actor, shared_answers,
                                                           item_answers, requested_for))

    def _ordered(self, unit: UnitOfWork, guide_id: str, actor: str, shared_answers: Any,
                 item_answers: Any, requested_for: str | None) -> Order:
        s, cat = unit.session, unit.catalog
        if people.active_person(s, actor) is None:
            raise NotAllowed(f"{actor} cannot order: not an active person")
        guide = cat.guide(guide_id)
        if guide is None or not permissions.can_see_item(s, actor, guide.visible_to):
            raise NotFound(f"no order guide {guide_id}")
        if not isinstance(item_answers, Mapping) or not all(
                isinstance(v, Mapping) for v in item_answers.values()):
            raise InvalidInput("the item answers must be an object of item ids and answers",
                               {"_form": ["The item answers must be an object of item ids and "
                                          "answers."]})
        target = requested_for or actor
        context = people.person_context(s, actor)
        shared = check_answers(guide.questions, shared_answers, DatabaseChoices(s, cat, target),
                               requester=context, functions=cat.functions())
        if not shared.ok:
            raise InvalidInput("the answers have errors", dict(shared.errors))
        plan: list[tuple[CatalogItem, dict[str, Any]]] = []
        errors: dict[str, list[str]] = {}
        for entry in guide.included(shared.values, cat.functions()):
            item = cat.item(entry.item)
            if item is None or not permissions.can_order(s, actor, item):
                continue  # an item this person may not order is left out, as the page leaves it
            answers = guide.answers_for(entry, item, shared.values,
                                        item_answers.get(item.id, {}))
            try:
                intake.check_answers(s, cat, item, answers, context, requested_for=target)
            except InvalidInput as exc:
                errors.update({item_key(item.id, k): v for k, v in exc.fields.items()})
            plan.append((item, answers))
        if errors:
            raise InvalidInput("the answers have errors", errors)
        if not plan:
            raise InvalidInput("no item of the guide applies to these answers",
                               {"_form": ["No item of this guide applies to these answers."]})
        order = Order(guide_id=guide.id, guide_name=guide.name, requester_id=actor,
                      requested_for_id=target, created_at=unit.now, answers=dict(shared.values))
        s.add(order)
        s.flush()
        order.number = f"ORD-{order.id:06d}"
        for item, answers in plan:
            req = self._submitted(unit, item.id, actor, answers, requested_for, "portal")
            req.order_id = order.id
            audit(unit, req, "ordered_with_guide", guide=guide.id, order=order.number)
        return order

    def order(self, session: Session, number: str, viewer: str, now: datetime) -> OrderView:
        """The order with this number and its records, if `viewer` may see it (else NotFound):
        its requester, the person it is for, or someone who may see every record of it."""
        found = session.scalar(select(Order).where(Order.number == number))
        if found is None:
            raise NotFound(f"no order {number}")
        children = tuple(session.scalars(select(Request).where(Request.order_id == found.id)
                                          .order_by(Request.id)))
        if viewer not in (found.requester_id, found.requested_for_id) and not (
                children and (self._desk_reads_everything(session, viewer) or all(
                    permissions.can_view_request(session, viewer, c, now) for c in children))):
            raise NotFound(f"no order {number}")
        return OrderView(found, children)

    @staticmethod
    def order_of(session: Session, req: Request) -> Order | None:
        """The order a record is one item of, if any."""
        return session.get(Order, req.order_id) if req.order_id is not None else None

