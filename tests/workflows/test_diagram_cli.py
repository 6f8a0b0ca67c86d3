"""`deskflow diagram WORKFLOW_ID`."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from web.cli import main

TINY = """\
kind: Workflow
id: tiny
start: check
states:
  check:
    decide:
      - {when: "form.n > 1", goto: big}
      - {goto: small}
  big: {end: fulfilled}
  small: {end: rejected}
"""


def test_draws_mermaid_by_default(runner, acme_path):
    result = runner.invoke(main, ["diagram", "laptop-request", "--catalog", str(acme_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("stateDiagram-v2\n")
    assert "    check_model --> director_approval: form.model == 'pro16'\n" in result.stdout
    assert result.stderr == ""


def test_the_catalog_defaults_to_the_current_directory(runner, acme_path, monkeypatch):
    monkeypatch.chdir(acme_path)
    result = runner.invoke(main, ["diagram", "incident"])
    assert result.exit_code == 0, result.output
    assert "    triage --> tell_requester: resolved\n" in result.stdout


def test_draws_svg_with_the_current_state(runner, acme_path):
    result = runner.invoke(main, ["diagram", "laptop-request", "--catalog", str(acme_path),
                                  "--format", "svg", "--current", "prepare"])
    assert result.exit_code == 0, result.output
    root = ET.fromstring(result.stdout)
    current = [g.get("data-state") for g in root.iter("{http://www.w3.org/2000/svg}g")
               if "current" in (g.get("class") or "").split()]
    assert current == ["prepare"]


def test_an_unknown_workflow_names_close_matches(runner, acme_path):
    result = runner.invoke(main, ["diagram", "laptop", "--catalog", str(acme_path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"deskflow: {acme_path}: no workflow laptop " \
                            "(did you mean laptop-request?)\n"


def test_an_unknown_workflow_with_nothing_close_lists_them_all(runner, make_catalog):
    path = make_catalog(TINY)
    result = runner.invoke(main, ["diagram", "zzz", "--catalog", str(path)])
    assert result.exit_code == 1
    assert result.stderr == f"deskflow: {path}: no workflow zzz (known: tiny)\n"


def test_an_unknown_current_state_is_an_error(runner, acme_path):
    result = runner.invoke(main, ["diagram", "laptop-request", "--catalog", str(acme_path),
                                  "--current", "shipped"])
    assert result.exit_code == 1
    assert result.stderr.startswith("deskflow: workflow laptop-request has no state shipped (")


def test_a_catalog_with_errors_still_draws_a_workflow_that_loaded(runner, make_catalog):
    path = make_catalog(TINY)
    (path / "items" / "other.yaml").write_text(
        "kind: CatalogItem\nid: other\nname: Other\ncategory: Test\nsummary: Broken.\n"
        "workflow: missing-workflow\n")
    result = runner.invoke(main, ["diagram", "tiny", "--catalog", str(path)])
    assert result.exit_code == 0, result.output
    assert "    check --> big: form.n #gt; 1\n" in result.stdout
    assert result.stderr.startswith(f"deskflow: warning: {path} has 1 error(s); ")


def test_a_workflow_that_did_not_load_is_reported(runner, make_catalog):
    path = make_catalog(TINY.replace("start: check\n", ""))
    result = runner.invoke(main, ["diagram", "tiny", "--catalog", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (f"deskflow: {path}: no workflow tiny (it has no workflows; the "
                             f"catalog has errors, see deskflow validate {path})\n")


def test_a_missing_catalog_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(main, ["diagram", "tiny", "--catalog", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "not a catalog directory" in result.stderr


def test_an_unknown_format_is_refused(runner, acme_path):
    result = runner.invoke(main, ["diagram", "incident", "--catalog", str(acme_path),
                                  "--format", "png"])
    assert result.exit_code == 2
