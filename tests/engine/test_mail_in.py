"""Inbound email (engine.mail_in, `deskflow mail-in`): messages from tests/data/mail opening,
threading, answering and reopening records, and everything that is ignored or refused."""

from __future__ import annotations

import hashlib
import io
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from engine.attachment_store import AttachmentStore
from engine.db import make_engine
from engine.delivery_config import DeliveryConfig
from engine.mail_in import Outcome, receive
from engine.mail_text import UnreadableMail, html_to_text, parse, read_limited, trim_quoted
from engine.migrate import upgrade
from engine.models import AuditEvent, Comment, MailReceipt, OutboxMessage, Person, Request
from engine.outbox import message_digest
from engine.smtp import build_email
from tests.stored import events, reload
from web.cli import main

MAIL = Path(__file__).resolve().parent.parent / "data" / "mail"
OWN = ["deskflow@acme.example"]


def mail(name: str, **replace_text: str) -> bytes:
    raw = (MAIL / name).read_bytes()
    for old, new in replace_text.items():
        raw = raw.replace(old.encode(), new.encode())
    return raw


def deliver(service, name: str, **replace_text: str) -> Outcome:
    return receive(service, parse(mail(name, **replace_text)), OWN)


def counts(sessions) -> tuple[int, int, int, int]:
    with sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(m))  # type: ignore[return-value]
                     for m in (Request, Comment, MailReceipt, OutboxMessage))


# ---------------------------------------------------------------- the round trip


def test_round_trip_open_answer_resolve_reopen_all_in_the_timeline(service, sessions, clock):
    opened = deliver(service, "new_incident.eml")
    assert (opened.action, opened.number) == ("opened", "REQ-000001")
    assert opened.message == ("opened REQ-000001 from alice.jansen@acme.example "
                              "(<CAF7x1Qm9Vh2kq@mail.acme.example>)")
    req = reload(sessions, "REQ-000001")
    assert (req.requester_id, req.item_id, req.channel, req.title) == (
        "alice", "report-incident", "email", "Outlook keeps asking for my password")
    assert req.answers["description"].startswith("Hello,\n\nSince this morning Outlook asks")
    assert "Alice Jansen | Sales" not in req.answers["description"]  # the signature is trimmed
    assert req.answers["affected_service"] == "other"

    clock.advance(minutes=30)
    service.ask_requester("REQ-000001", "frank", "Which laptop, and does it also happen at home?")
    answered = deliver(service, "outlook_reply.eml")
    assert answered.action == "answered"
    req = reload(sessions, "REQ-000001")
    assert req.waiting_on_requester is False
    with sessions() as s:
        answer = s.scalars(select(Comment).where(Comment.kind == "answer")).one()
    assert answer.body == "It happens on my laptop ACME-LT-0042, both in the office and at home."

    clock.advance(hours=1)
    service.resolve("REQ-000001", "frank", "fixed", "Cleared the cached credentials.")
    with sessions() as s:  # the last email Alice was sent: that her incident is resolved
        resolved_mail = [o for o in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
                         if o.payload.get("to") == ["alice.jansen@acme.example"]][-1]
    sent_id = build_email(resolved_mail.payload | {"text": "x", "subject": "s"},
                          resolved_mail.idempotency_key,
                          DeliveryConfig(mail_from="deskflow@acme.example"), clock.now)["Message-ID"]
    assert sent_id == f"<{resolved_mail.message_digest}.deskflow@acme.example>"

    clock.advance(hours=2)
    reopened = deliver(service, "gmail_reply.eml", **{"DESKFLOW-MESSAGE-ID": sent_id})
    assert reopened.action == "reopened"
    req = reload(sessions, "REQ-000001")
    assert (req.resolved_at, req.reopen_count) == (None, 1)
    [event] = events(sessions, "REQ-000001", "reopened")
    assert event.detail["reason"] == "Sorry, it started again this morning: the password prompt is back."

    timeline = [(e.event, e.actor_id) for e in _all_events(sessions, "REQ-000001")]
    assert [e for e in timeline if e[0] in ("submitted", "mail_received", "asked_requester",
                                            "answered", "resolved", "reopened")] == [
        ("submitted", "alice"), ("mail_received", "alice"), ("asked_requester", "frank"),
        ("answered", "alice"), ("mail_received", "alice"), ("resolved", "frank"),
        ("reopened", "alice"), ("mail_received", "alice")]


def _all_events(sessions, number):
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(AuditEvent).where(AuditEvent.request_id == req.id)
                              .order_by(AuditEvent.id)))


def test_a_reply_to_an_open_record_is_a_public_comment_without_the_quoted_history(service, sessions):
    deliver(service, "new_incident.eml")
    outcome = deliver(service, "outlook_reply.eml")  # no question pending: a comment
    assert outcome.action == "commented"
    with sessions() as s:
        [c] = s.scalars(select(Comment)).all()
    assert (c.author_id, c.internal, c.body) == (
        "alice", False, "It happens on my laptop ACME-LT-0042, both in the office and at home.")


def test_the_same_message_twice_is_handled_once(service, sessions):
    deliver(service, "new_incident.eml")
    before = counts(sessions)
    again = deliver(service, "new_incident.eml")
    assert again == Outcome("duplicate",
                            "ignored <CAF7x1Qm9Vh2kq@mail.acme.example>: already handled")
    assert counts(sessions) == before


def test_a_reply_after_the_reopen_window_is_a_comment(service, sessions, clock):
    deliver(service, "new_incident.eml")
    service.resolve("REQ-000001", "frank", "fixed", "Cleared the cached credentials.")
    clock.advance(days=14)
    outcome = deliver(service, "outlook_reply.eml")
    req = reload(sessions, "REQ-000001")
    assert req.resolved_at is not None
    assert outcome.action == "commented"
    assert events(sessions, "REQ-000001", "reopened") == []


# ---------------------------------------------------------------- senders


def test_unknown_sender_is_refused_with_a_reply_through_the_outbox(service, sessions):
    outcome = deliver(service, "unknown_sender.eml")
    assert outcome == Outcome("refused", "refused <supplier-1@supplier.example> from "
                              "jan@supplier.example: jan@supplier.example is not in the "
                              "directory (mail_in.unknown_senders: refuse)")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Request)) == 0
        [out] = s.scalars(select(OutboxMessage)).all()
    assert (out.event, out.payload["to"], out.payload["subject"]) == (
        "mail_refused", ["jan@supplier.example"], "Re: Cannot reach your supplier portal")


def test_unknown_sender_becomes_an_imported_contact_when_the_setting_says_so(
        service, sessions, acme):
    settings = replace(acme.settings,
                       mail_in=replace(acme.settings.mail_in, unknown_senders="contact"))
    service.catalog = lambda: replace(acme, settings=settings)
    service.unit.catalog = service.catalog
    outcome = deliver(service, "unknown_sender.eml")
    assert outcome.action == "opened"
    with sessions() as s:
        person = s.get(Person, "jan-supplier.example")
        assert person is not None
        assert (person.name, person.email, person.password_hash, person.imported_from) == (
            "Jan de Vries", "jan@supplier.example", None, "email")
    assert reload(sessions, outcome.number).requester_id == "jan-supplier.example"


def test_forged_from_with_failing_authentication_is_ignored(service, sessions):
    before = counts(sessions)
    outcome = deliver(service, "forged_from.eml")
    assert outcome == Outcome("ignored", "ignored <forged-1@invoices-acme.example>: From "
                              "alice.jansen@acme.example is a known address but "
                              "Authentication-Results say dmarc=fail or spf=fail "
                              "(forged_from: reject)")
    assert counts(sessions) == before


def test_forged_unknown_sender_gets_no_refusal(service, sessions):
    before = counts(sessions)
    outcome = deliver(service, "forged_from.eml", **{"alice.jansen@acme.example": "ceo@acme.example"})
    assert outcome == Outcome("ignored", "ignored <forged-1@invoices-acme.example>: From "
                              "ceo@acme.example fails Authentication-Results (dmarc=fail or "
                              "spf=fail); no refusal sent")
    assert counts(sessions) == before


def test_forged_from_is_accepted_when_the_setting_says_so(service, sessions, acme):
    settings = replace(acme.settings, mail_in=replace(acme.settings.mail_in, forged_from="accept"))
    service.catalog = lambda: replace(acme, settings=settings)
    service.unit.catalog = service.catalog
    assert deliver(service, "forged_from.eml").action == "opened"


def test_rate_limit_per_sender(service, sessions, acme):
    settings = replace(acme.settings, mail_in=replace(acme.settings.mail_in, rate_limit=2))
    service.catalog = lambda: replace(acme, settings=settings)
    service.unit.catalog = service.catalog
    for i in range(2):
        assert deliver(service, "html_only.eml", **{"1234@": f"{i}@"}).action == "opened"
    outcome = deliver(service, "html_only.eml", **{"1234@": "9@"})
    assert outcome.message == ("ignored <20261123094000.9@acme.example> from "
                               "bob.bakker@acme.example: rate limit of 2 messages an hour reached")


# ---------------------------------------------------------------- ignored and odd messages


@pytest.mark.parametrize(("name", "line"), [
    ("auto_reply.eml", "ignored <ooo-20261123120000@acme.example> from alice.jansen@acme.example: "
                       "auto-reply (Auto-Submitted: auto-replied)"),
    ("bounce.eml", "ignored <20261123110100.AB12C3@mx.acme.example> from <>: bounce (null sender)"),
])
def test_auto_replies_and_bounces_are_ignored_and_nothing_is_written(service, sessions, name, line):
    before = counts(sessions)
    assert deliver(service, name) == Outcome("ignored", line)
    assert counts(sessions) == before


def test_mail_from_deskflow_itself_is_a_loop(service, sessions):
    raw = mail("new_incident.eml", **{"From: Alice Jansen <alice.jansen@acme.example>":
                                      "From: Acme Service Desk <deskflow@acme.example>"})
    outcome = receive(service, parse(raw), OWN)
    assert outcome.message == ("ignored <CAF7x1Qm9Vh2kq@mail.acme.example>: from Deskflow's own "
                               "address deskflow@acme.example (a mail loop)")


def test_html_only_mail_becomes_safe_text(service, sessions):
    outcome = deliver(service, "html_only.eml")
    description = reload(sessions, outcome.number).answers["description"]
    assert description == ("The printer PRN-3F-01 prints only blank pages since the toner was "
                           "replaced.\n\nTried turning it off & on again.")


def test_header_injection_in_the_subject_is_neutralised(service, sessions):
    outcome = deliver(service, "header_injection.eml")
    title = reload(sessions, outcome.number).title
    assert title == "Laptop broken Bcc: everyone@acme.example X-Evil: 1"
    assert "\r" not in title and "\n" not in title


def test_malformed_mime_is_read_as_far_as_it_goes(service, sessions, tmp_path):
    service.unit.attachments = AttachmentStore(tmp_path / "files")
    outcome = deliver(service, "malformed_mime.eml")
    assert outcome.message == ("opened REQ-000001 from bob.bakker@acme.example "
                               "(<broken-mime-1@acme.example>); attachments: 1 kept")
    assert reload(sessions, "REQ-000001").answers["description"].startswith(
        "The VPN connection drops every ten minutes")
    [event] = events(sessions, "REQ-000001", "mail_received")
    assert (event.detail["attachments_kept"], event.detail["attachments_refused"]) == (1, [])


def test_no_route_is_ignored(service, sessions):
    before = counts(sessions)
    outcome = deliver(service, "new_incident.eml", **{"helpdesk@acme.example": "sales@acme.example"})
    assert outcome.message == ("ignored <CAF7x1Qm9Vh2kq@mail.acme.example>: no route for "
                               "sales@acme.example (mail_in.routes)")
    assert counts(sessions) == before


def test_oversized_messages_are_refused_unread():
    stream = io.BytesIO(b"x" * (2 * 1024 * 1024 + 10))
    with pytest.raises(UnreadableMail, match=r"^message larger than 2 MB: refused unread$"):
        read_limited(stream, 2 * 1024 * 1024)
    assert stream.tell() == 2 * 1024 * 1024 + 1  # never more than limit + 1 bytes


def test_quoted_history_and_html_helpers():
    assert trim_quoted("Yes.\n\n-----Original Message-----\nFrom: x\n") == "Yes."
    assert trim_quoted("Fine\n> old\n>> older\nthanks") == "Fine\nthanks"
    assert html_to_text("<p>a</p><script>evil()</script><style>x{}</style><p>b &lt;c&gt;</p>") \
        == "a\n\nb <c>"


def test_outgoing_emails_store_their_message_digest(service, sessions):
    deliver(service, "new_incident.eml")
    with sessions() as s:
        for out in s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "email")):
            assert out.message_digest == message_digest(out.idempotency_key)


# ---------------------------------------------------------------- the command


@pytest.fixture
def synced(db_url, service):
    return db_url


def test_cli_pipe_opens_an_incident(runner, synced, acme_path, sessions):
    result = runner.invoke(main, ["mail-in", "--db", synced, "--catalog", str(acme_path)],
                           input=mail("new_incident.eml"))
    assert result.exit_code == 0, result.output
    assert result.stderr == ("deskflow mail-in: opened REQ-000001 from alice.jansen@acme.example "
                             "(<CAF7x1Qm9Vh2kq@mail.acme.example>)\n")
    assert reload(sessions, "REQ-000001").channel == "email"


def test_cli_ignored_message_exits_zero(runner, synced, acme_path):
    result = runner.invoke(main, ["mail-in", "--db", synced, "--catalog", str(acme_path)],
                           input=mail("bounce.eml"))
    assert (result.exit_code, result.stderr) == (
        0, "deskflow mail-in: ignored <20261123110100.AB12C3@mx.acme.example> from <>: "
           "bounce (null sender)\n")


def test_cli_unreadable_input_is_ex_dataerr(runner, synced, acme_path):
    result = runner.invoke(main, ["mail-in", "--db", synced, "--catalog", str(acme_path)],
                           input=mail("not_an_email.txt"))
    assert (result.exit_code, result.stderr) == (65, "deskflow: no header section: not an email\n")


def test_cli_database_unavailable_is_ex_tempfail(runner, tmp_path, acme_path):
    url = f"sqlite:///{tmp_path}/missing/dir/deskflow.sqlite"
    result = runner.invoke(main, ["mail-in", "--db", url, "--catalog", str(acme_path)],
                           input=mail("new_incident.eml"))
    assert (result.exit_code, result.stderr) == (
        75, "deskflow: the database is unavailable; the MTA should try again later\n")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # its write lock: busy on demand
def test_cli_database_busy_is_ex_tempfail_and_nothing_is_written(runner, db_url, service,
                                                                 acme_path, sessions):
    locker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the busy timeout
        result = runner.invoke(main, ["mail-in", "--db", db_url, "--catalog", str(acme_path)],
                               input=mail("new_incident.eml"))
    finally:
        locker.rollback()
        locker.close()
    assert (result.exit_code, result.stderr) == (
        75, "deskflow: the database is busy; the MTA should try again later\n")
    assert counts(sessions) == (0, 0, 0, 0)


def test_migration_0022_gives_emails_already_queued_their_digest(tmp_path):
    url = f"sqlite:///{tmp_path}/m.sqlite"
    upgrade(url, "0021")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO outbox (kind, event, idempotency_key, payload, status, attempts, "
                "next_attempt_at, last_error, created_at) VALUES ('email', 'comment_added', "
                "'old-key', '{}', 'pending', 0, '2026-11-23 08:30:00', '', '2026-11-23 08:30:00')"))
        upgrade(url, "0022")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT message_digest FROM outbox")).scalar() == \
                message_digest("old-key")
    finally:
        engine.dispose()


# ---------------------------------------------------------------- missing headers, huge messages


def test_a_message_without_from_is_unreadable(runner, synced, acme_path):
    raw = mail("new_incident.eml", **{"From: Alice Jansen <alice.jansen@acme.example>\r\n": ""})
    result = runner.invoke(main, ["mail-in", "--db", synced, "--catalog", str(acme_path)],
                           input=raw)
    assert (result.exit_code, result.stderr) == (65, "deskflow: no From address\n")


def test_a_message_without_message_id_is_known_by_its_digest(service, sessions):
    raw = mail("new_incident.eml", **{"Message-ID: <CAF7x1Qm9Vh2kq@mail.acme.example>\r\n": ""})
    key = "sha256:" + hashlib.sha256(raw).hexdigest()
    opened = receive(service, parse(raw), OWN)
    assert opened.message == f"opened REQ-000001 from alice.jansen@acme.example ({key})"
    assert receive(service, parse(raw), OWN).message == f"ignored {key}: already handled"


def test_a_message_without_subject_gets_a_title_that_says_so(service, sessions):
    raw = mail("new_incident.eml", **{"Subject: Outlook keeps asking for my password\r\n": ""})
    opened = receive(service, parse(raw), OWN)
    assert reload(sessions, opened.number).title == "(no subject)"


def test_a_message_without_recipients_is_ignored(service, sessions):
    raw = mail("new_incident.eml", **{"Delivered-To: helpdesk@acme.example\r\n": "",
                                      "To: Acme Helpdesk <helpdesk@acme.example>\r\n": ""})
    before = counts(sessions)
    assert receive(service, parse(raw), OWN).message == (
        "ignored <CAF7x1Qm9Vh2kq@mail.acme.example>: no route for no recipient (mail_in.routes)")
    assert counts(sessions) == before


#: run the command and write its /proc/self/status at exit: VmHWM is the peak RSS of the
#: command alone (ru_maxrss would count the forking test process too)
PEAK = ("import atexit, sys; out = sys.argv.pop(1); atexit.register(lambda: open(out, 'w')"
        ".write(open('/proc/self/status').read())); from web.cli import main; main()")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_50_mb_message_is_refused_after_reading_the_limit_and_memory_stays_low(
        db_url, service, tmp_path, acme_path):
    big, status = tmp_path / "fifty.eml", tmp_path / "status"
    with big.open("wb") as out:
        out.write(mail("new_incident.eml"))
        out.write((b"x" * 76 + b"\n") * (50 * 1024 * 1024 // 77))
    with big.open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-c", PEAK, str(status), "mail-in", "--db", db_url,
             "--catalog", str(acme_path)], stdin=stdin, capture_output=True, timeout=120,
            env=os.environ | {"DESKFLOW_ATTACHMENTS_DIR": str(tmp_path / "files")})
    assert (result.returncode, result.stderr) == (
        65, b"deskflow: message larger than 25 MB: refused unread\n")
    peak_kb = int(re.search(r"^VmHWM:\s+(\d+) kB", status.read_text(), re.M).group(1))
    # the interpreter and its imports take about 95 MB, the 25 MB read a little more
    assert peak_kb < 200 * 1024, f"peak RSS {peak_kb // 1024} MB"
