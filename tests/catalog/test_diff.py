"""`deskflow diff`: every kind of change on a small catalog, the formats, git revisions, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from web.cli import main

BASE = Path(__file__).resolve().parents[1] / "data" / "diff" / "base"

#: (name, edits as (file, old text, new text) — "" old text appends, None new text deletes the file,
#:  the expected output without its summary line)
CASES = [
    ("item added", [("items/phone.yaml", "", "kind: CatalogItem\nid: phone\nname: Phone\n"
                     "category: Hardware\nsummary: A phone.\nworkflow: purchase\nform: []\n")],
     ["+ items/phone.yaml:2: item phone: adds item phone (Phone)"]),
    ("item removed", [("items/laptop.yaml", "", None)],
     ["- items/laptop.yaml:2: item laptop: removes item laptop"]),
    ("required field added", [("items/laptop.yaml", "  - {use: contact}\n",
                               "  - {use: contact}\n  - {name: tag, type: string, required: true}\n")],
     ["+ items/laptop.yaml:22: item laptop: adds required field tag (string)"]),
    ("optional field added", [("items/laptop.yaml", "  - {use: contact}\n",
                               "  - {use: contact}\n  - {name: tag, type: string}\n")],
     ["+ items/laptop.yaml:22: item laptop: adds field tag (string)"]),
    ("field removed", [("items/laptop.yaml", "  - name: needed_by\n    label: Needed by\n"
                        "    type: date\n", "")],
     ["- items/laptop.yaml:18: item laptop: removes field needed_by"]),
    ("field retyped", [("items/laptop.yaml", "    type: date\n", "    type: string\n")],
     ["~ items/laptop.yaml:20: item laptop: field needed_by: type date → string"]),
    ("field made required", [("items/laptop.yaml", "    type: date\n",
                              "    type: date\n    required: true\n")],
     ["~ items/laptop.yaml:21: item laptop: makes field needed_by required"]),
    ("field made optional", [("items/laptop.yaml", "    required: true\n    choices", "    choices")],
     ["~ items/laptop.yaml:9: item laptop: makes field model optional"]),
    ("choices added and removed", [("items/laptop.yaml", "[std, pro]", "[std, max]")],
     ["+ items/laptop.yaml:13: item laptop: field model: adds choice max",
      "- items/laptop.yaml:13: item laptop: field model: removes choice pro"]),
    ("condition changed", [("items/laptop.yaml", "show_if: \"form.model == 'pro'\"",
                            "show_if: \"form.model != 'std'\"")],
     ["~ items/laptop.yaml:17: item laptop: field reason show_if: form.model == 'pro' → "
      "form.model != 'std'"]),
    ("condition added", [("items/laptop.yaml", "    type: date\n",
                          "    type: date\n    required_if: \"form.model == 'pro'\"\n")],
     ["~ items/laptop.yaml:21: item laptop: field needed_by required_if: none → "
      "form.model == 'pro'"]),
    ("field property changed", [("items/laptop.yaml", "label: Reason", "label: Why")],
     ["~ items/laptop.yaml:15: item laptop: field reason label: Reason → Why"]),
    ("fieldset field changed", [("fieldsets/contact.yaml", "type: string}", "type: email}")],
     ["~ items/laptop.yaml:21: item laptop: field phone (from fieldset contact): type string → email",
      "~ fieldsets/contact.yaml:1: fieldset contact: changes fieldset contact (fields)"]),
    ("item properties changed", [("items/laptop.yaml", "category: Hardware\nsummary: A laptop.\n"
                                  "owner: it", "category: Devices\nsummary: A laptop.\nowner: legal")],
     ["~ items/laptop.yaml:4: item laptop: category: Hardware → Devices",
      "~ items/laptop.yaml:6: item laptop: owner: it → legal"]),
    ("state removed", [("workflows/purchase.yaml", "approved: legal_review", "approved: fulfil"),
                       ("workflows/purchase.yaml", "  legal_review:\n    label: Legal review\n"
                        "    approval:\n      approvers: \"group:legal\"\n"
                        "      policy: {quorum: 2}\n    on: {approved: fulfil, rejected: rejected}\n",
                        "")],
     ["~ workflows/purchase.yaml:2: workflow purchase: new version 2a57feaa (was 8f214866); "
      "open requests keep theirs",
      "+ workflows/purchase.yaml:13: workflow purchase: adds transition manager → fulfil (on approved)",
      "- workflows/purchase.yaml:13: workflow purchase: removes transition manager → legal_review "
      "(on approved)",
      "- workflows/purchase.yaml:14: workflow purchase: removes state legal_review"]),
    ("state added", [("workflows/purchase.yaml", "on: {done: done}", "on: {done: check}"),
                     ("workflows/purchase.yaml", "  done: {end: fulfilled}\n",
                      "  check:\n    task: {queue: it}\n    on: {done: done}\n"
                      "  done: {end: fulfilled}\n")],
     ["~ workflows/purchase.yaml:2: workflow purchase: new version 94840214 (was 8f214866); "
      "open requests keep theirs",
      "+ workflows/purchase.yaml:22: workflow purchase: adds transition fulfil → check (on done)",
      "- workflows/purchase.yaml:22: workflow purchase: removes transition fulfil → done (on done)",
      "+ workflows/purchase.yaml:23: workflow purchase: adds state check"]),
    ("approval policy and approvers changed", [
        ("workflows/purchase.yaml", "policy: {quorum: 2}", "policy: {quorum: 3}"),
        ("workflows/purchase.yaml", "policy: any", "policy: all"),
        ("workflows/purchase.yaml", "\"group:legal\"", "[\"group:legal\", \"person:bob\"]")],
     ["~ workflows/purchase.yaml:2: workflow purchase: new version 288d2fde (was 8f214866); "
      "open requests keep theirs",
      "~ workflows/purchase.yaml:12: workflow purchase: state manager approval policy: any → all",
      "~ workflows/purchase.yaml:17: workflow purchase: state legal_review approval approvers: "
      "group:legal → group:legal, person:bob",
      "~ workflows/purchase.yaml:18: workflow purchase: state legal_review approval policy: "
      "quorum 2 → quorum 3"]),
    ("workflow and task SLAs changed", [
        ("workflows/purchase.yaml", "resolution: 5 business days", "resolution: 4 business days"),
        ("workflows/purchase.yaml", "sla: 2 business days", "sla: 1 business days")],
     ["~ workflows/purchase.yaml:2: workflow purchase: new version a49d2bf3 (was 8f214866); "
      "open requests keep theirs",
      "~ workflows/purchase.yaml:6: workflow purchase: sla resolution: 5 business days → "
      "4 business days",
      "~ workflows/purchase.yaml:21: workflow purchase: state fulfil task sla: 2 business days → "
      "1 business day"]),
    ("workflow added and removed", [
        ("workflows/purchase.yaml", "id: purchase\n", "id: buy\n"),
        ("items/laptop.yaml", "workflow: purchase", "workflow: buy")],
     ["~ items/laptop.yaml:7: item laptop: workflow: purchase → buy",
      "+ workflows/purchase.yaml:2: workflow buy: adds workflow buy",
      "- workflows/purchase.yaml:2: workflow purchase: removes workflow purchase"]),
    ("business hours changed", [
        ("deskflow.yaml", "end: \"17:00\"", "end: \"18:00\""),
        ("deskflow.yaml", "[mon, tue, wed, thu, fri]", "[mon, tue, wed, thu]"),
        ("deskflow.yaml", "time_zone: Europe/Amsterdam", "time_zone: Europe/Brussels")],
     ["~ deskflow.yaml:3: settings: time zone: Europe/Amsterdam → Europe/Brussels",
      "~ deskflow.yaml:5: settings: business days: mon, tue, wed, thu, fri → mon, tue, wed, thu",
      "~ deskflow.yaml:7: settings: business hours end: 17:00 → 18:00"]),
    ("priority SLAs changed", [
        ("deskflow.yaml", "response: 1 business hours", "response: 2 business hours"),
        ("deskflow.yaml", "default_priority: p2", "  p3: {name: Low}\ndefault_priority: p2")],
     ["~ deskflow.yaml:9: settings: priority p1 response: 1 business hour → 2 business hours",
      "+ deskflow.yaml:11: settings: adds priority p3"]),
    ("settings property changed", [("deskflow.yaml", "name: Mini Desk", "name: Midi Desk")],
     ["~ deskflow.yaml:2: settings: name: Mini Desk → Midi Desk"]),
    ("directory changed", [
        ("directory.yaml", ", roles: [director]}", "}"),
        ("directory.yaml", "roles:\n  - {id: director, name: Director}\n", ""),
        ("directory.yaml", "members: [bob]", "members: [bob, cy]"),
        ("directory.yaml", "  - {id: legal", "  - {id: hr, name: HR}\n  - {id: legal")],
     ["~ directory.yaml:3: directory: person ann roles: director → none",
      "~ directory.yaml:7: directory: group it members: bob → bob, cy",
      "+ directory.yaml:8: directory: adds group hr",
      "- directory.yaml:10: directory: removes role director"]),
    ("lookup changed, added and removed", [
        ("lookups/sites.yaml", "label: Amsterdam", "label: Amsterdam HQ"),
        ("lookups/floors.yaml", "", "kind: Lookup\nid: floors\nname: Floors\n"
         "values: [{value: '1', label: First}]\n")],
     ["+ lookups/floors.yaml:1: lookup floors: adds lookup floors",
      "~ lookups/sites.yaml:1: lookup sites: changes lookup sites (values)"]),
]


def make_pair(tmp_path: Path, edits: list[tuple[str, str, str | None]]) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(BASE, old)
    shutil.copytree(BASE, new)
    edit(new, edits)
    return old, new


def edit(root: Path, edits: list[tuple[str, str, str | None]]) -> None:
    for name, before, after in edits:
        path = root / name
        if after is None:
            path.unlink()
        elif not before:
            path.write_text(path.read_text() + after if path.exists() else after)
        else:
            text = path.read_text()
            assert before in text, (name, before)
            path.write_text(text.replace(before, after))


@pytest.mark.parametrize(("edits", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_kind_of_change_is_reported_with_its_line(runner, tmp_path, edits, expected):
    old, new = make_pair(tmp_path, edits)
    result = runner.invoke(main, ["diff", str(old), str(new)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:-1] == expected


def test_the_summary_counts_changes_and_what_they_touch(runner, tmp_path):
    old, new = make_pair(tmp_path, CASES[0][1] + CASES[19][1])
    result = runner.invoke(main, ["diff", str(old), str(new)])
    assert result.output.splitlines()[-1] == (
        f"4 changes between {old} and {new} in settings, 1 item")


def test_identical_catalogs_have_no_changes_and_exit_code_says_so(runner, tmp_path):
    old, new = make_pair(tmp_path, [])
    result = runner.invoke(main, ["diff", str(old), str(new), "--exit-code"])
    assert (result.exit_code, result.output) == (0, f"no changes between {old} and {new}\n")
    edit(new, CASES[0][1])
    assert runner.invoke(main, ["diff", str(old), str(new), "--exit-code"]).exit_code == 1
    assert runner.invoke(main, ["diff", str(old), str(new)]).exit_code == 0


def test_markdown_is_ready_for_a_pull_request(runner, tmp_path):
    old, new = make_pair(tmp_path, CASES[14][1] + CASES[19][1][:1])
    result = runner.invoke(main, ["diff", str(old), str(new), "--format", "markdown"])
    assert result.output == (
        f"### Catalog changes: `{old}` → `{new}`\n\n"
        f"5 changes between {old} and {new} in settings, 1 workflow\n\n"
        "#### Settings (deskflow.yaml)\n\n"
        "- business hours end: 17:00 → 18:00 — `deskflow.yaml:7`\n\n"
        "#### workflow `purchase`\n\n"
        "- new version 2a57feaa (was 8f214866); open requests keep theirs — "
        "`workflows/purchase.yaml:2`\n"
        "- adds transition manager → fulfil (on approved) — `workflows/purchase.yaml:13`\n"
        "- removes transition manager → legal\\_review (on approved) — "
        "`workflows/purchase.yaml:13` (before)\n"
        "- removes state legal\\_review — `workflows/purchase.yaml:14` (before)\n")


def test_json_has_a_stable_shape(runner, tmp_path):
    old, new = make_pair(tmp_path, CASES[8][1])
    result = runner.invoke(main, ["diff", str(old), str(new), "--format", "json"])
    assert json.loads(result.output) == {
        "shape": 1, "old": str(old), "new": str(new), "changes": [
            {"kind": "choice_added", "sign": "+", "subject": "item", "id": "laptop",
             "message": "field model: adds choice max", "file": "items/laptop.yaml",
             "line": 13, "side": "new", "before": None, "after": None, "open_requests": None},
            {"kind": "choice_removed", "sign": "-", "subject": "item", "id": "laptop",
             "message": "field model: removes choice pro", "file": "items/laptop.yaml",
             "line": 13, "side": "old", "before": None, "after": None, "open_requests": None}]}


def test_routes_of_a_decision_are_told_apart_by_their_conditions(runner, acme, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(acme.root, old)
    shutil.copytree(acme.root, new)
    edit(new, [("workflows/laptop-request.yaml", "- {goto: prepare}",
                "- {when: \"form.model == 'std14'\", goto: prepare}\n      - {goto: prepare}"),
               ("workflows/laptop-request.yaml", "on_timeout: remind", "on_timeout: escalate")])
    result = runner.invoke(main, ["diff", str(old), str(new)])
    assert [line.split(": ", 1)[1] for line in result.output.splitlines()[1:-1]] == [
        "workflow laptop-request: route check_model → prepare when: none → form.model == 'std14'",
        "workflow laptop-request: adds transition check_model → prepare (on route)",
        "workflow laptop-request: state director_approval approval on timeout: remind → escalate"]


# ---------------------------------------------------------------- git revisions

def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """A repository whose catalog, in catalog/, loses a state on branch `change`."""
    root = tmp_path / "repo"
    shutil.copytree(BASE, root / "catalog")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-qm", "catalog")
    git(root, "checkout", "-qb", "change")
    edit(root / "catalog", CASES[14][1])
    git(root, "commit", "-qam", "no legal review")
    return root


STATE_REMOVED = CASES[14][2]


def test_a_range_of_revisions_is_compared(runner, repo):
    result = runner.invoke(main, ["diff", "main..change", "--catalog", str(repo / "catalog")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        *STATE_REMOVED, "4 changes between main and change in 1 workflow"]


def test_two_revisions_or_one_and_the_files_are_compared(runner, repo, monkeypatch):
    monkeypatch.chdir(repo / "catalog")
    edit(repo / "catalog", CASES[19][1][:1])
    assert runner.invoke(main, ["diff", "main", "change"]).output.splitlines()[:-1] == STATE_REMOVED
    assert runner.invoke(main, ["diff", "main.."]).output.splitlines()[-1] == (
        "4 changes between main and HEAD in 1 workflow")
    result = runner.invoke(main, ["diff", "main"])
    assert result.output.splitlines()[-2:] == [
        STATE_REMOVED[-1], "5 changes between main and working tree in settings, 1 workflow"]


@pytest.mark.parametrize(("args", "message"), [
    (["nope..change"], "deskflow: unknown revision 'nope' in repo"),
    (["main..nope"], "deskflow: unknown revision 'nope' in repo"),
    (["main...change"], "deskflow: main...change: give a range as OLD..NEW"),
    (["--", "--output=x..main"], "deskflow: unknown revision '--output=x' in repo"),
])
def test_bad_revisions_are_refused(runner, repo, monkeypatch, args, message):
    monkeypatch.chdir(repo / "catalog")
    result = runner.invoke(main, ["diff", *args])
    assert (result.exit_code, result.output.splitlines()) == (2, [message])


def test_a_revision_without_the_catalog_is_not_a_catalog(runner, repo):
    (repo / "other").mkdir()
    (repo / "other" / "deskflow.yaml").write_text("kind: Settings\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "other")
    result = runner.invoke(main, ["diff", "main..change", "--catalog", str(repo / "other")])
    assert (result.exit_code, result.output.splitlines()) == (
        2, ["deskflow: main: other is not a catalog at that revision (no deskflow.yaml)"])


def test_a_revision_with_a_link_out_of_the_catalog_does_not_validate(runner, repo):
    (repo / "catalog" / "items" / "evil.yaml").symlink_to("/etc/hostname")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "evil")
    result = runner.invoke(main, ["diff", "main..change", "--catalog", str(repo / "catalog")])
    assert (result.exit_code, result.output.splitlines()) == (1, [
        "deskflow: change: catalog has 1 error (run deskflow validate on it):",
        "change:items/evil.yaml:1:1: symlink points outside the catalog directory "
        "(copy the file into the catalog instead)"])


def test_a_revision_is_read_as_committed_whatever_its_attributes(runner, repo):
    (repo / "catalog" / ".gitattributes").write_text("items/* export-ignore\n")  # git archive obeys
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "attributes")
    result = runner.invoke(main, ["diff", "main..change", "--catalog", str(repo / "catalog")])
    assert result.output.splitlines()[-1] == "4 changes between main and change in 1 workflow"


def test_revisions_outside_a_repository_are_refused(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(BASE, tmp_path / "cat")
    result = runner.invoke(main, ["diff", "main..HEAD", "--catalog", "cat"])
    assert (result.exit_code, result.output.splitlines()) == (2, [
        "deskflow: cat: not in a git repository (compare two catalog directories instead: "
        "deskflow diff OLD_DIR NEW_DIR)"])
    result = runner.invoke(main, ["diff", "main", "cat"])
    assert (result.exit_code, result.output.splitlines()) == (2, [
        "deskflow: main: neither a directory nor a revision (. is not in a git repository)"])


# ---------------------------------------------------------------- bad input

def test_a_directory_that_is_not_a_catalog_is_refused(runner, tmp_path):
    old, new = make_pair(tmp_path, [("deskflow.yaml", "", None)])
    result = runner.invoke(main, ["diff", str(old), str(new)])
    assert (result.exit_code, result.output.splitlines()) == (
        2, [f"deskflow: {new}: not a catalog directory (no deskflow.yaml)"])
    result = runner.invoke(main, ["diff", str(old), str(tmp_path / "missing")])
    assert (result.exit_code, result.output.splitlines()) == (
        2, [f"deskflow: {tmp_path / 'missing'}: no such directory"])
    (tmp_path / "file").write_text("")
    result = runner.invoke(main, ["diff", str(old), str(tmp_path / "file")])
    assert (result.exit_code, result.output.splitlines()) == (
        2, [f"deskflow: {tmp_path / 'file'}: not a directory"])


def test_a_side_that_does_not_validate_shows_its_errors(runner, tmp_path):
    old, new = make_pair(tmp_path, [("items/laptop.yaml", "workflow: purchase", "workflow: buy")])
    result = runner.invoke(main, ["diff", str(old), str(new)])
    assert (result.exit_code, result.output.splitlines()) == (1, [
        f"deskflow: {new}: catalog has 1 error (run deskflow validate on it):",
        f"{new}/items/laptop.yaml:7:11: workflow: unknown workflow buy (known: purchase)"])


def test_a_working_tree_that_does_not_validate_shows_its_errors_under_its_path(runner, repo):
    edit(repo / "catalog", [("items/laptop.yaml", "workflow: purchase", "workflow: purchas")])
    result = runner.invoke(main, ["diff", "main", "--catalog", str(repo / "catalog")])
    assert (result.exit_code, result.output.splitlines()) == (1, [
        "deskflow: working tree: catalog has 1 error (run deskflow validate on it):",
        f"{repo}/catalog/items/laptop.yaml:7:11: workflow: unknown workflow purchas "
        "(did you mean purchase?)"])


def test_a_branch_name_with_a_slash_is_a_revision(runner, repo):
    git(repo, "branch", "topic/legal")
    result = runner.invoke(main, ["diff", "main", "topic/legal", "--catalog", str(repo / "catalog")])
    assert result.output.splitlines()[-1] == "4 changes between main and topic/legal in 1 workflow"


def test_a_revision_that_does_not_validate_shows_its_errors_under_its_name(runner, repo):
    edit(repo / "catalog", [("items/laptop.yaml", "workflow: purchase", "workflow: purchas")])
    git(repo, "commit", "-qam", "typo")
    result = runner.invoke(main, ["diff", "main..change", "--catalog", str(repo / "catalog")])
    assert (result.exit_code, result.output.splitlines()) == (1, [
        "deskflow: change: catalog has 1 error (run deskflow validate on it):",
        "change:items/laptop.yaml:7:11: workflow: unknown workflow purchas (did you mean purchase?)"])
