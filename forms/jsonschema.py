"""Field model -> JSON Schema (Draft 2020-12) of the API's request body.

Generated from the same fields as the HTML form and agreeing with
`clean_answers` on what a JSON body may hold: an optional field may be omitted,
null, or its type's empty value ("" or []); `required` lists only fields that are
required whatever the other answers (conditional rules are the server's); a
required checkbox must be true. Cascading choices list every value. Author
patterns are included, anchored, when JavaScript reads them as the server does
(see forms.patterns). Dates have `format: date`; their min/max are the server's.
"""

from __future__ import annotations

from typing import Any

from catalog.answers import LIST_TYPES, STRING_TYPES
from catalog.catalog import Catalog
from catalog.choices import all_choices
from catalog.fields import EMAIL, MAX_FILES, URL
from catalog.models import CatalogItem, Field, FieldType
from forms.patterns import ascii_ignorecase, ecma_pattern

DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: catalog.fields.URL is case-insensitive; JSON Schema patterns have no flags
URL_PATTERN = ascii_ignorecase(URL.pattern)


def item_json_schema(item: CatalogItem, catalog: Catalog,
                     max_file: int | None = None) -> dict[str, Any]:
    """The JSON Schema of the answers object the API accepts for `item`; `max_file` is the
    instance's per-file limit in bytes, when there is one to describe."""
    return {
        "$schema": DIALECT,
        "title": item.name,
        "description": item.summary,
        "type": "object",
        "properties": {f.name: property_schema(f, catalog, f.required and f.show_if is None,
                                               max_file=max_file)
                       for f in item.fields},
        "required": [f.name for f in item.fields if f.required and f.show_if is None],
        "additionalProperties": False,
    }


def property_schema(f: Field, catalog: Catalog, required: bool, *,
                    cell: bool = False, max_file: int | None = None) -> dict[str, Any]:
    """One field's schema; a field that may be left empty also takes null and its empty value.

    Table cells follow `value_errors`' rules for rows: any empty value leaves a cell
    empty, and a required checkbox cell may be false.
    """
    schema = (file_schema(f, required, max_file) if f.type is FieldType.FILE
              else value_schema(f, catalog, required, cell=cell))
    if not required:
        empties: list[Any] = [None]
        if cell:
            empties += ["", [], {}]
        elif f.type in STRING_TYPES:
            empties.append("")
        elif f.type in LIST_TYPES or f.type is FieldType.FILE and f.multiple:
            empties.append([])
        if len(empties) == 1 and "enum" not in schema and "const" not in schema:
            schema["type"] = [schema["type"], "null"]
        else:
            schema = {"anyOf": [schema, {"enum": empties}]}
    return {"title": f.label, "description": f.help or f.label, **schema}


def value_schema(f: Field, catalog: Catalog, required: bool, *,
                 cell: bool = False) -> dict[str, Any]:
    """The schema of a non-empty answer (of a field that must be answered, when `required`)."""
    t = f.type
    if t in (FieldType.STRING, FieldType.TEXTAREA, FieldType.EMAIL, FieldType.URL):
        return _text(f, required)
    if t in (FieldType.INTEGER, FieldType.NUMBER):
        s: dict[str, Any] = {"type": "integer" if t is FieldType.INTEGER else "number"}
        if f.min is not None:
            s["minimum"] = f.min
        if f.max is not None:
            s["maximum"] = f.max
        return s
    if t is FieldType.BOOLEAN:
        must_tick = required and not cell
        return {"type": "boolean", "const": True} if must_tick else {"type": "boolean"}
    if t is FieldType.DATE:
        return {"type": "string", "format": "date", **({"minLength": 1} if required else {})}
    if t in (FieldType.CHOICE, FieldType.PERSON):
        return {"type": "string", "enum": [c.value for c in all_choices(f, catalog)]}
    if t is FieldType.ASSET:
        return {"type": ["string", "integer"], "pattern": "^[0-9]+$",
                "description": f"The number of a configuration item of type {f.ci_type}."}
    if t is FieldType.MULTICHOICE:
        items = {"type": "string", "enum": [c.value for c in all_choices(f, catalog)]}
        return _counted({"type": "array", "items": items, "uniqueItems": True}, f, required)
    if t is FieldType.TABLE:
        row = {
            "type": "object",
            "properties": {c.name: property_schema(c, catalog, c.required, cell=True)
                           for c in f.columns},
            "required": [c.name for c in f.columns if c.required],
            "additionalProperties": False,
        }
        return _counted({"type": "array", "items": row}, f, required, f.max_rows)
    return {}


def file_schema(f: Field, required: bool, max_file: int | None = None) -> dict[str, Any]:
    """A file as the API takes it: `{filename, content}`, the content in base64 (a list of
    them when the field takes several files). Sizes and kinds are checked from the bytes."""
    content: dict[str, Any] = {"type": "string", "contentEncoding": "base64", "minLength": 1,
                               "description": "The file's bytes, in base64."}
    if max_file is not None:
        content["maxLength"] = -(-max_file // 3) * 4
        content["description"] += f" At most {max_file} bytes before encoding."
    if f.accept:
        content["description"] += f" Accepted kinds: {', '.join(f.accept)}."
    one = {"type": "object", "required": ["filename", "content"], "additionalProperties": False,
           "properties": {"filename": {"type": "string", "minLength": 1, "maxLength": 255},
                          "content": content}}
    if not f.multiple:
        return one
    return _counted({"type": "array", "items": one}, f, required,
                    MAX_FILES if f.max_items is None else None)


def _text(f: Field, required: bool) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "string"}
    least = max(f.min_length or 0, 1 if required else 0)
    if least:
        s["minLength"] = least
    if f.effective_max_length is not None:
        s["maxLength"] = f.effective_max_length
    patterns = []
    if f.type is FieldType.EMAIL:
        s["format"] = "email"
        patterns.append(EMAIL.pattern)
    elif f.type is FieldType.URL:
        s["format"] = "uri"
        patterns.append(URL_PATTERN)
    ecma = ecma_pattern(f.pattern) if f.pattern else None
    if ecma is not None:
        patterns.append(f"^(?:{ecma})$")
    if patterns:
        s["pattern"] = patterns[0]
    if len(patterns) > 1:
        s["allOf"] = [{"pattern": p} for p in patterns[1:]]
    return s


def _counted(s: dict[str, Any], f: Field, required: bool,
             most: int | None = None) -> dict[str, Any]:
    least = max(f.min_items or 0, 1 if required else 0)
    if least:
        s["minItems"] = least
    limits = [n for n in (f.max_items, most) if n is not None]
    if limits:
        s["maxItems"] = min(limits)
    return s
