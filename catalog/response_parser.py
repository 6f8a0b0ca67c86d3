"""Canned responses (`responses/*.yaml`): replies agents insert, rendered per request."""

from __future__ import annotations

from catalog.expressions import ROOTS
from catalog.models import Response
from catalog.parse import Parsed
from catalog.source import SourceDoc

#: what a response may read: the request's names, and the agent who inserts it
RESPONSE_ROOTS = ROOTS | {"agent"}


def parse_response(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Response", doc), doc.data
    for i, group in enumerate(d.get("visible_to_groups", [])):
        p.ref("group", group, ("visible_to_groups", i))
    for i, item in enumerate(d.get("items", [])):
        p.ref("item", item, ("items", i))
    if d["id"] != doc.path.stem:
        p.error(("id",), f"response id {d['id']} differs from its file name {doc.path.name}",
                "name the file after the id")
    body = p.template(d["body"], ("body",), RESPONSE_ROOTS)
    if body is not None:
        p.model = Response(d["id"], d["title"], body, tuple(d.get("visible_to_groups", [])),
                           tuple(d.get("items", [])))
    return p
