"""Moving open requests from the workflow version they are pinned to onto another one.

The rule for what a request is waiting on (documented in docs/changing-the-catalog.md):
- its state keeps its name and kind in the target, and the target state declares every
  approval (or task) the request has open by name: the approvals and tasks are kept, with
  their due dates and timers; nothing else changes but the version;
- otherwise (a mapped state, or the state changed kind or lost an approval or task the
  request has open): pending approvals are withdrawn, open tasks cancelled, and the target
  state is entered fresh (its actions, approvals and tasks, as the workflow would).
The request's SLA clocks belong to the request, not to the version: they are kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.catalog import Catalog
from catalog.errors import DeskflowError, UsageError, suggest
from catalog.workflow import StateKind, Workflow
from engine import runtime
from engine.errors import NotFound
from engine.models import Approval, Person, Request, Task, WorkflowVersion
from engine.unit import UnitOfWork, UnitRunner, audit, touch
from engine.versions import store_version, workflow_of

CURRENT = "current"


class MigrationRefused(DeskflowError):
    """The dry run found requests that cannot move; nothing was changed."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Move:
    """What migrating one open request would do."""

    request_id: int
    number: str
    from_version: str
    to_version: str
    from_state: str
    to_state: str
    approvals: int          # pending approvals of the current visit
    tasks: int              # open tasks of the current visit
    kept: bool              # approvals and tasks kept (True), or withdrawn/cancelled and re-entered
    problems: tuple[str, ...]

    @property
    def work(self) -> str:
        """What happens to the approvals and tasks, in words."""
        if self.kept:
            parts = [f"{n} approval{'s' * (n != 1)}" for n in [self.approvals] if n]
            parts += [f"{n} task{'s' * (n != 1)}" for n in [self.tasks] if n]
            return ("keeps " + " and ".join(parts)) if parts else "nothing open"
        gone = [f"{n} approval{'s' * (n != 1)} withdrawn" for n in [self.approvals] if n]
        gone += [f"{n} task{'s' * (n != 1)} cancelled" for n in [self.tasks] if n]
        return ", ".join(gone + [f"enters {self.to_state} fresh"])


@dataclass(frozen=True, slots=True)
class Plan:
    workflow_id: str
    target: str             # the version hash
    moves: tuple[Move, ...]

    @property
    def problems(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.problems)

    def summary(self) -> str:
        bad = len(self.problems)
        n = len(self.moves)
        fresh = sum(1 for m in self.moves if not m.kept and not m.problems)
        return (f"{n} open request{'s' * (n != 1)} to move to {self.target[:8]}: "
                f"{n - bad} can move ({fresh} re-entering their state), {bad} with problems")


def parse_map(pairs: Sequence[str]) -> dict[str, str]:
    """`OLD=NEW` pairs as a dict; a malformed or repeated one is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, eq, new = pair.partition("=")
        old, new = old.strip(), new.strip()
        if not eq or not old or not new:
            raise UsageError(f"--map {pair}: give OLD=NEW (a state of the old version = a state "
                             "of the target)")
        if old in out:
            raise UsageError(f"--map {pair}: {old} is mapped twice")
        out[old] = new
    return out


def resolve_target(session: Session, catalog: Catalog, workflow_id: str, version: str,
                   now: datetime) -> WorkflowVersion:
    """The stored version `version` names (a hash or its prefix, or `current`)."""
    wf = catalog.workflow(workflow_id)
    stored = list(session.scalars(select(WorkflowVersion)
                                  .where(WorkflowVersion.workflow_id == workflow_id)))
    if wf is None and not stored:
        raise UsageError(f"{workflow_id}: no such workflow"
                         f" ({suggest(workflow_id, [w.id for w in catalog.workflows])})")
    found = [r for r in stored if r.version.startswith(version)] if version else []
    if wf is not None and version and wf.version.startswith(version) and not found:
        version = CURRENT  # the loaded version, named by its hash before it is stored
    if version == CURRENT:
        if wf is None:
            raise UsageError(f"{workflow_id}: not in the loaded catalog; give --to VERSION")
        return store_version(session, wf, now)
    if len(found) != 1:
        known = ", ".join(r.version[:8] for r in stored) or "none stored"
        what = "is ambiguous" if found else "no such version"
        raise UsageError(f"--to {version}: {what} of workflow {workflow_id} "
                         f"(known: {known}; or current)")
    return found[0]


def plan_migration(session: Session, workflow_id: str, target: WorkflowVersion,
                   mapping: Mapping[str, str]) -> Plan:
    """What moving every open request of `workflow_id` onto `target` would do; writes nothing."""
    rows = session.execute(
        select(Request.id, Request.number, Request.state, Request.answers, Request.visit,
               Request.attention_at, WorkflowVersion.id)
        .join(WorkflowVersion, Request.workflow_version_id == WorkflowVersion.id)
        .where(WorkflowVersion.workflow_id == workflow_id, Request.status == "open",
               WorkflowVersion.id != target.id,
               Request.import_source.is_(None))  # imported history has no live workflow
        .order_by(Request.id)).all()
    new = workflow_of(target)
    if not rows:
        return Plan(workflow_id, target.version, ())
    sources = {vid: workflow_of(session.get_one(WorkflowVersion, vid))
               for vid in {r[6] for r in rows}}
    _check_map(mapping, list(sources.values()), new)
    pending = _open_work(session, select(Approval.request_id, Approval.visit, Approval.name)
                         .join(Request, Approval.request_id == Request.id)
                         .join(WorkflowVersion, Request.workflow_version_id == WorkflowVersion.id)
                         .where(Approval.decision == "pending",
                                WorkflowVersion.workflow_id == workflow_id,
                                Request.status == "open"))
    tasks = _open_work(session, select(Task.request_id, Task.visit, Task.name)
                       .join(Request, Task.request_id == Request.id)
                       .join(WorkflowVersion, Request.workflow_version_id == WorkflowVersion.id)
                       .where(Task.status == "open", WorkflowVersion.workflow_id == workflow_id,
                              Request.status == "open"))
    reads = {wf.version: _form_reads(wf) for wf in [new, *sources.values()]}
    moves = []
    for rid, number, state, answers, visit, attention_at, vid in rows:
        old = sources[vid]
        approvals = pending.get((rid, visit), Counter())
        open_tasks = tasks.get((rid, visit), Counter())
        moves.append(_move(rid, number or str(rid), state, answers or {}, attention_at is not None,
                           old, new, mapping, approvals, open_tasks, reads))
    return Plan(workflow_id, target.version, tuple(moves))


def _check_map(mapping: Mapping[str, str], sources: list[Workflow], new: Workflow) -> None:
    old_states = {s for wf in sources for s in wf.state_names}
    for old, target in mapping.items():
        if old not in old_states:
            raise UsageError(f"--map {old}={target}: {old} is not a state of the versions moved "
                             f"from ({suggest(old, old_states)})")
        if target not in new.state_names:
            raise UsageError(f"--map {old}={target}: {target} is not a state of the target "
                             f"version ({suggest(target, new.state_names)})")


def _open_work(session: Session, query: object) -> dict[tuple[int, int], Counter[str]]:
    out: dict[tuple[int, int], Counter[str]] = {}
    for rid, visit, name in session.execute(query):  # type: ignore[call-overload]
        out.setdefault((rid, visit), Counter())[name] += 1
    return out


def _form_reads(wf: Workflow) -> frozenset[str]:
    return frozenset(name for expr in wf.expressions() for name in expr.fields())


def _move(rid: int, number: str, state: str, answers: Mapping[str, object], halted: bool,
          old: Workflow, new: Workflow, mapping: Mapping[str, str], approvals: Counter[str],
          tasks: Counter[str], reads: Mapping[str, frozenset[str]]) -> Move:
    problems = []
    to_state = mapping.get(state, state)
    target = new.state(to_state)
    before = old.state(state)
    kept = False
    if halted:
        problems.append("needs attention: retry or route it first")
    if target is None:
        problems.append(f"state {state} is not in the target version "
                        f"(map it: --map {state}=STATE)")
    elif target.is_end:
        problems.append(f"state {to_state} ends the request in the target version; "
                        "cancel it instead")
    elif to_state == state and before is not None and before.kind is target.kind:
        have_a = {a.name for a in target.approvals}
        have_t = {t.name for t in target.tasks}
        kept = target.kind not in (StateKind.APPROVAL, StateKind.TASK) or (
            set(approvals) <= have_a and set(tasks) <= have_t)
    missing = sorted(n for n in reads[new.version] - reads[old.version]
                     if answers.get(n) in (None, "", []))
    if missing:
        problems.append("the target version reads answers this request lacks: "
                        + ", ".join(f"form.{n}" for n in missing))
    return Move(rid, number, old.version, new.version, state, to_state,
                sum(approvals.values()), sum(tasks.values()), kept, tuple(problems))


def migrate(runner: UnitRunner, plan: Plan, actor: str, skip_problems: bool = False,
            on_moved: Callable[[Move], None] | None = None) -> list[Move]:
    """Move each request of `plan` in its own transaction; return those moved.

    Refused up front (nothing changed) when some request cannot move, unless
    `skip_problems`: then only the others move. A request already on the target is skipped,
    so a run that was interrupted finishes when run again.
    """
    if plan.problems and not skip_problems:
        raise MigrationRefused(
            f"{len(plan.problems)} request{'s' * (len(plan.problems) != 1)} cannot move; "
            "nothing was changed (fix them, map their states, or give --skip-problems):\n"
            + "\n".join(f"  {m.number}: {'; '.join(m.problems)}" for m in plan.problems))
    moved, changed = [], []
    for move in plan.moves:
        if move.problems:
            continue
        outcome = runner(actor, lambda unit, m=move: _migrate_one(unit, plan, m))  # type: ignore[misc]
        if outcome == MOVED:
            moved.append(move)
            if on_moved is not None:
                on_moved(move)
        elif outcome == CHANGED:
            changed.append(move.number)
    if changed:
        raise MigrationRefused(
            f"{len(moved)} migrated; {len(changed)} changed after the dry run and did not move "
            f"(run it again to see what now happens to them): {', '.join(changed)}")
    return moved


def check_actor(session: Session, actor: str) -> None:
    if session.get(Person, actor) is None:
        raise UsageError(f"--as {actor}: no such person")


MOVED, ALREADY, CHANGED = "moved", "already", "changed"


def _migrate_one(unit: UnitOfWork, plan: Plan, move: Move) -> str:
    s = unit.session
    req = s.get(Request, move.request_id)
    if req is None:
        raise NotFound(f"{move.number}: no such request")
    target = s.scalar(select(WorkflowVersion).where(
        WorkflowVersion.workflow_id == plan.workflow_id, WorkflowVersion.version == plan.target))
    assert target is not None
    if req.workflow_version_id == target.id:
        return ALREADY  # moved by an earlier run
    if req.status != "open" or req.state != move.from_state \
            or req.workflow_version.version != move.from_version:
        return CHANGED  # it moved on since the plan: the next run plans it again
    if not move.kept:
        runtime.close_visit(unit, req)  # with the old version: what it has open there
    audit(unit, req, "migrated", move.from_state, move.to_state,
          from_version=move.from_version, to_version=move.to_version,
          approvals=move.approvals, tasks=move.tasks, kept=move.kept)
    req.workflow_version_id = target.id
    req.workflow_version = target
    req.state = move.to_state
    touch(unit, req)
    if not move.kept:
        runtime.start(unit, req, workflow_of(target))
    return MOVED

