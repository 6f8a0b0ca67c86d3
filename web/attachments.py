"""Attachments on the portal: download, thumbnail, delete; and the upload size limit.

Files are served only to people who may see the record (else 404), always as downloads
(`Content-Disposition: attachment`), with `nosniff` and a CSP that lets nothing run.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, request, send_file, url_for
from flask_login import login_required

from engine.attachment_store import AttachmentStore
from engine.attachments import DELETERS, can_delete, thumbnail
from engine.errors import NotAllowed, NotFound
from engine.models import Attachment
from web.context import now, service, session, viewer
from web.pages import form_seen_version

bp = Blueprint("attachments", __name__)

#: the most files one portal comment carries
MAX_FILES = 5
#: endpoints whose body may carry files: their body limit follows the attachment limits
UPLOADS = frozenset({"requests.comment", "api.upload_attachment", "portal.item"})
#: endpoints whose JSON body may carry files in base64 (file fields' answers)
BASE64_UPLOADS = frozenset({"api.order"})
#: nothing in a served file may run, load or be framed (default-src covers object-src; said anyway)
FILE_CSP = "default-src 'none'; object-src 'none'; frame-ancestors 'none'; sandbox"


def store() -> AttachmentStore:
    found = service().unit.attachments
    if found is None:  # create_app always configures one
        raise NotFound("attachments are not kept here")
    return found


@bp.app_url_value_preprocessor
def upload_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Let an upload's body be as large as its files may be (before anything reads it); only
    multipart bodies carry files, so any other body keeps the app's limit."""
    if endpoint in UPLOADS and request.mimetype == "multipart/form-data":
        limits = store()
        if endpoint == "portal.item":  # an order's file fields: at most a record's worth
            request.max_content_length = limits.max_record + 1024 * 1024
            return
        files = MAX_FILES if endpoint == "requests.comment" else 1
        request.max_content_length = files * limits.max_file + 1024 * 1024
    elif endpoint in BASE64_UPLOADS and request.is_json:
        # base64 takes 4 bytes for every 3
        request.max_content_length = -(-store().max_record // 3) * 4 + 1024 * 1024


def _headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response


def file_response(att: Attachment) -> Response:
    """The attachment's bytes as a download (404 when its file is gone from the store)."""
    path = store().path(att.stored_name)
    if not path.exists():
        current_app.logger.warning("attachment %s: file %s is missing", att.id, att.stored_name)
        raise NotFound(f"no attachment {att.id}")
    # read whole (at most the per-file limit): no file handle outlives the request
    return _headers(send_file(io.BytesIO(path.read_bytes()), mimetype=att.content_type,
                              as_attachment=True, download_name=att.filename, conditional=False,
                              etag=False))


@bp.route("/attachments/<id:attachment_id>")
@login_required
def download(attachment_id: int) -> Any:
    att, _ = service().attachment(session(), attachment_id, viewer(), now())
    return file_response(att)


@bp.route("/attachments/<id:attachment_id>/thumbnail")
@login_required
def thumb(attachment_id: int) -> Any:
    att, _ = service().attachment(session(), attachment_id, viewer(), now())
    path = thumbnail(store(), att)
    if path is None:
        raise NotFound(f"attachment {attachment_id} has no thumbnail")
    response = send_file(io.BytesIO(path.read_bytes()), mimetype="image/png", conditional=False,
                         etag=False)
    response.headers["Content-Disposition"] = "inline"
    return _headers(response)


@bp.route("/attachments/<id:attachment_id>/delete", methods=["POST"])
@login_required
def delete(attachment_id: int) -> Any:
    att, req = service().attachment(session(), attachment_id, viewer(), now())
    if not can_delete(session(), viewer(), att, req):
        raise NotAllowed(DELETERS)
    number = req.number
    service().delete_attachment(attachment_id, viewer(), seen_version=form_seen_version())
    flash(f"{att.filename} is deleted.", "success")
    return redirect(url_for("requests.detail", number=number))
