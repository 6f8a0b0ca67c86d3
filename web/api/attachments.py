"""/api/v1 attachments: upload (multipart/form-data, one `file` part), list, content.

The same engine call as the portal (engine.attachments.add_attachment), so the same limits
and the same type checks: 413 over a size limit, 415 for a type outside the allow-list,
422 for a missing or empty file.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from engine.models import Attachment
from web.api.base import ApiProblem, bp
from web.attachments import file_response
from web.context import now, service, session, viewer

NO_FILE = "Send the file as multipart/form-data, in a part named 'file'."


def attachment_json(att: Attachment, number: str) -> dict[str, Any]:
    return {"id": att.id, "request": number, "filename": att.filename, "size": att.size,
            "content_type": att.content_type, "uploaded_by": att.uploaded_by_id,
            "comment": att.comment_id,
            "created_at": att.created_at.isoformat().replace("+00:00", "Z"),
            "content_url": f"/api/v1/attachments/{att.id}/content"}


@bp.post("/v1/requests/<number>/attachments")
def upload_attachment(number: str) -> Any:
    """Attach one file to a record one takes part in."""
    service().request(session(), number, viewer(), now())  # 404 before the body is read
    if request.mimetype != "multipart/form-data":
        raise ApiProblem(415, NO_FILE)
    upload = request.files.get("file")
    if upload is None:
        raise ApiProblem(422, NO_FILE, {"file": ["This field is required."]})
    try:
        data = upload.read()
    finally:  # a large part is spooled to a temporary file: closed whatever happens
        upload.close()
    att = service().attach(number, viewer(), upload.filename or "attachment", data)
    response = jsonify(attachment_json(att, number))
    response.status_code = 201
    response.headers["Location"] = attachment_json(att, number)["content_url"]
    return response


@bp.get("/v1/requests/<number>/attachments")
def list_attachments(number: str) -> Any:
    _, files = service().attachments(session(), number, viewer(), now())
    return jsonify({"items": [attachment_json(a, number) for a in files]})


@bp.get("/v1/attachments/<id:attachment_id>/content")
def attachment_content(attachment_id: int) -> Any:
    att, _ = service().attachment(session(), attachment_id, viewer(), now())
    return file_response(att)
