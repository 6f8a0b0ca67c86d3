"""Replay another desk's history through a workflow: would it have accepted last year's cases?

Each case of an export (read by engine.history.reader with a history mapping) is a sequence
of source states; a state mapping (HistoryStates YAML, docs/import.md "Replay") maps each to a
state of the item's workflow. The sequence is driven through the compiled workflow: a step
from A to B is accepted when one trigger of A (a task outcome, an approval's answer, a timer,
a decision) leads to B, or to B through states that pass on by themselves (actions,
decisions). Nothing is written; no database is used.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from catalog.errors import SpecError, suggest
from catalog.source import SourceDoc
from catalog.workflow import StateKind, Workflow
from engine.history.mapping import HERE, HistoryMapping, UnusableInput, read_checked
from engine.history.reader import ReadResult

SCHEMA = "history-states"
STATES_DIR = HERE / "states"
TOP = 10
#: states a case passes through without stopping
_PASSING = frozenset({StateKind.ACTION, StateKind.DECISION})


@dataclass(frozen=True, slots=True)
class StateMap:
    doc: SourceDoc
    workflow: str
    #: source state -> workflow state (None: ignored, the case stays where it is)
    states: Mapping[str, str | None]


def built_in_states(mapping_id: str, workflow_id: str) -> Path | None:
    """The shipped state mapping of a built-in history mapping for a workflow, if there is one."""
    path = STATES_DIR / f"{mapping_id}-{workflow_id}.yaml"
    return path if path.is_file() else None


def load_states(path: Path, workflow: Workflow, shown: str | None = None) -> StateMap:
    """Read and check a state mapping against `workflow`; UnusableInput at file:line:col."""
    doc = read_checked(path, shown, "the state mapping",
                       "a state mapping is a YAML mapping (kind: HistoryStates)", SCHEMA)
    data: dict[str, Any] = doc.data
    problems: list[SpecError] = []
    if data["workflow"] != workflow.id:
        problems.append(doc.error(["workflow"], f"the item's workflow is {workflow.id}, "
                                  f"not {data['workflow']}"))
    names = workflow.state_names
    for source, target in data["states"].items():
        if target is not None and workflow.state(target) is None:
            problems.append(doc.error(["states", source], f"workflow {workflow.id} has no state "
                                      f"{target}", suggest(target, names)))
    if problems:
        raise UnusableInput([e.render() for e in problems])
    return StateMap(doc, data["workflow"], dict(data["states"]))


def allowed_steps(workflow: Workflow) -> dict[str, dict[str, frozenset[str]]]:
    """For each state, by trigger, the states that trigger takes a case to (passing states
    included: a case may be seen in any of them)."""
    direct: dict[str, set[str]] = defaultdict(set)
    by_trigger: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for t in workflow.transitions():
        if t.trigger != "cancel":
            direct[t.source].add(t.dest)
            by_trigger[t.source][t.trigger].add(t.dest)

    def onward(name: str, seen: set[str]) -> set[str]:
        state = workflow.state(name)
        if name in seen or state is None or state.kind not in _PASSING:
            return {name}
        seen.add(name)
        found = {name}
        for dest in direct.get(name, ()):
            found |= onward(dest, seen)
        return found

    steps: dict[str, dict[str, frozenset[str]]] = {}
    for name in workflow.state_names:
        steps[name] = {}
        for trigger, dests in by_trigger.get(name, {}).items():
            reach: set[str] = set()
            for dest in dests:
                reach |= onward(dest, set())
            steps[name][trigger] = frozenset(reach)
    return steps


REFUSED = "no transition"
OPENED = "(opened)"
RESOLVED = "resolved"  # the task outcome engine.lifecycle resolves with
LATE_REOPEN = "reopened after the reopen window"


def closes_by_itself(workflow: Workflow) -> set[str]:
    """The end states, and the states from which waits, actions and decisions alone lead to
    one (a case left there is finished: the workflow closes it on its own)."""
    done = set(workflow.end_states)
    automatic = [(t.source, t.dest) for t in workflow.transitions()
                 if t.trigger != "cancel" and (s := workflow.state(t.source)) is not None
                 and s.kind in _PASSING | {StateKind.WAIT}]
    changed = True
    while changed:
        changed = False
        for source, dest in automatic:
            if source not in done and dest in done:
                done.add(source)
                changed = True
    return done


@dataclass(slots=True)
class Refusal:
    count: int = 0
    example: str = ""
    example_source: str = ""


@dataclass(slots=True)
class Replay:
    file: str
    mapping: str
    item: str
    workflow: str
    states_file: str
    rows_read: int
    rows_skipped: int
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    unfinished: int = 0
    refusals: dict[tuple[str, str, str], Refusal] = field(default_factory=dict)
    unmapped: dict[str, list[int]] = field(default_factory=dict)  # state -> [rows, cases]
    visits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    longest: list[tuple[float, str, str]] = field(default_factory=list)

    def to_json(self, states: Mapping[str, str | None]) -> dict[str, Any]:
        total = sum(sum(v) for v in self.visits.values()) or 1.0
        spent: list[dict[str, Any]] = []
        for state, hours in self.visits.items():
            ordered = sorted(hours)
            spent.append({"state": state, "workflow_state": states.get(state),
                          "visits": len(ordered),
                          "median_hours": round(statistics.median(ordered), 2),
                          "p90_hours": round(ordered[math.ceil(0.9 * len(ordered)) - 1], 2),
                          "total_hours": round(sum(ordered), 2),
                          "share_of_time": round(sum(ordered) / total, 4)})
        spent.sort(key=lambda s: (-s["total_hours"], s["state"]))
        refused = sorted(self.refusals.items(), key=lambda kv: (-kv[1].count, kv[0]))[:TOP]
        return {
            "file": self.file, "mapping": self.mapping, "item": self.item,
            "workflow": self.workflow, "states_file": self.states_file,
            "rows_read": self.rows_read, "rows_skipped": self.rows_skipped,
            "cases": self.cases, "accepted": self.accepted, "refused": self.refused,
            "unfinished": self.unfinished,
            "accepted_share": round(self.accepted / self.cases, 4) if self.cases else 0.0,
            "refused_transitions": [
                {"from": a, "to": b, "why": why, "count": r.count, "example_case": r.example,
                 "example_source": r.example_source} for (a, b, why), r in refused],
            "unmapped_states": [{"state": s, "rows": n[0], "cases": n[1]}
                                for s, n in sorted(self.unmapped.items(), key=lambda kv: (-kv[1][0], kv[0]))],
            "time_in_state": spent,
            "longest_waits": [{"case": c, "state": s, "hours": round(h, 2)}
                              for h, c, s in sorted(self.longest, key=lambda x: (-x[0], x[1]))[:TOP]],
        }


def replay(read: ReadResult, mapping: HistoryMapping, states: StateMap, workflow: Workflow,
           item: str, states_file: str, reopen_until: Callable[[datetime], datetime],
           limit: int | None = None) -> dict[str, Any]:
    """The conformance report (the JSON form, docs/import.md) of every case of `read`.

    As the engine's `reopen` does, a resolved case (a task ended `resolved`, the case not yet
    at an end) may go back to the state it was resolved in until `reopen_until(resolved at)`.
    """
    steps = allowed_steps(workflow)
    reach = {name: frozenset().union(*by.values()) if by else frozenset()
             for name, by in steps.items()}
    ends = set(workflow.end_states)
    finished = closes_by_itself(workflow)
    out = Replay(read.file, mapping.id, item, workflow.id, states_file, read.rows_read,
                 len(read.skipped))
    longest: list[tuple[float, str, str]] = []
    mapped = states.states
    for n, (number, case) in enumerate(sorted(read.cases.items())):
        if limit is not None and n >= limit:
            break
        out.cases += 1
        current = workflow.start  # every case begins where the workflow starts
        current_source = OPENED
        refused = False
        resolved: tuple[str, datetime] | None = None  # (state resolved in, when)
        unmapped_here: set[str] = set()
        visit_state: str | None = None
        visit_start = None
        for row in case.ordered():
            source: str = row.values["state"]
            if source != visit_state:
                if visit_state is not None and visit_start is not None:
                    hours = (row.at - visit_start).total_seconds() / 3600
                    out.visits[visit_state].append(hours)
                    longest.append((hours, number, visit_state))
                visit_state, visit_start = source, row.at
            if source not in mapped:
                counts = out.unmapped.setdefault(source, [0, 0])
                counts[0] += 1
                if source not in unmapped_here:
                    unmapped_here.add(source)
                    counts[1] += 1
                continue
            target = mapped[source]
            if target is None or target == current:
                current_source = source
                continue
            why = ""
            if resolved is not None and target == resolved[0] and current not in ends:
                why = "" if row.at <= reopen_until(resolved[1]) else LATE_REOPEN
                resolved = None
            elif target not in reach[current]:
                why = REFUSED
            elif target in steps[current].get(RESOLVED, ()):
                resolved = (current, row.at)
            if why:
                refused = True
                key = (current, target, why)
                refusal = out.refusals.setdefault(key, Refusal())
                refusal.count += 1
                if not refusal.example:
                    refusal.example = number
                    refusal.example_source = f"{current_source} -> {source}"
            current, current_source = target, source
        if len(longest) > 10 * TOP:
            longest = sorted(longest, reverse=True)[:TOP]
        if refused:
            out.refused += 1
        elif current in finished:
            out.accepted += 1
        else:
            out.unfinished += 1
    out.longest = longest
    return out.to_json(mapped)


def render_text(report: Mapping[str, Any]) -> str:
    r = report
    lines = [f"replay of {r['file']} ({r['mapping']}) through item {r['item']}, workflow "
             f"{r['workflow']}, states {r['states_file']}",
             f"{r['cases']} cases from {r['rows_read']} rows ({r['rows_skipped']} rows skipped)",
             f"accepted end to end: {r['accepted']} of {r['cases']} ({r['accepted_share']:.1%}); "
             f"refused: {r['refused']}; unfinished: {r['unfinished']}"]
    lines.append("")
    lines.append("most frequent refused transitions:")
    if not r["refused_transitions"]:
        lines.append("  none")
    for t in r["refused_transitions"]:
        lines.append(f"  {t['from']} -> {t['to']} ({t['why']}): {t['count']} "
                     f"(e.g. {t['example_case']}: {t['example_source']})")
    if r["unmapped_states"]:
        lines.append("")
        lines.append("source states with no workflow state (ignored):")
        for u in r["unmapped_states"]:
            lines.append(f"  {u['state']}: {u['rows']} rows in {u['cases']} cases")
    lines.append("")
    lines.append("time in each state (hours; by share of all time):")
    for s in r["time_in_state"]:
        lines.append(f"  {s['state']} [{s['workflow_state'] or '-'}]: {s['visits']} visits, "
                     f"median {s['median_hours']:.2f}, p90 {s['p90_hours']:.2f}, "
                     f"{s['share_of_time']:.1%} of the time")
    lines.append("")
    lines.append("longest single waits:")
    for w in r["longest_waits"]:
        lines.append(f"  {w['case']}: {w['hours']:.2f} h in {w['state']}")
    return "\n".join(lines) + "\n"
