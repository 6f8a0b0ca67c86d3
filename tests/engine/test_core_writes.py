"""The rows a submit and a decision write by Core (not by the ORM's flush) are the rows the
objects they return hold, and a decision's UPDATEs stay checked against the version read."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from engine.errors import Conflict
from engine.models import Approval, RecordFact, Request


def stored(sessions, model, key):
    """The stored row's columns, read in a session of its own."""
    with sessions() as s:
        table = model.__table__
        return dict(s.execute(select(table).where(table.c.id == key)).one()._mapping)


def test_a_submitted_request_holds_its_stored_row(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    row = stored(sessions, Request, req.id)
    # every column is loaded: the session is closed, an unloaded one could not be read now
    assert {c: getattr(req, c) for c in row} == row
    assert (row["number"], row["state"], row["lock_version"]) == (
        f"REQ-{req.id:06d}", "manager_approval", 1)
    with sessions() as s:
        assert s.get(RecordFact, req.id).state == "manager_approval"


def test_a_decision_returns_its_stored_versions(service, sessions, answers):
    req = service.submit("new-laptop", "alice", {**answers["new-laptop"], "model": "pro16",
                                                   "justification": "Video editing for the launch."})
    with sessions() as s:
        appr = s.scalar(select(Approval).where(Approval.request_id == req.id))
    decided = service.approve(appr.id, appr.approver_id, seen_version=req.lock_version)
    row = stored(sessions, Approval, appr.id)
    assert (decided.decision, decided.lock_version) == (row["decision"], row["lock_version"])
    assert (row["decision"], row["decided_by_id"], row["lock_version"]) == (
        "approved", appr.approver_id, 2)
    moved = stored(sessions, Request, req.id)
    assert (moved["state"], moved["visit"], moved["lock_version"]) == ("director_approval", 3, 2)
    with sessions() as s:
        assert s.get(RecordFact, req.id).state == "director_approval"
    with pytest.raises(Conflict) as info:  # the page loaded before the decision is stale now
        service.approve(appr.id, appr.approver_id, seen_version=req.lock_version)
    assert "changed since you loaded it" in str(info.value)


def test_a_flush_listener_of_its_own_gets_the_orms_flush(service, sessions, answers):
    req = service.submit("new-laptop", "alice", {**answers["new-laptop"], "model": "pro16",
                                                   "justification": "Video editing for the launch."})
    with sessions() as s:
        appr = s.scalar(select(Approval).where(Approval.request_id == req.id))
    flushed: list[str] = []

    def listen(session, _flush):
        flushed.extend(sorted(type(o).__name__ for o in session.dirty))

    event.listen(Session, "after_flush", listen)
    try:
        service.approve(appr.id, appr.approver_id)
    finally:
        event.remove(Session, "after_flush", listen)
    assert flushed == ["Approval", "Request"]
    assert stored(sessions, Request, req.id)["state"] == "director_approval"
