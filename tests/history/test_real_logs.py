"""The real logs of ../shared/data imported, checked against figures computed here from the raw
CSV with the csv module only (no Deskflow code). Skipped when the files are missing."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from datetime import datetime
from statistics import median

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.db import make_engine, make_sessionmaker
from engine.models import AuditEvent, Group, Request
from tests.acme import ACME, ROOT
from tests.history.conftest import fresh_database
from web.cli import main

DATA = ROOT.parent / "shared" / "data"
SERVICENOW = DATA / "servicenow-incident-event-log.csv.zip"
BPIC = DATA / "volvo-it-incidents-bpic2013.csv.zip"


def raw_rows(path) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive:
        member, = archive.namelist()
        text = archive.read(member).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def imported(request, tmp_path_factory, acme, name: str, path):
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    url_source = fresh_database(request.param, tmp_path_factory.mktemp(name), acme)
    url = next(url_source)
    result = CliRunner().invoke(main, ["import", name, str(path), "--db", url,
                                       "--catalog", str(ACME)])
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()
    next(url_source, None)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def servicenow(request, tmp_path_factory, acme):
    yield from imported(request, tmp_path_factory, acme, "servicenow", SERVICENOW)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bpic(request, tmp_path_factory, acme):
    yield from imported(request, tmp_path_factory, acme, "bpic2013", BPIC)


@pytest.fixture(scope="module")
def servicenow_final():
    """Each incident's last update: the highest sys_mod_count, then the latest sys_updated_at."""
    if not SERVICENOW.is_file():
        pytest.skip(f"{SERVICENOW} is missing")
    rows = raw_rows(SERVICENOW)
    last: dict[str, tuple] = {}
    for i, row in enumerate(rows):
        key = (int(row["sys_mod_count"]),
               datetime.strptime(row["sys_updated_at"], "%d/%m/%Y %H:%M"), i)
        if row["number"] not in last or key > last[row["number"]][0]:
            last[row["number"]] = (key, row)
    groups = {r["assignment_group"] for r in rows if r["assignment_group"] != "?"}
    return {n: r for n, (_, r) in last.items()}, groups


def test_servicenow_figures_match_the_raw_log(servicenow, servicenow_final):
    final, groups = servicenow_final
    with servicenow() as s:
        records = select(Request).where(Request.import_source == "servicenow").subquery()
        assert s.scalar(select(func.count()).select_from(records)) == len(final)
        states = dict(s.execute(select(records.c.state, func.count()).group_by(records.c.state)).all())
        assert states == dict(Counter(r["incident_state"] for r in final.values()))
        made = s.scalar(select(func.count()).select_from(records).where(records.c.made_sla.is_(True)))
        assert made / len(final) == sum(r["made_sla"] == "true" for r in final.values()) / len(final)
        total = s.scalar(select(func.sum(records.c.reassignment_count)))
        assert total / len(final) == pytest.approx(
            sum(int(r["reassignment_count"]) for r in final.values()) / len(final))
        reopened = s.scalar(select(func.count()).select_from(records).where(records.c.reopen_count > 0))
        assert reopened == sum(int(r["reopen_count"]) > 0 for r in final.values())
        assert s.scalar(select(func.count()).select_from(Group)
                        .where(Group.imported_from == "servicenow")) == len(groups)


def test_servicenow_hours_to_resolve_match_the_raw_log(servicenow, servicenow_final):
    """Median hours from opened to resolved per priority, of the incidents resolved or closed."""
    final, _ = servicenow_final
    priorities = {"1 - Critical": "p1", "2 - High": "p2", "3 - Moderate": "p3", "4 - Low": "p4"}
    expected: dict[str, list[float]] = {}
    for r in final.values():
        if r["incident_state"] in ("Resolved", "Closed") and r["resolved_at"] != "?":
            hours = (datetime.strptime(r["resolved_at"], "%d/%m/%Y %H:%M")
                     - datetime.strptime(r["opened_at"], "%d/%m/%Y %H:%M")).total_seconds() / 3600
            expected.setdefault(priorities[r["priority"]], []).append(hours)
    got: dict[str, list[float]] = {}
    with servicenow() as s:
        for priority, opened, resolved in s.execute(
                select(Request.priority, Request.created_at, Request.resolved_at)
                .where(Request.import_source == "servicenow", Request.resolved_at.is_not(None))):
            got.setdefault(priority, []).append((resolved - opened).total_seconds() / 3600)
    assert {p: median(v) for p, v in got.items()} == {p: median(v) for p, v in expected.items()}
    assert {p: len(v) for p, v in got.items()} == {p: len(v) for p, v in expected.items()}


def test_bpic_figures_match_the_raw_log(bpic):
    rows = raw_rows(BPIC)
    cases: dict[str, list[tuple[datetime, int, str]]] = {}
    for i, row in enumerate(rows):
        cases.setdefault(row["SR Number"], []).append(
            (datetime.fromisoformat(row["Change Date+Time"]), i, row["ST Level"]))
    escalated = set()
    for number, changes in cases.items():
        levels = [level for _, _, level in sorted(changes)]
        pairs = zip(levels, levels[1:], strict=False)
        if any(a == "L1" and b in ("L2", "L3", "L2/L3") for a, b in pairs):
            escalated.add(number)
    with bpic() as s:
        numbers = set(s.scalars(select(Request.external_id).where(Request.import_source == "bpic2013")))
        assert numbers == set(cases)
        found = set()
        for number, detail in s.execute(
                select(Request.external_id, AuditEvent.detail)
                .join(Request, Request.id == AuditEvent.request_id)
                .where(Request.import_source == "bpic2013", AuditEvent.event == "record_changed")):
            old, new = (detail.get("changes") or {}).get("tier", (None, None))
            if old == "L1" and new in ("L2", "L3", "L2/L3"):
                found.add(number)
        assert found == escalated
        assert s.scalar(select(func.count()).select_from(Group)
                        .where(Group.imported_from == "bpic2013")) == len({r["Involved ST"] for r in rows})


def test_bpic_ping_pong_shows_in_the_timeline(bpic):
    """Cases where a team recurs after another team had it (A -> B -> A), from the raw rows and
    from the imported events (the opening group, then each group change)."""
    rows = raw_rows(BPIC)
    teams: dict[str, list[tuple[datetime, int, str]]] = {}
    for i, row in enumerate(rows):
        teams.setdefault(row["SR Number"], []).append(
            (datetime.fromisoformat(row["Change Date+Time"]), i, row["Involved ST"]))

    def recurs(sequence: list[str]) -> bool:
        runs = [g for i, g in enumerate(sequence) if i == 0 or g != sequence[i - 1]]
        return len(runs) != len(set(runs))

    expected = {n for n, changes in teams.items() if recurs([g for _, _, g in sorted(changes)])}
    sequences: dict[str, list[str]] = {}
    with bpic() as s:
        for number, event, detail in s.execute(
                select(Request.external_id, AuditEvent.event, AuditEvent.detail)
                .join(Request, Request.id == AuditEvent.request_id)
                .where(Request.import_source == "bpic2013",
                       AuditEvent.event.in_(("submitted", "record_changed")))
                .order_by(AuditEvent.id)):
            if event == "submitted":
                sequences[number] = [detail["group"]]
            elif "assignment_group" in detail.get("changes", {}):
                sequences[number].append(detail["changes"]["assignment_group"][1])
    assert {n for n, seq in sequences.items() if recurs(seq)} == expected
    assert expected
