"""item_json_schema: the API body's JSON Schema, generated from the fields, agrees with the server."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from forms.answers import clean_answers
from forms.jsonschema import item_json_schema


def validator(catalog, item_id: str) -> Draft202012Validator:
    schema = item_json_schema(catalog.item(item_id), catalog)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_acme_schema_is_a_valid_draft_2020_12_schema(acme):
    for item in acme.items:
        schema = item_json_schema(item, acme)
        Draft202012Validator.check_schema(schema)
        assert schema["additionalProperties"] is False
        assert list(schema["properties"]) == [f.name for f in item.fields]
        for prop in schema["properties"].values():
            assert prop["title"] and prop["description"]


def test_required_lists_only_unconditionally_required_fields(acme):
    assert item_json_schema(acme.item("new-laptop"), acme)["required"] == [
        "model", "cost_center", "building"]
    assert item_json_schema(acme.item("system-access"), acme)["required"] == [
        "system", "role", "level", "reason"]


def test_field_schemas(everything):
    props = item_json_schema(everything.item("everything"), everything)["properties"]
    assert props["title"] == {
        "title": "Title", "description": "Say what it is.", "type": "string", "minLength": 3,
        "maxLength": 10, "pattern": "^(?:^[A-Z][a-z ]*$)$"}
    assert props["count"] == {"title": "Count", "description": "Count",
                              "type": ["integer", "null"], "minimum": 1, "maximum": 5}
    assert props["colour"]["anyOf"] == [{"type": "string", "enum": ["red", "blue"]},
                                        {"enum": [None, ""]}]
    assert props["tags"]["anyOf"][0] == {"type": "array", "uniqueItems": True, "maxItems": 2,
                                         "items": {"type": "string", "enum": ["a", "b", "c"]}}
    assert props["day"]["anyOf"][0] == {"type": "string", "format": "date"}
    assert props["mail"]["anyOf"][0]["format"] == "email"
    assert props["link"]["anyOf"][0]["format"] == "uri"
    assert props["owner"]["anyOf"][0]["enum"] == ["ann", "cy"]
    lines = props["lines"]["anyOf"][0]
    assert (lines["type"], lines["maxItems"]) == ("array", 3)
    assert lines["items"]["required"] == ["what"]
    assert lines["items"]["additionalProperties"] is False


def test_cascading_choices_list_every_value(acme):
    role = item_json_schema(acme.item("system-access"), acme)["properties"]["role"]
    assert len(role["enum"]) == 15


def test_a_valid_body_is_accepted(everything, clean_values):
    assert validator(everything, "everything").is_valid(clean_values)


@pytest.mark.parametrize(("patch", "ok"), [
    ({}, True),
    ({"notes": None, "count": None, "colour": "", "tags": [], "day": "", "lines": []}, True),
    ({"count": 3.0}, True),
    ({"lines": [{"what": "A", "qty": None}, {"what": "B", "qty": ""}]}, True),
    ({"title": None}, False),
    ({"title": ""}, False),
    ({"title": "lower"}, False),
    ({"count": "3"}, False),
    ({"count": 2.5}, False),
    ({"count": ""}, False),
    ({"amount": 99.6}, False),
    ({"agree": "true"}, False),
    ({"colour": "green"}, False),
    ({"tags": ["a", "a"]}, False),
    ({"tags": ["a", "b", "c"]}, False),
    ({"day": "2026-13-01"}, False),
    ({"mail": "ann"}, False),
    ({"link": "ftp://example.com"}, False),
    ({"owner": "bob"}, False),
    ({"lines": [{"qty": 2}]}, False),
    ({"lines": [{"what": "A", "colour": "red"}]}, False),
    ({"lines": [{"what": "A"}] * 4}, False),
    ({"surprise": 1}, False),
])
def test_schema_and_clean_answers_agree(everything, clean_values, patch, ok):
    body = {**clean_values, **patch}
    body = {k: v for k, v in body.items() if not (k == "title" and v is None)}
    answers = clean_answers(everything.item("everything"), body, everything)
    assert validator(everything, "everything").is_valid(body) is ok
    assert answers.ok is ok


def test_acme_bodies(acme):
    laptop = validator(acme, "new-laptop")
    body = {"model": "std14", "cost_center": "CC-1234", "building": "ams-hq", "floor": 3}
    assert laptop.is_valid(body)
    assert clean_answers(acme.item("new-laptop"), body, acme).ok
    assert not laptop.is_valid({**body, "cost_center": "CC-12"})
    assert not laptop.is_valid({**body, "model": "mac"})
    assert not laptop.is_valid({k: v for k, v in body.items() if k != "building"})


CANDIDATES: dict[str, list[Any]] = {
    "title": ["Box", "Big box", "", None, "ab", "Abcdefghijk", "lower", 3, ["Box"]],
    "notes": ["fine", "", None, "x" * 51, 5],
    "count": [1, 5, 3.0, 0, 6, 2.5, "3", "", None, True],
    "amount": [0, 12.5, 99.5, 99.6, -1, "1", None, False],
    "agree": [True, False, None, "true", 1],
    "colour": ["red", "blue", "green", "", None, 1],
    "tags": [[], ["a"], ["a", "b"], ["a", "b", "c"], ["a", "a"], ["d"], "a", None, [1]],
    "day": ["2026-03-01", "", None, "2026-13-01", "tomorrow", 20260301],
    "mail": ["ann@example.com", "ann", "a@b", "", None],
    "link": ["https://x.example", "HTTP://X.EXAMPLE", "ftp://x", "https://", "", None],
    "owner": ["ann", "cy", "bob", "zed", "", None],
    "lines": [[], None, "rows", [1], [{"what": "A"}], [{"what": "A", "qty": 2}],
              [{"what": ""}], [{"qty": 1}], [{"what": "A", "qty": 0}], [{"what": "A", "x": 1}],
              [{"what": "A"}] * 4, [{"what": "A", "qty": ""}], [{"what": "A", "qty": {}}]],
    "surprise": [1],
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.fixed_dictionaries({}, optional={k: st.sampled_from(v)
                                                for k, v in CANDIDATES.items()}))
def test_schema_and_clean_answers_agree_on_any_mix(everything, body):
    answers = clean_answers(everything.item("everything"), body, everything)
    assert validator(everything, "everything").is_valid(body) is answers.ok, answers.errors
