"""`deskflow import` on hand-written fixtures: exact records, timelines, directory entries, bad
rows by line, idempotence, resuming, dry runs and unusable input."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime

from sqlalchemy import func, select

from engine.directory import sync_directory
from engine.models import Asset, AuditEvent, Group, ImportRun, Person, Request
from tests.history.conftest import DATA

SN = DATA / "servicenow.csv"
BPIC = DATA / "bpic2013.csv"
SN_SKIPPED = [
    f"{SN}:17: sys_updated_at: malformed date '31/02/2016 25:00' (expected %d/%m/%Y %H:%M)",
    f"{SN}:20: undecodable bytes (the file is read as utf-8-sig)",
    f"{SN}:23: reassignment_count: 'many' is not a whole number",
    f"{SN}:30: sys_updated_at: malformed date '2016-03-12 08:00' (expected %d/%m/%Y %H:%M)",
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def records(sessions) -> dict[str, Request]:
    with sessions() as s:
        return {r.number: r for r in s.scalars(select(Request))}


def timeline(sessions, number: str) -> list[tuple]:
    with sessions() as s:
        rid = s.scalar(select(Request.id).where(Request.number == number))
        return [(e.event, e.from_state, e.to_state, e.actor_id, e.at, (e.detail or {}).get("changes"),
                 (e.detail or {}).get("tier"))
                for e in s.scalars(select(AuditEvent).where(AuditEvent.request_id == rid)
                                   .order_by(AuditEvent.id))]


def count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_servicenow_cases_become_incidents_with_their_final_values(deskflow_import, sessions):
    result = deskflow_import("servicenow", SN)
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        result.output.splitlines()[0],
        "records: 11 created, 0 updated, 0 unchanged; 29 timeline events written",
        "directory: 19 people and 3 groups created; configuration items: 1 created",
        "rows skipped: 4", *SN_SKIPPED]
    assert result.output.startswith(f"11 cases from 31 rows of {SN} (servicenow) in ")
    got = records(sessions)
    assert sorted(got) == [f"SN-INC{n:03d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12)]
    one = got["SN-INC001"]  # rows out of order in the file
    assert (one.state, one.status, one.outcome, one.record_type, one.priority, one.impact,
            one.channel) == ("Closed", "closed", "code 6", "incident", "p3", "medium", "phone")
    assert (one.requester_id, one.assignment_group_id, one.assignee_id) == (
        "servicenow-caller-1", "servicenow-group-2", "servicenow-resolver-2")
    assert (one.created_at, one.responded_at, one.resolved_at, one.closed_at) == (
        at("2016-03-01 09:00"), at("2016-03-01 10:00"), at("2016-03-01 12:00"),
        at("2016-03-06 12:00"))
    assert (one.made_sla, one.reassignment_count, one.reopen_count) == (True, 1, 0)
    assert one.title == "Category 1 / Subcategory 1 / Symptom 1"
    two = got["SN-INC002"]
    assert (two.reopen_count, two.made_sla, two.resolved_at) == (1, False, at("2016-03-03 15:00"))
    assert got["SN-INC003"].reassignment_count == 2 and got["SN-INC003"].status == "open"
    four = got["SN-INC004"]  # "?" is empty
    assert (four.requester_id, four.assignment_group_id, four.priority, four.title, four.category) == (
        "servicenow-unknown-caller", None, None, "INC004", "")
    assert got["SN-INC005"].state == "Awaiting User Info"  # its bad row skipped, the rest kept
    assert got["SN-INC006"].state == "Resolved"
    assert (got["SN-INC009"].priority, got["SN-INC010"].channel) == ("p1", "email")
    eight = got["SN-INC008"]
    assert {k: eight.answers[k] for k in ("configuration_item", "problem", "change", "caused_by")} == {
        "configuration_item": "WSD 12", "problem": "Problem ID 7", "change": "CHG0000003",
        "caused_by": "CHG0000001"}
    with sessions() as s:
        ci = s.get(Asset, eight.ci_id)
        assert (ci.type, ci.key, ci.name) == ("application", "WSD 12", "WSD 12")
        caller = s.get(Person, "servicenow-caller-1")
        assert (caller.name, caller.active, caller.password_hash, caller.imported_from) == (
            "Caller 1", False, None, "servicenow")
        assert s.get(Group, "servicenow-group-3").imported_from == "servicenow"
    assert timeline(sessions, "SN-INC001") == [
        ("submitted", None, "New", "servicenow-opened-by-1", at("2016-03-01 09:00"), None, None),
        ("transition", "New", "Active", "servicenow-updated-by-1", at("2016-03-01 10:00"), None, None),
        ("record_changed", None, None, "servicenow-updated-by-1", at("2016-03-01 10:00"),
         {"assignment_group": ["servicenow-group-1", "servicenow-group-2"],
          "assignee": [None, "servicenow-resolver-2"]}, None),
        ("transition", "Active", "Resolved", "servicenow-updated-by-2", at("2016-03-01 12:00"), None, None),
        ("transition", "Resolved", "Closed", "servicenow-updated-by-3", at("2016-03-06 12:00"), None, None)]
    assert timeline(sessions, "SN-INC009")[1][5] == {"priority": ["p3", "p1"]}


def test_bpic_status_changes_become_events_with_groups_and_tiers(deskflow_import, sessions):
    result = deskflow_import("bpic2013", BPIC)
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[1:] == [
        "records: 8 created, 0 updated, 0 unchanged; 25 timeline events written",
        "directory: 4 people and 4 groups created; configuration items: 2 created",
        "rows skipped: 1",
        f"{BPIC}:19: Change Date+Time: malformed date '10/05/2012 10:00' (expected an ISO 8601 date)"]
    got = records(sessions)
    one = got["VI-1-001"]
    assert (one.state, one.status, one.assignment_group_id, one.support_tier, one.reassignment_count,
            one.impact, one.created_at, one.closed_at) == (
        "Completed - Closed", "closed", "bpic2013-v5-2nd", "L2", 1, "medium",
        at("2012-05-01 07:00"), at("2012-05-02 10:00"))
    assert [(e[0], e[2], e[5], e[6]) for e in timeline(sessions, "VI-1-001")] == [
        ("submitted", "Accepted - In Progress", None, "L1"),
        ("transition", "Queued - Awaiting Assignment", None, "L2"),
        ("record_changed", None, {"assignment_group": ["bpic2013-v30", "bpic2013-v5-2nd"],
                                  "tier": ["L1", "L2"]}, "L2"),
        ("transition", "Accepted - In Progress", None, "L2"),
        ("record_changed", None, {"assignee": ["bpic2013-se-anna", "bpic2013-se-bo"]}, "L2"),
        ("transition", "Completed - Closed", None, "L2")]
    assert got["VI-1-003"].reassignment_count == 2  # ping-pong V30 -> V7 2nd -> V30
    assert got["VI-1-004"].reopen_count == 1
    assert got["VI-1-005"].state == "Completed - Closed"  # rows sorted by time
    assert got["VI-1-006"].state == "Accepted - In Progress"
    assert (got["VI-1-007"].support_tier, got["VI-1-008"].priority) == ("L3", "p1")


def test_running_twice_updates_and_never_duplicates(deskflow_import, sessions, tmp_path):
    deskflow_import("servicenow", SN)
    events = count(sessions, AuditEvent)
    again = deskflow_import("servicenow", SN)
    assert "records: 0 created, 0 updated, 11 unchanged; 0 timeline events written" in again.output
    changed = tmp_path / "changed.csv"
    changed.write_bytes(SN.read_bytes().replace(b"INC012,New,true,0,0,1", b"INC012,Active,true,0,0,1"))
    third = deskflow_import("servicenow", changed)
    assert "records: 0 created, 1 updated, 10 unchanged; 2 timeline events written" in third.output
    assert count(sessions, Request) == 11
    assert count(sessions, AuditEvent) == events + 1
    assert records(sessions)["SN-INC012"].state == "Active"
    with sessions() as s:
        runs = list(s.scalars(select(ImportRun).order_by(ImportRun.id)))
    assert [(r.source, r.counts["created"], r.finished_at is not None) for r in runs] == [
        ("servicenow", 11, True), ("servicenow", 0, True), ("servicenow", 0, True)]


def test_an_interrupted_import_continues_where_it_stopped(deskflow_import, sessions):
    first = deskflow_import("servicenow", SN, "--stop-after", "4")
    assert "records: 4 created, 0 updated, 0 unchanged" in first.output
    assert "stopped after 4 cases: run the same command again to continue" in first.output
    assert count(sessions, Request) == 4
    rest = deskflow_import("servicenow", SN)
    assert "records: 7 created, 0 updated, 4 unchanged" in rest.output
    assert count(sessions, Request) == 11


def test_a_dry_run_writes_nothing(deskflow_import, sessions):
    people = count(sessions, Person)
    result = deskflow_import("servicenow", SN, "--dry-run")
    assert result.output.startswith("dry run, nothing written: 11 cases from 31 rows")
    assert "records: 11 created, 0 updated, 0 unchanged" in result.output
    assert (count(sessions, Request), count(sessions, Person), count(sessions, ImportRun)) == (
        0, people, 0)


def test_a_zipped_export_imports_like_the_plain_one(deskflow_import, sessions, tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(BPIC, "VINST.csv")
    result = deskflow_import("bpic2013", archive)
    assert "records: 8 created" in result.output
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(archive.read_bytes()[:300])
    broken = deskflow_import("bpic2013", truncated)
    assert broken.exit_code == 2
    assert broken.output.startswith(f"deskflow: {truncated}: not a readable zip archive (truncated "
                                    "or damaged: ")


def test_a_custom_mapping_is_checked_with_positions(deskflow_import, sessions, tmp_path):
    mapping = tmp_path / "glpi.yaml"
    mapping.write_text("kind: HistoryMapping\nid: glpi\ncolour: blue\nfields:\n  case: ID\n"
                       "  at: Last update\n  state: Status\n  assignee_group: Group\n")
    result = deskflow_import("csv", BPIC, "--mapping", mapping)
    assert result.exit_code == 2
    assert result.output == (f"deskflow: {mapping}:3:1: colour: unknown key colour (known: ci_type, "
                             "closed_states, date_format, delimiter, encoding, extra, fields, groups, ...)\n"
                             f"{mapping}:8:3: fields.assignee_group: unknown key assignee_group "
                             "(did you mean assignment_group?)\n")
    mapping.write_text("kind: HistoryMapping\nid: glpi\nfields:\n  case: ID\n"
                       "  at: Change Date+Time\n  state:\n    columns: [Status, Sub-Status]\n")
    result = deskflow_import("csv", BPIC, "--mapping", mapping)
    assert result.exit_code == 2
    assert result.output == (
        f"deskflow: {mapping}:4:9: fields.case: column ID is not in the header of {BPIC} "
        "(known: Activity, Activity Level, Change Date+Time, Country, Involved Org line 3, "
        "Involved ST, Involved ST 2, Involved ST Function Div, ...)\n"
        f"{mapping}:7:23: fields.state.columns[1]: column Sub-Status is not in the header of "
        f"{BPIC} (did you mean Sub Status?)\n")
    assert count(sessions, Request) == 0


def test_a_mapping_names_existing_people_and_groups(deskflow_import, sessions, tmp_path):
    mapping = tmp_path / "volvo.yaml"
    text = (DATA.parent.parent.parent / "engine" / "history" / "bpic2013.yaml").read_text()
    mapping.write_text(text.replace("ci_type: application\n", "ci_type: application\n"
                                    "people: {se-Anna: alice}\ngroups: {V30: service-desk}\n"))
    result = deskflow_import("csv", BPIC, "--mapping", mapping, "--time-zone", "Europe/Stockholm")
    assert "directory: 3 people and 3 groups created" in result.output
    got = records(sessions)["VI-1-002"]
    assert (got.assignee_id, got.assignment_group_id) == ("alice", "service-desk")
    mapping.write_text(text.replace("ci_type: application\n", "ci_type: application\n"
                                    "people: {se-Anna: nobody}\n"))
    refused = deskflow_import("csv", BPIC, "--mapping", mapping)
    assert refused.exit_code == 2
    assert refused.output == f"deskflow: {mapping}: people.se-Anna: no person nobody in the database\n"


def test_the_directory_sync_leaves_imported_people_alone(deskflow_import, sessions, acme):
    deskflow_import("servicenow", SN)
    with sessions.begin() as s:
        sync_directory(s, acme.directory)
    with sessions() as s:
        imported = list(s.scalars(select(Person).where(Person.imported_from == "servicenow")))
        assert len(imported) == 19
        assert not any(p.active for p in imported)
        assert s.get(Group, "servicenow-group-1") is not None


def test_the_command_offers_every_built_in_mapping():
    from engine.history.mapping import BUILT_IN as shipped
    from web.cli_import import BUILT_IN as offered

    assert offered == shipped


def test_imported_channels_are_the_record_channels():
    import engine.service  # noqa: F401 - the record use cases, loaded as the app loads them
    from engine.history.mapping import CHANNELS as imported
    from engine.records import CHANNELS

    assert imported == CHANNELS


def test_dates_are_read_in_the_time_zone_asked_for(deskflow_import, sessions, tmp_path):
    result = deskflow_import("servicenow", SN, "--time-zone", "Europe/Amsterdam")
    assert "records: 11 created" in result.output
    one = records(sessions)["SN-INC001"]
    assert (one.created_at, one.closed_at) == (at("2016-03-01 08:00"), at("2016-03-06 11:00"))
    unknown = deskflow_import("servicenow", SN, "--time-zone", "Mars/Olympus")
    assert unknown.exit_code == 2
    assert unknown.output == ("deskflow: --time-zone: unknown time zone Mars/Olympus (use an IANA "
                              "name such as Europe/Amsterdam)\n")


def test_an_empty_file_or_a_zip_of_two_files_is_refused(deskflow_import, sessions, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = deskflow_import("servicenow", empty)
    assert (result.exit_code, result.output) == (
        2, f"deskflow: {empty}: the file is empty (no header line)\n")
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as z:
        z.write(SN, "a.csv")
        z.write(SN, "b.csv")
    result = deskflow_import("servicenow", two)
    assert (result.exit_code, result.output) == (
        2, f"deskflow: {two}: a zip archive must hold exactly one CSV file (it holds: a.csv, b.csv)\n")
    assert count(sessions, Request) == 0
