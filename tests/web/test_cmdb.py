"""The CMDB pages: my assets, the list, a CI's page, the forms and relationships."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from engine import cmdb
from engine.models import Asset


def add(service, type_id, name, **kw):
    with service.sessions.begin() as s:
        ci = cmdb.create(s, service.catalog(), "oscar", type_id, cmdb.CIInput(name=name, **kw),
                         datetime.now(UTC))
        return ci.id


def test_my_assets_shows_what_i_own_and_nothing_of_others(client, auth, service):
    add(service, "laptop", "Alice's laptop", owner_id="alice", fields={"serial_number": "SN-A1"})
    add(service, "laptop", "Bob's laptop", owner_id="bob", fields={"serial_number": "SN-B1"})
    auth.login("alice")
    html = client.get("/assets/mine").get_data(as_text=True)
    assert "SN-A1" in html and "SN-B1" not in html
    assert 'href="/assets/mine">My assets</a>' in html


def test_my_assets_says_what_will_appear_when_empty(client, auth):
    auth.login("alice")
    assert "No assets are recorded for you." in client.get("/assets/mine").get_data(as_text=True)


def test_the_list_filters_by_type_and_searches_name_and_key(client, auth, service):
    add(service, "laptop", "Alice's laptop", owner_id="alice", fields={"serial_number": "SN-A1"})
    add(service, "server", "db01", owner_group_id="it-ops", fields={"hostname": "db01"})
    auth.login("grace")
    servers = client.get("/cmdb?type=server").get_data(as_text=True)
    assert "db01" in servers and "SN-A1" not in servers
    found = client.get("/cmdb?q=sn-a").get_data(as_text=True)
    assert "SN-A1" in found and "db01</a>" not in found


def test_a_requester_may_not_browse_the_cmdb(client, auth):
    auth.login("alice")
    assert client.get("/cmdb").status_code == 403


def test_the_create_form_checks_fields_like_an_order_form(client, auth, post, service):
    auth.login("oscar")
    bad = post("/cmdb/new/server", {"name": "web01", "owner_group": "it-ops",
                                    "hostname": "", "environment": "moon"}, page="/cmdb")
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "This field is required." in html and "moon is not one of the choices." in html
    good = post("/cmdb/new/server", {"name": "web01", "owner_group": "it-ops",
                                     "hostname": "web01", "environment": "production"},
                page="/cmdb")
    assert good.status_code == 302
    with service.sessions() as s:
        ci = s.scalars(select(Asset).where(Asset.key == "web01")).one()
    assert ci.data == {"hostname": "web01", "environment": "production"}


def test_the_page_shows_relationships_both_ways_and_the_impact(client, auth, post, service):
    db = add(service, "server", "db01", owner_group_id="it-ops", fields={"hostname": "db01"})
    app = add(service, "application", "Payroll", owner_group_id="it-ops", fields={"code": "PAY"})
    auth.login("erin")
    assert post(f"/cmdb/{app}/relate", {"kind": "depends_on", "target": str(db)},
                page="/cmdb").status_code == 302
    page = client.get(f"/cmdb/{db}").get_data(as_text=True)
    assert "Payroll</a> depends on this item" in page
    assert "Nothing depends on it." not in page
    cycle = post(f"/cmdb/{db}/relate", {"kind": "depends_on", "target": str(app)}, page="/cmdb")
    assert cycle.status_code == 409
    assert "Payroll already depends on db01: that would be a cycle" in cycle.get_data(as_text=True)


def test_only_the_owner_group_and_admins_may_edit(client, auth, post, service):
    db = add(service, "server", "db01", owner_group_id="it-ops", fields={"hostname": "db01"})
    auth.login("grace")
    assert client.get(f"/cmdb/{db}/edit").status_code == 403
    auth.logout()
    auth.login("heidi")
    saved = post(f"/cmdb/{db}/edit", {"name": "db01 (primary)", "owner_group": "it-ops",
                                      "hostname": "db01", "status": "in_use"}, page="/cmdb")
    assert saved.status_code == 302
    assert "db01 (primary)" in client.get(f"/cmdb/{db}").get_data(as_text=True)


INCIDENT = {"short_description": "My laptop does not boot", "affected_service": "laptop",
            "description": "It shows a black screen after the logo, every time.",
            "impact": "low", "urgency": "high", "contact_email": "alice.jansen@acme.example"}


def test_the_incident_form_offers_only_my_laptops(client, auth, service):
    mine = add(service, "laptop", "Alice's laptop", owner_id="alice",
               fields={"serial_number": "SN-A1"})
    add(service, "laptop", "Bob's laptop", owner_id="bob", fields={"serial_number": "SN-B1"})
    auth.login("alice")
    html = client.get("/items/report-incident").get_data(as_text=True)
    assert f'<option value="{mine}">Alice&#39;s laptop (SN-A1)</option>' in html
    assert "SN-B1" not in html


def test_the_portal_refuses_another_persons_laptop(client, auth, post, service):
    bobs = add(service, "laptop", "Bob's laptop", owner_id="bob", fields={"serial_number": "SN-B1"})
    auth.login("alice")
    response = post("/items/report-incident", {**INCIDENT, "affected_device": str(bobs)},
                    page="/items/report-incident")
    assert response.status_code == 422
    assert "Bob&#39;s laptop is not assigned to Alice Jansen." in response.get_data(as_text=True)


def test_the_portal_accepts_my_own_laptop(client, auth, post, service):
    mine = add(service, "laptop", "Alice's laptop", owner_id="alice",
               fields={"serial_number": "SN-A1"})
    auth.login("alice")
    response = post("/items/report-incident", {**INCIDENT, "affected_device": str(mine)},
                    page="/items/report-incident")
    assert response.status_code == 302


def test_the_ci_page_lists_the_open_incident_about_it(client, auth, post, service):
    mine = add(service, "laptop", "Alice's laptop", owner_id="alice",
               fields={"serial_number": "SN-A1"})
    req = service.submit("report-incident", "alice", {**INCIDENT, "affected_device": str(mine)})
    auth.login("grace")
    page = client.get(f"/cmdb/{mine}").get_data(as_text=True)
    assert f">{req.number}</a> Report an incident" in page
