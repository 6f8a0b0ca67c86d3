"""Attachments: files kept for a record (and optionally one of its comments).

`add_attachment` is the one way in, for the portal, the API and inbound email alike. What
a file is comes from its content (the `filetype` package reads the magic bytes), checked
against `ALLOWED`; the name and the claimed type are never trusted. Text files have no
magic: a file with none is taken as text only when it is UTF-8 without control characters
or markup and its name ends in .txt, .csv, .log or .md. Zip archives are kept as they came
and never unpacked (a zip bomb is only its compressed size here). Images larger than
Pillow's decompression-bomb limit are refused.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import filetype
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import people, permissions
from engine.attachment_store import MB, AttachmentStore, write_whole
from engine.errors import InvalidInput, NotAllowed, NotFound, Unavailable
from engine.inputs import fresh
from engine.models import Attachment, Comment, Request
from engine.unit import UnitOfWork, audit, touch

#: media types read from the content that may be attached, and the words users see
ALLOWED = {
    "image/png": "PNG image", "image/jpeg": "JPEG image", "image/gif": "GIF image",
    "image/webp": "WebP image", "application/pdf": "PDF document",
    "application/msword": "Word document", "application/vnd.ms-excel": "Excel workbook",
    "application/vnd.ms-powerpoint": "PowerPoint presentation",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel workbook",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation":
        "PowerPoint presentation",
    "application/vnd.oasis.opendocument.text": "OpenDocument text",
    "application/vnd.oasis.opendocument.spreadsheet": "OpenDocument spreadsheet",
    "application/vnd.oasis.opendocument.presentation": "OpenDocument presentation",
    "application/zip": "Zip archive",
    "text/plain": "Text", "text/csv": "CSV",
}
IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: text has no magic bytes: these names, with clean UTF-8 content, are text
TEXT_SUFFIXES = {".txt": "text/plain", ".log": "text/plain", ".md": "text/plain",
                 ".csv": "text/csv"}
THUMBNAIL = (240, 240)
DELETERS = "only the uploader, the people working on the record and admins can delete an attachment"
MAX_NAME = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MARKUP = re.compile(rb"<\s*(!doctype|html|script|svg|body|head|iframe|\?xml)", re.IGNORECASE)


class TooLarge(InvalidInput):
    """A file over the per-file limit, or one that takes a record over its limit (413)."""

    status = 413


class TypeRefused(InvalidInput):
    """The content is not a type the allow-list admits (415)."""

    status = 415


def safe_filename(name: str) -> str:
    """The name as shown and offered for download: its last path part, no control or
    path characters, no leading dots, at most MAX_NAME characters (the suffix kept)."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = re.split(r"[/\\]", text)[-1]
    text = _UNSAFE.sub("_", text).strip().lstrip(".").strip()
    if not text or set(text) <= {"_", "."}:
        return "attachment"
    if len(text) > MAX_NAME:
        stem, dot, suffix = text.rpartition(".")
        keep = f".{suffix}" if dot and 0 < len(suffix) <= 10 else ""
        text = (stem if keep else text)[:MAX_NAME - len(keep)] + keep
    return text


def detect_type(filename: str, data: bytes) -> str:
    """The media type of `data`, from its content; TypeRefused when it is not allowed."""
    kind = filetype.guess(data[:8192]) if data else None
    if kind is not None:
        if kind.mime not in ALLOWED:
            raise TypeRefused(f"{filename}: {kind.mime} files cannot be attached",
                              {"file": [f"Files of type {kind.mime} cannot be attached."]})
        if kind.mime in IMAGES:
            _check_image(filename, data)
        return str(kind.mime)
    suffix = Path(filename).suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise TypeRefused(f"{filename}: the content is not a type that can be attached",
                          {"file": ["The content is not a type that can be attached "
                                    "(images, PDF, office documents, zip, or .txt/.csv/.log/.md text)."]})
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TypeRefused(f"{filename}: a {suffix} file must be UTF-8 text",
                          {"file": [f"A {suffix} file must be UTF-8 text."]}) from None
    if _CONTROL.search(text) or _MARKUP.search(data[:65536]):
        raise TypeRefused(f"{filename}: the text contains control characters or markup",
                          {"file": ["The text contains control characters or markup."]})
    return TEXT_SUFFIXES[suffix]


def _check_image(filename: str, data: bytes) -> None:
    """Refuse an image that would not open, or one past Pillow's decompression-bomb limit."""
    limit = Image.MAX_IMAGE_PIXELS or 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise TypeRefused(f"{filename}: the image is too large",
                          {"file": [f"The image has more than {limit} pixels."]}) from None
    except (OSError, ValueError, SyntaxError):
        raise TypeRefused(f"{filename}: the image cannot be read",
                          {"file": ["The image cannot be read."]}) from None
    if limit and width * height > limit:
        raise TypeRefused(f"{filename}: the image is too large",
                          {"file": [f"The image has more than {limit} pixels."]})


def in_megabytes(size: int) -> str:
    """A limit in words: whole megabytes as such, else one decimal, small ones in bytes."""
    if size % MB == 0:
        return f"{size // MB} MB"
    return f"{size / MB:.1f} MB" if size >= MB else f"{size} bytes"


def add_attachment(unit: UnitOfWork, req: Request, filename: str, data: bytes,
                   uploaded_by: str, comment: Comment | None = None,
                   field: str | None = None) -> Attachment:
    """Keep `data` for `req` (and `comment`, or the file `field` it answers, if given) in this
    unit of work.

    The caller has checked that `uploaded_by` may add to the record. Refuses, writing
    nothing: TooLarge over the per-file limit or past the record's total (live files only),
    TypeRefused for a type outside ALLOWED (read from the content) or an image past the
    decompression-bomb limit, InvalidInput for an empty file. The name is kept sanitised
    (safe_filename); the bytes go to the store under their SHA-256 before the row is added,
    so a rolled-back unit may leave a file no row names (harmless: never served, and reused
    when the same content is attached again).
    """
    store = unit.attachments
    if store is None:
        raise Unavailable("attachments are not configured here")
    if not isinstance(data, bytes | bytearray):
        raise InvalidInput("the file must be bytes", {"file": ["Send a file."]})
    name = safe_filename(filename)
    if not data:
        raise InvalidInput(f"{name} is empty", {"file": ["The file is empty."]})
    if len(data) > store.max_file:
        raise TooLarge(f"{name} is larger than {in_megabytes(store.max_file)}",
                       {"file": [f"A file may be at most {in_megabytes(store.max_file)}."]})
    s = unit.session
    used = s.scalar(select(func.coalesce(func.sum(Attachment.size), 0)).where(
        Attachment.request_id == req.id, Attachment.deleted_at.is_(None))) or 0
    if used + len(data) > store.max_record:
        raise TooLarge(f"{req.number} would hold more than {in_megabytes(store.max_record)} of files",
                       {"file": [f"A record may hold at most {in_megabytes(store.max_record)} of files."]})
    kind = detect_type(name, bytes(data))
    digest = hashlib.sha256(data).hexdigest()
    store.keep(digest, bytes(data))
    att = Attachment(request_id=req.id, comment_id=comment.id if comment else None, filename=name,
                     stored_name=digest, size=len(data), content_type=kind,
                     uploaded_by_id=uploaded_by, created_at=unit.now, field=field)
    s.add(att)
    s.flush()
    hidden: dict[str, Any] = {"internal": True} if comment is not None and comment.internal else {}
    answers = {"field": field} if field is not None else {}
    audit(unit, req, "attachment_added", attachment=att.id, filename=name, size=len(data),
          comment=comment.id if comment else None, **hidden, **answers)
    return att


def visible_attachments(session: Session, req: Request, viewer: str) -> list[Attachment]:
    """The live attachments of a record `viewer` may read (internal notes' for agents only)."""
    rows = list(session.scalars(select(Attachment).where(
        Attachment.request_id == req.id, Attachment.deleted_at.is_(None)).order_by(Attachment.id)))
    if permissions.is_agent(session, viewer, req):
        return rows
    internal = set(session.scalars(select(Comment.id).where(
        Comment.request_id == req.id, Comment.internal.is_(True))))
    return [a for a in rows if a.comment_id not in internal]


def can_delete(session: Session, viewer: str, att: Attachment, req: Request) -> bool:
    return (att.uploaded_by_id == viewer or permissions.is_agent(session, viewer, req)
            or people.is_admin(session, viewer))


def thumbnail(store: AttachmentStore, att: Attachment) -> Path | None:
    """The PNG thumbnail of an image attachment, made once and kept; None for others."""
    if att.content_type not in IMAGES:
        return None
    target = store.thumbnail_path(att.stored_name)
    if target.exists():
        return target
    source = store.path(att.stored_name)
    if not source.exists():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                img.thumbnail(THUMBNAIL)
                out = io.BytesIO()
                img.convert("RGBA").save(out, "PNG")
    except (Image.DecompressionBombWarning, Image.DecompressionBombError, OSError, ValueError):
        return None
    write_whole(target, out.getvalue())
    return target


class Attachments:
    """The request service's attachment use cases (mixed into RequestService)."""

    def attach(self, number: str, actor: str, filename: str, data: bytes) -> Attachment:
        """Attach a file to a record one takes part in."""

        def work(unit: UnitOfWork) -> Attachment:
            req = self.request(unit.session, number, actor, unit.now)  # type: ignore[attr-defined]
            if not permissions.takes_part(unit.session, actor, req, unit.now):
                raise NotAllowed(f"{actor} no longer takes part in {req.number}")
            att = add_attachment(unit, req, filename, data, actor)
            touch(unit, req)
            return att

        return self.unit(actor, work)  # type: ignore[attr-defined, no-any-return]

    def attachments(self, session: Session, number: str, viewer: str,
                    now: datetime) -> tuple[Request, list[Attachment]]:
        req = self.request(session, number, viewer, now)  # type: ignore[attr-defined]
        return req, visible_attachments(session, req, viewer)

    def attachment(self, session: Session, attachment_id: int, viewer: str,
                   now: datetime) -> tuple[Attachment, Request]:
        """A live attachment `viewer` may read (else NotFound, never 403)."""
        att = session.get(Attachment, attachment_id)
        req = session.get(Request, att.request_id) if att is not None else None
        if att is None or req is None or att.deleted_at is not None:
            raise NotFound(f"no attachment {attachment_id}")
        try:
            self.request(session, req.number, viewer, now)  # type: ignore[attr-defined]
        except NotFound:
            raise NotFound(f"no attachment {attachment_id}") from None
        if att not in visible_attachments(session, req, viewer):
            raise NotFound(f"no attachment {attachment_id}")
        return att, req

    def delete_attachment(self, attachment_id: int, actor: str,
                          seen_version: int | None = None) -> Attachment:
        """Mark an attachment deleted (audited: who, when); its file goes once no live row
        names the content."""

        def work(unit: UnitOfWork) -> Attachment:
            att, req = self.attachment(unit.session, attachment_id, actor, unit.now)
            if not can_delete(unit.session, actor, att, req):
                raise NotAllowed(DELETERS)
            fresh(req, seen_version)
            att.deleted_at, att.deleted_by_id = unit.now, actor
            touch(unit, req)
            internal = att.comment_id is not None and bool(unit.session.scalar(
                select(Comment.internal).where(Comment.id == att.comment_id)))
            hidden: dict[str, Any] = {"internal": True} if internal else {}
            audit(unit, req, "attachment_deleted", attachment=att.id, filename=att.filename,
                  **hidden)
            return att

        att = self.unit(actor, work)  # type: ignore[attr-defined]
        store: AttachmentStore | None = self.unit.attachments  # type: ignore[attr-defined]
        with self.sessions() as s:  # type: ignore[attr-defined]
            live = s.scalar(select(func.count()).select_from(Attachment).where(
                Attachment.stored_name == att.stored_name, Attachment.deleted_at.is_(None)))
        if store is not None and not live:
            store.forget(att.stored_name)
        return att  # type: ignore[no-any-return]
