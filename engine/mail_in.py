"""Inbound email: a message opens a record, comments on one, answers a question or reopens it.

`receive` handles one message read by engine.mail_text in ONE transaction: the record, the
comment, its attachments, the imported contact, the refusal sent back and the receipt that
stops the same message being handled twice all commit together or not at all. It works
through the request service's own use cases (run inside this unit), so every rule of the
portal applies.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select

from catalog.answers import defaults_for
from catalog.models import CatalogItem, FieldType
from engine.attachments import add_attachment, safe_filename
from engine.errors import EngineError, InvalidInput
from engine.lifecycle import reopen_in, reopen_until
from engine.mail_text import Inbound
from engine.models import Comment, MailReceipt, OutboxMessage, Person, Request
from engine.outbox import enqueue_email
from engine.service import RequestService
from engine.unit import UnitOfWork, audit

T = TypeVar("T")
TITLE_FIELD, BODY_FIELD = "short_description", "description"
NO_SUBJECT = "(no subject)"
NO_STORE = "attachments are not kept here (no attachment store is configured)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message: the action taken and the log line that says so."""

    #: opened | commented | answered | reopened | refused | ignored | duplicate
    action: str
    message: str
    number: str | None = None


@dataclass(frozen=True, slots=True)
class Where:
    """Where an IMAP poll found the message (engine.mail_imap); None fields when piped."""

    mailbox: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None


class _Joined:
    """Runs the request service's use cases inside one outer unit of work."""

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    def __call__(self, actor: str | None, work: Callable[[UnitOfWork], T]) -> T:
        self.unit.actor = actor
        return work(self.unit)


def receive(service: RequestService, mail: Inbound, own_addresses: Collection[str],
            where: Where = Where()) -> Outcome:
    """Handle one message in one transaction; see the module docstring."""
    own = {a.lower() for a in own_addresses} | set(service.catalog().settings.mail_in.routes)
    if mail.ignore:
        return _ignored(mail, f"ignored {mail.key} from {mail.sender or '<>'}: "
                        f"{mail.ignore}")
    if mail.sender in own:
        return _ignored(mail, f"ignored {mail.key}: from Deskflow's own address "
                        f"{mail.sender} (a mail loop)")
    try:
        return service.unit(None, lambda unit: _handle(service, unit, mail, where))
    except _Refusal as refusal:
        reason = refusal.reason
    return service.unit(None, lambda unit: _refuse(unit, mail, where, reason))


class _Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _handle(service: RequestService, unit: UnitOfWork, mail: Inbound, where: Where) -> Outcome:
    s, settings = unit.session, unit.catalog.settings.mail_in
    if _seen(unit, mail, where):
        return Outcome("duplicate", f"ignored {mail.key}: already handled")
    since = unit.now - timedelta(hours=1)
    recent = s.scalar(select(func.count()).select_from(MailReceipt).where(
        MailReceipt.sender == mail.sender, MailReceipt.received_at >= since)) or 0
    if recent >= settings.rate_limit:
        return Outcome("ignored", f"ignored {mail.key} from {mail.sender}: rate limit of "
                       f"{settings.rate_limit} messages an hour reached")
    person = s.scalars(select(Person).where(func.lower(Person.email) == mail.sender,
                                            Person.active.is_(True)).order_by(Person.id)).first()
    if mail.auth_failed and settings.forged_from == "reject":
        if person is not None:
            return Outcome("ignored", f"ignored {mail.key}: From {mail.sender} is a known address "
                           "but Authentication-Results say dmarc=fail or spf=fail "
                           "(forged_from: reject)")
        if settings.unknown_senders == "refuse":  # a refusal would go to whoever was forged
            return Outcome("ignored", f"ignored {mail.key}: From {mail.sender} fails "
                           "Authentication-Results (dmarc=fail or spf=fail); no refusal sent")
    inner = copy.copy(service)
    inner.unit = _Joined(unit)  # type: ignore[assignment]  # a Runner, as unit.Runner says
    req = _thread(unit, mail)
    try:
        if req is not None:
            if person is None:
                raise _Refusal(f"{mail.sender} is not in the directory and cannot reply to "
                               f"{req.number}")
            action, comment = _reply(inner, unit, req, person.id, mail)
            number = req.number
        else:
            item_id = next((settings.routes[r] for r in mail.recipients if r in settings.routes),
                           None)
            if item_id is None:
                return Outcome("ignored", f"ignored {mail.key}: no route for "
                               f"{', '.join(mail.recipients) or 'no recipient'} (mail_in.routes)")
            if person is None:
                if settings.unknown_senders != "contact":
                    raise _Refusal(f"{mail.sender} is not in the directory "
                                   "(mail_in.unknown_senders: refuse)")
                person = _contact(unit, mail)
            item = unit.catalog.item(item_id)
            if item is None:
                raise _Refusal(f"the route's item {item_id} does not exist")
            unit.actor = person.id
            defaults = defaults_for(item, unit.person_context(person.id, False), unit.catalog)
            opened = inner.submit(item_id, person.id, answers_from(item, mail, defaults))
            opened.channel = "email"
            action, number, req, comment = "opened", opened.number, opened, None
    except EngineError as exc:
        raise _Refusal(str(exc)) from None
    _remember(unit, mail, where, action, req)
    unit.actor = person.id
    kept, refused = _keep_files(unit, req, person.id, mail, comment)
    files: dict[str, Any] = {"attachments_kept": kept, "attachments_refused": [
        {"filename": name, "reason": reason} for name, reason in refused]} if mail.files else {}
    audit(unit, req, "mail_received", message_id=mail.key[:255], action=action, **files)
    if refused:
        _tell_files_refused(unit, mail, req, action, refused)
    line = f"{action} {number} from {mail.sender} ({mail.key}){_files_note(kept, refused)}"
    return Outcome(action, line, number)


def _keep_files(unit: UnitOfWork, req: Request, person: str, mail: Inbound,
                comment: Comment | None) -> tuple[int, list[tuple[str, str]]]:
    """Attach the message's files to the comment it became (else the record), through
    engine.attachments; a refused file is named with its reason and stops nothing."""
    if unit.attachments is None:
        return 0, [(safe_filename(f.filename), NO_STORE) for f in mail.files]
    kept, refused = 0, []
    for f in mail.files:
        try:
            add_attachment(unit, req, f.filename, f.data, person, comment=comment)
            kept += 1
        except InvalidInput as exc:
            words = exc.fields.get("file") or [exc.message]
            refused.append((safe_filename(f.filename), " ".join(words).rstrip(".")))
        except OSError as exc:  # the store's folder is missing or not writable for this user
            refused.append((safe_filename(f.filename),
                            f"the service desk could not store it ({exc.strerror or exc})"))
    return kept, refused


def _files_note(kept: int, refused: list[tuple[str, str]]) -> str:
    if not kept and not refused:
        return ""
    if refused and all(reason == NO_STORE for _, reason in refused):
        return f"; {len(refused)} attachment(s) not kept: {NO_STORE}"
    note = f"; attachments: {kept} kept"
    if refused:
        note += f", {len(refused)} not kept: " + "; ".join(f"{n}: {r}" for n, r in refused)
    return note


_DONE = {"opened": "opened {}", "commented": "was added to {}",
         "answered": "answered the question on {}", "reopened": "reopened {}"}


def _tell_files_refused(unit: UnitOfWork, mail: Inbound, req: Request, action: str,
                        refused: list[tuple[str, str]]) -> None:
    """Tell the sender which files were not kept, the way a refused message is told."""
    number = req.number or ""
    subject = mail.subject if f"[{number}]" in mail.subject else f"[{number}] {mail.subject}"
    lines = "\n".join(f"- {name}: {reason}." for name, reason in refused)
    enqueue_email(unit.session, request_id=req.id, event="mail_refused", to=[mail.sender],
                  subject=f"Re: {subject.strip()}"[:200], html=None, now=unit.now,
                  key="mail_files_refused:" + hashlib.sha256(mail.key.encode()).hexdigest()[:32],
                  text=(f"Hello,\n\nYour email {_DONE[action].format(number)}, but "
                        f"{unit.catalog.settings.name} did not keep these files:\n\n{lines}\n\n"
                        "Reply with them in another form, or ask the service desk how to "
                        "send them.\n"))


def _reply(inner: RequestService, unit: UnitOfWork, req: Request, actor: str,
           mail: Inbound) -> tuple[str, Comment]:
    """A reply: answers a pending question, reopens a resolved record, else comments; with
    the comment it became (the answer, the reason for reopening, or the comment)."""
    text, number = mail.body or mail.subject, req.number or ""
    if not text.strip() and mail.files:  # only files, as the portal's comment allows
        text = "Attached " + ", ".join(safe_filename(f.filename) for f in mail.files) + "."
    unit.actor = actor
    if req.waiting_on_requester and req.requester_id == actor:
        return "answered", inner.answer(number, actor, text)
    if req.status == "open" and req.resolved_at is not None:
        until = reopen_until(unit, req)
        if until is not None and unit.now <= until:
            reopen_in(unit, number, actor, text)
            reason = unit.session.scalars(select(Comment).where(
                Comment.request_id == req.id).order_by(Comment.id.desc()).limit(1)).one()
            return "reopened", reason
    return "commented", inner.comment(number, actor, text)


def _thread(unit: UnitOfWork, mail: Inbound) -> Request | None:
    """The record a reply belongs to: by [REQ-000123] in the subject, else by the Deskflow
    Message-ID it answers."""
    s = unit.session
    if mail.reference:
        found = s.scalar(select(Request).where(Request.number == mail.reference))
        if found is not None:
            return found
    if mail.answers_to:
        request_id = s.scalar(select(OutboxMessage.request_id).where(
            OutboxMessage.message_digest.in_(mail.answers_to),
            OutboxMessage.request_id.is_not(None)).order_by(OutboxMessage.id.desc()).limit(1))
        if request_id is not None:
            return s.get(Request, request_id)
    return None


def answers_from(item: CatalogItem, mail: Inbound, defaults: dict[str, Any]) -> dict[str, Any]:
    """The form an email fills in: the subject is `short_description`, the body
    `description`; every other field takes its default (for the sender, as the portal's
    form would), and a required choice without one its `other` choice when it has one
    (docs/email.md)."""
    answers: dict[str, Any] = dict(defaults)
    for f in item.fields:
        if f.name == TITLE_FIELD:
            answers[f.name] = _fit(mail.subject or NO_SUBJECT, f.min_length, f.max_length,
                                   mail.subject)
        elif f.name == BODY_FIELD:
            body = mail.body if len(mail.body) >= (f.min_length or 0) else \
                "\n\n".join(x for x in (mail.subject, mail.body) if x)
            answers[f.name] = _fit(body, None, f.effective_max_length, "")
        elif f.required and f.name not in answers and f.type is FieldType.CHOICE:
            if any(c.value == "other" for c in f.choices):
                answers[f.name] = "other"
    return answers


def _fit(text: str, low: int | None, high: int | None, fallback: str) -> str:
    text = text.strip()
    if low and len(text) < low:
        text = f"{text} (by email)".strip() if text else fallback
    return text[:high] if high else text


def _contact(unit: UnitOfWork, mail: Inbound) -> Person:
    """An imported contact for an unknown sender: may order and reply, cannot sign in."""
    s = unit.session
    base = re.sub(r"[^a-z0-9._-]", "-", mail.sender)[:56]
    pid, n = base, 1
    while s.get(Person, pid) is not None:
        n += 1
        pid = f"{base[:52]}-{n}"
    person = Person(id=pid, name=mail.sender_name or mail.sender, email=mail.sender,
                    active=True, password_hash=None, imported_from="email")
    s.add(person)
    s.flush()
    return person


def _seen(unit: UnitOfWork, mail: Inbound, where: Where) -> bool:
    q = select(MailReceipt.id).where(MailReceipt.message_key == mail.key[:255])
    if unit.session.scalar(q) is not None:
        return True
    if where.uid is None:
        return False
    return unit.session.scalar(select(MailReceipt.id).where(
        MailReceipt.mailbox == where.mailbox, MailReceipt.uidvalidity == where.uidvalidity,
        MailReceipt.uid == where.uid)) is not None


def _remember(unit: UnitOfWork, mail: Inbound, where: Where, action: str,
              req: Request | None) -> None:
    unit.session.add(MailReceipt(
        message_key=mail.key[:255], sender=mail.sender[:254], outcome=action,
        request_id=req.id if req is not None else None, mailbox=where.mailbox,
        uidvalidity=where.uidvalidity, uid=where.uid, received_at=unit.now))


def _refuse(unit: UnitOfWork, mail: Inbound, where: Where, reason: str) -> Outcome:
    """Tell the sender why nothing was opened (through the outbox), once per message."""
    if _seen(unit, mail, where):
        return Outcome("duplicate", f"ignored {mail.key}: already handled")
    subject = f"Re: {mail.subject}" if mail.subject else "Your email to the service desk"
    name = unit.catalog.settings.name
    enqueue_email(unit.session, request_id=None, event="mail_refused", to=[mail.sender],
                  subject=subject[:200], html=None, now=unit.now,
                  key="mail_refused:" + hashlib.sha256(mail.key.encode()).hexdigest()[:32],
                  text=(f"Hello,\n\n{name} could not take your email: {reason}.\n\n"
                        "Please use the portal, or ask the service desk to add you.\n"))
    _remember(unit, mail, where, "refused", None)
    return Outcome("refused", f"refused {mail.key} from {mail.sender}: {reason}")


def _ignored(mail: Inbound, line: str) -> Outcome:
    """Ignore the message: nothing is written (an IMAP poll remembers its UID, engine.mail_imap)."""
    return Outcome("ignored", line)
