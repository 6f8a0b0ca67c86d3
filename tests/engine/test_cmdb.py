"""Configuration items through engine.cmdb and `deskflow assets import`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine import cmdb
from engine.cmdb import CIInput
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.models import Asset
from web.cli import main


@pytest.fixture
def s(service, sessions):
    with sessions.begin() as session:
        yield session


def server(s, acme, clock, host, actor="erin"):
    return cmdb.create(s, acme, actor, "server", CIInput(
        name=host, owner_group_id="it-ops", fields={"hostname": host,
                                                    "environment": "production"}), clock())


def test_a_member_of_the_owner_group_creates_a_server_with_its_key(s, acme, clock):
    ci = server(s, acme, clock, "db01")
    assert (ci.type, ci.key, ci.owner_group_id, ci.status) == ("server", "db01", "it-ops", "in_use")
    assert ci.data == {"hostname": "db01", "environment": "production"}


def test_someone_outside_the_owner_group_may_not_create_or_change_it(s, acme, clock):
    with pytest.raises(NotAllowed, match="only admins and members of the owner group"):
        server(s, acme, clock, "db01", actor="alice")
    ci = server(s, acme, clock, "db01")
    with pytest.raises(NotAllowed):
        cmdb.retire(s, "alice", ci.id, clock())


def test_bad_fields_are_refused_field_by_field(s, acme, clock):
    with pytest.raises(InvalidInput) as exc:
        cmdb.create(s, acme, "erin", "server", CIInput(
            name="", owner_group_id="it-ops", fields={"environment": "moon"}), clock())
    assert exc.value.fields == {"hostname": ["This field is required."],
                                "environment": ["moon is not one of the choices."],
                                "name": ["This field is required."]}


def test_a_second_item_with_the_same_key_is_a_conflict(s, acme, clock):
    server(s, acme, clock, "db01")
    with pytest.raises(Conflict, match="a Server with hostname db01 exists already"):
        server(s, acme, clock, "db01")


def test_depends_on_refuses_a_cycle_and_impact_follows_dependants(s, acme, clock):
    db, app, web = (server(s, acme, clock, h) for h in ("db01", "app01", "web01"))
    cmdb.relate(s, "erin", app.id, "depends_on", db.id, clock())
    cmdb.relate(s, "erin", web.id, "depends_on", app.id, clock())
    with pytest.raises(Conflict, match="web01 already depends on db01: that would be a cycle"):
        cmdb.relate(s, "erin", db.id, "depends_on", web.id, clock())
    assert [c.name for c in cmdb.impacted(s, db.id)] == ["app01", "web01"]
    out, into = cmdb.relations(s, app.id)
    assert [(r.kind, c.name) for r, c in out] == [("depends_on", "db01")]
    assert [(r.kind, c.name) for r, c in into] == [("depends_on", "web01")]


def test_retiring_takes_an_item_out_of_use_once(s, acme, clock):
    ci = server(s, acme, clock, "db01")
    cmdb.retire(s, "erin", ci.id, clock())
    with pytest.raises(Conflict, match=f"item {ci.id} is retired already"):
        cmdb.retire(s, "erin", ci.id, clock())


def test_my_assets_lists_what_a_person_owns(s, acme, clock):
    cmdb.create(s, acme, "oscar", "laptop", CIInput(
        name="Alice's laptop", owner_id="alice", fields={"serial_number": "SN1"}), clock())
    assert [a.key for a in cmdb.my_assets(s, "alice")] == ["SN1"]
    assert cmdb.my_assets(s, "bob") == []


CSV = ("name,owner,status,serial_number,model,purchased\n"
       "Alice laptop,alice,in_use,SN1,X1,2025-01-02\n"
       "Bad,nobody,in_use,SN2,X1,2025-13-01\n"
       "Bob laptop,bob,in_stock,SN3,,\n")


def run_import(db_url, tmp_path, text, *extra):
    path = tmp_path / "laptops.csv"
    path.write_text(text)
    return CliRunner().invoke(main, ["assets", "import", str(path), "--type", "laptop",
                                     "--db", db_url, "--catalog", "examples/acme", *extra])


def count(sessions):
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Asset))


def test_import_creates_good_rows_and_reports_broken_ones_by_line(service, sessions, db_url,
                                                                   tmp_path):
    result = run_import(db_url, tmp_path, CSV)
    assert result.exit_code == 1
    assert "2 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert (f"{tmp_path / 'laptops.csv'}:3: purchased: Must be a date (YYYY-MM-DD). "
            "owner: nobody is not a known person.") in result.output
    assert count(sessions) == 2


def test_a_second_import_updates_and_never_duplicates(service, sessions, db_url, tmp_path):
    run_import(db_url, tmp_path, CSV)
    again = run_import(db_url, tmp_path, CSV.replace("Bob laptop,bob,in_stock,SN3,,",
                                                     "Bob laptop,bob,in_use,SN3,X2,"))
    assert "0 created, 1 updated, 1 unchanged, 1 rejected" in again.output
    assert count(sessions) == 2


def test_a_dry_run_writes_nothing(service, sessions, db_url, tmp_path):
    result = run_import(db_url, tmp_path, CSV, "--dry-run")
    assert "dry run: 2 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert count(sessions) == 0


def test_an_unknown_column_stops_the_import_before_any_row(service, sessions, db_url, tmp_path):
    result = run_import(db_url, tmp_path, "name,colour\nx,red\n")
    assert result.exit_code != 0
    assert "unknown column colour" in result.output
    assert count(sessions) == 0


def open_id(sessions, model, request_id):
    with sessions() as s:
        return s.scalar(select(model.id).where(model.request_id == request_id,
                                               model.status.in_(("open", "pending"))))


def test_a_delivered_laptop_is_recorded_with_the_fulfillers_serial_number(service, sessions,
                                                                          answers):
    from engine.models import Approval, Task

    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    with sessions() as s:
        approval = s.scalar(select(Approval.id).where(Approval.request_id == req.id))
    service.approve(approval, "bob")
    task = open_id(sessions, Task, req.id)
    service.claim_task(task, "frank")
    service.complete_task(task, "frank", answers={"serial_number": "SN-NEW-1",
                                                  "shipped_with_dock": False})
    with sessions() as s:
        ci = s.scalars(select(Asset).where(Asset.request_id == req.id)).one()
        mine = [a.key for a in cmdb.my_assets(s, "alice")]
    assert (ci.type, ci.key, ci.owner_id, ci.status) == ("laptop", "SN-NEW-1", "alice", "in_use")
    assert ci.data == {"model": "std14", "serial_number": "SN-NEW-1"}
    assert mine == ["SN-NEW-1"]


INCIDENT = {"short_description": "My laptop does not boot", "affected_service": "laptop",
            "description": "It shows a black screen after the logo, every time.",
            "impact": "low", "urgency": "high", "contact_email": "alice.jansen@acme.example"}


@pytest.mark.parametrize(("owner", "status", "message"), [
    ("bob", "in_use", "Bob's laptop is not assigned to Alice Jansen."),
    ("alice", "retired", "Bob's laptop is retired."),
])
def test_an_incident_refuses_a_laptop_that_is_not_the_requesters(service, sessions, acme, clock,
                                                                  owner, status, message):
    with sessions.begin() as s:
        laptop = cmdb.create(s, acme, "oscar", "laptop", CIInput(
            name="Bob's laptop", owner_id=owner, status=status,
            fields={"serial_number": "SN-B1"}), clock()).id
    with pytest.raises(InvalidInput) as exc:
        service.submit("report-incident", "alice", {**INCIDENT, "affected_device": str(laptop)})
    assert exc.value.fields == {"affected_device": [message]}


def test_an_incident_refuses_an_item_of_another_type(service, sessions, acme, clock):
    with sessions.begin() as s:
        db = server(s, acme, clock, "db01").id
    with pytest.raises(InvalidInput) as exc:
        service.submit("report-incident", "alice", {**INCIDENT, "affected_device": str(db)})
    assert exc.value.fields == {"affected_device": [f"There is no laptop {db}."]}


def test_offboarding_lists_the_leavers_assets_and_takes_them_back_into_stock(
        service, sessions, acme, clock, answers):
    from engine import people
    from engine.models import Approval, Request, Task

    with sessions.begin() as s:
        laptop = cmdb.create(s, acme, "oscar", "laptop", CIInput(
            name="Peter's laptop", owner_id="peter", fields={"serial_number": "SN-P1"}),
            clock()).id
    req = service.submit("offboarding", "alice", answers["offboarding"])
    with sessions() as s:
        approval = s.scalars(select(Approval).where(Approval.request_id == req.id,
                                                    Approval.decision == "pending")).first()
    service.approve(approval.id, approval.approver_id)
    with sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.request_id == req.id,
                                                  Task.status == "open")))
        workers = {t.id: people.members(s, t.queue)[0] for t in tasks}
        equipment = next(t for t in tasks if t.name == "equipment")
    assert "Recorded in their name: Peter's laptop (SN-P1)." in equipment.instructions
    for t in tasks:
        service.complete_task(t.id, workers[t.id])
    with sessions() as s:
        ci = s.get(Asset, laptop)
        assert s.scalar(select(Request.state).where(Request.id == req.id)) == "completed"
        assert (ci.status, ci.owner_id) == ("in_stock", None)
        assert [r.number for r in cmdb.records_touching(s, laptop)] == [req.number]


def test_migration_0006_keeps_each_assets_model_and_serial(tmp_path):
    from sqlalchemy import create_engine, text

    from engine.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO people (id, name, email, title, department, location, active) "
                       "VALUES ('alice', 'Alice', 'a@example.com', '', '', '', 1)"))
        c.execute(text("INSERT INTO assets (owner_id, type, name, model, serial, created_at) "
                       "VALUES ('alice', 'laptop', 'Old laptop', 'std14', 'SN-OLD', "
                       "'2026-01-02 03:04:05')"))
    upgrade(url, "0006")
    with engine.connect() as c:
        row = c.execute(text("SELECT type, key, status, data, updated_at FROM assets")).one()
    engine.dispose()
    assert row[:3] == ("laptop", "SN-OLD", "in_use")
    assert json.loads(row[3]) == {"model": "std14", "serial": "SN-OLD"}
    assert row[4].startswith("2026-01-02 03:04:05")


def test_an_open_incident_naming_a_laptop_is_among_its_records(service, sessions, acme, clock):
    with sessions.begin() as s:
        laptop = cmdb.create(s, acme, "oscar", "laptop", CIInput(
            name="Alice's laptop", owner_id="alice", fields={"serial_number": "SN-A1"}),
            clock()).id
    req = service.submit("report-incident", "alice", {**INCIDENT, "affected_device": str(laptop)})
    with sessions() as s:
        assert [r.number for r in cmdb.records_touching(s, laptop, catalog=acme)] == [req.number]
        assert cmdb.records_touching(s, laptop) == []
