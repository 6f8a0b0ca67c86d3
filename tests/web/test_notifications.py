"""The bell, the notifications page, opening and marking read, and the settings page."""

from __future__ import annotations

import re

from sqlalchemy import select

from engine.models import Notification, NotificationPreference, Request
from engine.notifications import KINDS
from tests.acme import ACME_ANSWERS

LAPTOP = dict(ACME_ANSWERS["new-laptop"])


def order_laptop(service) -> Request:
    return service.submit("new-laptop", "alice", dict(LAPTOP))


def bell(html: str) -> str:
    """The bell's accessible name, which says the unread count."""
    match = re.search(r'id="bell"\s+aria-label="([^"]+)"', html)
    assert match, "no bell in the nav"
    return match.group(1)


def notifications_of(service, person_id: str) -> list[Notification]:
    with service.sessions() as s:
        return list(s.scalars(select(Notification).where(Notification.person_id == person_id)
                              .order_by(Notification.id)))


def test_the_bell_counts_unread_notifications(client, auth, service):
    auth.login("bob")
    assert bell(client.get("/").get_data(as_text=True)) == "Notifications"
    order_laptop(service)
    order_laptop(service)
    html = client.get("/").get_data(as_text=True)
    assert bell(html) == "Notifications: 2 unread"
    assert '<span class="df-unread">2</span>' in html


def test_the_list_shows_what_happened_newest_first_with_the_record(client, auth, service):
    first, second = order_laptop(service), order_laptop(service)
    auth.login("bob")
    html = client.get("/notifications").get_data(as_text=True)
    assert html.index(second.number) < html.index(first.number)
    assert "Your approval is needed (manager_approval)" in html
    assert f'<span class="text-body-secondary">{first.number}</span> New laptop' in html


def test_an_empty_list_says_what_will_appear(client, auth):
    auth.login("peter")
    html = client.get("/notifications").get_data(as_text=True)
    assert "No notifications yet." in html


def test_opening_a_notification_marks_it_read_and_goes_to_the_record(client, auth, post, service):
    req = order_laptop(service)
    [n] = notifications_of(service, "bob")
    auth.login("bob")
    response = post(f"/notifications/{n.id}/open", page="/notifications")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/requests/{req.number}"
    assert notifications_of(service, "bob")[0].read_at is not None
    assert bell(client.get("/").get_data(as_text=True)) == "Notifications"


def test_opening_without_a_csrf_token_is_refused_and_reads_nothing(client, auth, service):
    order_laptop(service)
    [n] = notifications_of(service, "bob")
    auth.login("bob")
    assert client.post(f"/notifications/{n.id}/open").status_code == 400
    assert notifications_of(service, "bob")[0].read_at is None


def test_someone_elses_notification_is_not_found(client, auth, post, service):
    order_laptop(service)
    [n] = notifications_of(service, "bob")
    auth.login("alice")
    assert post(f"/notifications/{n.id}/open", page="/notifications").status_code == 404
    assert notifications_of(service, "bob")[0].read_at is None


def test_mark_all_read(client, auth, post, service):
    order_laptop(service)
    order_laptop(service)
    auth.login("bob")
    response = post("/notifications/read-all", page="/notifications", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Marked 2 notifications read." in html
    assert bell(html) == "Notifications"
    assert all(n.read_at is not None for n in notifications_of(service, "bob"))
    again = post("/notifications/read-all", page="/notifications", follow_redirects=True)
    assert "Nothing was unread." in again.get_data(as_text=True)


def test_settings_show_both_by_default_and_save_a_choice(client, auth, post, service):
    auth.login("heidi")
    html = client.get("/notifications/settings").get_data(as_text=True)
    assert html.count('type="radio" value="both"') == len(KINDS)  # one row per kind
    assert len(re.findall(r'<input checked[^>]*value="both"', html)) == len(KINDS)
    choices = {**{kind: "both" for kind in KINDS}, "assigned": "email", "sla_warning": "in_app"}
    response = post("/notifications/settings", choices, page="/notifications/settings",
                    follow_redirects=True)
    assert "Your notification settings are saved." in response.get_data(as_text=True)
    with service.sessions() as s:
        stored = dict(s.execute(select(NotificationPreference.kind, NotificationPreference.channel)
                                .where(NotificationPreference.person_id == "heidi")).all())
    assert stored == choices
    html = client.get("/notifications/settings").get_data(as_text=True)
    assert re.search(r'<input checked [^>]*name="assigned" type="radio" value="email"', html)
    assert re.search(r'<input checked [^>]*name="sla_warning" type="radio" value="in_app"', html)


def test_an_unknown_channel_is_a_422_that_stores_nothing(client, auth, post, service):
    auth.login("heidi")
    response = post("/notifications/settings", {"assigned": "pigeon"}, page="/notifications/settings")
    assert response.status_code == 422
    assert "Not a valid choice." in response.get_data(as_text=True)
    with service.sessions() as s:
        assert s.scalars(select(NotificationPreference)).all() == []


def test_signed_out_people_are_sent_to_sign_in(client):
    assert client.get("/notifications").status_code == 302
    assert client.get("/notifications/settings").status_code == 302


def test_the_demo_rings_the_bells_of_bob_frank_and_grace(app):
    from web.demo import seed_demo

    state = app.extensions["deskflow"]
    seed_demo(state.service, state.sessions)
    with state.sessions() as s:
        kinds = {(n.person_id, n.kind) for n in s.scalars(select(Notification))}
    assert {("bob", "approval_needed"), ("frank", "caller_reply"), ("grace", "mentioned")} <= kinds
