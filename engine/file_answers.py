"""File fields' answers: the files checked against the instance, then kept as attachments.

The answers pipeline (catalog.answers) only knows that a file field's answer is an
`Upload` (a list of them for `multiple: true`); what the instance refuses — too large,
empty, a type outside the allow-list or the field's `accept` — is said here, in the words
of `engine.attachments`, and the files become attachments of the new record in the same
unit of work. The answer then stored references them:
`{"attachment": id, "filename": ..., "size": ..., "content_type": ...}` (a list of those
for a multiple field).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from catalog.fields import Upload, accepted_types, kinds_in_words
from catalog.models import Field, FieldType
from engine.attachment_store import AttachmentStore
from engine.attachments import ALLOWED, add_attachment, detect_type, in_megabytes, safe_filename
from engine.errors import InvalidInput
from engine.models import Attachment, Request
from engine.unit import UnitOfWork


def uploads_of(value: Any) -> list[Upload]:
    """The files in a file field's clean answer (none when it is empty)."""
    if isinstance(value, Upload):
        return [value]
    return [v for v in value if isinstance(v, Upload)] if isinstance(value, list) else []


def upload_errors(store: AttachmentStore | None, f: Field, files: Sequence[Upload]) -> list[str]:
    """What this instance refuses in `files`, one sentence each, led by the file's name."""
    if store is None:
        return ["Files cannot be attached here."] if files else []
    errors: list[str] = []
    for up in files:
        name = safe_filename(up.filename)
        if not up.data:
            errors.append(f"{name}: The file is empty.")
            continue
        if len(up.data) > store.max_file:
            errors.append(f"{name}: A file may be at most {in_megabytes(store.max_file)}.")
            continue
        try:
            kind = detect_type(name, up.data)
        except InvalidInput as exc:
            errors += [f"{name}: {m}" for m in exc.fields.get("file", [exc.message])]
            continue
        accepted = accepted_types(f)
        if accepted is not None and kind not in accepted:
            errors.append(f"{name}: Only {kinds_in_words(f.accept)} files are accepted here, "
                          f"not {ALLOWED[kind]} files.")
    total = sum(len(up.data) for up in files)
    if not errors and total > store.max_record:
        errors.append(f"A record may hold at most {in_megabytes(store.max_record)} of files.")
    return errors


def file_errors(store: AttachmentStore | None, fields: Sequence[Field],
                values: Mapping[str, Any], known: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """`upload_errors` for every file field that has files and no error yet."""
    out: dict[str, list[str]] = {}
    for f in fields:
        if f.type is FieldType.FILE and f.name not in known:
            problems = upload_errors(store, f, uploads_of(values.get(f.name)))
            if problems:
                out[f.name] = problems
    total = sum(len(up.data) for f in fields if f.type is FieldType.FILE
                for up in uploads_of(values.get(f.name)))
    if store is not None and not out and total > store.max_record:
        out["_form"] = [f"A record may hold at most {in_megabytes(store.max_record)} of files."]
    return out


def without_files(fields: Sequence[Field], values: Mapping[str, Any]) -> dict[str, Any]:
    """The answers with file fields' uploads left out (None): what may be stored as JSON."""
    files = {f.name for f in fields if f.type is FieldType.FILE}
    return {k: None if k in files else v for k, v in values.items()}


def keep_files(unit: UnitOfWork, req: Request, fields: Sequence[Field],
               values: Mapping[str, Any], uploaded_by: str) -> dict[str, Any]:
    """Attach the file fields' uploads to `req` (flushed: it has an id); return the answers
    to store for those fields, each referencing its attachments."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.type is not FieldType.FILE:
            continue
        files = uploads_of(values.get(f.name))
        if not files:
            continue
        try:
            refs = [reference(add_attachment(unit, req, up.filename, up.data, uploaded_by,
                                             field=f.name)) for up in files]
        except InvalidInput as exc:  # checked before: only a race with the limits gets here
            raise InvalidInput(exc.message, {f.name: exc.fields.get("file", [exc.message])}) \
                from None
        out[f.name] = refs if f.multiple else refs[0]
    return out


def reference(att: Attachment) -> dict[str, Any]:
    """How an answer names an attachment."""
    return {"attachment": att.id, "filename": att.filename, "size": att.size,
            "content_type": att.content_type}
