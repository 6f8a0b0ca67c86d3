"""Requests finish on the workflow version they started on, whatever the YAML says now."""

from __future__ import annotations

import shutil

from sqlalchemy import func, select

from catalog.loader import load_catalog
from engine.models import Approval, Request, Task, WorkflowVersion
from engine.service import RequestService


def test_a_yaml_change_mid_flight_leaves_running_requests_on_their_version(
        sessions, acme, clock, answers, tmp_path, service):
    old = [service.submit("new-laptop", "alice", answers["new-laptop"]) for _ in range(3)]
    copy = tmp_path / "acme"
    shutil.copytree(acme.root, copy)
    path = copy / "workflows" / "laptop-request.yaml"
    path.write_text(path.read_text().replace("prepare", "build").replace(
        "Being prepared by IT Hardware", "Being built"))
    v2 = load_catalog(copy)
    assert v2.ok and v2.workflow("laptop-request").version != acme.workflow("laptop-request").version
    current = {"catalog": v2}
    restarted = RequestService(sessions, lambda: current["catalog"], clock)
    new = restarted.submit("new-laptop", "alice", answers["new-laptop"])
    for req in [*old, new]:
        with sessions() as s:
            appr = s.scalar(select(Approval).join(Request).where(Request.number == req.number))
        restarted.approve(appr.id, "bob")
    with sessions() as s:
        states = dict(s.execute(select(Request.number, Request.state)).all())
        versions = s.scalar(select(func.count()).select_from(WorkflowVersion))
    assert [states[r.number] for r in old] == ["prepare"] * 3
    assert states[new.number] == "build"
    assert versions == 2
    for req in old:
        with sessions() as s:
            task = s.scalar(select(Task).join(Request).where(Request.number == req.number))
        restarted.complete_task(task.id, "frank", answers={"serial_number": "S1"})
    with sessions() as s:
        assert {s.scalar(select(Request.state).where(Request.number == r.number)) for r in old} == {
            "delivered"}


def test_the_stored_definition_is_what_runs(sessions, service, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    with sessions() as s:
        row = s.scalar(select(WorkflowVersion))
        pinned = s.scalar(select(Request).where(Request.number == req.number))
    assert pinned.workflow_version_id == row.id
    assert row.workflow_id == "laptop-request"
    assert set(row.definition["states"]) >= {"manager_approval", "prepare", "delivered"}
