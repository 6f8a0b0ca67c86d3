"""The navigation bar of every page: the approvals badge (with delegations), the bell, the Reports
link for service owners, all read in one statement (engine.queries.nav)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, update

from engine.models import Delegation, Group
from tests.web.test_approvals import order_laptop
from web.extensions import db

BADGE_ONE = '<span class="badge text-bg-warning" aria-label="1 waiting">1</span>'
REPORTS_LINK = '<a class="nav-link" href="/reports">Reports</a>'


def delegate(service, person: str, to: str, starts: datetime, days: int = 7) -> None:
    with service.sessions.begin() as s:
        s.add(Delegation(person_id=person, delegate_id=to, starts_at=starts,
                         ends_at=starts + timedelta(days=days), created_at=starts))


def test_the_badge_counts_the_approvals_of_whoever_delegated_now(client, auth, service):
    order_laptop(service)  # bob approves alice's laptop
    delegate(service, "bob", "carol", datetime.now(UTC) - timedelta(hours=1))
    auth.login("carol")
    for page in ("/", "/approvals", "/requests"):
        assert BADGE_ONE in client.get(page).get_data(as_text=True), page


def test_a_planned_delegation_adds_nothing_to_the_badge(client, auth, service):
    order_laptop(service)
    delegate(service, "bob", "carol", datetime.now(UTC) + timedelta(days=2))
    auth.login("carol")
    assert 'waiting">' not in client.get("/").get_data(as_text=True)


def test_a_service_owner_sees_the_reports_link_and_the_reports(client, auth, service):
    with service.sessions.begin() as s:  # facilities owns the badge replacement item
        s.execute(update(Group).where(Group.id == "facilities").values(manager_id="alice"))
    auth.login("alice")
    assert REPORTS_LINK in client.get("/").get_data(as_text=True)
    assert client.get("/reports").status_code == 200
    auth.logout()
    auth.login("bob")
    assert REPORTS_LINK not in client.get("/").get_data(as_text=True)
    assert client.get("/reports").status_code == 403


def test_the_nav_is_read_in_one_statement(app, client, auth, service):
    order_laptop(service)
    auth.login("bob")
    client.get("/requests")
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        html = client.get("/requests").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert BADGE_ONE in html
    nav = [s for s in seen if "notifications" in s or "delegations" in s
           or "FROM approvals" in s]
    assert len(nav) == 1, nav
