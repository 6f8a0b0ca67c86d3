"""Attachments through the request service (engine.attachments), on SQLite and PostgreSQL:
who may add, see and delete them, what content is refused, the limits, the audit rows."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from PIL import Image
from sqlalchemy import select

from engine import queries
from engine.attachment_store import AttachmentStore
from engine.attachments import TooLarge, TypeRefused, safe_filename
from engine.errors import InvalidInput, NotAllowed, NotFound
from engine.models import Attachment, Comment
from engine.service import RequestService
from tests.stored import events

NOTE = b"Error 0x80070005 at 09:12\n"


def png(size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def files(tmp_path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "files", max_file=4000, max_record=10000)


@pytest.fixture
def desk(service, sessions, acme, clock, files) -> RequestService:
    return RequestService(sessions, lambda: acme, clock, attachments=files)


@pytest.fixture
def number(desk, answers) -> str:
    return desk.submit("new-laptop", "alice", answers["new-laptop"]).number


def test_a_file_is_kept_under_its_content_hash_and_audited(desk, sessions, files, number):
    att = desk.attach(number, "alice", "error.log", NOTE)
    digest = hashlib.sha256(NOTE).hexdigest()
    assert (att.filename, att.stored_name, att.size, att.content_type) == \
        ("error.log", digest, len(NOTE), "text/plain")
    assert files.path(digest).read_bytes() == NOTE
    assert [e.detail for e in events(sessions, number, "attachment_added")] == \
        [{"attachment": att.id, "filename": "error.log", "size": len(NOTE), "comment": None}]


def test_a_comment_carries_its_files_and_may_have_no_text(desk, sessions, number):
    c = desk.comment(number, "alice", "", files=[("screen.png", png())])
    with sessions() as s:
        assert s.get(Comment, c.id).body == "Attached screen.png."
        assert [(a.comment_id, a.content_type) for a in s.scalars(select(Attachment))] == \
            [(c.id, "image/png")]


def test_the_people_on_the_record_see_attachments_and_others_get_not_found(desk, sessions, clock,
                                                                            number):
    att = desk.attach(number, "alice", "error.log", NOTE)
    with sessions() as s:
        for who in ("alice", "bob", "oscar"):
            assert desk.attachment(s, att.id, who, clock())[0].id == att.id
        with pytest.raises(NotFound, match=f"^no attachment {att.id}$"):
            desk.attachment(s, att.id, "carol", clock())
        with pytest.raises(NotFound, match=f"^no request {number}$"):
            desk.attachments(s, number, "carol", clock())
    with pytest.raises(NotFound, match=f"^no request {number}$"):
        desk.attach(number, "carol", "x.txt", NOTE)


def test_an_internal_notes_files_are_for_agents_only(desk, sessions, clock, number):
    desk.comment(number, "oscar", "Log from the device.", internal=True, files=[("d.log", NOTE)])
    with sessions() as s:
        assert [a.filename for a in desk.attachments(s, number, "oscar", clock())[1]] == ["d.log"]
        assert desk.attachments(s, number, "alice", clock())[1] == []
        req = desk.request(s, number, "alice", clock())
        seen = [e.event.event for e in queries.timeline(s, req, internal=False) if e.event]
        assert "attachment_added" not in seen
        assert "attachment_added" in [e.event.event for e in queries.timeline(s, req, internal=True)
                                      if e.event]


@pytest.mark.parametrize(("given", "shown"), [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("/abs/path/report.pdf", "report.pdf"),
    ("..", "attachment"),
    ("", "attachment"),
    (".htaccess", "htaccess"),
    ("a\x00b<script>.txt", "a_b_script_.txt"),
    ("x" * 300 + ".txt", "x" * 196 + ".txt"),
])
def test_file_names_lose_their_paths_and_unsafe_characters(given, shown):
    assert safe_filename(given) == shown


def test_a_traversal_name_is_stored_under_the_hash_only(desk, files, number):
    att = desk.attach(number, "alice", "../../../../tmp/evil.txt", NOTE)
    assert att.filename == "evil.txt"
    assert sorted(p.name for p in files.root.rglob("*") if p.is_file()) == [att.stored_name]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("screen.png", b"<!DOCTYPE html><html><script>alert(1)</script></html>",
     "screen.png: the content is not a type that can be attached"),
    ("notes.txt", b"<html><body onload=alert(1)>hi</body></html>",
     "notes.txt: the text contains control characters or markup"),
    ("notes.txt", b"\xff\xfe\x00bad", "notes.txt: a .txt file must be UTF-8 text"),
    ("tool.exe", b"MZ\x90\x00" + b"\x00" * 200,
     "tool.exe: application/x-msdownload files cannot be attached"),
])
def test_content_outside_the_allow_list_is_refused_and_nothing_is_written(
        desk, sessions, files, number, name, data, message):
    with pytest.raises(TypeRefused) as caught:
        desk.attach(number, "alice", name, data)
    assert caught.value.message == message
    assert caught.value.status == 415
    with sessions() as s:
        assert s.scalars(select(Attachment)).all() == []
    assert not files.root.exists()


def test_an_image_past_the_decompression_bomb_limit_is_refused(tmp_path, sessions, acme, clock,
                                                               service, answers):
    roomy = RequestService(sessions, lambda: acme, clock,
                           attachments=AttachmentStore(tmp_path / "big", max_file=10_000_000))
    number = roomy.submit("new-laptop", "alice", answers["new-laptop"]).number
    with pytest.raises(TypeRefused) as caught:
        roomy.attach(number, "alice", "huge.png", png((10_000, 10_000), "1"))
    assert caught.value.fields == {"file": [f"The image has more than {Image.MAX_IMAGE_PIXELS} pixels."]}


def test_a_zip_bomb_is_kept_as_it_came_and_never_unpacked(desk, files, number):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\x00" * 1_000_000)
    att = desk.attach(number, "alice", "bomb.zip", out.getvalue())
    assert (att.content_type, att.size) == ("application/zip", len(out.getvalue()))
    assert files.path(att.stored_name).read_bytes() == out.getvalue()


def test_size_limits_per_file_and_per_record(desk, number):
    with pytest.raises(TooLarge) as caught:
        desk.attach(number, "alice", "big.txt", b"a" * 4001)
    assert (str(caught.value), caught.value.status) == (
        "big.txt is larger than 4000 bytes (file: A file may be at most 4000 bytes.)", 413)
    desk.attach(number, "alice", "one.txt", b"a" * 4000)
    desk.attach(number, "alice", "two.txt", b"b" * 4000)
    with pytest.raises(TooLarge) as caught:
        desk.attach(number, "alice", "three.txt", b"c" * 2001)
    assert str(caught.value) == (f"{number} would hold more than 10000 bytes of files "
                                 "(file: A record may hold at most 10000 bytes of files.)")
    assert desk.attach(number, "alice", "fits.txt", b"c" * 2000).size == 2000


def test_an_empty_file_is_refused(desk, number):
    with pytest.raises(InvalidInput) as caught:
        desk.attach(number, "alice", "empty.txt", b"")
    assert caught.value.fields == {"file": ["The file is empty."]}


def test_a_comment_with_a_refused_file_is_not_written_either(desk, sessions, number):
    with pytest.raises(TypeRefused):
        desk.comment(number, "alice", "See attached", files=[("a.txt", NOTE), ("b.png", b"<html>")])
    with sessions() as s:
        assert s.scalars(select(Comment)).all() == []
        assert s.scalars(select(Attachment)).all() == []


def test_deleting_is_audited_and_the_file_goes_with_its_last_row(desk, sessions, clock, files,
                                                                 number):
    first = desk.attach(number, "alice", "a.log", NOTE)
    second = desk.attach(number, "oscar", "same.log", NOTE)
    with pytest.raises(NotAllowed, match="^only the uploader, the people working on the record "
                                         "and admins can delete an attachment$"):
        desk.delete_attachment(second.id, "bob")
    desk.delete_attachment(first.id, "alice")
    assert files.path(first.stored_name).exists()  # the second row still names it
    desk.delete_attachment(second.id, "oscar")
    assert not files.path(first.stored_name).exists()
    with sessions() as s:
        rows = {a.id: (a.deleted_by_id, a.deleted_at) for a in s.scalars(select(Attachment))}
        assert rows == {first.id: ("alice", clock()), second.id: ("oscar", clock())}
        with pytest.raises(NotFound):
            desk.attachment(s, first.id, "alice", clock())
    assert [(e.actor_id, e.detail) for e in events(sessions, number, "attachment_deleted")] == [
        ("alice", {"attachment": first.id, "filename": "a.log"}),
        ("oscar", {"attachment": second.id, "filename": "same.log"})]
