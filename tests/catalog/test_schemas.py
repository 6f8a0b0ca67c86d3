"""The published JSON Schemas are valid, described and bounded."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from catalog.validation import SCHEMA_NAMES, fast_check, fast_validator, schema, validator


def walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}/{i}")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name):
    s = schema(name)
    Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_property_has_a_description(name):
    missing = [f"{path}/{prop}" for path, node in walk(schema(name))
               if path.endswith("/properties") for prop, sub in node.items()
               if "description" not in sub]
    assert missing == []


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_string_has_a_max_length(name):
    unbounded = [path for path, node in walk(schema(name))
                 if node.get("type") == "string" and "maxLength" not in node
                 and "pattern" not in node and "enum" not in node]
    assert unbounded == []


@pytest.mark.parametrize(("keyword", "instance"), [
    ({"dependentRequired": {"a": ["b"]}}, {"a": 1}),
    ({"properties": {"a": {}}, "unevaluatedProperties": False}, {"a": 1, "b": 2}),
    ({"prefixItems": [{"type": "string"}]}, [1]),
    ({"$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s"}}}, {"a": 1}),
])
def test_the_fast_path_enforces_2020_12_keywords(keyword, instance):
    s = {"$schema": "https://json-schema.org/draft/2020-12/schema", **keyword}
    assert fast_validator(s)(instance) is False
    assert Draft202012Validator(s).is_valid(instance) is False


def test_the_fast_path_checks_the_schema_itself():
    with pytest.raises(SchemaError):
        fast_validator({"type": 12})


@pytest.mark.parametrize(("fmt", "value"), [
    ("date", "2026-01-31"), ("date", "2026-02-30"), ("date", "2026-1-31"), ("date", "20260131"),
    ("date", "2026-01-31\n"), ("date", "\uff12026-01-31"), ("date", "2026-01-31T00:00"),
    ("email", "ann@example.com"), ("email", "ann"), ("email", "@"), ("email", "a b@c"),
])
def test_the_fast_path_asserts_formats_as_jsonschema_does(fmt, value):
    s = {"properties": {"v": {"format": fmt}}}
    slow = Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert fast_validator(s)({"v": value}) is slow.is_valid({"v": value})


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_the_fast_path_and_jsonschema_agree_on_an_empty_document(name):
    assert fast_check(name)({}) is validator(name).is_valid({})
