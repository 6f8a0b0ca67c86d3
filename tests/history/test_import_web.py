"""Imported records in the portal: the request page, the agents' list and its search."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from engine.db import make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.migrate import upgrade
from engine.models import Person
from tests.acme import ACME
from tests.history.conftest import DATA
from web import create_app
from web.cli import main
from web.passwords import FAST_HASHER, hash_password

PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(tmp_path: Path, acme):
    """The app on a migrated database with acme's directory and both fixture exports imported."""
    url = f"sqlite:///{tmp_path / 'deskflow.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:
        sync_directory(s, acme.directory)
        s.execute(update(Person).values(password_hash=hash_password(PASSWORD, using=FAST_HASHER)))
    engine.dispose()
    for name in ("servicenow", "bpic2013"):
        CliRunner().invoke(main, ["import", name, str(DATA / f"{name}.csv"), "--db", url,
                                  "--catalog", str(ACME)])
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "DESKFLOW_DATABASE_URL": url,
                      "DESKFLOW_CATALOG": str(ACME), "DESKFLOW_SECURE_COOKIES": False,
                      "RATELIMIT_ENABLED": False, "DESKFLOW_PASSWORD_HASHING": "fast",
                      "WTF_CSRF_ENABLED": False})
    app.instance_path = str(tmp_path / "instance")
    client = app.test_client()
    client.post("/login", data={"username": "erin", "password": PASSWORD})  # an admin
    return client


def test_the_request_page_shows_an_imported_incident_and_its_timeline(client):
    response = client.get("/requests/SN-INC001")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for text in ("Category 1 / Subcategory 1 / Symptom 1", "Caller 1", "Opened by 1",
                 "Now: Active", "Now: Resolved", "Now: Closed", "Updated by 3",
                 "Group: servicenow-group-1 → servicenow-group-2", "Resolver 2",
                 "ServiceNow incident event log"):
        assert text in html, text
    assert client.get("/requests/SN-INC001/diagram.svg").status_code == 200
    bpic = client.get("/requests/VI-1-001").get_data(as_text=True)
    assert "Support tier: L1 → L2" in bpic


def test_the_agents_list_and_search_show_imported_records(client):
    html = client.get("/records").get_data(as_text=True)
    assert client.get("/records").status_code == 200
    numbers = re.findall(r'name="numbers" value="([^"]+)"', html)
    assert "SN-INC001" in numbers or "VI-1-008" in numbers
    found = client.get("/records?q=INC008")
    assert found.status_code == 200
    assert re.findall(r'name="numbers" value="([^"]+)"', found.get_data(as_text=True)) == ["SN-INC008"]


def test_imported_history_is_read_only(client):
    cancel = client.post("/requests/SN-INC003/cancel", data={"reason": "old", "seen_version": "1"})
    assert cancel.status_code == 409
    assert ("SN-INC003 is Active; cannot cancel: workflow imported has no state Active (known: "
            "cancelled, imported)") in cancel.get_data(as_text=True)
    comment = client.post("/requests/SN-INC003/comment", data={"body": "Any news?"})
    assert comment.status_code == 409
    assert ("SN-INC003 is history imported from servicenow; it cannot be changed here"
            in comment.get_data(as_text=True))
    page = client.get("/requests/SN-INC003").get_data(as_text=True)
    assert "Now: Active" in page and "Any news?" not in page
