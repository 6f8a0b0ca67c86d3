"""Submitted form data -> typed answers, checked by the one pipeline (`catalog.answers`).

`clean_answers` is used by the HTML form (through the generated form class) and by
the API alike. It only turns what was sent into Python values of the fields' types;
`catalog.answers.check_answers`, with the catalog's choices, decides what is
required, hidden, allowed or refused, with the same messages as the engine.

From HTML (`from_html=True`) values are form strings: they are stripped and coerced
("3" -> 3, "on" -> True, a missing checkbox -> False, an empty value -> None),
multichoice values are lists (a MultiDict's `getlist`), and table rows come from
`name-0-col` keys (or a list of row dicts); rows left untouched (every cell empty or
its default) are dropped, and keys that are not fields are ignored. From JSON the
values are taken as they are (only 3.0 becomes 3 for an integer field) and an unknown
key is an error under `_unknown`; a body that is not an object is an error under `_body`.
A file field's answer becomes a `catalog.fields.Upload`: from HTML, each uploaded part (a
part with no name and no bytes is an input left empty); from JSON, `{filename, content}`
with the content in base64 (what does not decode is left for the rules to word).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from catalog.answers import Answers, check_item_answers, from_form
from catalog.catalog import Catalog
from catalog.fields import MAX_FILES, Upload, is_empty
from catalog.models import CatalogItem, Field, FieldType

_ROW_KEY = re.compile(r"([0-9]{1,9})-([a-z][a-z0-9_]*)")


def clean_answers(item: CatalogItem, raw: Mapping[str, Any], catalog: Catalog,
                  requester: Mapping[str, Any] | None = None, *,
                  from_html: bool = False) -> Answers:
    """Coerce, check and clean submitted answers for `item`; never raise on bad input."""
    typed: Any = raw
    if isinstance(raw, Mapping):
        typed = ({f.name: _from_html(f, raw, f.name) for f in item.fields} if from_html
                 else _json_answers(item, raw))
    return check_item_answers(item, typed, catalog, requester)


# ---------------------------------------------------------------- coercion

def _json_answers(item: CatalogItem, raw: Mapping[str, Any]) -> dict[Any, Any]:
    fields = {f.name: f for f in item.fields}
    return {k: _from_json(fields[k], v) if k in fields else v for k, v in raw.items()}


def _from_json(f: Field, value: Any) -> Any:
    if f.type is FieldType.FILE:
        if not isinstance(value, list):
            return _json_file(value)
        # one file more than allowed is enough to say there are too many
        return [_json_file(v) for v in value[:(f.max_items or MAX_FILES) + 1]]
    if f.type is FieldType.INTEGER and isinstance(value, float) and value.is_integer():
        return int(value)
    if f.type is FieldType.TABLE and isinstance(value, list):
        columns = {c.name: c for c in f.columns}
        # one row more than allowed is enough to say there are too many
        return [{k: _from_json(columns[k], v) if k in columns else v for k, v in row.items()}
                if isinstance(row, Mapping) else row for row in value[:f.max_rows + 1]]
    return value


def _json_file(value: Any) -> Any:
    """`{filename, content}` with the content in base64 -> an Upload; anything else as it is."""
    if not (isinstance(value, Mapping) and set(value) == {"filename", "content"}
            and isinstance(value["filename"], str) and isinstance(value["content"], str)):
        return value
    try:
        data = base64.b64decode(value["content"], validate=True)
    except (binascii.Error, ValueError):
        return value  # the rules say the content is not base64
    return Upload(value["filename"], data)


def _html_files(f: Field, given: list[Any]) -> Any:
    """Uploaded parts (anything with a filename and read()) -> Uploads; a part with no name
    and no bytes is an input left empty."""
    files: list[Any] = []
    for part in given:
        read = getattr(part, "read", None)
        if not callable(read):
            if not (isinstance(part, str) and not part.strip()):
                files.append(part)
            continue
        seek = getattr(part, "seek", None)
        if callable(seek):
            seek(0)  # read again if the form is checked twice
        data, name = read(), getattr(part, "filename", None) or ""
        if name or data:
            files.append(Upload(name, data if isinstance(data, bytes) else b""))
    if f.multiple:
        return files
    return files[0] if files else None


def _getlist(raw: Mapping[str, Any], key: str) -> list[Any]:
    getlist = getattr(raw, "getlist", None)
    if callable(getlist):
        return list(getlist(key))
    value = raw.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _from_html(f: Field, raw: Mapping[str, Any], key: str) -> Any:
    if f.type is FieldType.TABLE:
        return _html_rows(f, raw, key)
    given = _getlist(raw, key)
    if f.type is FieldType.FILE:
        return _html_files(f, given)
    if f.type is FieldType.MULTICHOICE:
        return [v.strip() if isinstance(v, str) else v for v in given
                if not (isinstance(v, str) and not v.strip())]
    value = from_form(f, given[0] if given else None)
    return None if is_empty(value) else value  # whatever a form leaves empty is unanswered


def _html_rows(f: Field, raw: Mapping[str, Any], key: str) -> Any:
    """Rows in index order, untouched ones dropped, parsed until one more than `max_rows`."""
    given = raw.get(key)
    raw_rows: Iterable[Mapping[str, Any]]
    if isinstance(given, list) and all(isinstance(r, Mapping) for r in given):
        raw_rows = given
    else:
        by_index: dict[int, dict[str, str]] = {}
        prefix = f"{key}-"
        for k in raw:
            m = _ROW_KEY.fullmatch(k[len(prefix):]) if isinstance(k, str) and k.startswith(
                prefix) else None
            if m:
                by_index.setdefault(int(m.group(1)), {})[m.group(2)] = k
        raw_rows = ({col: _getlist(raw, k) for col, k in by_index[i].items()}
                    for i in sorted(by_index))
    rows = []
    for raw_row in raw_rows:
        row = {c.name: _from_html(c, raw_row, c.name) for c in f.columns}
        if not all(_untouched(c, row[c.name]) for c in f.columns):
            rows.append(row)
            if len(rows) > f.max_rows:  # enough to say there are too many
                break
    return rows


def _untouched(col: Field, value: Any) -> bool:
    return is_empty(value) or value is False or (col.default is not None and value == col.default)
