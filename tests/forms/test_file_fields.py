"""File fields in forms/: the WTForms file input, coercion of multipart parts and base64 JSON to
uploads, and the JSON Schema the API publishes for them."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import pytest
from jsonschema import Draft202012Validator
from werkzeug.datastructures import FileStorage, MultiDict

from catalog.fields import Upload
from forms.answers import clean_answers
from forms.jsonschema import item_json_schema
from forms.wtf import build_form_class, has_files

FORM = """\
  - {name: title, type: string}
  - {name: shot, type: file, required: true, accept: [image]}
  - {name: logs, type: file, multiple: true, max_items: 2}
"""
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
def cat(make_item):
    return make_item(FORM)


def test_the_form_class_renders_file_inputs_with_the_accepted_types(cat):
    item = cat.item("thing")
    form = build_form_class(item, cat)()
    assert has_files(item) and not has_files(replace(item, fields=item.fields[:1]))
    shot = str(form.shot)
    assert 'type="file"' in shot and 'accept="image/gif,image/jpeg,image/png,image/webp"' in shot
    assert "required" in shot and "multiple" not in shot
    assert "multiple" in str(form.logs)


def test_multipart_parts_become_uploads_and_an_empty_input_is_no_answer(cat):
    item = cat.item("thing")
    raw = MultiDict([("title", "x"), ("shot", FileStorage(io.BytesIO(PNG), "s.png")),
                     ("logs", FileStorage(io.BytesIO(b""), "")),
                     ("logs", FileStorage(io.BytesIO(b"a\n"), "a.log"))])
    result = clean_answers(item, raw, cat, from_html=True)
    assert result.errors == {}
    assert result.values == {"title": "x", "shot": Upload("s.png", PNG),
                             "logs": [Upload("a.log", b"a\n")]}
    empty = MultiDict([("shot", FileStorage(io.BytesIO(b""), ""))])
    assert clean_answers(item, empty, cat, from_html=True).errors == {
        "shot": ["This field is required."]}


def test_json_files_are_base64_objects(cat):
    item = cat.item("thing")
    good = {"shot": {"filename": "s.png", "content": base64.b64encode(PNG).decode()},
            "logs": []}
    assert clean_answers(item, good, cat).values["shot"] == Upload("s.png", PNG)
    bad = {"shot": {"filename": "s.png", "content": "%%%"},
           "logs": [{"filename": "a.log", "content": "YQ==", "extra": 1}]}
    assert clean_answers(item, bad, cat).errors == {
        "shot": ["Content must be the file's bytes in base64."],
        "logs": ["Must be a file: an object with filename and content (base64)."]}


def test_the_json_schema_of_a_file_is_an_object_with_base64_content(cat):
    schema = item_json_schema(cat.item("thing"), cat, max_file=3000)
    Draft202012Validator.check_schema(schema)
    one = {"type": "object", "required": ["filename", "content"], "additionalProperties": False,
           "properties": {"filename": {"type": "string", "minLength": 1, "maxLength": 255},
                          "content": {"type": "string", "contentEncoding": "base64",
                                      "minLength": 1, "maxLength": 4000,
                                      "description": "The file's bytes, in base64. At most 3000 "
                                      "bytes before encoding. Accepted kinds: image."}}}
    assert schema["required"] == ["shot"]
    assert schema["properties"]["shot"] == {"title": "Shot", "description": "Shot", **one}
    logs = schema["properties"]["logs"]
    assert logs["anyOf"][1] == {"enum": [None, []]}
    assert logs["anyOf"][0]["maxItems"] == 2
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"shot": {"filename": "s.png", "content": "iVBORw=="}, "logs": None})
    assert not validator.is_valid({"shot": {"filename": "s.png", "content": "x" * 4004}})
    assert not validator.is_valid({"logs": [{"filename": "a", "content": "YQ=="}]})  # no shot
