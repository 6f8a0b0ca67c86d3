"""File fields on order forms (docs/attachments.md): a real multipart upload on the portal and
base64 in the API, both kept as attachments of the new record in the same transaction, shown as
download links, refused with the same words either way, and nothing written when refused."""

from __future__ import annotations

import base64
import io
import re
import shutil
import zipfile

import pytest
from jsonschema import Draft202012Validator
from PIL import Image
from sqlalchemy import func, select

from engine.models import Attachment, AuditEvent, Request
from tests.acme import ACME, ACME_ANSWERS
from tests.web.conftest import csrf_token, make_app
from tests.web.test_api import cli_token, problem
from web import create_app

INCIDENT = {k: v for k, v in ACME_ANSWERS["report-incident"].items()}
LOG = b"12:01 mail relay refused the connection\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
NOT_A_TYPE = ("x.png: The content is not a type that can be attached (images, PDF, office "
              "documents, zip, or .txt/.csv/.log/.md text).")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), "teal").save(out, "PNG")
    return out.getvalue()


def a_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", "hello")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def counts(app) -> tuple[int, int]:
    """(records, attachment rows)"""
    with app.extensions["deskflow"].sessions() as s:
        return (s.scalar(select(func.count()).select_from(Request)) or 0,
                s.scalar(select(func.count()).select_from(Attachment)) or 0)


def attachments(app) -> list[Attachment]:
    with app.extensions["deskflow"].sessions() as s:
        return list(s.scalars(select(Attachment).order_by(Attachment.id)))


def record(app, number: str) -> Request:
    with app.extensions["deskflow"].sessions() as s:
        found = s.scalar(select(Request).where(Request.number == number))
        assert found is not None
        return found


def order_page(client) -> str:
    return client.get("/items/report-incident").get_data(as_text=True)


def order(client, files: list[tuple[bytes, str]], **answers):
    token = csrf_token(order_page(client))
    data = {"csrf_token": token, **{k: str(v) for k, v in {**INCIDENT, **answers}.items()},
            "screenshots": [(io.BytesIO(body), name) for body, name in files]}
    return client.post("/items/report-incident", data=data, content_type="multipart/form-data")


def field_error(html: str, name: str) -> str:
    match = re.search(rf'id="{name}-error"[^>]*>([^<]*)<', html)
    assert match, f"no error shown on {name}"
    return match.group(1).replace("&#39;", "'")


# ---------------------------------------------------------------- the portal


def test_the_order_page_sends_files_as_multipart_only_where_a_form_has_a_file_field(client, auth):
    auth.login("alice")
    page = order_page(client)
    assert 'id="df-order" enctype="multipart/form-data"' in page
    field = re.search(r'<input[^>]*name="screenshots"[^>]*>', page)
    assert field is not None
    tag = field.group(0)
    assert 'type="file"' in tag and "multiple" in tag
    assert 'accept="application/pdf,image/gif,image/jpeg,image/png,image/webp,text/csv,text/plain"' in tag
    assert "multipart" not in client.get("/items/new-laptop").get_data(as_text=True)


def test_files_ordered_on_the_portal_become_the_records_attachments(client, auth, app):
    auth.login("alice")
    response = order(client, [(png(), "../screen.png"), (LOG, "relay.log")])
    assert response.status_code == 302, field_error(response.get_data(as_text=True), "screenshots")
    number = response.headers["Location"].split("/")[-2]
    shot, log = attachments(app)
    assert [(a.filename, a.content_type, a.field, a.uploaded_by_id) for a in (shot, log)] == [
        ("screen.png", "image/png", "screenshots", "alice"),
        ("relay.log", "text/plain", "screenshots", "alice")]
    assert record(app, number).answers["screenshots"] == [
        {"attachment": shot.id, "filename": "screen.png", "size": shot.size,
         "content_type": "image/png"},
        {"attachment": log.id, "filename": "relay.log", "size": len(LOG),
         "content_type": "text/plain"}]
    page = client.get(f"/requests/{number}").get_data(as_text=True)
    answers = page[page.index('id="answers-heading"'):page.index('id="timeline-heading"')]
    assert f'<a href="/attachments/{log.id}">relay.log</a>' in answers
    assert f'src="/attachments/{shot.id}/thumbnail"' in answers
    assert client.get(f"/attachments/{log.id}").data == LOG
    with app.extensions["deskflow"].sessions() as s:
        events = list(s.scalars(select(AuditEvent.event).where(AuditEvent.request_id == record(
            app, number).id).order_by(AuditEvent.id)))
    assert events[:3] == ["submitted", "attachment_added", "attachment_added"]
    auth.logout()
    auth.login("carol")
    assert client.get(f"/attachments/{log.id}").status_code == 404


def test_an_order_without_files_stores_no_answer_for_the_file_field(client, auth, app):
    auth.login("alice")
    response = order(client, [])
    assert response.status_code == 302
    number = response.headers["Location"].split("/")[-2]
    assert record(app, number).answers["screenshots"] is None
    assert counts(app) == (1, 0)


@pytest.mark.parametrize(("files", "message"), [
    ([(HTML, "x.png")], NOT_A_TYPE),
    ([(a_zip(), "logs.zip")],
     "logs.zip: Only image, PDF or text files are accepted here, not Zip archive files."),
    ([(b"", "empty.log")], "empty.log: The file is empty."),
    ([(LOG, f"{i}.log") for i in range(4)], "Must have at most 3 files."),
])
def test_a_refused_file_is_said_on_its_field_and_nothing_is_written(client, auth, app, files,
                                                                    message):
    auth.login("alice")
    response = order(client, files)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "screenshots") == message
    assert counts(app) == (0, 0)


def test_good_files_with_a_bad_answer_elsewhere_write_nothing(client, auth, app):
    auth.login("alice")
    response = order(client, [(png(), "screen.png")], short_description="x")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "short_description") == \
        "Must be at least 5 characters."
    assert counts(app) == (0, 0)


# ---------------------------------------------------------------- the API


@pytest.fixture
def bearer(runner, app):
    def make(user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {cli_token(runner, app, user)}"}
    return make


def api_order(client, headers, screenshots) -> object:
    return client.post("/api/v1/requests", headers=headers, json={
        "item": "report-incident", "answers": {**INCIDENT, "screenshots": screenshots}})


def test_the_items_schema_describes_a_file_as_base64_content(client, bearer):
    body = client.get("/api/v1/catalog/report-incident", headers=bearer()).get_json()
    field = body["schema"]["properties"]["screenshots"]
    one = {"type": "object", "required": ["filename", "content"], "additionalProperties": False,
           "properties": {"filename": {"type": "string", "minLength": 1, "maxLength": 255},
                          "content": {"type": "string", "contentEncoding": "base64",
                                      "minLength": 1, "maxLength": 13981016,
                                      "description": "The file's bytes, in base64. At most "
                                      "10485760 bytes before encoding. Accepted kinds: image, "
                                      "pdf, text."}}}
    assert field["anyOf"] == [{"type": "array", "items": one, "maxItems": 3},
                              {"enum": [None, []]}]
    validator = Draft202012Validator(body["schema"])
    assert validator.is_valid({**INCIDENT, "screenshots": [{"filename": "a.log", "content": b64(LOG)}]})
    assert not validator.is_valid({**INCIDENT, "screenshots": [{"filename": "a.log"}]})


def test_an_api_order_with_base64_files_shows_them_with_their_download_urls(client, bearer, app):
    alice = bearer("alice")
    response = api_order(client, alice, [{"filename": "relay.log", "content": b64(LOG)}])
    assert response.status_code == 201, response.get_data(as_text=True)
    [att] = attachments(app)
    ref = {"attachment": att.id, "filename": "relay.log", "size": len(LOG),
           "content_type": "text/plain", "content_url": f"/api/v1/attachments/{att.id}/content"}
    assert response.get_json()["answers"]["screenshots"] == [ref]
    number = response.get_json()["number"]
    assert client.get(f"/api/v1/requests/{number}", headers=alice).get_json()["answers"][
        "screenshots"] == [ref]
    assert client.get(ref["content_url"], headers=alice).data == LOG
    assert client.get(ref["content_url"], headers=bearer("carol")).status_code == 404


@pytest.mark.parametrize(("screenshots", "detail", "message"), [
    ([{"filename": "a.log", "content": "not base64!"}], "The answers have errors.",
     "Content must be the file's bytes in base64."),
    ([{"name": "a.log"}], "The answers have errors.",
     "Must be a file: an object with filename and content (base64)."),
    ({"filename": "a.log", "content": b64(LOG)}, "The answers have errors.",
     "Must be a list of files."),
    # the rest is the instance's to say (engine.file_answers), in the portal's words
    ([{"filename": "x.png", "content": b64(HTML)}], "the answers have errors", NOT_A_TYPE),
    ([{"filename": "big.log", "content": b64(b"a" * (10 * 1024 * 1024 + 1))}],
     "the answers have errors", "big.log: A file may be at most 10 MB."),
])
def test_api_refusals_are_per_field_and_write_nothing(client, bearer, app, screenshots, detail,
                                                      message):
    problem(api_order(client, bearer("alice"), screenshots), 422, detail,
            {"answers.screenshots": [message]})
    assert counts(app) == (0, 0)


# ---------------------------------------------------------------- a required file field


def acme_app(tmp_path, template_db, old: str = "", new: str = "", **config):
    """The app on a copy of acme whose incident form has `old` replaced by `new`."""
    catalog = tmp_path / "acme"
    shutil.copytree(ACME, catalog)
    item = catalog / "items" / "report-incident.yaml"
    item.write_text(item.read_text().replace(old, new))
    app = make_app(tmp_path / "app", template_db)
    return create_app({**{key: app.config[key] for key in (
        "TESTING", "SECRET_KEY", "DESKFLOW_DATABASE_URL", "DESKFLOW_SECURE_COOKIES",
        "RATELIMIT_ENABLED", "DESKFLOW_PASSWORD_HASHING", "DESKFLOW_ATTACHMENTS_DIR")},
        "DESKFLOW_CATALOG": str(catalog), **config})


@pytest.fixture
def required_app(tmp_path, template_db):
    """acme with the incident's screenshots required, one file only, images only."""
    return acme_app(tmp_path, template_db, "    multiple: true\n    max_items: 3\n"
                    "    accept: [image, pdf, text]\n", "    required: true\n    accept: [image]\n")


def test_a_required_file_field_is_required_in_html_and_json_alike(required_app, runner):
    client = required_app.test_client()
    alice = {"Authorization": f"Bearer {cli_token(runner, required_app, 'alice')}"}
    problem(api_order(client, alice, None), 422, "The answers have errors.",
            {"answers.screenshots": ["This field is required."]})
    auth_page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": "alice", "password": "correct horse battery staple",
                                "csrf_token": csrf_token(auth_page)})
    token = csrf_token(order_page(client))
    response = client.post("/items/report-incident", content_type="multipart/form-data", data={
        "csrf_token": token, **{k: str(v) for k, v in INCIDENT.items()},
        "screenshots": (io.BytesIO(b""), "")})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "screenshots") == "This field is required."
    created = api_order(client, alice, {"filename": "s.png", "content": b64(png())})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["answers"]["screenshots"]["filename"] == "s.png"
    assert counts(required_app) == (1, 1)



def test_an_api_orders_body_may_carry_a_records_worth_of_files_in_base64(tmp_path, template_db,
                                                                         runner):
    mb = 1024 * 1024
    app = acme_app(tmp_path, template_db, DESKFLOW_ATTACHMENT_MAX_FILE=2 * mb,
                   DESKFLOW_ATTACHMENT_MAX_RECORD=2 * mb)
    client = app.test_client()
    alice = {"Authorization": f"Bearer {cli_token(runner, app, 'alice')}"}
    # more than the app's 2 MB body limit once in base64, within the record's 2 MB of files
    response = api_order(client, alice, [{"filename": "big.log", "content": b64(b"a" * (mb + mb // 2))}])
    assert response.status_code == 201, response.get_data(as_text=True)
    # past the base64 of a record's worth, and 1 MB for the rest of the answers
    problem(api_order(client, alice, [{"filename": "big.log", "content": "QUFB" * (mb + mb // 4)}]),
            413, "What you sent is too large.")
    assert counts(app) == (1, 1)
