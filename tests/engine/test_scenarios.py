"""`deskflow test`: scenario tests in YAML, run on the real engine in memory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from catalog.loader import load_catalog
from tests.acme import ACME, ROOT
from web.cli import main

BROKEN = "tests/data/scenarios/broken.yaml"


@pytest.fixture(autouse=True)
def _in_checkout(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture
def catalog(tmp_path) -> Path:
    """A copy of acme whose tests/ the test may change."""
    shutil.copytree(ACME, tmp_path / "acme")
    return tmp_path / "acme"


def test_acme_ships_a_scenario_for_every_item_and_all_pass(runner):
    result = runner.invoke(main, ["test", "--catalog", "examples/acme"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert all(line.startswith("PASS examples/acme/tests/") for line in lines[:-1])
    assert re.fullmatch(r"(\d+) scenarios: \1 passed, 0 failed \(\d+ steps\)", lines[-1])
    acme = load_catalog(ACME)
    tested = {sc.item for f in acme.scenarios for sc in f.scenarios}
    assert tested == {i.id for i in acme.items}


def test_acme_tests_the_rejection_and_timeout_paths_of_every_item_that_has_them():
    acme = load_catalog(ACME)
    steps = {}
    for f in acme.scenarios:
        for sc in f.scenarios:
            steps.setdefault(sc.item, set()).update(s.kind for s in sc.steps)
    for item in acme.items:
        wf = acme.workflow(item.workflow)
        assert wf is not None
        approvals = [a for st in wf.states for a in st.approvals]
        if approvals:
            assert "reject" in steps[item.id], item.id
        if any(a.timeout for a in approvals):
            assert "wait" in steps[item.id], item.id


def test_a_broken_scenario_reports_a_readable_failure(runner):
    result = runner.invoke(main, ["test", "--catalog", "examples/acme", BROKEN])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"FAIL {BROKEN}:5: Expects the wrong approver",
        f"  {BROKEN}:9:9: step 1: expectation not met",
        "      approvers:",
        "        - expected: carol",
        "        + actual:   bob",
        f"FAIL {BROKEN}:10: Approves twice",
        f"  {BROKEN}:15:9: step 2: approve: bob has no pending approval; the request is in "
        "state prepare (approvals pending from: nobody)",
        f"PASS {BROKEN}:16: Passes",
        "3 scenarios: 1 passed, 2 failed (5 steps)",
    ]


def test_junit_reports_each_scenario_as_a_test_case(runner):
    result = runner.invoke(main, ["test", "--catalog", "examples/acme", "--format", "junit", BROKEN])
    assert result.exit_code == 1
    root = ET.fromstring(result.output)
    assert (root.get("tests"), root.get("failures")) == ("3", "2")
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["Expects the wrong approver", "Approves twice",
                                              "Passes"]
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message") == "expectation not met"
    assert failure.text is not None and "+ actual:   bob" in failure.text
    assert cases[2].find("failure") is None


def test_github_format_annotates_the_failing_step(runner):
    result = runner.invoke(main, ["test", "--catalog", "examples/acme", "--format", "github", BROKEN])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == (f"::error file={BROKEN},line=9,col=9,title=Expects the wrong approver::"
                        f"{BROKEN}:9:9: step 1: expectation not met%0A    approvers:%0A"
                        "      - expected: carol%0A      + actual:   bob")
    assert lines[2] == f"PASS {BROKEN}:16: Passes"
    assert lines[-1] == "3 scenarios: 1 passed, 2 failed (5 steps)"


def test_a_scenario_naming_unknown_things_is_refused_with_positions(runner):
    result = runner.invoke(main, ["test", "--catalog", "examples/acme",
                                  "tests/data/scenarios/unknown.yaml"])
    assert result.exit_code == 1
    u = "tests/data/scenarios/unknown.yaml"
    assert result.output.splitlines() == [
        f"deskflow: {u}:5:9: scenarios[0].as: unknown person alicia (did you mean alice?)",
        f"{u}:6:37: scenarios[0].answers.colour: unknown field colour in item new-laptop (known: "
        "building, cost_center, department, desk, floor, home_address, justification, "
        "keyboard_layout, ...)",
        f"{u}:8:23: scenarios[0].steps[0].approve.as: unknown person bobby (did you mean bob?)",
        f"{u}:9:26: scenarios[0].steps[1].complete.task: unknown task prepare_it in workflow "
        "laptop-request (did you mean prepare?)",
        f"{u}:10:25: scenarios[0].steps[2].expect.state: unknown state shipped in workflow "
        "laptop-request (known: cancelled, check_model, delivered, director_approval, "
        "manager_approval, prepare, rejected)",
        f"{u}:10:65: scenarios[0].steps[2].expect.tasks[0].queue: unknown group hardware (did you "
        "mean it-hardware?)",
        f"{u}:12:11: scenarios[1].item: unknown item new-laptops (did you mean new-laptop?)",
    ]


def test_validate_checks_the_catalogs_scenarios(runner, catalog):
    (catalog / "tests" / "bad.yaml").write_text(
        "kind: Scenarios\nitem: new-laptop\nscenarios:\n  - name: x\n    as: alice\n"
        "    steps:\n      - expect: {state: shipped}\n      - jump: {as: bob}\n")
    result = runner.invoke(main, ["validate", str(catalog)])
    assert result.exit_code == 1
    assert (f"{catalog}/tests/bad.yaml:8:9: scenarios[0].steps[1].jump: unknown key jump (known: "
            "approve, ask, cancel, comment, complete, expect, reject, reply, ...)"
            ) in result.output.splitlines()
    (catalog / "tests" / "bad.yaml").write_text(
        "kind: Scenarios\nitem: new-laptop\nscenarios:\n  - name: x\n    as: alice\n"
        "    steps:\n      - expect: {state: shipped}\n")
    # a stale scenario is a warning to validate (the catalog still serves, diff still works)...
    result = runner.invoke(main, ["validate", str(catalog)])
    assert result.exit_code == 0
    assert (f"{catalog}/tests/bad.yaml:7:25: warning: scenarios[0].steps[0].expect.state: unknown "
            "state shipped in workflow laptop-request (known: cancelled, check_model, delivered, "
            "director_approval, manager_approval, prepare, rejected)") in result.output.splitlines()
    # ...and an error to `deskflow test`, which runs nothing until it is fixed
    result = runner.invoke(main, ["test", "--catalog", str(catalog)])
    assert result.exit_code == 1
    assert (f"deskflow: {catalog}/tests/bad.yaml:7:25: scenarios[0].steps[0].expect.state: "
            "unknown state shipped in workflow laptop-request (known: cancelled, check_model, "
            "delivered, director_approval, manager_approval, prepare, rejected)"
            ) in result.output.splitlines()
    (catalog / "tests" / "bad.yaml").write_text(
        "kind: Scenarios\nitem: new-laptop\nat: 2026-02-30 09:00\nscenarios:\n  - name: x\n"
        "    as: alice\n    steps:\n      - wait: 2 business weeks\n")
    result = runner.invoke(main, ["validate", str(catalog)])
    assert (f"{catalog}/tests/bad.yaml:3:5: at: 2026-02-30 09:00 is not a date and time (write "
            "YYYY-MM-DD HH:MM, in quotes)") in result.output.splitlines()


def test_time_passes_in_business_hours_and_fires_timers(runner, catalog):
    shutil.rmtree(catalog / "tests")
    (catalog / "tests").mkdir()
    (catalog / "tests" / "t.yaml").write_text("""\
kind: Scenarios
item: new-laptop
at: "2026-12-04 16:00"
scenarios:
  - name: Friday afternoon
    as: alice
    answers: {model: std14, cost_center: CC-1234, building: ams-hq, floor: 4}
    steps:
      - expect: {due: {resolution: "2026-12-11 16:00"}, approvers: [bob]}
      - wait: 23 business hours
      - expect: {approvers: [bob], emails: [{to: bob, event: approval_requested}]}
      - wait: 1 business hour
      - expect: {approvers: [carol]}
""")
    result = runner.invoke(main, ["test", "--catalog", str(catalog)])
    assert result.exit_code == 0, result.output


def test_bad_paths_and_empty_catalogs_are_usage_mistakes(runner, catalog):
    result = runner.invoke(main, ["test", "--catalog", "examples/acme", "no/such.yaml"])
    assert (result.exit_code, result.output) == (2, "deskflow: no/such.yaml: no such file or "
                                                    "directory\n")
    shutil.rmtree(catalog / "tests")
    result = runner.invoke(main, ["test", "--catalog", str(catalog)])
    assert (result.exit_code, result.output) == (2, f"deskflow: {catalog}/tests: no scenario "
                                                    "tests (tests/*.yaml)\n")


def test_a_catalog_directory_as_path_runs_that_catalogs_own_tests(runner, catalog):
    (catalog / "tests" / "bad.yaml").write_text(
        "kind: Scenarios\nitem: new-laptop\nscenarios:\n  - name: Never shipped\n    as: alice\n"
        "    steps:\n      - expect: {state: prepare}\n")
    result = runner.invoke(main, ["test", str(catalog)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"FAIL {catalog}/tests/bad.yaml:4: Never shipped" in lines
    assert sum(line.startswith(f"PASS {catalog}/tests/") for line in lines) > 40
