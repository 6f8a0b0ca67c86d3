"""`deskflow report` on a small imported history (tests/data/history/bpic2013.csv, BPIC 2013
style), on SQLite and PostgreSQL; the expected figures are counted by hand from the file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.acme import ACME
from tests.history.conftest import DATA, fresh_database
from web.cli import main

BPIC = ["--item", "imported-bpic2013"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def imported(request, tmp_path_factory, acme):
    source = fresh_database(request.param, tmp_path_factory.mktemp("reports"), acme)
    url = next(source)
    for name in ("servicenow", "bpic2013"):
        result = CliRunner().invoke(main, ["import", name, str(DATA / f"{name}.csv"), "--db", url,
                                           "--catalog", str(ACME)])
        assert result.exit_code in (0, 1), result.output  # 1: rows skipped, on purpose
    yield url
    next(source, None)


def report(url: str, *args: str) -> dict:
    result = CliRunner().invoke(main, ["report", *args, "--format", "json", "--db", url,
                                       "--catalog", str(ACME)])
    assert result.exit_code == 0, result.output
    return {name: fig["rows"] for name, fig in json.loads(result.output).items()}


def test_bpic_figures_counted_by_hand(imported):
    got = report(imported, *BPIC)
    # 8 cases (1-006 keeps its first row only: its second has a malformed date)
    overview = dict(map(tuple, got["overview"]))
    assert overview["records"] == 8
    assert overview["groups"] == 4  # V30, V5 2nd, V7 2nd, V9 3rd
    # durations 27, 1/3, 26, 49, 3, 0, 25, 0 hours: median (3 + 25) / 2
    assert overview["median duration hours"] == 14.0
    # 1-001 and 1-003 went L1 → L2, 1-007 L1 → L3
    assert got["escalations"] == [["L1", "L2", 2], ["L1", "L3", 1], ["L1", "any upper", 3]]
    assert got["tiers"] == [["L1", 5], ["L1+L2", 2], ["L1+L3", 1]]
    # 1-003: V30 → V7 2nd → V30
    assert dict(map(tuple, got["reassignments"]))["records with ping-pong"] == 1


def test_one_figure_in_text_and_csv(imported):
    text = CliRunner().invoke(main, ["report", "tiers", *BPIC, "--db", imported,
                                     "--catalog", str(ACME)])
    assert text.exit_code == 0, text.output
    assert text.output.splitlines() == ["Support-tier combinations", "=========================",
                                        "tiers  records", "-----  -------", "L1     5",
                                        "L1+L2  2", "L1+L3  1", ""]
    out = CliRunner().invoke(main, ["report", "tiers", *BPIC, "--format", "csv", "--db", imported,
                                    "--catalog", str(ACME)])
    assert out.output.splitlines() == ["tiers,records", "L1,5", "L1+L2,2", "L1+L3,1"]


@pytest.mark.parametrize(("args", "message"), [
    (["nonsense"], "deskflow: There is no report named 'nonsense' (name: One of overview, "),
    (["--from", "2012-99-01"], "deskflow: These report filters are wrong (from: '2012-99-01' is "
                               "not a date (YYYY-MM-DD).)"),
    (["--group", "ghosts"], "deskflow: These report filters are wrong (group: Unknown group "
                            "'ghosts'.)"),
])
def test_bad_arguments_are_refused_with_our_message(imported, args, message):
    result = CliRunner().invoke(main, ["report", *args, "--db", imported, "--catalog", str(ACME)])
    assert result.exit_code != 0
    assert result.output.startswith(message), result.output
