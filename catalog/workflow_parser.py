"""A workflow file: its states, approvals, tasks, actions and routes, and its graph checks."""

from __future__ import annotations

import hashlib
import json
from types import MappingProxyType
from typing import Any

from catalog.errors import suggest
from catalog.field_parser import parse_field
from catalog.parse import PRINCIPAL, Parsed, Path, duration
from catalog.source import SourceDoc
from catalog.workflow import (
    CANCELLED,
    RESERVED_TRIGGERS,
    Action,
    ApprovalSpec,
    ApproverRef,
    CategoryRoute,
    Policy,
    Route,
    State,
    StateKind,
    TaskSpec,
    Workflow,
    WorkflowSla,
)

_RECIPIENTS = frozenset({"requester", "requested_for", "approvers", "assignee", "owner"})
_KIND_KEYS = {"approval": StateKind.APPROVAL, "approvals": StateKind.APPROVAL,
              "task": StateKind.TASK, "tasks": StateKind.TASK, "decide": StateKind.DECISION,
              "wait": StateKind.WAIT, "end": StateKind.END}


def workflow_version(data: Any) -> str:
    """A content hash of the definition: same meaning, same version, whatever the layout."""
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def parse_workflow(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Workflow", doc), doc.data
    states = [_state(p, name, s, ("states", name)) for name, s in d["states"].items()]
    names = {s.name for s in states}
    if CANCELLED not in names:
        states.append(State(CANCELLED, StateKind.END, "Cancelled", outcome=CANCELLED))
        names.add(CANCELLED)
    if d["start"] not in names:
        p.error(("start",), f"unknown state {d['start']}", suggest(d["start"], names))
    sla = None
    if "sla" in d:
        s = d["sla"]
        sla = WorkflowSla(duration(s.get("response")), duration(s.get("resolution")),
                          s.get("from_priority", False),
                          tuple(_action(p, a, ("sla", "on_warning", i))
                                for i, a in enumerate(s.get("on_warning", []))),
                          tuple(_action(p, a, ("sla", "on_breach", i))
                                for i, a in enumerate(s.get("on_breach", []))))
        if sla.from_priority and (sla.response or sla.resolution):
            p.error(("sla", "from_priority"), "give targets or from_priority, not both")
    wf = Workflow(id=d["id"], start=d["start"], states=tuple(states),
                  version=workflow_version(d), name=d.get("name", d["id"]),
                  description=d.get("description", ""), sla=sla, source=doc.path,
                  definition=MappingProxyType({"data": d}))
    _check_graph(p, wf)
    p.model = wf
    return p


def _state(p: Parsed, name: str, d: dict[str, Any], path: Path) -> State:
    kinds = [k for k in _KIND_KEYS if k in d]
    if len(kinds) > 1:
        p.error(path, f"state {name} is both {kinds[0]} and {kinds[1]}",
                "a state is exactly one of approval, approvals, task, tasks, decide, wait, end",
                at_key=True)
    kind = _KIND_KEYS[kinds[0]] if kinds else StateKind.ACTION
    if not kinds and "actions" not in d:
        p.error(path, f"state {name} does nothing",
                "give it approval, task, decide, wait or end, or actions with next", at_key=True)
    if name == CANCELLED and kind is not StateKind.END:
        p.error(path, "state cancelled is reserved for cancelled requests and must be an end state",
                at_key=True)
    actions = tuple(_action(p, a, (*path, "actions", i)) for i, a in enumerate(d.get("actions", [])))
    approvals: tuple[ApprovalSpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    if "approval" in d:
        approvals = (_approval(p, d["approval"], (*path, "approval"), d["approval"].get("name", name)),)
    elif "approvals" in d:
        approvals = tuple(_approval(p, a, (*path, "approvals", i), a.get("name", ""))
                          for i, a in enumerate(d["approvals"]))
        _names_required(p, d["approvals"], (*path, "approvals"), "approval")
    if "task" in d:
        tasks = (_task(p, d["task"], (*path, "task"), d["task"].get("name", name)),)
    elif "tasks" in d:
        tasks = tuple(_task(p, t, (*path, "tasks", i), t.get("name", ""))
                      for i, t in enumerate(d["tasks"]))
        _names_required(p, d["tasks"], (*path, "tasks"), "task")
        for i, t in enumerate(tasks):
            if t.outcomes != ("done",):
                p.error((*path, "tasks", i, "outcomes"), "parallel tasks end with done only",
                        "use a single task to route on outcomes")
    routes = tuple(Route(r["goto"], p.expression(r["when"], (*path, "decide", i, "when"))
                         if "when" in r else None) for i, r in enumerate(d.get("decide", [])))
    for i, r in enumerate(routes):
        last = i == len(routes) - 1
        if r.when is None and not last and "when" not in d["decide"][i]:
            p.error((*path, "decide", i), "only the last route may leave out when",
                    "routes after it could never be taken")
        if last and "when" in d["decide"][i]:
            p.error((*path, "decide", i, "when"), "the last route must have no when",
                    "it is the route taken when no condition holds")
    state = State(name=name, kind=kind, label=d.get("label", ""), approvals=approvals, tasks=tasks,
                  routes=routes, wait=duration(d.get("wait")), outcome=d.get("end"),
                  actions=actions, next=d.get("next"), on=MappingProxyType(dict(d.get("on", {}))),
                  review=d.get("review", False))
    if state.review and kind is not StateKind.TASK:
        p.error((*path, "review"), f"state {name} is a review but has no task",
                "mark the task state in which the change is reviewed")
    _check_exits(p, state, d, path)
    return state


def _names_required(p: Parsed, entries: list[dict[str, Any]], path: Path, what: str) -> None:
    names = [e.get("name") for e in entries]
    for i, n in enumerate(names):
        if not n:
            p.error((*path, i), f"parallel {what}s each need a name")
    p.duplicates([n for n in names if n], lambda i: (*path, i, "name"), f"{what} name")


def _check_exits(p: Parsed, s: State, d: dict[str, Any], path: Path) -> None:
    """`on` names exactly the state's triggers; `next` only where it is used."""
    wants_next = s.kind in (StateKind.ACTION, StateKind.WAIT)
    if wants_next and "next" not in d:
        p.error(path, f"state {s.name} needs next", "say where to go after it", at_key=True)
    if not wants_next and "next" in d:
        p.error((*path, "next"), f"next applies to actions and wait states, not {s.kind.value}",
                "use on for approvals and tasks")
    uses_on = s.kind in (StateKind.APPROVAL, StateKind.TASK)
    if not uses_on:
        if "on" in d:
            p.error((*path, "on"), f"on does not apply to {s.kind.value} states")
        return
    triggers = s.triggers()
    for trig in d.get("on", {}):
        if trig not in triggers:
            p.error((*path, "on", trig), f"{s.kind.value} state {s.name} has no outcome {trig}",
                    f"its outcomes: {', '.join(triggers)}", at_key=True)
    for trig in triggers:
        if trig not in d.get("on", {}):
            p.error((*path, "on") if "on" in d else path,
                    f"state {s.name} does not say where {trig} goes", f"add on: {{{trig}: STATE}}",
                    at_key=True)


def _approval(p: Parsed, d: dict[str, Any], path: Path, name: str) -> ApprovalSpec:
    raw = d["approvers"] if isinstance(d["approvers"], list) else [d["approvers"]]
    refs = []
    for i, text in enumerate(raw):
        where = (*path, "approvers", i) if isinstance(d["approvers"], list) else (*path, "approvers")
        ref = _approver(p, text, where)
        if ref:
            refs.append(ref)
    policy_raw = d.get("policy", "any")
    policy = Policy("quorum", policy_raw["quorum"]) if isinstance(policy_raw, dict) else \
        Policy(policy_raw)
    if "on_timeout" in d and "timeout" not in d:
        p.error((*path, "on_timeout"), "on_timeout needs a timeout", "add timeout: 3 business days")
    return ApprovalSpec(name, tuple(refs), policy, duration(d.get("timeout")),
                        d.get("on_timeout", "remind" if "timeout" in d else None))


def _approver(p: Parsed, text: str, path: Path) -> ApproverRef | None:
    m = PRINCIPAL.match(text)
    if m:
        p.ref(m.group(1), m.group(2), path)
        return ApproverRef(m.group(1), m.group(2))
    if text == "everyone":
        p.error(path, "everyone is not a person, group or role here",
                "name a person, group, role or an expression")
        return None
    expr = p.expression(text, path)
    return ApproverRef("expression", text, expr) if expr else None


def _assignee(p: Parsed, text: str, path: Path) -> ApproverRef | None:
    ref = _approver(p, text, path)
    if ref is not None and ref.kind in ("group", "role"):
        p.error(path, f"a task is assigned to one person, not {text}",
                "use person:ID or an expression naming a person; queue names the group")
        return None
    return ref


def _tier(p: Parsed, raw: str | dict[str, Any], path: Path) -> str | CategoryRoute:
    """A tier after the queue: a group id, or `{by_category: {category: group}, otherwise: group}`."""
    if isinstance(raw, str):
        p.ref("group", raw, path)
        return raw
    for category, group in raw["by_category"].items():
        p.ref("group", group, (*path, "by_category", category))
    p.ref("group", raw["otherwise"], (*path, "otherwise"))
    return CategoryRoute(tuple(raw["by_category"].items()), raw["otherwise"])


def _task(p: Parsed, d: dict[str, Any], path: Path, name: str) -> TaskSpec:
    p.ref("group", d["queue"], (*path, "queue"))
    tiers = tuple(_tier(p, t, (*path, "escalate_to", i)) for i, t in enumerate(d.get("escalate_to", [])))
    outcomes = tuple(d.get("outcomes", ["done"]))
    for i, o in enumerate(outcomes):
        if o in RESERVED_TRIGGERS:
            p.error((*path, "outcomes", i), f"{o} is a reserved trigger name", "pick another word")
    fields = tuple(parse_field(p, f, (*path, "form", i), roots=frozenset({"form"}))
                   for i, f in enumerate(d.get("form", [])))
    p.duplicates([f.name for f in fields], lambda i: (*path, "form", i, "name"), "field name")
    names = [f.name for f in fields]
    for i, f in enumerate(fields):
        for key in ("show_if", "required_if"):
            expr = getattr(f, key)
            for unknown in sorted(expr.fields() - set(names)) if expr else ():
                p.error((*path, "form", i, key), f"{key} names unknown field {unknown}",
                        suggest(unknown, names))
    return TaskSpec(
        name=name, queue=d["queue"],
        title=p.template(d["title"], (*path, "title")) if "title" in d else None,
        instructions=(p.template(d["instructions"], (*path, "instructions"))
                      if "instructions" in d else None),
        escalate_to=tiers,
        assignee=_assignee(p, d["assignee"], (*path, "assignee")) if "assignee" in d else None,
        sla=duration(d.get("sla")), outcomes=outcomes, fields=fields)


def _action(p: Parsed, d: dict[str, Any], path: Path) -> Action:
    (kind, raw), = d.items()
    where = (*path, kind)
    if kind == "notify":
        spec = {"to": raw} if isinstance(raw, str) else raw
        to = spec["to"]
        if to not in _RECIPIENTS:
            m = PRINCIPAL.match(to)
            if m and m.group(1) in ("person", "group"):
                p.ref(m.group(1), m.group(2), (*where, "to") if isinstance(raw, dict) else where)
            else:
                p.error((*where, "to") if isinstance(raw, dict) else where,
                        f"unknown recipient {to}",
                        f"use {', '.join(sorted(_RECIPIENTS))}, person:ID or group:ID")
        params: dict[str, Any] = {"to": to, "template": spec.get("template", "")}
        for key in ("subject", "message"):
            if key in spec:
                params[key] = p.template(spec[key], (*where, key))
        return Action("notify", MappingProxyType(params))
    if kind == "webhook":
        body = tuple((k, p.template(v, (*where, "body", k)) if isinstance(v, str) else v)
                     for k, v in raw.get("body", {}).items())
        return Action("webhook", MappingProxyType({
            "url": p.template(raw["url"], (*where, "url")), "secret": raw.get("secret", ""),
            "body": body}))
    if kind == "set":
        return Action("set", MappingProxyType({
            "field": raw["field"], "value": p.template(raw["value"], (*where, "value"))}))
    if kind in ("list_assets", "recover_assets"):
        params = {"person": p.template(raw["person"], (*where, "person"))}
        if kind == "list_assets":
            params["field"] = raw["field"]
        return Action(kind, MappingProxyType(params))
    if kind == "create_asset":
        p.ref("CI type", raw["type"], (*where, "type"))
        return Action("create_asset", MappingProxyType(
            {k: (p.template(v, (*where, k)) if k != "type" else v) for k, v in raw.items()}))
    return Action("escalate", MappingProxyType({"what": raw}))


def _check_graph(p: Parsed, wf: Workflow) -> None:
    names = set(wf.state_names)
    for s in wf.states:
        base: Path = ("states", s.name)
        for i, r in enumerate(s.routes):
            if r.goto not in names:
                p.error((*base, "decide", i, "goto"), f"unknown state {r.goto}", suggest(r.goto, names))
        if s.next is not None and s.next not in names:
            p.error((*base, "next"), f"unknown state {s.next}", suggest(s.next, names))
        for trig, dest in s.on.items():
            if dest not in names:
                p.error((*base, "on", trig), f"unknown state {dest}", suggest(dest, names))
    if wf.start not in names:
        return
    reachable = wf.reachable()
    finishing = wf.can_finish()
    for s in wf.states:
        if s.name == CANCELLED and s.name not in wf.definition["data"]["states"]:
            continue
        if s.name not in reachable and s.name != CANCELLED:
            p.error(("states", s.name), f"state {s.name} cannot be reached from {wf.start}",
                    "route to it from another state or remove it", at_key=True)
        elif s.name not in finishing:
            p.error(("states", s.name), f"no end state can be reached from state {s.name}",
                    "every path must lead to a state with end", at_key=True)
