"""Inbound email's files (engine.mail_in): kept on the record or on the comment a reply became,
through engine.attachments, each refused one named without stopping the message; one
transaction; and `deskflow attachments prune` for what a failed one leaves in the store."""

from __future__ import annotations

import hashlib
import io
import zipfile
from email.message import EmailMessage

import pytest
from PIL import Image
from sqlalchemy import func, select

import engine.unit as unit
from engine.attachment_store import AttachmentStore
from engine.mail_in import receive
from engine.mail_text import parse
from engine.models import Attachment, Comment, MailReceipt, OutboxMessage, Request
from engine.service import RequestService
from tests.stored import events, reload
from web.cli import main

OWN = ["deskflow@acme.example"]
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
NOT_A_TYPE = ("The content is not a type that can be attached (images, PDF, office documents, "
              "zip, or .txt/.csv/.log/.md text)")


def png(size: tuple[int, int] = (20, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size).save(out, "PNG")
    return out.getvalue()


def message(files=(), *, subject="Printer jams", body="The printer on 3F jams on every page.",
            sender="bob.bakker@acme.example", ident="<files-1@acme.example>",
            html: str | None = None, inline=()) -> bytes:
    """A message from `sender` to the helpdesk with `files` [(name, bytes, type)] attached and,
    with `html`, an HTML alternative carrying `inline` images [(cid, name, bytes)]."""
    msg = EmailMessage()
    msg["From"], msg["To"] = f"Someone <{sender}>", "helpdesk@acme.example"
    msg["Subject"], msg["Message-ID"] = subject, ident
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
        related = msg.get_payload()[1]
        for cid, name, data in inline:
            related.add_related(data, "image", "png", cid=f"<{cid}>", filename=name)
    for name, data, ctype in files:
        main_type, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main_type, subtype=sub, filename=name)
    return msg.as_bytes()


@pytest.fixture
def store(tmp_path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "files", max_file=3000, max_record=100_000)


@pytest.fixture
def desk(service, sessions, acme, clock, store) -> RequestService:
    return RequestService(sessions, lambda: acme, clock, attachments=store)


def kept(sessions) -> list[tuple[str, str, int | None]]:
    with sessions() as s:
        return [(a.filename, a.content_type, a.comment_id)
                for a in s.scalars(select(Attachment).order_by(Attachment.id))]


def test_a_new_message_keeps_its_files_on_the_record_and_names_each_refused_one(
        desk, sessions, store):
    raw = message([("screen.png", png(), "image/png"), ("quote.pdf", PDF, "application/pdf"),
                   ("shot.png", b"<html><script>alert(1)</script></html>", "image/png"),
                   ("big.pdf", PDF + b"0" * 4000, "application/pdf"),
                   ("../../etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n",
                    "application/octet-stream"),
                   ("setup.exe", b"MZ\x90\x00" + b"\x00" * 200, "application/octet-stream")])
    outcome = receive(desk, parse(raw), OWN)
    assert outcome.message == (
        "opened REQ-000001 from bob.bakker@acme.example (<files-1@acme.example>); attachments: "
        f"2 kept, 4 not kept: shot.png: {NOT_A_TYPE}; big.pdf: A file may be at most 3000 bytes; "
        f"passwd: {NOT_A_TYPE}; setup.exe: Files of type application/x-msdownload cannot be "
        "attached")
    assert kept(sessions) == [("screen.png", "image/png", None),
                              ("quote.pdf", "application/pdf", None)]
    assert store.path(hashlib.sha256(PDF).hexdigest()).read_bytes() == PDF
    [event] = events(sessions, "REQ-000001", "mail_received")
    assert event.detail["attachments_kept"] == 2
    assert [r["filename"] for r in event.detail["attachments_refused"]] == [
        "shot.png", "big.pdf", "passwd", "setup.exe"]
    with sessions() as s:
        [told] = s.scalars(select(OutboxMessage).where(OutboxMessage.event == "mail_refused"))
    assert (told.payload["to"], told.payload["subject"]) == (
        ["bob.bakker@acme.example"], "Re: [REQ-000001] Printer jams")
    assert told.payload["text"].startswith(
        "Hello,\n\nYour email opened REQ-000001, but Acme Service Desk did not keep these "
        f"files:\n\n- shot.png: {NOT_A_TYPE}.\n- big.pdf: A file may be at most 3000 bytes.\n")


def test_a_reply_keeps_its_files_on_the_comment_it_became(desk, sessions, clock):
    receive(desk, parse(message()), OWN)
    reply = message([("error.log", b"E 0x80070005\n", "text/plain")], subject="Re: [REQ-000001]",
                    body="Here is the log.", ident="<files-2@acme.example>")
    assert receive(desk, parse(reply), OWN).action == "commented"
    desk.ask_requester("REQ-000001", "frank", "Which tray?")
    answer = message([("tray.png", png(), "image/png")], subject="Re: [REQ-000001]",
                     body="Tray 2.", ident="<files-3@acme.example>")
    assert receive(desk, parse(answer), OWN).action == "answered"
    desk.resolve("REQ-000001", "frank", "fixed", "Replaced the roller.")
    clock.advance(hours=1)
    again = message([("again.png", png((5, 5)), "image/png")], subject="Re: [REQ-000001]",
                    body="It jams again.", ident="<files-4@acme.example>")
    assert receive(desk, parse(again), OWN).action == "reopened"
    with sessions() as s:
        comments = {c.body: c.id for c in s.scalars(select(Comment))}
    assert kept(sessions) == [("error.log", "text/plain", comments["Here is the log."]),
                              ("tray.png", "image/png", comments["Tray 2."]),
                              ("again.png", "image/png", comments["It jams again."])]


def test_a_reply_with_no_text_comments_with_its_subject_and_keeps_the_file(desk, sessions):
    receive(desk, parse(message()), OWN)
    reply = message([("photo.png", png(), "image/png")], subject="[REQ-000001]", body="",
                    ident="<files-5@acme.example>")
    assert receive(desk, parse(reply), OWN).action == "commented"
    with sessions() as s:
        assert s.scalars(select(Comment.body)).all() == ["[REQ-000001]"]
    assert [f for f, _, _ in kept(sessions)] == ["photo.png"]


def test_inline_images_of_html_mail_are_kept_as_attachments(desk, sessions):
    raw = message(html='<p>See <img src="cid:shot1"></p>',
                  inline=[("shot1", "image001.png", png()), ("shot2", None, png((3, 3)))])
    outcome = receive(desk, parse(raw), OWN)
    assert outcome.message.endswith("; attachments: 2 kept")
    assert kept(sessions) == [("image001.png", "image/png", None),
                              ("attachment-2.png", "image/png", None)]


def test_a_zip_bomb_is_kept_as_sent_and_never_unpacked(desk, sessions, store, tmp_path):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\0" * (20 * 1024 * 1024))  # 20 MB in about 20 KB
    data = bomb.getvalue()
    big = AttachmentStore(store.root, max_file=len(data) + 1)
    desk.unit.attachments = big
    outcome = receive(desk, parse(message([("logs.zip", data, "application/zip")])), OWN)
    assert outcome.message.endswith("; attachments: 1 kept")
    with sessions() as s:
        att = s.scalars(select(Attachment)).one()
    assert (att.size, att.content_type) == (len(data), "application/zip")
    assert big.path(att.stored_name).read_bytes() == data
    assert len(data) < 64 * 1024


def test_without_an_attachment_store_the_text_is_kept_and_the_files_named(service, sessions):
    outcome = receive(service, parse(message([("quote.pdf", PDF, "application/pdf")])), OWN)
    assert outcome.message == (
        "opened REQ-000001 from bob.bakker@acme.example (<files-1@acme.example>); 1 "
        "attachment(s) not kept: attachments are not kept here (no attachment store is "
        "configured)")
    assert reload(sessions, "REQ-000001").answers["description"] == \
        "The printer on 3F jams on every page."
    [event] = events(sessions, "REQ-000001", "mail_received")
    assert event.detail["attachments_refused"] == [
        {"filename": "quote.pdf",
         "reason": "attachments are not kept here (no attachment store is configured)"}]


def test_a_store_that_cannot_be_written_keeps_the_text_and_names_the_files(desk, sessions,
                                                                           tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    desk.unit.attachments = AttachmentStore(tmp_path / "not-a-folder")
    outcome = receive(desk, parse(message([("quote.pdf", PDF, "application/pdf")])), OWN)
    assert outcome.message.endswith(
        "; attachments: 0 kept, 1 not kept: quote.pdf: the service desk could not store it "
        "(Not a directory)")
    assert kept(sessions) == []
    assert reload(sessions, "REQ-000001").title == "Printer jams"


def test_a_record_that_fails_keeps_nothing_and_prune_removes_the_file_left(
        desk, sessions, store, runner, db_url, monkeypatch):
    def insert_rows(session, rows):
        raise RuntimeError("the outbox is gone")

    monkeypatch.setattr(unit, "insert_rows", insert_rows)
    with pytest.raises(RuntimeError):
        receive(desk, parse(message([("quote.pdf", PDF, "application/pdf")])), OWN)
    monkeypatch.undo()
    with sessions() as s:
        assert [s.scalar(select(func.count()).select_from(m))
                for m in (Request, Attachment, MailReceipt, OutboxMessage)] == [0, 0, 0, 0]
    left = store.path(hashlib.sha256(PDF).hexdigest())
    assert left.exists()  # written before the row, as engine.attachments says

    monkeypatch.setenv("DESKFLOW_ATTACHMENTS_DIR", str(store.root))
    relative = left.relative_to(store.root).as_posix()
    dry = runner.invoke(main, ["attachments", "prune", "--dry-run", "--min-age", "0",
                               "--db", db_url])
    assert (dry.exit_code, dry.output) == (0, (
        f"would remove {relative} ({len(PDF)} bytes)\n"
        f"dry run: 1 file(s) would remove, {len(PDF)} bytes to free in {store.root}\n"))
    assert left.exists()
    young = runner.invoke(main, ["attachments", "prune", "--db", db_url])
    assert young.output == f"0 file(s) removed, 0 bytes freed in {store.root}\n"
    done = runner.invoke(main, ["attachments", "prune", "--min-age", "0", "--db", db_url])
    assert (done.exit_code, done.output) == (0, (
        f"removed {relative} ({len(PDF)} bytes)\n"
        f"1 file(s) removed, {len(PDF)} bytes freed in {store.root}\n"))
    assert not left.exists() and not left.parent.exists()


def test_prune_keeps_live_files_and_removes_deleted_ones_not_shared(desk, sessions, store, clock,
                                                                    runner, db_url, monkeypatch):
    number = receive(desk, parse(message()), OWN).number
    shared, alone = desk.attach(number, "bob", "a.pdf", PDF), desk.attach(number, "bob", "b.png", png())
    desk.attach(number, "bob", "copy.pdf", PDF)
    with sessions.begin() as s:  # deleted rows whose files a crash left behind
        for att_id in (shared.id, alone.id):
            s.get(Attachment, att_id).deleted_at = clock()
    monkeypatch.setenv("DESKFLOW_ATTACHMENTS_DIR", str(store.root))
    result = runner.invoke(main, ["attachments", "prune", "--min-age", "0", "--db", db_url])
    gone = store.path(alone.stored_name)
    assert (result.exit_code, result.output) == (0, (
        f"removed {gone.relative_to(store.root).as_posix()} ({alone.size} bytes)\n"
        f"1 file(s) removed, {alone.size} bytes freed in {store.root}\n"))
    assert store.path(shared.stored_name).exists()  # copy.pdf still names it
    assert not store.path(alone.stored_name).exists()
