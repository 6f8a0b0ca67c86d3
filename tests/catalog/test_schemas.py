"""The published JSON Schemas are valid, described and bounded."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from catalog.loader import SCHEMA_NAMES, schema


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
