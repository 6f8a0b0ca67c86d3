"""A change walked through a catalog repository made by `deskflow init`, as
docs/changing-the-catalog.md describes it: branch, test, diff with the open requests it touches,
migrate (dry run, then for real), and roll back by reverting."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sqlalchemy import select

from catalog.loader import load_valid_catalog
from engine.db import make_engine, make_sessionmaker
from engine.models import Request, WorkflowVersion
from engine.service import RequestService, utcnow
from tests.missing import missing
from web.cli import main


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def ok(runner, *args: str):
    result = runner.invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_a_branch_that_renames_a_state_is_diffed_tested_migrated_and_rolled_back(runner, tmp_path,
                                                                                monkeypatch):
    if shutil.which("git") is None:
        missing("git is not installed (apt-get install git)", "git test")
    repo = tmp_path / "desk"
    ok(runner, "init", str(repo))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "A new catalog")
    assert git(repo, "branch", "--show-current") == "main"
    db_url = f"sqlite:///{tmp_path / 'desk.sqlite'}"
    ok(runner, "db", "upgrade", "--db", db_url)
    ok(runner, "directory", "sync", "--db", db_url, "--catalog", str(repo))
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    catalog = load_valid_catalog(repo)
    service = RequestService(sessions, lambda: catalog, utcnow)
    numbers = [service.submit("new-laptop", "sam", {"model": "standard"}).number for _ in range(3)]
    old = catalog.workflow("manager-then-it").version

    git(repo, "checkout", "-qb", "rename-approval")
    for rel in ("workflows/manager-then-it.yaml", "tests/new-laptop.yaml"):
        path = repo / rel
        path.write_text(path.read_text().replace("manager_approval", "manager_ok"))
    git(repo, "commit", "-qam", "Rename the manager's approval state")
    monkeypatch.chdir(repo)
    assert ok(runner, "test").output.splitlines()[-1].startswith("2 scenarios: 2 passed, 0 failed")

    diff = ok(runner, "diff", "main..HEAD", "--db", db_url).output.splitlines()
    removed = next(i for i, line in enumerate(diff) if ": removes state manager_approval" in line)
    assert diff[removed + 1] == f"    3 open requests are in it, on version {old[:8]}"

    new = load_valid_catalog(repo).workflow("manager-then-it").version
    migrate = ["migrate", "manager-then-it", "--to", "current", "--map", "manager_approval=manager_ok",
               "--db", db_url, "--catalog", str(repo)]
    dry = ok(runner, *migrate, "--dry-run").output.splitlines()
    assert dry[-1].startswith(f"3 open requests to move to {new[:8]}: 3 can move")
    with sessions() as s:
        assert {r.state for r in s.scalars(select(Request))} == {"manager_approval"}
    ok(runner, *migrate, "--as", "ada")
    with sessions() as s:
        moved = list(s.execute(select(Request.number, Request.state, WorkflowVersion.version)
                               .join(WorkflowVersion, WorkflowVersion.id == Request.workflow_version_id)
                               .order_by(Request.id)))
    assert [tuple(row) for row in moved] == [(n, "manager_ok", new) for n in numbers]

    # rolled back: the revert is the old version again, and the requests can move back to it
    git(repo, "revert", "--no-edit", "HEAD")
    assert load_valid_catalog(repo).workflow("manager-then-it").version == old
    back = ["migrate", "manager-then-it", "--to", "current", "--map", "manager_ok=manager_approval",
            "--db", db_url, "--catalog", str(repo)]
    ok(runner, *back, "--dry-run")
    ok(runner, *back, "--as", "ada")
    with sessions() as s:
        returned = list(s.execute(select(Request.number, Request.state, WorkflowVersion.version)
                                  .join(WorkflowVersion, WorkflowVersion.id == Request.workflow_version_id)
                                  .order_by(Request.id)))
    assert [tuple(row) for row in returned] == [(n, "manager_approval", old) for n in numbers]
    engine.dispose()
