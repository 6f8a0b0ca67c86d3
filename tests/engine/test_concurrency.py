"""Many people acting on the same approval or task at once: one transition, clean conflicts."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict, NotAllowed, Unavailable
from engine.models import Approval, AuditEvent, Request, Task


def race(n, action):
    """Start `n` threads on `action(i)` at the same moment; return their outcomes."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i):
        barrier.wait()
        try:
            action(i)
            results[i] = "ok"
        except (Conflict, Unavailable, NotAllowed) as exc:
            results[i] = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - reported below, the test fails on it
            results[i] = f"unexpected {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return Counter(results)


def transitions(sessions, number):
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.request_id == req.id, AuditEvent.event == "transition"))


def test_many_approve_the_same_approval_once(service, sessions, answers, db_url):
    threads = 50 if db_url.startswith("postgresql") else 20
    req = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    with sessions() as s:
        appr = s.scalar(select(Approval).where(Approval.request_id == req.id))
    outcomes = race(threads, lambda i: service.approve(appr.id, appr.approver_id, f"yes {i}"))
    assert outcomes == Counter({"ok": 1, "Conflict": threads - 1})
    assert transitions(sessions, req.number) == 1
    with sessions() as s:
        decided = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == "approval_approved"))
        tasks = s.scalar(select(func.count()).select_from(Task))
    assert (decided, tasks) == (1, 1)


@pytest.mark.parametrize("rounds", [10])
def test_approve_and_cancel_race_has_one_winner(service, sessions, answers, rounds):
    for _ in range(rounds):
        req = service.submit("mobile-phone", "alice", answers["mobile-phone"])
        with sessions() as s:
            appr = s.scalar(select(Approval).where(Approval.request_id == req.id))

        def act(i, appr=appr, number=req.number, seen=req.lock_version):
            # both people act on the page as they loaded it
            if i == 0:
                service.approve(appr.id, appr.approver_id, seen_version=seen)
            else:
                service.cancel(number, "alice", seen_version=seen)

        outcomes = race(2, act)
        assert outcomes == Counter({"ok": 1, "Conflict": 1})
        with sessions() as s:
            final = s.scalar(select(Request).where(Request.number == req.number))
        assert final.state in ("deliver", "cancelled")
        assert transitions(sessions, req.number) == 1


def test_quorum_of_two_advances_once_when_three_click_together(service, sessions, answers, acme):
    for _ in range(5):
        req = service.submit("normal-change", "frank", answers["normal-change"])
        with sessions() as s:
            rows = list(s.scalars(select(Approval).where(Approval.request_id == req.id,
                                                         Approval.decision == "pending")))
        assert len(rows) >= 3
        outcomes = race(3, lambda i, rows=rows: service.approve(rows[i].id, rows[i].approver_id))
        assert outcomes["ok"] >= 2 and set(outcomes) <= {"ok", "Conflict"}
        with sessions() as s:
            final = s.scalar(select(Request).where(Request.number == req.number))
        assert final.state == "implement"
        assert transitions(sessions, req.number) == 2  # cab_approval -> check_risk -> implement


def test_two_agents_claiming_one_task(service, sessions, answers):
    req = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    with sessions() as s:
        appr = s.scalar(select(Approval).where(Approval.request_id == req.id))
    service.approve(appr.id, appr.approver_id)
    with sessions() as s:
        task = s.scalar(select(Task).where(Task.request_id == req.id))
    outcomes = race(2, lambda i: service.claim_task(task.id, ["frank", "heidi"][i]))
    # the later claim sees the task taken: a clean conflict, not a silent takeover
    assert outcomes == Counter({"ok": 1, "Conflict": 1})
