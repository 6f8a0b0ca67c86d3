"""Change records in the catalog: an item's `change:` block, deskflow.yaml's freezes, and the
rule that an emergency change's workflow reviews what it implemented."""

from __future__ import annotations

from datetime import date
from typing import Any

from catalog.errors import SpecError, suggest
from catalog.models import (
    RISK_LEVELS,
    CatalogItem,
    ChangeSpec,
    FieldType,
    Freeze,
    PlannedTime,
)
from catalog.parse import FORM_ROOTS, Parsed, Path
from catalog.source import SourceDoc
from catalog.workflow import StateKind, Workflow


def parse_change(p: Parsed, d: dict[str, Any]) -> ChangeSpec | None:
    """The item's `change:` block (fields are checked once field sets are inserted)."""
    raw = d.get("change")
    if raw is None:
        return None
    if d.get("record_type", "request") != "change":
        p.error(("change",), "change: is only for items with record_type: change",
                "set record_type: change or remove the change block")
    risk = None
    if "risk" in raw:
        text = raw["risk"]
        risk = p.expression(repr(text) if text in RISK_LEVELS else text, ("change", "risk"),
                            FORM_ROOTS)
    affected = raw.get("affected", ())
    return ChangeSpec(raw["type"], risk, _planned(raw.get("planned_start")),
                      _planned(raw.get("planned_end")),
                      (affected,) if isinstance(affected, str) else tuple(affected))


def _planned(raw: Any) -> PlannedTime | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return PlannedTime(raw)
    return PlannedTime(raw["date"], raw.get("time"))


def check_change_fields(doc: SourceDoc, item: CatalogItem) -> list[SpecError]:
    """The fields the `change:` block names exist and have the right type."""
    spec = item.change
    if spec is None:
        return []
    names = [f.name for f in item.fields]
    problems: list[SpecError] = []

    def want(path: Path, name: str, types: tuple[FieldType, ...], what: str) -> None:
        f = item.get_field(name)
        if f is None:
            problems.append(doc.error(path, f"unknown field {name}", suggest(name, names)))
        elif f.type not in types:
            problems.append(doc.error(path, f"field {name} is a {f.type.value} field; "
                                      f"{what}", ""))

    for key in ("planned_start", "planned_end"):
        planned: PlannedTime | None = getattr(spec, key)
        if planned is None:
            continue
        raw = doc.data["change"][key]
        base: Path = ("change", key) if isinstance(raw, str) else ("change", key, "date")
        want(base, planned.date_field, (FieldType.DATE,), "a planned day needs a date field")
        if planned.time_field is not None:
            want(("change", key, "time"), planned.time_field, (FieldType.STRING,),
                 "a planned time needs a string field answered HH:MM")
    if (spec.planned_start is None) != (spec.planned_end is None):
        missing = "planned_end" if spec.planned_end is None else "planned_start"
        problems.append(doc.error(("change",), f"change gives a planned window without {missing}",
                                  "give both planned_start and planned_end, or neither"))
    raw_affected = doc.data["change"].get("affected")
    for i, name in enumerate(spec.affected):
        path: Path = ("change", "affected") if isinstance(raw_affected, str) else ("change", "affected", i)
        want(path, name, (FieldType.ASSET,), "affected configuration items need an asset field")
    if spec.risk is not None:
        for name in sorted(spec.risk.fields() - set(names)):
            problems.append(doc.error(("change", "risk"), f"risk names unknown field {name}",
                                      suggest(name, names)))
    return problems


def parse_freezes(p: Parsed, raw: list[dict[str, Any]]) -> tuple[Freeze, ...]:
    """deskflow.yaml's `change_freezes`: named periods, end not before start."""
    out = []
    for i, f in enumerate(raw):
        days = []
        for key in ("start", "end"):
            try:
                days.append(date.fromisoformat(f[key]))
            except ValueError:
                p.error(("change_freezes", i, key), f"{f[key]} is not a date", "write YYYY-MM-DD")
        if len(days) != 2:
            continue
        if days[1] < days[0]:
            p.error(("change_freezes", i, "end"), f"end {days[1]} is before start {days[0]}",
                    "a freeze ends on or after the day it starts")
            continue
        out.append(Freeze(f["name"], days[0], days[1]))
    return tuple(out)


def unreviewed_paths(wf: Workflow) -> list[tuple[str, list[str]]]:
    """For each implementing state (a task state not marked `review`), a path from it to an
    end state that passes no review state, if there is one: (state, path)."""
    edges = wf.successors()
    found: list[tuple[str, list[str]]] = []
    for s in wf.states:
        if s.kind is not StateKind.TASK or s.review:
            continue
        # breadth-first from the implementing state, never entering a review state
        parents: dict[str, str | None] = {s.name: None}
        queue = [s.name]
        end: str | None = None
        while queue and end is None:
            here = queue.pop(0)
            for nxt in sorted(edges.get(here, ())):
                state = wf.state(nxt)
                if nxt in parents or state is None or state.review:
                    continue
                parents[nxt] = here
                if state.is_end:
                    end = nxt
                    break
                queue.append(nxt)
        if end is not None:
            path: list[str] = []
            at: str | None = end
            while at is not None:
                path.append(at)
                at = parents[at]
            found.append((s.name, path[::-1]))
    return found


def check_emergency_workflow(doc: SourceDoc, wf: Workflow, item_id: str) -> list[SpecError]:
    """An emergency change's workflow reviews every implementation before it ends."""
    problems = []
    if not any(s.review for s in wf.states):
        return [doc.error(("states",), f"workflow {wf.id} of emergency change {item_id} has no "
                          "review state", "mark the post-implementation review task `review: true`",
                          at_key=True)]
    for state, path in unreviewed_paths(wf):
        problems.append(doc.error(("states", state), f"emergency change {item_id}: the path "
                                  f"{' → '.join(path)} ends without a review after implementing",
                                  "route every outcome of the implementation through a "
                                  "`review: true` task state", at_key=True))
    return problems
