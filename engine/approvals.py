"""Approvals: who approves (with segregation of duties) and when a policy is met."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from catalog.workflow import ApprovalSpec, ApproverRef, Policy
from engine import people
from engine.errors import Conflict
from engine.models import Approval, Request

#: decisions that still count towards a policy (delegated/escalated rows were replaced)
LIVE = ("pending", "approved", "rejected")


@dataclass(frozen=True, slots=True)
class Chosen:
    person_id: str
    source: str


def resolve(session: Session, spec: ApprovalSpec, context: Mapping[str, Any],
            functions: Mapping[str, Callable[..., Any]], excluded: Sequence[str]) -> list[Chosen]:
    """The people who must approve, never anyone in `excluded` (requester, requested-for).

    An excluded person named directly is replaced by their nearest manager who is not
    excluded; an excluded member of a group is simply left out. When nobody is left,
    the requester's manager chain decides, then the admins.
    """
    chosen: dict[str, Chosen] = {}

    def add(pid: str, source: str, climb: bool) -> None:
        # the chain above is read only when `pid` cannot approve
        candidates = itertools.chain([pid], people.chain_up(session, pid) if climb else ())
        for cand in candidates:
            if cand not in excluded and people.active_person(session, cand):
                chosen.setdefault(cand, Chosen(cand, source if cand == pid else
                                               f"{source} (next manager up)"))
                return

    for ref in spec.approvers:
        for kind, ident in _targets(session, ref, context, functions):
            if kind == "person":
                add(ident, str(ref), climb=True)
            elif kind == "group":
                for m in people.members(session, ident):
                    add(m, str(ref), climb=False)
            elif kind == "role":
                for m in people.holders(session, ident):
                    add(m, str(ref), climb=False)
    if not chosen and excluded:
        for pid in people.chain_up(session, excluded[0]):
            if pid not in excluded and people.active_person(session, pid):
                chosen[pid] = Chosen(pid, "requester's manager chain")
                break
    if not chosen:
        for pid in people.holders(session, people.ADMIN_ROLE):
            if pid not in excluded:
                chosen[pid] = Chosen(pid, "role:admin (no other approver)")
    if not chosen:
        raise Conflict(f"nobody can approve {spec.name}: every approver is the requester or inactive")
    return list(chosen.values())


def recipients(req: Request, approver_ids: Sequence[str], delegates: Sequence[str]) -> list[str]:
    """Who is told an approval waits: the approvers and whoever decides for them now
    (`delegates`: their standing delegations), but never a party to the request, who could
    not decide it."""
    parties = (req.requester_id, req.requested_for_id)
    return list(dict.fromkeys([*approver_ids, *(d for d in delegates if d not in parties)]))


def _targets(session: Session, ref: ApproverRef, context: Mapping[str, Any],
             functions: Mapping[str, Callable[..., Any]]) -> list[tuple[str, str]]:
    if ref.kind != "expression":
        return [(ref.kind, ref.value)]
    assert ref.expression is not None
    value = ref.expression.evaluate(context, functions)  # a failure fails the step opening it
    values = value if isinstance(value, list | tuple) else [value]
    out: list[tuple[str, str]] = []
    for v in values:
        if not isinstance(v, str) or not v:
            continue
        kind, _, ident = v.partition(":")
        if ident and kind in ("person", "group", "role"):
            out.append((kind, ident))
        elif people.person(session, v) is not None:
            out.append(("person", v))
        elif people.group_exists(session, v):
            out.append(("group", v))
    return out


def policy_text(policy: Policy, approvers: int) -> str:
    """Stored form of a policy; a quorum larger than the approvers left is capped."""
    if policy.kind == "quorum":
        return f"quorum:{min(policy.quorum, approvers)}"
    return policy.kind


def outcome(rows: Sequence[Approval]) -> str | None:
    """`approved`, `rejected`, or None while undecided, for the rows of one approval."""
    live = [r for r in rows if r.decision in LIVE]
    approved = sum(r.decision == "approved" for r in live)
    rejected = sum(r.decision == "rejected" for r in live)
    pending = sum(r.decision == "pending" for r in live)
    policy = live[0].policy if live else "any"
    if policy == "any":
        if approved:
            return "approved"
        return "rejected" if rejected else None
    if policy == "all":
        if rejected:
            return "rejected"
        return "approved" if pending == 0 and approved else None
    need = int(policy.split(":", 1)[1])
    if approved >= need:
        return "approved"
    return "rejected" if approved + pending < need else None


def state_outcome(outcomes: Sequence[str | None]) -> str | None:
    """Parallel approvals: all must approve; any rejection rejects."""
    if any(o == "rejected" for o in outcomes):
        return "rejected"
    if outcomes and all(o == "approved" for o in outcomes):
        return "approved"
    return None
