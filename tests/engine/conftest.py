"""Engine fixtures: a database (SQLite, or PostgreSQL when asked), the acme catalog, a clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from catalog.loader import Catalog, load_catalog
from engine.db import create_schema, make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.models import Base
from engine.service import RequestService

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("DESKFLOW_TEST_DATABASE_URL")


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture(scope="session")
def acme() -> Catalog:
    catalog = load_catalog(ROOT / "examples" / "acme")
    assert catalog.ok, [e.render() for e in catalog.errors]
    return catalog


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not PG_URL:
        yield None
        return
    name = f"deskflow_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, pg_database) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'deskflow.sqlite'}"
        engine = make_engine(url)
        create_schema(engine)
        engine.dispose()
        yield url
        return
    if pg_database is None:
        pytest.skip("PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL")
    yield pg_database
    engine = make_engine(pg_database)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    # Monday 23 November 2026, 09:30 in Amsterdam
    return Clock(datetime(2026, 11, 23, 8, 30, tzinfo=UTC))


@pytest.fixture
def service(sessions, acme, clock) -> RequestService:
    with sessions.begin() as s:
        sync_directory(s, acme.directory)
    return RequestService(sessions, lambda: acme, clock)


#: valid answers for every acme item (requester alice unless noted)
ACME_ANSWERS = {
    "system-access": {"system": "crm", "role": "crm-read", "level": "read",
                      "reason": "I support the sales team with their pipeline."},
    "shared-folder": {"site_url": "https://acme.sharepoint.com/sites/sales", "access": "read",
                      "approver": "carol"},
    "shared-mailbox": {"action": "add-members", "mailbox_address": "sales@acme.example",
                       "members": ["alice", "bob"], "approver": "carol"},
    "vpn-access": {"vpn_profile": "standard"},
    "normal-change": {"change_title": "Upgrade the mail relay", "description": "Upgrade the "
                      "outbound mail relay to the current release to fix delivery delays.",
                      "risk": "low", "affected_systems": ["crm"], "implementer": "heidi",
                      "planned_date": "2026-12-01"},
    "standard-change": {"change_template": "restart-service", "target": "mail01.acme.example",
                        "planned_date": "2026-12-01"},
    "meeting-room-equipment": {"room": "vermeer", "meeting_date": "2026-12-01",
                               "start_time": "10:00", "attendees": 6, "equipment": ["projector"]},
    "badge-replacement": {"badge_reason": "damaged", "building": "home",
                          "home_address": "Keizersgracht 1, Amsterdam"},
    "mobile-phone": {"device": "pixel", "data_plan": "10gb", "cost_center": "CC-1234",
                     "building": "ams-hq", "floor": 3},
    "monitor-peripherals": {"accessories": [{"accessory": "dock", "quantity": 1}],
                            "building": "ams-hq", "floor": 2},
    "new-laptop": {"model": "std14", "cost_center": "CC-1234", "building": "ams-hq", "floor": 4},
    "new-hire-onboarding": {"new_hire_name": "Sam Smith", "personal_email": "sam@example.com",
                            "job_title": "Analyst", "start_date": "2027-01-04",
                            "hiring_manager": "bob", "contract_type": "permanent",
                            "office": "ams-hq", "equipment": ["laptop"]},
    "offboarding": {"leaving_person": "peter", "last_day": "2026-12-31", "reason": "resignation",
                    "handover_to": "grace"},
    "software-licence": {"software": "figma-professional", "business_reason": "Design work for the portal.",
                         "cost_center": "CC-1234"},
    "report-incident": {"short_description": "Mail is down", "affected_service": "email",
                        "description": "Nobody on the third floor can send or receive mail.",
                        "impact": "high", "people_affected": 40, "urgency": "high",
                        "contact_email": "alice@acme.example"},
    "password-unlock": {"account": "acme"},
}


@pytest.fixture
def answers():
    return {k: dict(v) for k, v in ACME_ANSWERS.items()}
