"""An OpenAPI 3.1 document rewritten as 3.0.3, for viewers that predate 3.1.

Generic: it knows OpenAPI and JSON Schema, nothing of Deskflow. The packaged Swagger UI
(swagger-ui-bundle 1.1.0 ships Swagger UI 4.15) renders only 3.0; the API's description
stays 3.1 and this copy is derived from it on every call, never kept by hand.
"""

from __future__ import annotations

from typing import Any

#: keys whose values are maps of names to schemas (not schemas themselves)
_SCHEMA_MAPS = frozenset({"properties", "schemas", "$defs", "patternProperties"})


def downgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """The 3.0.3 equivalent of a 3.1 document (as far as its schemas use 3.0's vocabulary)."""
    out = {k: _walk(v) for k, v in doc.items() if k not in ("jsonSchemaDialect", "webhooks")}
    out["openapi"] = "3.0.3"
    return out


def _walk(value: Any, in_map: bool = False) -> Any:
    if isinstance(value, list):
        return [_walk(v) for v in value]
    if not isinstance(value, dict):
        return value
    if in_map:
        return {k: _walk(v) for k, v in value.items()}
    node = {k: _walk(v, in_map=k in _SCHEMA_MAPS) for k, v in value.items() if k != "$schema"}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    types = node.get("type")
    if isinstance(types, list):
        real = [t for t in types if t != "null"]
        if len(real) < len(types):
            node["nullable"] = True
        if len(real) == 1:
            node["type"] = real[0]
        else:
            rest = {k: v for k, v in node.items() if k not in ("type", "nullable")}
            node = {"anyOf": [{"type": t, **rest} for t in real],
                    **({"nullable": True} if node.get("nullable") else {})}
    if isinstance(node.get("enum"), list) and None in node["enum"]:
        node["enum"] = [v for v in node["enum"] if v is not None]
        node["nullable"] = True
    return node
