"""Compile a workflow to one shared `transitions` machine and fire its events.

A machine is built once per workflow version (`machine_for`) and shared by every
request: it has no model of its own; each call loads the request's state into a
`StateHolder` and fires the event on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from typing import Any

from cachetools import LRUCache, cached
from transitions import EventData, Machine

from catalog.errors import suggest
from catalog.expressions import Expression
from catalog.workflow import Trigger, Workflow
from workflows.errors import InvalidTrigger, UnknownState

Functions = Mapping[str, Callable[..., Any]]


@dataclass(frozen=True, slots=True)
class RouteCondition:
    """The `when` of a decision route, as a `transitions` condition callable."""

    expression: Expression

    def __call__(self, event: EventData) -> bool:
        return self.expression.test(event.kwargs["context"], event.kwargs.get("functions"))

    def __str__(self) -> str:
        return self.expression.source


class StateHolder:
    """The stand-in model a shared machine moves: only the request's state."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"StateHolder({self.state!r})"


def machine_config(wf: Workflow) -> dict[str, Any]:
    """Return the keyword arguments of the one `transitions.Machine` of `wf`."""
    transitions: list[dict[str, Any]] = []
    for _, block in groupby(wf.transitions(), key=attrgetter("source")):
        # a state's routes are tried in order; its default route only after all of them
        for t in sorted(block, key=lambda t: (t.trigger == Trigger.CANCEL.value, t.is_default)):
            entry: dict[str, Any] = {"trigger": t.trigger, "source": t.source, "dest": t.dest}
            if t.condition is not None:
                entry["conditions"] = [RouteCondition(t.condition)]
            transitions.append(entry)
    return {"states": list(wf.state_names), "transitions": transitions, "initial": wf.start}


def build_machine(wf: Workflow) -> Machine:
    """Build a new, model-less machine for `wf` (use `machine_for` to share one)."""
    return Machine(model=None, auto_transitions=False, send_event=True,
                   ignore_invalid_triggers=False, **machine_config(wf))


@cached(LRUCache(maxsize=1024), key=lambda wf: wf.version, lock=threading.Lock())
def machine_for(wf: Workflow) -> Machine:
    """Return the machine of `wf`'s version, building it on first use."""
    return build_machine(wf)


def fire(wf: Workflow, state: str, trigger: str, context: Mapping[str, Any],
         functions: Functions | None = None) -> str:
    """Fire `trigger` on a request in `state`; return the state it moves to.

    `context` holds the plain dict snapshots conditions read (`form`, `requester`, ...).
    """
    machine = machine_for(wf)
    current = wf.state(state)
    if current is None:
        raise UnknownState(f"workflow {wf.id} has no state {state} "
                           f"({suggest(state, wf.state_names)})")
    triggers = machine.get_triggers(state)
    if trigger not in triggers:
        declared = (*current.triggers(), Trigger.CANCEL.value)
        triggers.sort(key=lambda t: declared.index(t) if t in declared else len(declared))
        hint = (f"its triggers: {', '.join(triggers)}" if triggers
                else f"{'it is an end state' if current.is_end else 'it has none'}")
        raise InvalidTrigger(f"state {state} has no trigger {trigger} ({hint})")
    holder = StateHolder(state)
    if not machine.events[trigger].trigger(holder, context=context, functions=functions):
        raise InvalidTrigger(f"state {state} has no route for this request "
                             "(no condition holds; add a last route without when)")
    return holder.state

