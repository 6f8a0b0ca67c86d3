"""`deskflow diff --db`: each change lists the open requests it touches, read from the database."""

from __future__ import annotations

import json
import shutil

from catalog.loader import load_catalog
from web.cli import main


def test_changes_list_the_open_requests_they_touch(runner, acme, service, answers, db_url, tmp_path):
    for _ in range(2):
        service.submit("vpn-access", "alice", answers["vpn-access"])
    service.submit("new-laptop", "alice", answers["new-laptop"])
    closed = service.submit("vpn-access", "alice", answers["vpn-access"])
    service.cancel(closed.number, "alice")  # a closed request is touched by nothing
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(acme.root, old)
    shutil.copytree(acme.root, new)
    wf = new / "workflows" / "identity-request.yaml"
    text = wf.read_text().replace("start: manager_approval", "start: setup")
    start, end = text.index("  manager_approval:"), text.index("  setup:")
    wf.write_text(text[:start] + text[end:text.index("  rejected:")])
    item = new / "items" / "new-laptop.yaml"
    item.write_text(item.read_text() + "  - {name: asset_tag, type: string, required: true}\n")
    (new / "items" / "badge-replacement.yaml").unlink()

    result = runner.invoke(main, ["diff", str(old), str(new), "--db", db_url, "--format", "json"])
    assert result.exit_code == 0, result.output
    found = {(c["kind"], c["message"]): c["open_requests"]
             for c in json.loads(result.output)["changes"]}
    identity = acme.workflow("identity-request").version
    laptop = acme.workflow("laptop-request").version
    new_identity = load_catalog(new).workflow("identity-request").version
    vpn = 2
    assert found[("state_removed", "removes state manager_approval")] == [{"version": identity, "count": vpn}]
    assert found[("state_removed", "removes state rejected")] == []
    assert found[("version_changed", f"new version {new_identity[:8]} (was {identity[:8]}); "
                  "open requests keep theirs")] == [{"version": identity, "count": vpn}]
    assert found[("field_added", "adds required field asset_tag (string)")] == [
        {"version": laptop, "count": 1}]
    assert found[("item_removed", "removes item badge-replacement")] == []

    lines = runner.invoke(main, ["diff", str(old), str(new), "--db", db_url]).output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith("removes state manager_approval"))
    assert lines[at + 1] == f"    {vpn} open requests are in it, on version {identity[:8]}"
    at = next(i for i, line in enumerate(lines) if "adds required field asset_tag" in line)
    assert lines[at + 1] == f"    1 open request of item new-laptop, on version {laptop[:8]}"
    at = next(i for i, line in enumerate(lines) if line.endswith("removes item badge-replacement"))
    assert lines[at + 1] == "    no open requests affected"
    markdown = runner.invoke(main, ["diff", str(old), str(new), "--db", db_url, "--format",
                                    "markdown"]).output.splitlines()
    at = markdown.index("- removes state manager\\_approval — "
                        "`workflows/identity-request.yaml:7` (before)")
    assert markdown[at + 1] == f"  - ⚠️ {vpn} open requests are in it, on version {identity[:8]}"


def test_a_database_that_cannot_be_read_is_refused(runner, acme, tmp_path):
    missing = f"sqlite:///{tmp_path / 'missing.sqlite'}"
    result = runner.invoke(main, ["diff", str(acme.root), str(acme.root), "--db", missing])
    assert (result.exit_code, result.output.splitlines()) == (
        2, [f"deskflow: {missing}: no such database file"])
    assert not (tmp_path / "missing.sqlite").exists()
    (tmp_path / "empty.sqlite").write_bytes(b"")
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    result = runner.invoke(main, ["diff", str(acme.root), str(acme.root), "--db", empty])
    assert (result.exit_code, result.output.splitlines()) == (2, [
        f"deskflow: {empty}: cannot read its open requests (is it a Deskflow database? "
        "deskflow db upgrade makes one)"])
    result = runner.invoke(main, ["diff", str(acme.root), str(acme.root), "--db", "nonsense"])
    assert (result.exit_code, result.output.splitlines()) == (
        2, ["deskflow: nonsense: not a database URL"])
