"""Admin: catalog status and reload, previews, workflows, people, groups, the outbox."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from engine.models import AuditEvent, OutboxMessage
from tests.acme import ACME_ANSWERS
from tests.web.conftest import ACME, csrf_token
from web import create_app

PAGES = ["/admin/", "/admin/items", "/admin/items/new-laptop/preview", "/admin/workflows",
         "/admin/workflows/laptop-request", "/admin/people", "/admin/groups", "/admin/outbox"]
LAPTOP = dict(ACME_ANSWERS["new-laptop"])


@pytest.fixture
def catalog_dir(tmp_path):
    """A copy of acme the tests may edit and reload."""
    copy = tmp_path / "catalog"
    shutil.copytree(ACME, copy)
    return copy


@pytest.fixture
def app(tmp_path, template_db, catalog_dir):
    db_file = tmp_path / "deskflow.sqlite"
    shutil.copy(template_db, db_file)
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test",
        "DESKFLOW_DATABASE_URL": f"sqlite:///{db_file}",
        "DESKFLOW_CATALOG": str(catalog_dir),
        "DESKFLOW_SECURE_COOKIES": False,
        "RATELIMIT_ENABLED": False,
    })
    app.instance_path = str(tmp_path / "instance")
    yield app


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize("url", PAGES)
def test_admins_see_every_admin_page(client, auth, url):
    auth.login("oscar")
    response = client.get(url)
    assert response.status_code == 200, url
    assert 'aria-label="Admin"' in text(response)


@pytest.mark.parametrize("url", PAGES)
def test_other_people_may_not(client, auth, url):
    auth.login("alice")
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", ["/admin/reload/preview", "/admin/reload", "/admin/outbox/1/replay"])
def test_other_people_may_not_post(client, auth, post, url):
    auth.login("frank")
    assert post(url, page="/").status_code == 403


def test_signing_in_comes_first(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_posts_need_their_csrf_token(client, auth):
    auth.login("oscar")
    assert client.post("/admin/reload/preview").status_code == 400
    assert client.post("/admin/reload", data={"fingerprint": "0" * 16}).status_code == 400


def test_unknown_item_and_workflow(client, auth):
    auth.login("oscar")
    assert client.get("/admin/items/no-such-item/preview").status_code == 404
    assert client.get("/admin/workflows/no-such-workflow").status_code == 404


def test_status_shows_the_catalog(app, client, auth, catalog_dir):
    auth.login("erin")
    page = text(client.get("/admin/"))
    state = app.extensions["deskflow"]
    assert str(catalog_dir) in page
    assert f'<code id="catalog-version">{state.catalog.version}</code>' in page
    assert f"{len(state.catalog.items)} items" in page
    assert f"{len(state.catalog.workflows)} workflows" in page
    assert f"in {state.catalog.files} files" in page
    assert "Warnings (" in page


def fingerprint(response) -> str:
    """The version a reload preview offers to switch to (its confirmation's hidden field)."""
    match = re.search(r'name="fingerprint" value="([0-9a-f]+)"', text(response))
    assert match, "no reload confirmation on the page"
    return match.group(1)


def test_reload_previews_the_change_then_switches(app, client, auth, post, catalog_dir):
    auth.login("oscar")
    old = app.extensions["deskflow"].catalog.version
    item = catalog_dir / "items" / "new-laptop.yaml"
    item.write_text(item.read_text().replace("name: New laptop", "name: Shiny new laptop"))
    preview = post("/admin/reload/preview", page="/admin/")
    assert preview.status_code == 200
    page = text(preview)
    assert "<h3 class=\"h6 mt-3\">item new-laptop</h3>" in page
    assert "name: New laptop → Shiny new laptop" in page
    assert "<code>items/new-laptop.yaml:3</code>" in page
    assert app.extensions["deskflow"].catalog.version == old  # a preview switches nothing
    new = fingerprint(preview)
    assert new != old
    response = post("/admin/reload", {"fingerprint": new}, page="/admin/")
    assert response.status_code == 302
    assert app.extensions["deskflow"].catalog.version == new
    page = text(client.get("/admin/"))
    assert f"Catalog reloaded: version {new} (was {old})." in page
    assert f'<code id="catalog-version">{new}</code>' in page
    assert "Shiny new laptop" in text(client.get("/admin/items"))


def test_the_preview_counts_the_open_requests_a_change_touches(app, client, auth, post, service,
                                                               catalog_dir):
    service.submit("new-laptop", "alice", dict(LAPTOP))  # waits in manager_approval
    version = app.extensions["deskflow"].catalog.workflow("laptop-request").version
    shutil.rmtree(catalog_dir / "tests", ignore_errors=True)  # its scenarios walk that state
    workflow = catalog_dir / "workflows" / "laptop-request.yaml"
    body = workflow.read_text().replace("start: manager_approval", "start: check_model")
    head, rest = body.split("  manager_approval:\n", 1)
    workflow.write_text(head + rest.split("\n\n", 1)[1])
    auth.login("oscar")
    old = app.extensions["deskflow"].catalog.version
    preview = post("/admin/reload/preview", page="/admin/")
    page = text(preview)
    row = page.split("removes state manager_approval")[1].split("</tr>")[0]
    assert f"1 open request is in it, on version {version[:8]}" in row
    assert (f'<p id="reload-summary">3 changes between {old} and {fingerprint(preview)} in '
            "1 workflow; 2 touch open requests.</p>") in page


def test_the_preview_says_when_nothing_changed(app, client, auth, post):
    auth.login("oscar")
    version = app.extensions["deskflow"].catalog.version
    preview = post("/admin/reload/preview", page="/admin/")
    assert "Nothing changed: the files on disk are the version serving now." in text(preview)
    assert fingerprint(preview) == version
    assert post("/admin/reload", {"fingerprint": version}, page="/admin/").status_code == 302
    assert f"Catalog reloaded; nothing changed (version {version})." in text(client.get("/admin/"))


def test_the_preview_escapes_what_the_catalog_says(client, auth, post, catalog_dir):
    item = catalog_dir / "items" / "new-laptop.yaml"
    item.write_text(item.read_text().replace("name: New laptop", 'name: "<script>x()</script>"'))
    auth.login("oscar")
    page = text(post("/admin/reload/preview", page="/admin/"))
    assert "name: New laptop → &lt;script&gt;x()&lt;/script&gt;" in page
    assert "<script>x()" not in page


def test_a_confirmation_after_the_files_changed_does_not_switch(app, client, auth, post,
                                                                catalog_dir):
    auth.login("oscar")
    old = app.extensions["deskflow"].catalog.version
    item = catalog_dir / "items" / "new-laptop.yaml"
    item.write_text(item.read_text().replace("name: New laptop", "name: Shiny new laptop"))
    previewed = fingerprint(post("/admin/reload/preview", page="/admin/"))
    item.write_text(item.read_text().replace("name: Shiny new laptop", "name: Another laptop"))
    response = post("/admin/reload", {"fingerprint": previewed}, page="/admin/")
    assert response.status_code == 409
    assert app.extensions["deskflow"].catalog.version == old
    now = fingerprint(response)
    assert now not in (old, previewed)
    page = text(response)
    assert (f"Not switched: the catalog files changed since version {previewed} was previewed "
            f"(they are version {now} now); nothing was switched.") in page
    assert "name: New laptop → Another laptop" in page  # the new preview, against the serving one
    assert post("/admin/reload", {"fingerprint": now}, page="/admin/").status_code == 302
    assert app.extensions["deskflow"].catalog.version == now


def test_a_confirmation_names_the_previewed_version(app, client, auth, post):
    auth.login("oscar")
    old = app.extensions["deskflow"].catalog.version
    response = post("/admin/reload", page="/admin/")
    assert response.status_code == 422
    assert ("Preview the reload first: the confirmation names the version it switches to."
            in text(response))
    assert app.extensions["deskflow"].catalog.version == old


def test_a_broken_catalog_is_refused_and_the_old_one_keeps_serving(app, client, auth, post,
                                                                   catalog_dir):
    auth.login("oscar")
    old = app.extensions["deskflow"].catalog.version
    item = catalog_dir / "items" / "new-laptop.yaml"
    item.write_text(item.read_text().replace("id: new-laptop", "id: New-Laptop"))
    response = post("/admin/reload/preview", page="/admin/")
    assert response.status_code == 422
    page = text(response)
    assert "Reload refused" in page and 'name="fingerprint"' not in page
    assert re.search(r"items/new-laptop\.yaml:2:5: id: ", page), page
    assert app.extensions["deskflow"].catalog.version == old
    assert f'<code id="catalog-version">{old}</code>' in page
    # the status page remembers the refusal; the portal still serves the old catalog
    later = text(client.get("/admin/"))
    assert "Last refused reload" in later and "items/new-laptop.yaml:2:5" in later
    assert client.get("/admin/items/new-laptop/preview").status_code == 200


def test_a_catalog_broken_after_its_preview_is_not_switched_to(app, client, auth, post,
                                                               catalog_dir):
    auth.login("oscar")
    old = app.extensions["deskflow"].catalog.version
    item = catalog_dir / "items" / "new-laptop.yaml"
    item.write_text(item.read_text().replace("name: New laptop", "name: Shiny new laptop"))
    previewed = fingerprint(post("/admin/reload/preview", page="/admin/"))
    item.write_text(item.read_text().replace("id: new-laptop", "id: New-Laptop"))
    response = post("/admin/reload", {"fingerprint": previewed}, page="/admin/")
    assert response.status_code == 409
    page = text(response)
    assert "Not switched: the catalog files changed since version" in page
    assert "Reload refused" in page and 'name="fingerprint"' not in page
    assert re.search(r"items/new-laptop\.yaml:2:5: id: ", page), page
    assert app.extensions["deskflow"].catalog.version == old


def test_a_vanished_catalog_directory_is_refused_too(app, client, auth, post, catalog_dir):
    auth.login("oscar")
    old = app.extensions["deskflow"].catalog.version
    previewed = fingerprint(post("/admin/reload/preview", page="/admin/"))
    shutil.rmtree(catalog_dir)
    for response in (post("/admin/reload/preview", page="/admin/"),
                     post("/admin/reload", {"fingerprint": previewed}, page="/admin/")):
        assert response.status_code == 422
        assert f"{catalog_dir}: not a catalog directory" in text(response)
    assert app.extensions["deskflow"].catalog.version == old


def test_preview_renders_the_form_and_the_diagram(client, auth):
    auth.login("oscar")
    page = text(client.get("/admin/items/new-laptop/preview"))
    assert 'name="model"' in page and 'name="cost_center"' in page
    # its one button tries the answers (a GET to the preview itself); nothing orders
    form = page.split('class="df-order df-preview"')[1].split("</form>")[0]
    assert form.count('type="submit"') == 1
    assert re.search(r'method="get"\s+action="/admin/items/new-laptop/preview"', form)
    assert ('<button type="submit" class="btn btn-outline-primary" name="_try" value="1">'
            "Try these answers</button>") in form
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="deskflow-diagram"' in page
    assert 'data-workflow="laptop-request"' in page
    # the Pro model's justification is hidden until the Pro model is chosen
    assert re.search(r'data-field-wrap="justification" hidden', page)
    assert re.search(r'data-field-wrap="model">', page)
    assert 'id="df-rules"' in page and 'name="csrf_token"' not in page.split("df-preview")[1]


def test_every_acme_item_previews(app, client, auth):
    auth.login("oscar")
    for item in app.extensions["deskflow"].catalog.items:
        response = client.get(f"/admin/items/{item.id}/preview")
        assert response.status_code == 200, item.id
        assert f'data-workflow="{item.workflow}"' in text(response), item.id


def test_workflows_count_open_requests_per_version(app, client, auth, service):
    service.submit("new-laptop", "alice", dict(LAPTOP))
    service.submit("new-laptop", "bob", dict(LAPTOP))
    cancelled = service.submit("new-laptop", "carol", dict(LAPTOP))
    service.cancel(cancelled.number, "carol")
    version = app.extensions["deskflow"].catalog.workflow("laptop-request").version
    auth.login("oscar")
    page = text(client.get("/admin/workflows"))
    row = page.split('id="wf-laptop-request"')[1].split("</tr>")[0]
    assert f'<li data-version="{version}"><code>{version}</code>' in row
    assert '<span class="df-open">2</span> open' in row
    assert "never used" in page.split('id="wf-incident"')[1].split("</tr>")[0]
    detail = text(client.get("/admin/workflows/laptop-request"))
    assert '<td class="df-open">2</td>' in detail
    assert "New laptop" in detail


def test_people_and_groups_come_from_the_database(client, auth):
    auth.login("oscar")
    people = text(client.get("/admin/people"))
    row = people.split('id="person-alice"')[1].split("</tr>")[0]
    assert "Alice Jansen" in row and "Bob Bakker" in row  # her manager
    assert "<td>Employee</td>" in row and "<td>All employees</td>" in row
    groups = text(client.get("/admin/groups"))
    row = groups.split('id="group-it-hardware"')[1].split("</tr>")[0]
    assert "Frank Smit" in row and "Heidi de Groot" in row and "Erin de Boer" in row
    assert "(2)" in row


def test_dead_letters_replay(app, client, auth, post):
    now = datetime.now(UTC)
    with app.app_context():
        from web.extensions import db

        db.session.add(OutboxMessage(kind="email", event="request_submitted",
                                     idempotency_key="test-dead-1", payload={}, status="dead",
                                     attempts=8, next_attempt_at=now, created_at=now,
                                     last_error="SMTP: connection refused by mail.acme.example"))
        db.session.commit()
        message_id = db.session.scalar(select(OutboxMessage.id))
    auth.login("oscar")
    page = text(client.get("/admin/outbox"))
    assert "SMTP: connection refused by mail.acme.example" in page
    assert f'action="/admin/outbox/{message_id}/replay"' in page
    response = post(f"/admin/outbox/{message_id}/replay", page="/admin/outbox")
    assert response.status_code == 302
    page = text(client.get("/admin/outbox"))
    assert f"Message {message_id} (email, request_submitted) is queued again" in page
    assert "No dead letters" in page
    with app.app_context():
        from web.extensions import db

        message = db.session.get(OutboxMessage, message_id)
        assert (message.status, message.attempts, message.last_error) == ("pending", 0, "")
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "outbox_replayed"))
        assert event.actor_id == "oscar"
    # a second replay finds nothing dead: a conflict, not a crash
    assert post(f"/admin/outbox/{message_id}/replay", page="/admin/outbox").status_code == 409
    assert post("/admin/outbox/999999/replay", page="/admin/outbox").status_code == 404


def test_the_replay_form_carries_a_csrf_token(app, client, auth):
    now = datetime.now(UTC)
    with app.app_context():
        from web.extensions import db

        db.session.add(OutboxMessage(kind="webhook", event="granted", idempotency_key="test-dead-2",
                                     payload={}, status="dead", attempts=8, next_attempt_at=now,
                                     created_at=now, last_error="HTTP 500"))
        db.session.commit()
    auth.login("oscar")
    page = text(client.get("/admin/outbox"))
    form = page.split('action="/admin/outbox/')[1].split("</form>")[0]
    assert csrf_token(form)


def test_a_reload_in_one_process_is_followed_by_the_others(tmp_path, template_db):
    """Two apps on one database stand for two gunicorn workers."""
    import shutil as _shutil

    from tests.web.conftest import ACME
    from web import create_app

    db_file = tmp_path / "shared.sqlite"
    _shutil.copy(template_db, db_file)
    copy = tmp_path / "acme"
    _shutil.copytree(ACME, copy)
    config = {"TESTING": True, "SECRET_KEY": "t", "DESKFLOW_DATABASE_URL": f"sqlite:///{db_file}",
              "DESKFLOW_CATALOG": str(copy), "DESKFLOW_SECURE_COOKIES": False}
    one, two = create_app(config), create_app(config)
    item = copy / "items" / "vpn-access.yaml"
    item.write_text(item.read_text().replace("name: VPN access", "name: Remote access (VPN)"))
    state_one, state_two = one.extensions["deskflow"], two.extensions["deskflow"]
    before = state_two.catalog.version
    state_one.reload()
    state_two.follow(every=0)
    assert state_two.catalog.version == state_one.catalog.version != before
