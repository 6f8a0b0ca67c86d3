"""`deskflow replay`: another desk's history driven through a workflow (docs/import.md, Replay).

The fixture tests/data/history/replay-servicenow.csv holds 10 ServiceNow incidents (rows out of
order), replayed through acme's incident workflow with the shipped state mapping: 7 conform
(one resolved at once, one reopened within the reopen window, one waiting on a vendor with an
unknown state `-100` between, one left resolved, which the workflow closes on its own) and 3
are refused: INC108 closes without being resolved (Active -> Closed), INC109 is worked on after
it was closed (Closed -> Active), INC110 is reopened 20 days after its resolution.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import defaultdict
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.acme import ACME, ROOT
from web.cli import main

DATA = ROOT / "tests" / "data" / "history"
FIXTURE = DATA / "replay-servicenow.csv"
REAL = ROOT.parent / "shared" / "data"
ITEM = "report-incident"


def replay(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["replay", *map(str, args), "--catalog", str(ACME)])


def fixture_json() -> dict:
    result = replay(FIXTURE, "--mapping", "servicenow", "--item", ITEM, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_fixture_conformance_in_json() -> None:
    report = fixture_json()
    assert {k: report[k] for k in ("cases", "accepted", "refused", "unfinished",
                                   "accepted_share", "rows_read", "rows_skipped")} == {
        "cases": 10, "accepted": 7, "refused": 3, "unfinished": 0, "accepted_share": 0.7,
        "rows_read": 45, "rows_skipped": 0}
    assert report["refused_transitions"] == [
        {"from": "closed", "to": "triage", "why": "no transition", "count": 1,
         "example_case": "INC109", "example_source": "Closed -> Active"},
        {"from": "confirm_window", "to": "triage", "why": "reopened after the reopen window",
         "count": 1, "example_case": "INC110", "example_source": "Resolved -> Active"},
        {"from": "triage", "to": "closed", "why": "no transition", "count": 1,
         "example_case": "INC108", "example_source": "Active -> Closed"},
    ]
    assert report["unmapped_states"] == [{"state": "-100", "rows": 1, "cases": 1}]
    spent = {s["state"]: s for s in report["time_in_state"]}
    assert list(spent) == ["Resolved", "Closed", "Awaiting User Info", "Awaiting Vendor",
                           "Active", "New", "-100"]
    assert spent["Resolved"] == {"state": "Resolved", "workflow_state": "confirm_window",
                                 "visits": 11, "median_hours": 120.0, "p90_hours": 120.0,
                                 "total_hours": 1584.0, "share_of_time": 0.9271}
    # 1584 of all 1708.5 hours: Closed 46, Awaiting User Info 24, Awaiting Vendor 24,
    # Active 18, New 10.5, -100 2
    assert sum(s["total_hours"] for s in spent.values()) == 1708.5
    assert spent["New"] == {"state": "New", "workflow_state": "triage", "visits": 9,
                            "median_hours": 1.0, "p90_hours": 2.0, "total_hours": 10.5,
                            "share_of_time": 0.0061}
    assert report["longest_waits"][0] == {"case": "INC110", "state": "Resolved", "hours": 480.0}
    assert sorted(report) == sorted([
        "file", "mapping", "item", "workflow", "states_file", "rows_read", "rows_skipped",
        "cases", "accepted", "refused", "unfinished", "accepted_share", "refused_transitions",
        "unmapped_states", "time_in_state", "longest_waits"])


def test_the_fixture_conformance_in_text() -> None:
    result = replay(FIXTURE, "--mapping", "servicenow", "--item", ITEM)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1:9] == [
        "10 cases from 45 rows (0 rows skipped)",
        "accepted end to end: 7 of 10 (70.0%); refused: 3; unfinished: 0",
        "",
        "most frequent refused transitions:",
        "  closed -> triage (no transition): 1 (e.g. INC109: Closed -> Active)",
        "  confirm_window -> triage (reopened after the reopen window): 1 "
        "(e.g. INC110: Resolved -> Active)",
        "  triage -> closed (no transition): 1 (e.g. INC108: Active -> Closed)",
        "",
    ]
    assert "  -100: 1 rows in 1 cases" in lines
    assert ("  Resolved [confirm_window]: 11 visits, median 120.00, p90 120.00, "
            "92.7% of the time") in lines


def test_limit_and_out(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = replay(FIXTURE, "--mapping", "servicenow", "--item", ITEM, "--format", "json",
                    "--limit", "3", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.output == f"report written to {out}\n"
    report = json.loads(out.read_text("utf-8"))
    assert (report["cases"], report["accepted"], report["refused"]) == (3, 3, 0)


def test_a_mapping_file_and_a_states_file(tmp_path: Path) -> None:
    """A history mapping by path and a state mapping of one's own: Active -> Closed is then
    seen as a duplicate closing, which the workflow allows."""
    states = tmp_path / "states.yaml"
    states.write_text("kind: HistoryStates\nworkflow: incident\nstates:\n"
                      "  New: triage\n  Active: triage\n  Awaiting User Info: triage\n"
                      "  Awaiting Vendor: triage\n  Resolved: confirm_window\n"
                      "  Closed: closed_duplicate\n  '-100': null\n")
    result = replay(FIXTURE, "--mapping", ROOT / "engine" / "history" / "servicenow.yaml",
                    "--item", ITEM, "--states", states, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["unmapped_states"] == []
    assert report["states_file"] == str(states)
    # but Resolved -> Closed is refused now: only its timer (to closed) leaves confirm_window
    assert [(t["from"], t["to"], t["count"]) for t in report["refused_transitions"]] == [
        ("confirm_window", "closed_duplicate", 9), ("closed_duplicate", "triage", 1),
        ("confirm_window", "triage", 1)]
    assert (report["accepted"], report["refused"]) == (2, 8)


class Tags(HTMLParser):
    """Every tag of a page and every attribute, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attrs.extend(attrs)


def test_the_html_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    hostile = "<script>alert('x')</script>&"
    text = FIXTURE.read_text("utf-8").replace("INC108", hostile.replace("'", ""))
    text = text.replace(",-100,", ',"<img src=http://evil.example/x>",')
    log = tmp_path / "log.csv"
    log.write_text(text, encoding="utf-8")
    out = tmp_path / "report.html"
    result = replay(log, "--mapping", "servicenow", "--item", ITEM, "--format", "html",
                    "--out", out)
    assert result.exit_code == 0, result.output
    page = out.read_text("utf-8")
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(x)&lt;/script&gt;&amp;" in page
    assert "&lt;img src=http://evil.example/x&gt;" in page
    tags = Tags()
    tags.feed(page)
    assert "script" not in tags.names and "link" not in tags.names and "img" not in tags.names
    assert [v for k, v in tags.attrs if k in ("src", "href", "xlink:href")] == []
    assert "<svg" in page and "<style>" in page and "70.0% accepted end to end" in page


@pytest.mark.parametrize(("args", "message"), [
    (["--mapping", "servicenow", "--item", "report-incidnet"],
     "deskflow: --item: no catalog item report-incidnet (did you mean report-incident?)\n"),
    (["--mapping", "jira", "--item", ITEM],
     "deskflow: --mapping: no file jira and no built-in mapping of that name "
     "(servicenow, bpic2013)\n"),
    # the ServiceNow file lacks BPIC's columns: each is named at its place in the mapping
    (["--mapping", "bpic2013", "--item", ITEM],
     "deskflow: bpic2013.yaml:13:9: fields.case: column SR Number is not in the header of "),
])
def test_bad_options(args: list[str], message: str) -> None:
    result = replay(FIXTURE, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert result.stdout == ""


def test_a_missing_file() -> None:
    result = replay(DATA / "nowhere.csv", "--mapping", "servicenow", "--item", ITEM)
    assert result.exit_code == 2
    assert result.output == (f"deskflow: {DATA / 'nowhere.csv'}: cannot read the file: "
                             "No such file or directory\n")


def test_an_unknown_workflow_state_is_named_at_its_line(tmp_path: Path) -> None:
    states = tmp_path / "states.yaml"
    states.write_text("kind: HistoryStates\nworkflow: incident\nstates:\n  New: triage\n"
                      "  Closed: close\n")
    result = replay(FIXTURE, "--mapping", "servicenow", "--item", ITEM, "--states", states)
    assert result.exit_code == 2
    assert result.output == (f"deskflow: {states}:5:11: states.Closed: workflow incident has "
                             "no state close (did you mean closed?)\n")


def test_a_schema_error_is_named_at_its_line(tmp_path: Path) -> None:
    states = tmp_path / "states.yaml"
    states.write_text("kind: HistoryStates\nworkflow: incident\nstates:\n  New: [triage]\n")
    result = replay(FIXTURE, "--mapping", "servicenow", "--item", ITEM, "--states", states)
    assert result.exit_code == 2
    assert result.output == (f"deskflow: {states}:4:8: states.New: ['triage'] is not of type "
                             "'string', 'null'\n")


def test_a_states_file_of_another_workflow(tmp_path: Path) -> None:
    states = tmp_path / "states.yaml"
    states.write_text("kind: HistoryStates\nworkflow: laptop\nstates:\n  New: triage\n")
    result = replay(FIXTURE, "--mapping", "servicenow", "--item", ITEM, "--states", states)
    assert result.exit_code == 2
    assert result.output == (f"deskflow: {states}:2:11: workflow: the item's workflow is "
                             "incident, not laptop\n")


def test_the_shipped_state_mappings_are_valid() -> None:
    from catalog.loader import load_valid_catalog
    from engine.history.replay import STATES_DIR, load_states

    catalog = load_valid_catalog(ACME)
    workflow = catalog.workflow("incident")
    assert workflow is not None
    shipped = sorted(p.name for p in STATES_DIR.glob("*.yaml"))
    assert shipped == ["bpic2013-incident.yaml", "servicenow-incident.yaml"]
    for name in shipped:
        assert load_states(STATES_DIR / name, workflow).workflow == "incident"


# ---------------------------------------------------------------- the real logs (when present)

def raw_rows(path: Path) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive:
        member, = archive.namelist()
        text = archive.read(member).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(("name", "file", "case", "state"), [
    ("servicenow", "servicenow-incident-event-log.csv.zip", "number", "incident_state"),
    ("bpic2013", "volvo-it-incidents-bpic2013.csv.zip", "SR Number", "Status"),
])
def test_the_real_logs(name: str, file: str, case: str, state: str) -> None:
    path = REAL / file
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    result = replay(path, "--mapping", name, "--item", ITEM, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = raw_rows(path)
    cases = {r[case] for r in rows}
    assert report["cases"] == len(cases)
    assert report["rows_read"] == len(rows) and report["rows_skipped"] == 0
    assert report["accepted"] + report["refused"] + report["unfinished"] == len(cases)
    assert 0.5 < report["accepted_share"] < 1
    assert report["accepted_share"] == round(report["accepted"] / len(cases), 4)
    # independently: work after a closing (a closed state followed by an open one)
    closed = {"servicenow": {"Closed"}, "bpic2013": {"Completed"}}[name]
    by_case: dict[str, list[tuple]] = defaultdict(list)
    for line, r in enumerate(rows):
        key = ((int(r["sys_mod_count"]), datetime.strptime(r["sys_updated_at"], "%d/%m/%Y %H:%M"))
               if name == "servicenow" else (0, datetime.fromisoformat(r["Change Date+Time"])))
        by_case[r[case]].append((*key, line, r[state], r.get("Sub Status", "")))
    after_close = 0
    for events in by_case.values():
        events.sort()
        seen = [(e[-2], e[-1]) for e in events if e[-2] not in ("-100", "Unmatched")]
        for (a, sub_a), (b, _sub_b) in zip(seen, seen[1:], strict=False):
            was_closed = a in closed and (name == "servicenow" or sub_a == "Closed")
            if was_closed and b not in closed:
                after_close += 1
    refused = {(t["from"], t["to"]): t["count"] for t in report["refused_transitions"]}
    assert refused.get(("closed", "triage"), 0) == after_close
