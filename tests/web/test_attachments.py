"""Attachments on the portal and the API (web/attachments.py, web/api/attachments.py): upload
with a comment, the record page's list, downloads only for people who see the record, safe
headers, thumbnails, deletion, and the API's problem+json refusals."""

from __future__ import annotations

import io

import pytest
from jsonschema import Draft202012Validator
from PIL import Image
from sqlalchemy import select
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WsgiRequest

from catalog.errors import UsageError
from engine.attachment_store import AttachmentStore
from engine.models import Attachment, AuditEvent, Request
from tests.acme import ACME_ANSWERS
from tests.web.conftest import csrf_token, make_app
from tests.web.test_api import cli_token, problem
from web.api.spec import openapi, schema_of
from web.config import store_for

LOG = b"disk full at 09:12\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), "teal").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def number(service) -> str:
    return service.submit("new-laptop", "alice", dict(ACME_ANSWERS["new-laptop"])).number


def page_token(client, number: str) -> tuple[str, str]:
    html = client.get(f"/requests/{number}").get_data(as_text=True)
    return html, csrf_token(html)


def upload(client, number: str, body: str, *files: tuple[bytes, str]):
    _, token = page_token(client, number)
    return client.post(f"/requests/{number}/comment", content_type="multipart/form-data", data={
        "csrf_token": token, "body": body,
        "files": [(io.BytesIO(data), name) for data, name in files]})


def rows(app) -> list[Attachment]:
    with app.extensions["deskflow"].sessions() as s:
        return list(s.scalars(select(Attachment).order_by(Attachment.id)))


def test_a_comment_with_a_screenshot_lists_it_on_the_record_page(client, auth, app, number):
    auth.login("alice")
    response = upload(client, number, "The screen flickers.", (png(), "../../screen.png"))
    assert response.status_code == 302
    [att] = rows(app)
    assert (att.filename, att.content_type, att.uploaded_by_id) == ("screen.png", "image/png", "alice")
    html, _ = page_token(client, number)
    assert f'href="/attachments/{att.id}"' in html
    assert f'src="/attachments/{att.id}/thumbnail"' in html
    assert "The screen flickers." in html


def test_a_download_is_an_attachment_with_nosniff_and_a_sandbox_csp(client, auth, app, number):
    auth.login("alice")
    upload(client, number, "Log attached.", (LOG, "résumé;x.log"))
    [att] = rows(app)
    response = client.get(f"/attachments/{att.id}")
    assert response.status_code == 200
    assert response.data == LOG
    assert response.headers["Content-Disposition"] == \
        "attachment; filename=\"resume;x.log\"; filename*=UTF-8''r%C3%A9sum%C3%A9%3Bx.log"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == \
        "default-src 'none'; object-src 'none'; frame-ancestors 'none'; sandbox"
    assert response.mimetype == "text/plain"


def test_people_who_cannot_see_the_record_get_404(client, auth, app, number):
    auth.login("alice")
    upload(client, number, "Log attached.", (LOG, "disk.log"))
    [att] = rows(app)
    auth.logout()
    auth.login("carol")
    for url in (f"/attachments/{att.id}", f"/attachments/{att.id}/thumbnail"):
        assert client.get(url).status_code == 404
    auth.logout()
    auth.login("frank")  # it-hardware: the laptop's group
    assert client.get(f"/attachments/{att.id}").data == LOG


def test_html_disguised_as_a_png_is_refused_with_the_form_kept(client, auth, app, number):
    auth.login("alice")
    response = upload(client, number, "Here it is", (HTML, "screen.png"))
    assert response.status_code == 415
    html = response.get_data(as_text=True)
    assert ("The content is not a type that can be attached (images, PDF, office documents, "
            "zip, or .txt/.csv/.log/.md text).") in html
    assert "Here it is" in html
    assert rows(app) == []


def test_a_thumbnail_is_made_once_and_kept(client, auth, app, number):
    auth.login("alice")
    upload(client, number, "Screen", (png(), "screen.png"))
    [att] = rows(app)
    first = client.get(f"/attachments/{att.id}/thumbnail")
    assert first.status_code == 200 and first.mimetype == "image/png"
    assert Image.open(io.BytesIO(first.data)).size == (240, 180)
    kept = app.extensions["deskflow"].service.unit.attachments.thumbnail_path(att.stored_name)
    made = kept.stat().st_mtime_ns
    assert client.get(f"/attachments/{att.id}/thumbnail").data == first.data
    assert kept.stat().st_mtime_ns == made


def test_deleting_on_the_page_is_audited_and_the_file_is_gone(client, auth, app, number):
    auth.login("alice")
    upload(client, number, "Log", (LOG, "disk.log"))
    [att] = rows(app)
    html, token = page_token(client, number)
    assert f'action="/attachments/{att.id}/delete"' in html
    with app.extensions["deskflow"].sessions() as s:
        version = s.scalar(select(Request.lock_version).where(Request.number == number))
    response = client.post(f"/attachments/{att.id}/delete",
                           data={"csrf_token": token, "seen_version": str(version)})
    assert response.status_code == 302
    assert client.get(f"/attachments/{att.id}").status_code == 404
    assert "No attachments." in client.get(f"/requests/{number}").get_data(as_text=True)
    with app.extensions["deskflow"].sessions() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.event == "attachment_deleted"))
        assert (event.actor_id, event.detail) == ("alice", {"attachment": att.id, "filename": "disk.log"})


# ---------------------------------------------------------------- the API


@pytest.fixture
def bearer(runner, app):
    def make(user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {cli_token(runner, app, user)}"}
    return make


def test_api_upload_list_and_content(client, bearer, number):
    alice = bearer("alice")
    url = f"/api/v1/requests/{number}/attachments"
    response = client.post(url, headers=alice, data={"file": (io.BytesIO(LOG), "disk.log")})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    Draft202012Validator(schema_of("Attachment")).validate(body)
    assert (body["filename"], body["size"], body["content_type"], body["uploaded_by"]) == \
        ("disk.log", len(LOG), "text/plain", "alice")
    listed = client.get(url, headers=alice).get_json()
    Draft202012Validator(schema_of("AttachmentList")).validate(listed)
    assert [a["id"] for a in listed["items"]] == [body["id"]]
    content = client.get(body["content_url"], headers=alice)
    assert content.data == LOG
    assert content.headers["Content-Disposition"] == "attachment; filename=disk.log"
    assert client.get(body["content_url"], headers=bearer("carol")).status_code == 404


def test_api_refusals_are_problems(client, bearer, app, number):
    alice = bearer("alice")
    url = f"/api/v1/requests/{number}/attachments"
    problem(client.post(url, headers=alice, json={"file": "x"}), 415,
            "Send the file as multipart/form-data, in a part named 'file'.")
    problem(client.post(url, headers=alice, data={"other": (io.BytesIO(LOG), "a.log")}), 422,
            "Send the file as multipart/form-data, in a part named 'file'.",
            {"file": ["This field is required."]})
    problem(client.post(url, headers=alice, data={"file": (io.BytesIO(HTML), "x.png")}), 415,
            "x.png: the content is not a type that can be attached",
            {"file": ["The content is not a type that can be attached (images, PDF, office "
                      "documents, zip, or .txt/.csv/.log/.md text)."]})
    # a body this large is spooled to a temporary file by the builder: ours to close
    builder = EnvironBuilder(path=url, method="POST", headers=alice, data={
        "file": (io.BytesIO(b"a" * (10 * 1024 * 1024 + 1)), "big.txt")})
    environ = builder.get_environ()
    try:
        response = client.open(WsgiRequest(environ))
        problem(response, 413, "big.txt is larger than 10 MB",
                {"file": ["A file may be at most 10 MB."]})
    finally:
        environ["wsgi.input"].close()
        builder.close()
    problem(client.post(url, headers=bearer("carol"), data={"file": (io.BytesIO(LOG), "a.log")}),
            404, f"no request {number}")
    assert rows(app) == []


def test_the_openapi_document_describes_the_attachment_routes():
    paths = openapi()["paths"]
    assert set(paths["/api/v1/requests/{number}/attachments"]) == {"get", "post"}
    post = paths["/api/v1/requests/{number}/attachments"]["post"]
    assert list(post["requestBody"]["content"]) == ["multipart/form-data"]
    assert "413" in post["responses"] and "415" in post["responses"]
    assert "get" in paths["/api/v1/attachments/{attachment_id}/content"]


def test_a_file_over_the_2_mb_body_limit_of_other_forms_goes_up_with_a_comment(client, auth, app,
                                                                                 number):
    auth.login("alice")
    big = b"line of a long log\n" * (3 * 1024 * 1024 // 19)
    _, token = page_token(client, number)
    builder = EnvironBuilder(path=f"/requests/{number}/comment", method="POST", data={
        "csrf_token": token, "body": "Full log", "files": (io.BytesIO(big), "full.log")})
    environ = builder.get_environ()
    try:
        response = client.open(WsgiRequest(environ))
    finally:
        environ["wsgi.input"].close()
        builder.close()
    assert response.status_code == 302
    assert [(a.filename, a.size) for a in rows(app)] == [("full.log", len(big))]


@pytest.mark.parametrize("value", ["ten", 0, True])
def test_a_limit_that_is_not_a_whole_number_of_bytes_stops_the_app(tmp_path, template_db, value):
    with pytest.raises(UsageError) as caught:
        store_for({"DESKFLOW_ATTACHMENT_MAX_FILE": value}, str(tmp_path))
    assert str(caught.value) == ("DESKFLOW_ATTACHMENT_MAX_FILE must be a whole number of bytes, "
                                 f"1 or more (not {value})")
    assert store_for({"DESKFLOW_ATTACHMENT_MAX_RECORD": "2048"}, str(tmp_path)) == \
        AttachmentStore(tmp_path / "attachments", 10 * 1024 * 1024, 2048)
    assert make_app(tmp_path / "app", template_db).extensions["deskflow"].service.unit.attachments \
        .root == tmp_path / "app" / "attachments"
