"""Inbound email by IMAP: poll a mailbox, hand each new message to engine.mail_in.

A message is handled once: its UID under the mailbox's UIDVALIDITY, and its Message-ID, are
remembered in `mail_receipts` in the transaction that handles it. TLS (imaps://) always;
plain imap:// only with `insecure` and only to a loopback address (tests).
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sqlalchemy import select

from catalog.errors import DeskflowError
from engine.mail_in import Outcome, Where, receive
from engine.mail_text import EX_DATAERR, UnreadableMail, parse
from engine.models import MailReceipt
from engine.service import RequestService
from engine.unit import UnitOfWork

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class MailboxError(DeskflowError):
    """The mailbox URL is wrong or the IMAP server refused us."""

    exit_code = EX_DATAERR


@dataclass(frozen=True, slots=True)
class Mailbox:
    """Where to poll: imaps://user:password@host:port/MAILBOX."""

    host: str
    port: int
    user: str
    password: str
    mailbox: str
    tls: bool

    @classmethod
    def from_url(cls, url: str, insecure: bool = False) -> Mailbox:
        parts = urlsplit(url)
        if parts.scheme not in ("imaps", "imap"):
            raise MailboxError(f"--imap: use imaps://user:password@host:port/INBOX, "
                               f"not {parts.scheme or 'no'} scheme")
        host = parts.hostname or ""
        if parts.scheme == "imap" and not (insecure and host in LOOPBACK):
            raise MailboxError("--imap: plain imap:// is allowed only with --insecure to "
                               "127.0.0.1 (tests); use imaps://")
        if not host or parts.username is None or parts.password is None:
            raise MailboxError("--imap: the URL needs a user, a password and a host")
        try:
            port = parts.port or (993 if parts.scheme == "imaps" else 143)
        except ValueError:
            raise MailboxError("--imap: the port is not a number from 1 to 65535") from None
        return cls(host, port, unquote(parts.username), unquote(parts.password),
                   unquote(parts.path.lstrip("/")) or "INBOX", parts.scheme == "imaps")


def poll(service: RequestService, box: Mailbox, own_addresses: Collection[str],
         report: Callable[[Outcome], None], limit_bytes: int) -> int:
    """Handle every message not handled yet; return how many were handled."""
    try:
        conn: imaplib.IMAP4 = (imaplib.IMAP4_SSL(box.host, box.port, timeout=60,
                                                 ssl_context=ssl.create_default_context())
                               if box.tls else imaplib.IMAP4(box.host, box.port, timeout=60))
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"cannot reach {box.host}:{box.port}: {exc}") from None
    try:
        try:
            conn.login(box.user, box.password)
            typ, _ = conn.select(_quoted(box.mailbox))
            if typ != "OK":
                raise MailboxError(f"no mailbox {box.mailbox} on {box.host}")
            uidvalidity = int((conn.response("UIDVALIDITY")[1] or [b"0"])[0] or 0)
            _, found = conn.uid("SEARCH", "ALL")
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"{box.host}: {exc}") from None
        uids = [int(u) for u in (found[0] or b"").split()] if found else []
        done = _handled(service, box.mailbox, uidvalidity)
        count = 0
        for uid in (u for u in uids if u not in done):
            report(_one(service, conn, box, uidvalidity, uid, own_addresses, limit_bytes))
            count += 1
        return count
    finally:
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _one(service: RequestService, conn: imaplib.IMAP4, box: Mailbox, uidvalidity: int, uid: int,
         own: Collection[str], limit_bytes: int) -> Outcome:
    where = Where(box.mailbox, uidvalidity, uid)
    _, sized = conn.uid("FETCH", str(uid), "(RFC822.SIZE)")
    size = _SIZE.search(b" ".join(x for x in sized if isinstance(x, bytes)))
    if size is not None and int(size.group(1)) > limit_bytes:
        return _skip(service, where, f"UID {uid}: message larger than "
                     f"{limit_bytes // (1024 * 1024)} MB: refused unread")
    _, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
    raw = next((x[1] for x in data if isinstance(x, tuple) and len(x) == 2), b"")
    try:
        mail = parse(bytes(raw))
    except UnreadableMail as exc:
        return _skip(service, where, f"UID {uid}: {exc}")
    outcome = receive(service, mail, own, where)
    if outcome.action in ("ignored", "duplicate"):
        _skip(service, where, "")
    conn.uid("STORE", str(uid), "+FLAGS", "(\\Seen)")
    return outcome


def _skip(service: RequestService, where: Where, line: str) -> Outcome:
    """Remember a message that cannot be read, so the next poll does not try again."""

    def work(unit: UnitOfWork) -> None:
        if unit.session.scalar(select(MailReceipt.id).where(
                MailReceipt.mailbox == where.mailbox, MailReceipt.uidvalidity == where.uidvalidity,
                MailReceipt.uid == where.uid)) is not None:
            return
        unit.session.add(MailReceipt(
            message_key=f"uid:{where.mailbox}:{where.uidvalidity}:{where.uid}"[:255], sender="",
            outcome="ignored", request_id=None, mailbox=where.mailbox,
            uidvalidity=where.uidvalidity, uid=where.uid, received_at=unit.now))

    service.unit(None, work)
    return Outcome("ignored", f"ignored {line}")


def _handled(service: RequestService, mailbox: str, uidvalidity: int) -> set[int]:
    with service.sessions() as session:
        return {u for u in session.scalars(select(MailReceipt.uid).where(
            MailReceipt.mailbox == mailbox, MailReceipt.uidvalidity == uidvalidity)) if u}


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'
