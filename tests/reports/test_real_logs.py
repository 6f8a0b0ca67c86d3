"""`deskflow report --format json` on the real logs of ../shared/data, against figures computed
here from the raw CSV with the csv module only (as tests/history/test_real_logs.py does for the
stored data). One import per log and database, shared by the module; skipped when missing."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from statistics import median

import pytest
from click.testing import CliRunner

from tests.acme import ACME
from tests.history.conftest import fresh_database
from tests.history.test_real_logs import BPIC, SERVICENOW, raw_rows
from web.cli import main

PRIORITIES = {"1 - Critical": "p1", "2 - High": "p2", "3 - Moderate": "p3", "4 - Low": "p4"}


def imported(request, tmp_path_factory, acme, name, path):
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    source = fresh_database(request.param, tmp_path_factory.mktemp(name), acme)
    url = next(source)
    result = CliRunner().invoke(main, ["import", name, str(path), "--db", url, "--catalog", str(ACME)])
    assert result.exit_code == 0, result.output
    yield url
    next(source, None)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def servicenow(request, tmp_path_factory, acme):
    yield from imported(request, tmp_path_factory, acme, "servicenow", SERVICENOW)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bpic(request, tmp_path_factory, acme):
    yield from imported(request, tmp_path_factory, acme, "bpic2013", BPIC)


def report(url: str, source: str) -> dict:
    result = CliRunner().invoke(main, ["report", "--item", f"imported-{source}", "--format",
                                       "json", "--db", url, "--catalog", str(ACME)])
    assert result.exit_code == 0, result.output
    return {name: fig["rows"] for name, fig in json.loads(result.output).items()}


def test_servicenow_report_matches_the_raw_log(servicenow):
    rows = raw_rows(SERVICENOW)
    last: dict[str, tuple] = {}
    for i, row in enumerate(rows):
        key = (int(row["sys_mod_count"]), datetime.strptime(row["sys_updated_at"], "%d/%m/%Y %H:%M"), i)
        if row["number"] not in last or key > last[row["number"]][0]:
            last[row["number"]] = (key, row)
    final = [r for _, r in last.values()]
    got = report(servicenow, "servicenow")
    overview = {k: v for k, v in got["overview"]}
    assert overview["records"] == len(final)
    states = {k.removeprefix("state "): v for k, v in overview.items() if k.startswith("state ")}
    assert states == dict(Counter(r["incident_state"] for r in final))
    assert overview["groups"] == len({r["assignment_group"] for r in rows if r["assignment_group"] != "?"})
    met = sum(row[1] for row in got["sla_by_priority"])
    counted = sum(row[2] for row in got["sla_by_priority"])
    assert (met, counted) == (sum(r["made_sla"] == "true" for r in final), len(final))
    hours: dict[str, list[float]] = {}
    for r in final:
        if r["incident_state"] in ("Resolved", "Closed") and r["resolved_at"] != "?":
            hours.setdefault(PRIORITIES[r["priority"]], []).append(
                (datetime.strptime(r["resolved_at"], "%d/%m/%Y %H:%M")
                 - datetime.strptime(r["opened_at"], "%d/%m/%Y %H:%M")).total_seconds() / 3600)
    assert {row[0]: (row[4], row[5]) for row in got["times"] if row[4]} == {
        p: (len(v), round(median(v), 2)) for p, v in hours.items()}
    reassign = {k: v for k, v in got["reassignments"]}
    assert reassign["reassignments"] == sum(int(r["reassignment_count"]) for r in final)
    assert reassign["mean per record"] == round(reassign["reassignments"] / len(final), 2)
    assert dict(map(tuple, got["reopen_rate"]))["reopened"] == sum(
        int(r["reopen_count"]) > 0 for r in final)


def test_bpic_report_matches_the_raw_log(bpic):
    cases: dict[str, list[tuple[datetime, int, str, str]]] = {}
    for i, row in enumerate(raw_rows(BPIC)):
        cases.setdefault(row["SR Number"], []).append(
            (datetime.fromisoformat(row["Change Date+Time"]), i, row["ST Level"], row["Involved ST"]))
    escalated = pingpong = 0
    combos: Counter[str] = Counter()
    spans = []
    for changes in cases.values():
        changes.sort()
        levels = [c[2] for c in changes]
        combos["+".join(sorted(set(levels)))] += 1
        if any(a == "L1" and b in ("L2", "L3", "L2/L3") for a, b in zip(levels, levels[1:], strict=False)):
            escalated += 1
        groups = [c[3] for j, c in enumerate(changes) if j == 0 or c[3] != changes[j - 1][3]]
        pingpong += len(groups) != len(set(groups))
        spans.append((changes[-1][0] - changes[0][0]).total_seconds() / 3600)
    got = report(bpic, "bpic2013")
    overview = {k: v for k, v in got["overview"]}
    assert overview["records"] == len(cases)
    assert {k: v for k, v in got["tiers"]} == dict(combos)
    assert got["escalations"][-1] == ["L1", "any upper", escalated]
    assert {k: v for k, v in got["reassignments"]}["records with ping-pong"] == pingpong
    assert overview["median duration hours"] == round(median(spans), 2)
