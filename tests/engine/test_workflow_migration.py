"""`deskflow migrate`: open requests move from their pinned workflow version onto another."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

import engine.workflow_migration as workflow_migration
from catalog.loader import load_catalog
from engine.models import Approval, AuditEvent, Base, Request, Task, Timer, WorkflowVersion
from web.cli import main

WF = "workflows/identity-request.yaml"


def changed(acme, tmp_path, edit):
    """A copy of acme whose identity-request workflow `edit` rewrote."""
    new = tmp_path / "new"
    # without acme's scenario tests: they follow acme's workflows, not this edit
    shutil.copytree(acme.root, new, ignore=shutil.ignore_patterns("tests"))
    path = new / WF
    path.write_text(edit(path.read_text()))
    assert load_catalog(new).ok
    return new


def relabelled(text):
    return text.replace("label: Waiting for your manager", "label: With your manager")


def renamed(text):
    return text.replace("manager_approval", "manager_ok")


def reads_supplier_company(text):
    return text.replace("start: manager_approval", "start: triage").replace(
        "states:\n", "states:\n  triage:\n    decide:\n      - {when: form.supplier_company == 'x', "
        "goto: setup}\n      - {goto: manager_approval}\n\n", 1)


@pytest.fixture
def vpn(service, answers):
    return [service.submit("vpn-access", "alice", answers["vpn-access"]).number for _ in range(3)]


def migrate(runner, db_url, catalog, *args):
    return runner.invoke(main, ["migrate", "identity-request", "--db", db_url,
                                "--catalog", str(catalog), *args])


def snapshot(sessions):
    with sessions() as s:
        counts = {t.name: s.scalar(select(func.count()).select_from(t))
                  for t in Base.metadata.sorted_tables}
        rows = [(r.number, r.state, r.workflow_version_id, r.visit, r.lock_version)
                for r in s.scalars(select(Request).order_by(Request.id))]
    return counts, rows


def test_a_dry_run_keeps_approvals_when_the_state_stays_and_changes_nothing(
        runner, acme, tmp_path, db_url, sessions, vpn):
    new = changed(acme, tmp_path, relabelled)
    before = snapshot(sessions)
    result = migrate(runner, db_url, new, "--to", "current", "--dry-run")
    old, target = acme.workflow("identity-request").version, load_catalog(new).workflow(
        "identity-request").version
    assert (result.exit_code, result.output.splitlines()) == (0, [
        *(f"{n}: {old[:8]} → {target[:8]}, state manager_approval → manager_approval, "
          "keeps 1 approval" for n in vpn),
        f"3 open requests to move to {target[:8]}: 3 can move (0 re-entering their state), "
        "0 with problems"])
    assert snapshot(sessions) == before  # `current` was not even stored


def test_a_dry_run_lists_unmapped_states_and_the_real_run_refuses_them(
        runner, acme, tmp_path, db_url, sessions, vpn):
    new = changed(acme, tmp_path, renamed)
    before = snapshot(sessions)
    result = migrate(runner, db_url, new, "--to", "current", "--dry-run")
    assert result.exit_code == 1
    assert result.output.splitlines()[0].endswith(
        "state manager_approval → manager_approval, 1 approval withdrawn, enters manager_approval "
        "fresh; PROBLEM: state manager_approval is not in the target version "
        "(map it: --map manager_approval=STATE)")
    assert result.output.splitlines()[-1].endswith("0 can move (0 re-entering their state), "
                                                   "3 with problems")
    result = migrate(runner, db_url, new, "--to", "current", "--as", "oscar")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "deskflow: 3 requests cannot move; nothing was changed (fix them, map their states, "
        "or give --skip-problems):",
        f"  {vpn[0]}: state manager_approval is not in the target version "
        "(map it: --map manager_approval=STATE)"]
    counts, rows = snapshot(sessions)
    assert rows == before[1]
    assert counts["workflow_versions"] == before[0]["workflow_versions"] + 1  # target stored


def test_a_mapped_state_withdraws_approvals_and_enters_the_target_fresh(
        runner, acme, tmp_path, db_url, sessions, vpn):
    new = changed(acme, tmp_path, renamed)
    args = ["--to", "current", "--map", "manager_approval=manager_ok"]
    dry = migrate(runner, db_url, new, *args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[0].endswith(
        "state manager_approval → manager_ok, 1 approval withdrawn, enters manager_ok fresh")
    result = migrate(runner, db_url, new, *args, "--as", "oscar")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-4:] == [*(f"migrated {n}" for n in vpn),
                                               "3 migrated, 0 not migrated"]
    target = load_catalog(new).workflow("identity-request").version
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == vpn[0]))
        assert (req.state, req.workflow_version.version, req.visit) == ("manager_ok", target, 2)
        decisions = sorted((a.state, a.decision) for a in s.scalars(
            select(Approval).where(Approval.request_id == req.id)))
        assert decisions == [("manager_approval", "closed"), ("manager_ok", "pending")]
        event = s.scalar(select(AuditEvent).where(AuditEvent.request_id == req.id,
                                                  AuditEvent.event == "migrated"))
        assert (event.actor_id, event.from_state, event.to_state) == (
            "oscar", "manager_approval", "manager_ok")
        assert event.detail["from_version"] == acme.workflow("identity-request").version
        assert event.detail["to_version"] == target
        assert s.scalar(select(func.count()).select_from(Timer).where(
            Timer.request_id == req.id, Timer.kind == "approval_timeout",
            Timer.status == "pending")) == 2  # the old visit's cancels itself when due
    again = migrate(runner, db_url, new, *args, "--as", "oscar")  # run again: done already
    assert (again.exit_code, again.output.strip()) == (
        0, f"identity-request: nothing to migrate (no open request is on another "
        f"version than {target[:8]})")


def test_kept_approvals_keep_their_due_dates_and_timers(runner, acme, tmp_path, db_url, sessions,
                                                        vpn):
    new = changed(acme, tmp_path, relabelled)
    with sessions() as s:
        dues = sorted((a.request_id, a.due_at) for a in s.scalars(select(Approval)))
        timers = s.scalar(select(func.count()).select_from(Timer).where(Timer.status == "pending"))
    result = migrate(runner, db_url, new, "--to", "current", "--as", "oscar")
    assert result.exit_code == 0, result.output
    with sessions() as s:
        assert sorted((a.request_id, a.due_at) for a in s.scalars(select(Approval))) == dues
        assert {a.decision for a in s.scalars(select(Approval))} == {"pending"}
        assert s.scalar(select(func.count()).select_from(Timer).where(
            Timer.status == "pending")) == timers
        assert {r.state for r in s.scalars(select(Request))} == {"manager_approval"}


def test_answers_the_target_reads_and_a_request_lacks_are_listed(
        runner, acme, tmp_path, db_url, sessions, vpn):
    new = changed(acme, tmp_path, reads_supplier_company)
    result = migrate(runner, db_url, new, "--to", "current", "--dry-run")
    assert result.exit_code == 1
    assert result.output.splitlines()[0].endswith(
        "keeps 1 approval; PROBLEM: the target version reads answers this request lacks: "
        "form.supplier_company")


def approved(service, sessions, numbers):
    """Approve each request's pending approval: it is then in setup with an open task."""
    for n in numbers:
        with sessions() as s:
            a = s.scalar(select(Approval).join(Request).where(Request.number == n,
                                                              Approval.decision == "pending"))
        service.approve(a.id, a.approver_id)


def test_open_tasks_are_kept_when_their_state_and_task_stay(runner, acme, tmp_path, db_url,
                                                            sessions, service, vpn):
    approved(service, sessions, vpn[:1])
    new = changed(acme, tmp_path, lambda t: t.replace("Being set up by IAM", "IAM sets it up"))
    result = migrate(runner, db_url, new, "--to", "current", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith("state setup → setup, keeps 1 task")
    with sessions() as s:
        due = s.scalar(select(Task.due_at))
    assert migrate(runner, db_url, new, "--to", "current", "--as", "oscar").exit_code == 0
    with sessions() as s:
        assert [(t.status, t.due_at) for t in s.scalars(select(Task))] == [("open", due)]


def test_a_state_that_changed_kind_is_entered_fresh(runner, acme, tmp_path, db_url, sessions,
                                                    service, vpn):
    approved(service, sessions, vpn[:1])

    def setup_is_an_approval(text):
        start, end = text.index("    task:\n"), text.index("    on: {done: done}")
        return (text[:start] + "    approval:\n      approvers: requester.manager\n"
                "    on: {approved: done, rejected: rejected}" + text[end + len("    on: {done: done}"):])

    new = changed(acme, tmp_path, setup_is_an_approval)
    result = migrate(runner, db_url, new, "--to", "current", "--dry-run")
    assert result.output.splitlines()[0].endswith(
        "state setup → setup, 1 task cancelled, enters setup fresh")
    assert result.output.splitlines()[1].endswith(
        "state manager_approval → manager_approval, keeps 1 approval")
    assert migrate(runner, db_url, new, "--to", "current", "--as", "oscar").exit_code == 0
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == vpn[0]))
        assert [t.status for t in s.scalars(select(Task))] == ["cancelled"]
        assert s.scalar(select(Approval.decision).where(Approval.request_id == req.id,
                                                        Approval.state == "setup")) == "pending"


def test_a_state_mapped_to_an_end_state_is_a_problem(runner, acme, tmp_path, db_url, vpn):
    new = changed(acme, tmp_path, renamed)
    result = migrate(runner, db_url, new, "--to", "current", "--map", "manager_approval=done",
                     "--dry-run")
    assert result.exit_code == 1
    assert result.output.splitlines()[0].endswith(
        "PROBLEM: state done ends the request in the target version; cancel it instead")


def test_skip_problems_moves_the_others_and_exits_1(runner, acme, tmp_path, db_url, sessions,
                                                    service, vpn):
    new = changed(acme, tmp_path, relabelled)
    with sessions.begin() as s:  # a request halted on a failed step cannot move
        s.scalar(select(Request).where(Request.number == vpn[1])).attention_at = service.clock()
    result = migrate(runner, db_url, new, "--to", "current", "--as", "oscar", "--skip-problems")
    assert result.exit_code == 1
    assert result.output.splitlines()[-3:] == [f"migrated {vpn[0]}", f"migrated {vpn[2]}",
                                               "2 migrated, 1 not migrated"]
    assert f"{vpn[1]}: " in result.output and "PROBLEM: needs attention: retry or route it first" \
        in result.output


def test_an_interrupted_run_finishes_when_run_again(runner, acme, tmp_path, db_url, sessions,
                                                    vpn, monkeypatch):
    new = changed(acme, tmp_path, renamed)
    args = ["--to", "current", "--map", "manager_approval=manager_ok", "--as", "oscar"]
    real = workflow_migration.runtime.start
    calls = []

    def crash_on_second(unit, req, wf):
        calls.append(req.number)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        real(unit, req, wf)

    monkeypatch.setattr(workflow_migration.runtime, "start", crash_on_second)
    result = migrate(runner, db_url, new, *args)
    assert (result.exit_code, result.stderr.strip()) == (
        1, "deskflow: internal error: RuntimeError: power cut")
    with sessions() as s:
        assert [r.state for r in s.scalars(select(Request).order_by(Request.id))] == [
            "manager_ok", "manager_approval", "manager_approval"]
    monkeypatch.setattr(workflow_migration.runtime, "start", real)
    result = migrate(runner, db_url, new, *args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-3:] == [f"migrated {vpn[1]}", f"migrated {vpn[2]}",
                                               "2 migrated, 0 not migrated"]
    with sessions() as s:
        assert [r.state for r in s.scalars(select(Request).order_by(Request.id))] == [
            "manager_ok"] * 3
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == "migrated")) == 3
        assert s.scalar(select(func.count()).select_from(Task)) == 0


def test_moving_back_by_a_version_prefix(runner, acme, tmp_path, db_url, sessions, vpn):
    new = changed(acme, tmp_path, relabelled)
    assert migrate(runner, db_url, new, "--to", "current", "--as", "oscar").exit_code == 0
    old = acme.workflow("identity-request").version
    result = migrate(runner, db_url, new, "--to", old[:8], "--as", "oscar")
    assert result.exit_code == 0, result.output
    with sessions() as s:
        assert {r.workflow_version.version for r in s.scalars(select(Request))} == {old}


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "current", "--map", "manager_approval"],
     "--map manager_approval: give OLD=NEW (a state of the old version = a state of the target)"),
    (["--to", "current", "--map", "nope=setup"],
     "--map nope=setup: nope is not a state of the versions moved from"),
    (["--to", "current", "--map", "manager_approval=nope"],
     "--map manager_approval=nope: nope is not a state of the target version"),
    (["--to", "0123abcd"], "--to 0123abcd: no such version of workflow identity-request"),
    (["--to", "current"], "give --as PERSON: who migrates (named on each request's timeline)"),
    (["--to", "current", "--as", "nobody"], "--as nobody: no such person"),
])
def test_bad_input_is_a_usage_error_and_changes_nothing(runner, acme, tmp_path, db_url, sessions,
                                                        vpn, args, message):
    new = changed(acme, tmp_path, relabelled)
    before = snapshot(sessions)
    result = migrate(runner, db_url, new, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"deskflow: {message}")
    assert snapshot(sessions) == before


def test_an_unknown_workflow_is_a_usage_error(runner, acme, db_url):
    result = runner.invoke(main, ["migrate", "identity-requests", "--to", "current", "--db",
                                  db_url, "--catalog", str(acme.root), "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr.startswith("deskflow: identity-requests: no such workflow")


def test_the_stored_versions_are_untouched_by_a_dry_run_to_an_old_version(
        runner, acme, db_url, sessions, vpn):
    old = acme.workflow("identity-request").version
    result = runner.invoke(main, ["migrate", "identity-request", "--to", old[:8], "--db", db_url,
                                  "--catalog", str(acme.root), "--dry-run"])
    assert (result.exit_code, result.output.strip()) == (
        0, f"identity-request: nothing to migrate (no open request is on another "
        f"version than {old[:8]})")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(WorkflowVersion)) >= 1


def test_a_request_that_changed_after_the_plan_is_reported_not_moved(acme, tmp_path, sessions,
                                                                      service, vpn):
    new = load_catalog(changed(acme, tmp_path, relabelled))
    with sessions.begin() as s:
        target = workflow_migration.resolve_target(s, new, "identity-request", "current",
                                                   service.clock())
        plan = workflow_migration.plan_migration(s, "identity-request", target, {})
    service.cancel(vpn[1], "alice")
    with pytest.raises(workflow_migration.MigrationRefused) as refused:
        workflow_migration.migrate(service.unit, plan, "oscar")
    assert str(refused.value) == (f"2 migrated; 1 changed after the dry run and did not move "
                                  f"(run it again to see what now happens to them): {vpn[1]}")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == "migrated")) == 2
