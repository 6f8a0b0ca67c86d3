"""Immutable model of a workflow definition and the graph it describes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from catalog.expressions import Expression, Template
from catalog.models import EMPTY, Duration, Field

CANCELLED = "cancelled"


class StateKind(StrEnum):
    APPROVAL = "approval"      # one or more parallel approvals
    TASK = "task"              # one or more parallel tasks
    DECISION = "decide"
    ACTION = "actions"
    WAIT = "wait"
    END = "end"


class Trigger(StrEnum):
    """Events the engine fires; task outcomes are triggers too."""

    APPROVED = "approved"
    REJECTED = "rejected"
    DONE = "done"
    ROUTE = "route"
    NEXT = "next"
    TIMER = "timer"
    CANCEL = "cancel"


RESERVED_TRIGGERS = frozenset(t.value for t in Trigger) - {Trigger.DONE.value}


@dataclass(frozen=True, slots=True)
class ApproverRef:
    """`person:ID`, `group:ID`, `role:ID`, or an expression naming a person or group."""

    kind: str                      # person | group | role | expression
    value: str
    expression: Expression | None = None

    def __str__(self) -> str:
        return self.value if self.kind == "expression" else f"{self.kind}:{self.value}"


@dataclass(frozen=True, slots=True)
class Policy:
    kind: str                      # any | all | quorum
    quorum: int = 1

    def __str__(self) -> str:
        return f"quorum {self.quorum}" if self.kind == "quorum" else self.kind


@dataclass(frozen=True, slots=True)
class ApprovalSpec:
    name: str
    approvers: tuple[ApproverRef, ...]
    policy: Policy = Policy("any")
    timeout: Duration | None = None
    on_timeout: str | None = None  # remind | escalate | approve | reject


@dataclass(frozen=True, slots=True)
class CategoryRoute:
    """A tier that picks its group by the record's category: `{by_category: {...}, otherwise: g}`."""

    #: (category, group), as written; categories match case-insensitively
    by_category: tuple[tuple[str, str], ...]
    otherwise: str

    def group_for(self, category: str | None) -> str:
        key = (category or "").strip().casefold()
        return next((g for c, g in self.by_category if c.casefold() == key), self.otherwise)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*(g for _, g in self.by_category), self.otherwise)))


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    queue: str
    title: Template | None = None
    instructions: Template | None = None
    #: the tiers after the queue: a group, or a group picked by the record's category
    escalate_to: tuple[str | CategoryRoute, ...] = ()
    assignee: ApproverRef | None = None
    sla: Duration | None = None
    outcomes: tuple[str, ...] = ("done",)
    fields: tuple[Field, ...] = ()

    @property
    def tiers(self) -> tuple[str | CategoryRoute, ...]:
        return (self.queue, *self.escalate_to)

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group whose queue the task may reach, in tier order."""
        return tuple(dict.fromkeys(g for t in self.tiers
                                   for g in (t.groups if isinstance(t, CategoryRoute) else (t,))))

    def tier_group(self, tier: int, category: str | None) -> str | None:
        """The group of tier `tier` (0 is the queue) for a record of `category`; None past the last."""
        if not 0 <= tier < len(self.tiers):
            return None
        entry = self.tiers[tier]
        return entry.group_for(category) if isinstance(entry, CategoryRoute) else entry


@dataclass(frozen=True, slots=True)
class Route:
    goto: str
    when: Expression | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """One automated action; `kind` names it in the action registry."""

    kind: str     # notify | webhook | set | create_asset | list_assets | recover_assets | escalate
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)  # str or Template values


@dataclass(frozen=True, slots=True)
class State:
    name: str
    kind: StateKind
    label: str = ""
    approvals: tuple[ApprovalSpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    routes: tuple[Route, ...] = ()
    wait: Duration | None = None
    outcome: str | None = None
    actions: tuple[Action, ...] = ()
    next: str | None = None
    on: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    #: a post-implementation review (a task state); emergency changes cannot end without one
    review: bool = False

    @property
    def is_end(self) -> bool:
        return self.kind is StateKind.END

    def triggers(self) -> tuple[str, ...]:
        """The triggers this state answers to (besides `cancel`)."""
        if self.kind is StateKind.APPROVAL:
            return (Trigger.APPROVED.value, Trigger.REJECTED.value)
        if self.kind is StateKind.TASK:
            if len(self.tasks) == 1:
                return self.tasks[0].outcomes
            return (Trigger.DONE.value,)
        if self.kind is StateKind.DECISION:
            return (Trigger.ROUTE.value,)
        if self.kind is StateKind.ACTION:
            return (Trigger.NEXT.value,)
        if self.kind is StateKind.WAIT:
            return (Trigger.TIMER.value,)
        return ()


@dataclass(frozen=True, slots=True)
class Transition:
    source: str
    trigger: str
    dest: str
    condition: Expression | None = None
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class WorkflowSla:
    response: Duration | None = None
    resolution: Duration | None = None
    from_priority: bool = False
    on_warning: tuple[Action, ...] = ()
    on_breach: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow version: `version` is a hash of its content, stable across formatting."""

    id: str
    start: str
    states: tuple[State, ...]
    version: str
    name: str = ""
    description: str = ""
    sla: WorkflowSla | None = None
    source: PurePosixPath = field(default=PurePosixPath(), compare=False)
    definition: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False, repr=False)
    _index: Mapping[str, State] = field(default_factory=lambda: EMPTY, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", MappingProxyType({s.name: s for s in self.states}))

    def state(self, name: str) -> State | None:
        return self._index.get(name)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def end_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states if s.is_end)

    def transitions(self) -> Iterator[Transition]:
        """Every declared transition, plus `cancel` from each non-end state."""
        for s in self.states:
            if s.kind is StateKind.DECISION:
                for r in s.routes:
                    yield Transition(s.name, Trigger.ROUTE.value, r.goto, r.when, r.when is None)
            elif s.kind in (StateKind.ACTION, StateKind.WAIT):
                if s.next:
                    yield Transition(s.name, s.triggers()[0], s.next)
            else:
                for trig in s.triggers():
                    if trig in s.on:
                        yield Transition(s.name, trig, s.on[trig])
            if not s.is_end and s.name != CANCELLED:
                yield Transition(s.name, Trigger.CANCEL.value, CANCELLED)

    def successors(self) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = {s.name: set() for s in self.states}
        for t in self.transitions():
            if t.trigger != Trigger.CANCEL.value:
                graph.setdefault(t.source, set()).add(t.dest)
        return graph

    def reachable(self) -> set[str]:
        graph, seen, todo = self.successors(), {self.start}, [self.start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def can_finish(self) -> set[str]:
        """States from which some end state can be reached."""
        graph = self.successors()
        reverse: dict[str, set[str]] = {}
        for src, dests in graph.items():
            for d in dests:
                reverse.setdefault(d, set()).add(src)
        done = set(self.end_states)
        todo = list(done)
        while todo:
            for prev in reverse.get(todo.pop(), ()):
                if prev not in done:
                    done.add(prev)
                    todo.append(prev)
        return done

    def form_fields_read(self) -> set[str]:
        """`form.NAME` names read by any condition, template or approver expression."""
        names: set[str] = set()
        for expr in self.expressions():
            names |= {p[1] for p in expr.paths if p[0] == "form" and len(p) > 1}
        return names

    def fields_set(self) -> set[str]:
        """Answer keys that `set` and `list_assets` actions write, which later expressions read."""
        return {a.params["field"] for s in self.states for a in s.actions
                if a.kind in ("set", "list_assets")}

    def expressions(self) -> Iterator[Expression]:
        for s in self.states:
            for r in s.routes:
                if r.when:
                    yield r.when
            for a in s.approvals:
                yield from (ref.expression for ref in a.approvers if ref.expression)
            for t in s.tasks:
                if t.assignee and t.assignee.expression:
                    yield t.assignee.expression
                for tpl in (t.title, t.instructions):
                    if tpl:
                        yield from tpl.expressions
            for act in s.actions:
                yield from _action_expressions(act)
        if self.sla:
            for act in (*self.sla.on_warning, *self.sla.on_breach):
                yield from _action_expressions(act)


def _action_expressions(action: Action) -> Iterator[Expression]:
    for value in action.params.values():
        if isinstance(value, Template):
            yield from value.expressions
        elif isinstance(value, tuple):
            for _, v in value:
                if isinstance(v, Template):
                    yield from v.expressions
