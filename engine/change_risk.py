"""A change's risk level: its item's `risk` expression over the answers, at submit and again
when a workflow's `set` action changes an answer the expression reads.

Apart from engine.changes so that the actions (engine.actions) can call it without importing
what the change use cases import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.models import RISK_LEVELS, CatalogItem
from engine.errors import Conflict
from engine.models import Change, Request
from engine.unit import UnitOfWork, audit


def evaluate_risk(unit: UnitOfWork, item: CatalogItem, answers: Mapping[str, Any],
                  requester: Mapping[str, Any]) -> str | None:
    """The risk level the item's expression gives for these answers (None without one)."""
    if item.change is None or item.change.risk is None:
        return None
    form = {**{f.name: None for f in item.fields}, **answers}
    risk = item.change.risk.evaluate({"form": form, "requester": dict(requester)}, unit.functions)
    if risk not in RISK_LEVELS:
        raise Conflict(f"the risk of {item.id} came out as {risk!r}, not one of "
                       f"{', '.join(RISK_LEVELS)}; an admin has to fix the item")
    return str(risk)


def recompute_risk(unit: UnitOfWork, req: Request, field_name: str) -> None:
    """A workflow's `set` changed an answer: a change's risk reading it is computed again."""
    item = unit.catalog.item(req.item_id)
    if item is None or item.change is None or item.change.risk is None \
            or field_name not in item.change.risk.fields():
        return
    change = unit.session.get(Change, req.id)
    if change is None:
        return
    risk = evaluate_risk(unit, item, req.answers, unit.person_context(req.requester_id, True) or {})
    if risk != change.risk:
        audit(unit, req, "change_changed", actor=False, changes={"risk": [change.risk, risk]})
        change.risk = risk
