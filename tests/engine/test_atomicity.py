"""One operation, one transaction: a failure at any point persists nothing of it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

import engine.runtime as runtime
import engine.unit as unit
from engine.models import Approval, AuditEvent, OutboxMessage, Request, Task


class Boom(RuntimeError):
    pass


def snapshot(sessions, number):
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return (req.state, req.lock_version,
                s.scalar(select(func.count()).select_from(AuditEvent)),
                s.scalar(select(func.count()).select_from(OutboxMessage)),
                s.scalar(select(func.count()).select_from(Task)),
                tuple(a.decision for a in s.scalars(select(Approval).order_by(Approval.id))))


def fail_in_enter(monkeypatch):
    real = runtime.enter

    def enter(step, req, wf):
        real(step, req, wf)
        raise Boom("after the state update")

    monkeypatch.setattr(runtime, "enter", enter)


def fail_in_audit(monkeypatch):
    real = unit.UnitOfWork.finish

    def finish(self):
        self.audit_rows.append({"request": None, "actor_id": None, "event": "x" * 500,
                                "from_state": None, "to_state": None, "detail": {}, "at": None})
        real(self)

    monkeypatch.setattr(unit.UnitOfWork, "finish", finish)


def fail_in_outbox(monkeypatch):
    def insert_rows(session, rows):
        raise Boom("while writing the outbox")

    monkeypatch.setattr(unit, "insert_rows", insert_rows)


@pytest.mark.parametrize("failure", [fail_in_enter, fail_in_audit, fail_in_outbox])
def test_a_failed_approval_leaves_no_trace(service, sessions, answers, monkeypatch, failure):
    req = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    with sessions() as s:
        appr = s.scalar(select(Approval))
    before = snapshot(sessions, req.number)
    failure(monkeypatch)
    with pytest.raises(Exception):  # noqa: B017 - any failure, as long as nothing is kept
        service.approve(appr.id, "bob")
    monkeypatch.undo()
    assert snapshot(sessions, req.number) == before
    service.approve(appr.id, "bob")  # and the same action then succeeds in full
    assert snapshot(sessions, req.number)[0] == "deliver"
