"""File fields' answers through the request service (engine.file_answers), on SQLite and
PostgreSQL: the uploads become the new record's attachments in its transaction, the stored
answer names them, and a refused or failed submit leaves no row."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from PIL import Image
from sqlalchemy import func, select

from catalog.fields import Upload
from engine.attachment_store import AttachmentStore
from engine.errors import Conflict, InvalidInput
from engine.models import Attachment, AuditEvent, Request
from engine.service import RequestService

LOG = b"relay refused the connection\n"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30)).save(out, "PNG")
    return out.getvalue()


def a_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", "hello")
    return out.getvalue()


@pytest.fixture
def files(tmp_path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "files", max_file=4000, max_record=5000)


@pytest.fixture
def desk(service, sessions, acme, clock, files) -> RequestService:
    return RequestService(sessions, lambda: acme, clock, attachments=files)


def rows(sessions) -> tuple[int, int]:
    with sessions() as s:
        return (s.scalar(select(func.count()).select_from(Request)) or 0,
                s.scalar(select(func.count()).select_from(Attachment)) or 0)


def test_uploads_become_attachments_and_the_answer_names_them(desk, sessions, answers):
    shot = png()
    req = desk.submit("report-incident", "alice", {
        **answers["report-incident"], "screenshots": [Upload("a/screen.png", shot),
                                                      Upload("relay.log", LOG)]})
    with sessions() as s:
        stored = s.get(Request, req.id)
        atts = list(s.scalars(select(Attachment).order_by(Attachment.id)))
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.request_id == req.id)
                                .order_by(AuditEvent.id)))
    assert [(a.filename, a.field, a.stored_name) for a in atts] == [
        ("screen.png", "screenshots", hashlib.sha256(shot).hexdigest()),
        ("relay.log", "screenshots", hashlib.sha256(LOG).hexdigest())]
    assert stored.answers["screenshots"] == [
        {"attachment": atts[0].id, "filename": "screen.png", "size": len(shot),
         "content_type": "image/png"},
        {"attachment": atts[1].id, "filename": "relay.log", "size": len(LOG),
         "content_type": "text/plain"}]
    assert [e.event for e in events[:3]] == ["submitted", "attachment_added", "attachment_added"]
    assert events[1].detail == {"attachment": atts[0].id, "filename": "screen.png",
                                "size": len(shot), "comment": None, "field": "screenshots"}


@pytest.mark.parametrize(("screenshots", "message"), [
    ([Upload("a.log", b"a" * 4001)], "a.log: A file may be at most 4000 bytes."),
    ([Upload("a.log", b"a" * 3000), Upload("b.log", b"b" * 3000)],
     "A record may hold at most 5000 bytes of files."),
    ([Upload("logs.zip", a_zip())], "logs.zip: Only image, PDF or text files are accepted here, "
     "not Zip archive files."),
    ([Upload("x.png", b"<!DOCTYPE html><script>alert(1)</script>")], "x.png: The content is not "
     "a type that can be attached (images, PDF, office documents, zip, or .txt/.csv/.log/.md text)."),
])
def test_what_the_instance_refuses_is_said_on_the_field_and_nothing_is_written(
        desk, sessions, answers, files, screenshots, message):
    with pytest.raises(InvalidInput) as caught:
        desk.submit("report-incident", "alice", {**answers["report-incident"],
                                                 "screenshots": screenshots})
    assert caught.value.fields == {"screenshots": [message]}
    assert rows(sessions) == (0, 0)
    assert not files.root.exists()


def test_a_submit_that_fails_after_keeping_its_files_leaves_no_row(desk, sessions, answers, files):
    """The bytes are written before the row commits: the store keeps an orphan, never a row."""
    given = {**answers["report-incident"], "screenshots": [Upload("relay.log", LOG)]}

    def work(unit):
        desk._submitted(unit, "report-incident", "alice", given, None, "portal")
        raise Conflict("something after the record failed")

    with pytest.raises(Conflict):
        desk.unit("alice", work)
    assert rows(sessions) == (0, 0)
    assert files.path(hashlib.sha256(LOG).hexdigest()).exists()  # an orphan: prune removes it
