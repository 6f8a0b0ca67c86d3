"""Inbound email read into plain facts: who, about what, the new text, and whether to ignore it.

No database and no I/O beyond the bytes given: `engine.mail_in` decides what the facts mean.
Parsed with the standard library's `email` package (`policy.default`); malformed MIME gives
what can be read, never an exception.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import BinaryIO

from catalog.errors import DeskflowError

EX_DATAERR = 65
EX_TEMPFAIL = 75
SUBJECT_MAX = 200
BODY_MAX = 100_000
_REF = re.compile(r"\[([A-Z][A-Z0-9]{0,9}-\d{1,12})\]")
_DEFLOW_ID = re.compile(r"<([0-9a-f]{32})\.deskflow@[^>\s]*>")
_MSGID = re.compile(r"<[^<>\s]{1,250}>")
_BULK = {"bulk", "junk", "list", "auto_reply"}
_TYPES = mimetypes.MimeTypes()  # Python's own table, not the machine's /etc/mime.types


class UnreadableMail(DeskflowError):
    """The input is not an email that can be handled (EX_DATAERR: the MTA bounces it)."""

    exit_code = EX_DATAERR


@dataclass(frozen=True, slots=True)
class MailFile:
    """A file the message carries: an attachment or an inline image (`cid:`), as sent.

    The name and claimed type are the sender's; engine.attachments decides what the bytes are.
    """

    filename: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Inbound:
    """What one inbound email says, ready for the record it opens or answers."""

    #: the Message-ID, or `sha256:` and the digest of the raw bytes when it has none
    key: str
    sender: str  # lower case; empty for the null sender
    sender_name: str
    subject: str
    body: str  # the new text: quoted history and signature trimmed
    recipients: tuple[str, ...]  # lower case: Delivered-To, X-Original-To, To, Cc
    #: the record number in the subject ([REQ-000123]), if any
    reference: str | None
    #: the unique parts of Deskflow Message-IDs this answers (In-Reply-To, References)
    answers_to: tuple[str, ...]
    #: why the message is ignored (auto-reply, bounce); empty when it is not
    ignore: str
    #: dmarc=fail or spf=fail in Authentication-Results
    auth_failed: bool
    #: attachments and inline images, in the order the message has them
    files: tuple[MailFile, ...] = ()


def read_limited(stream: BinaryIO, limit: int) -> bytes:
    """Read at most `limit` bytes; a longer message is refused before it is parsed."""
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise UnreadableMail(f"message larger than {limit // (1024 * 1024)} MB: refused unread")
    return raw


def parse(raw: bytes) -> Inbound:
    """Read one RFC 5322 message."""
    if not raw.strip():
        raise UnreadableMail("empty message")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not msg.keys():
        raise UnreadableMail("no header section: not an email")
    sender_name, sender = _sender(msg)
    if sender is None:
        raise UnreadableMail("no From address")
    ident = _header(msg, "Message-ID")
    found = _MSGID.search(ident)
    key = found.group(0) if found else "sha256:" + hashlib.sha256(raw).hexdigest()
    subject = " ".join(_header(msg, "Subject").split())[:SUBJECT_MAX]  # CR/LF cannot survive
    body, files = _content(msg)
    threads = _header(msg, "In-Reply-To") + " " + _header(msg, "References")
    ref = _REF.search(subject)
    return Inbound(
        key=key, sender=sender, sender_name=sender_name, subject=subject,
        body=trim_quoted(body)[:BODY_MAX], recipients=_recipients(msg),
        reference=ref.group(1) if ref else None,
        answers_to=tuple(dict.fromkeys(_DEFLOW_ID.findall(threads))),
        ignore=_ignore_reason(msg, sender), auth_failed=_auth_failed(msg),
        files=files)


def _header(msg: Message, name: str) -> str:
    """A header as text; a malformed one as its raw text, never an exception."""
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):
        value = None
    if value is None:
        raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None) \
            if hasattr(msg, "raw_items") else None
        return str(raw or "")
    return str(value)


def _sender(msg: Message) -> tuple[str, str | None]:
    """The From name and lower-case address; "" for the null sender `<>`, None when absent."""
    path = _header(msg, "Return-Path").strip()
    if path == "<>":
        return "", ""
    name, address = parseaddr(_header(msg, "From"))
    if "@" not in address or any(c in address for c in "\r\n\0"):
        return "", None
    return " ".join(name.split())[:120], address.strip().lower()


def _recipients(msg: Message) -> tuple[str, ...]:
    values = [_header(msg, h) for h in ("Delivered-To", "X-Original-To", "To", "Cc")]
    return tuple(dict.fromkeys(a.strip().lower() for _, a in getaddresses(values) if "@" in a))


def _ignore_reason(msg: Message, sender: str) -> str:
    auto = _header(msg, "Auto-Submitted").strip().lower()
    if auto and auto != "no":
        return f"auto-reply (Auto-Submitted: {auto[:40]})"
    if _header(msg, "X-Autoreply") or _header(msg, "X-Autorespond"):
        return "auto-reply (X-Autoreply)"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence in _BULK:
        return f"auto-reply (Precedence: {precedence})"
    if not sender:
        return "bounce (null sender)"
    if sender.split("@")[0] in ("mailer-daemon", "postmaster"):
        return f"bounce (from {sender})"
    if msg.get_content_type() == "multipart/report":
        return "bounce (multipart/report)"
    return ""


def _auth_failed(msg: Message) -> bool:
    results = " ".join(str(v) for v in (msg.get_all("Authentication-Results") or ())).lower()
    return bool(re.search(r"\b(dmarc|spf)=fail\b", results))


def _content(msg: EmailMessage | Message) -> tuple[str, tuple[MailFile, ...]]:
    """The text of the message (plain preferred, else HTML made text) and the files it
    carries: every part with a file name, marked as an attachment, or not text (inline
    images referenced by `cid:` included)."""
    plain: list[str] = []
    html: list[str] = []
    files: list[MailFile] = []
    for part in msg.walk() if msg.is_multipart() else [msg]:
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        ctype = part.get_content_type()
        name = _filename(part)
        if disposition == "attachment" or name or not ctype.startswith("text/"):
            files.append(_file_of(part, name, ctype, len(files) + 1))
            continue
        if ctype == "text/plain":
            plain.append(_text_of(part))
        elif ctype == "text/html":
            html.append(_text_of(part))
    if plain:
        return "\n".join(plain), tuple(files)
    return "\n".join(html_to_text(h) for h in html), tuple(files)


def _filename(part: Message) -> str:
    """The part's file name; a malformed one as empty, never an exception."""
    try:
        return str(part.get_filename() or "")
    except (ValueError, IndexError, TypeError, LookupError):
        return ""


def _file_of(part: Message, name: str, ctype: str, n: int) -> MailFile:
    """A file part's bytes (a broken transfer encoding decodes as far as it goes); one without a
    name is called `attachment-N` with the suffix of its claimed type (a pasted screenshot)."""
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError):
        data = None
    if not name:
        name = f"attachment-{n}{_TYPES.guess_extension(ctype) or ''}"
    return MailFile(name, data if isinstance(data, bytes) else b"")


def _text_of(part: Message) -> str:
    """A text part decoded; a wrong charset or a broken transfer encoding is read leniently."""
    try:
        return str(part.get_content())  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError, KeyError):
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            return data.decode("utf-8", errors="replace")
        return str(part.get_payload())


# ---------------------------------------------------------------- text


class _TextOf(HTMLParser):
    """HTML to plain text: blocks become lines, script and style say nothing."""

    _BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "pre", "table", "ul", "ol", "hr"}
    _SILENT = {"script", "style", "head", "title", "template", "noscript"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.silent = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SILENT:
            self.silent += 1
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SILENT:
            self.silent = max(0, self.silent - 1)
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.silent:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Safe text from HTML: no tags, no script or style content, one blank line at most."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_QUOTE_HEADS = (
    re.compile(r"^On .{1,300}wrote:\s*$"),  # Gmail, Apple Mail
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}\s*$", re.I),
    re.compile(r"^_{10,}\s*$"),  # Outlook's rule above its From:/Sent: block
)
_OUTLOOK_FROM = re.compile(r"^\*?From:\*?\s")
_OUTLOOK_NEXT = re.compile(r"^\*?(Sent|Date):\*?\s")


def trim_quoted(text: str) -> str:
    """The new part of a reply: no quoted history, no signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        bare = line.strip()
        if line.rstrip() == "--" or line == "-- ":
            break
        if any(h.match(bare) for h in _QUOTE_HEADS):
            break
        if (i + 1 < len(lines) and bare.startswith("On ") and not bare.endswith("wrote:")
                and lines[i + 1].strip().endswith("wrote:")):
            break  # Gmail wraps a long "On ... wrote:" over two lines
        if _OUTLOOK_FROM.match(bare) and any(_OUTLOOK_NEXT.match(n.strip())
                                             for n in lines[i + 1:i + 4]):
            break
        if bare.startswith(">"):
            continue
        kept.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
