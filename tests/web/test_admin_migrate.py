"""Admin → Workflows: preview moving a workflow's open requests onto a version, then confirm."""

from __future__ import annotations

import shutil

from sqlalchemy import select

from engine.models import AuditEvent, Request
from tests.acme import ACME_ANSWERS
from tests.web.conftest import ACME, PASSWORD, csrf_token, make_app

WF = "workflows/identity-request.yaml"


def test_the_preview_lists_each_request_and_the_confirmation_moves_them(tmp_path, template_db):
    catalog = tmp_path / "catalog"
    shutil.copytree(ACME, catalog, ignore=shutil.ignore_patterns("tests"))
    app = make_app(tmp_path / "app", template_db)
    state = app.extensions["deskflow"]
    state.path = catalog  # the app serves this copy from now on
    state.reload()
    path = catalog / WF
    old = state.catalog.workflow("identity-request").version
    numbers = [state.service.submit("vpn-access", "alice", dict(ACME_ANSWERS["vpn-access"])).number
               for _ in range(2)]
    path.write_text(path.read_text().replace("manager_approval", "manager_ok"))
    state.reload()
    new = state.catalog.workflow("identity-request").version
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": "oscar", "password": PASSWORD,
                                "csrf_token": csrf_token(page)})

    unmapped = client.get("/admin/workflows/identity-request/migrate")
    assert unmapped.status_code == 200
    html = unmapped.get_data(as_text=True)
    assert "state manager_approval is not in the target version" in html
    assert 'name="csrf_token"' not in html.split("</form>", 1)[1]  # no confirm button

    bad = client.get("/admin/workflows/identity-request/migrate?map=nope=manager_ok")
    assert bad.status_code == 422
    assert "--map nope=manager_ok: nope is not a state of the versions moved from" in bad.get_data(
        as_text=True)

    preview = client.get("/admin/workflows/identity-request/migrate?map=manager_approval=manager_ok")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    for n in numbers:
        row = html.split(f'data-number="{n}"')[1].split("</tr>")[0]
        assert f"<code>{old[:8]}</code> → <code>{new[:8]}</code>" in row
        assert "manager_approval → manager_ok" in row
        assert "1 approval withdrawn, enters manager_ok fresh" in row
    with app.app_context():
        from web.extensions import db

        assert {r.state for r in db.session.scalars(select(Request))} == {"manager_approval"}

    refused = client.post("/admin/workflows/identity-request/migrate",
                          data={"to": new, "map": "manager_approval=manager_ok"})
    assert refused.status_code == 400  # no CSRF token

    done = client.post("/admin/workflows/identity-request/migrate",
                       data={"to": new, "map": "manager_approval=manager_ok",
                             "csrf_token": csrf_token(html)})
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/admin/workflows/identity-request")
    with app.app_context():
        from web.extensions import db

        assert {(r.state, r.workflow_version.version) for r in db.session.scalars(
            select(Request))} == {("manager_ok", new)}
        actors = [e.actor_id for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event == "migrated"))]
        assert actors == ["oscar", "oscar"]
    timeline = client.get(f"/requests/{numbers[0]}").get_data(as_text=True)
    assert "Migrated to another workflow version" in timeline
    assert (f"From version {old[:8]} to {new[:8]}, state manager_approval → manager_ok"
            in timeline)
