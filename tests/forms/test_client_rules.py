"""client_rules: the conditions and constraints the browser script enforces, as JSON."""

from __future__ import annotations

import json

import pytest

from catalog.expressions import compile_expression
from forms.client import client_rules, condition_ast

MODEL_IS_PRO = {"op": "==", "left": {"field": "model"}, "right": {"const": "pro16"}}


def test_show_if_becomes_a_json_ast(acme):
    rules = client_rules(acme.item("new-laptop"))
    justification = next(f for f in rules["fields"] if f["name"] == "justification")
    assert justification == {
        "name": "justification", "type": "textarea", "label": "Why do you need the Pro model?",
        "required": True, "show_if": MODEL_IS_PRO, "required_if": None, "pattern": None,
        "min": None, "max": None, "min_length": 20, "max_length": 2000, "min_items": None,
        "max_items": None, "depends_on": None}


@pytest.mark.parametrize(("source", "expected"), [
    ("form.model == 'pro16'", MODEL_IS_PRO),
    ("form['model'] == 'pro16'", MODEL_IS_PRO),
    ("form.level != 'low'", {"op": "!=", "left": {"field": "level"}, "right": {"const": "low"}}),
    ("form.reason in ['lost', 'stolen']",
     {"op": "in", "left": {"field": "reason"},
      "right": {"list": [{"const": "lost"}, {"const": "stolen"}]}}),
    ("'catering' not in form.equipment",
     {"op": "not in", "left": {"const": "catering"}, "right": {"field": "equipment"}}),
    ("form.keep and not form.ported",
     {"and": [{"field": "keep"}, {"not": {"field": "ported"}}]}),
    ("form.a or form.b or form.c",
     {"or": [{"field": "a"}, {"field": "b"}, {"field": "c"}]}),
    ("1 <= form.n < 10",
     {"and": [{"op": "<=", "left": {"const": 1}, "right": {"field": "n"}},
              {"op": "<", "left": {"field": "n"}, "right": {"const": 10}}]}),
    ("form.n > -5", {"op": ">", "left": {"field": "n"}, "right": {"const": -5}}),
    ("len(form.tags) >= 2",
     {"op": ">=", "left": {"call": "len", "args": [{"field": "tags"}]}, "right": {"const": 2}}),
    ("lower(form.code) == upper('x')",
     {"op": "==", "left": {"call": "lower", "args": [{"field": "code"}]},
      "right": {"call": "upper", "args": [{"const": "x"}]}}),
    ("form.note is None", {"op": "==", "left": {"field": "note"}, "right": {"const": None}}),
    ("form.urgent == true", {"op": "==", "left": {"field": "urgent"}, "right": {"const": True}}),
    ("form.budget is not null and default(form.budget, 0) > 10",
     {"and": [{"op": "!=", "left": {"field": "budget"}, "right": {"const": None}},
              {"op": ">", "left": {"call": "default", "args": [{"field": "budget"}, {"const": 0}]},
               "right": {"const": 10}}]}),
])
def test_supported_expressions(source, expected):
    assert condition_ast(compile_expression(source)) == expected


@pytest.mark.parametrize("source", [
    "requester.department == 'IT'",
    "form.count * 2 > 10",
    "lookup('systems', form.system).data.owner == 'carol'",
    "form.a if form.b else form.c",
    "min(form.a, 3) == 3",
    "form.address.city == 'Delft'",
    "form == 3",
])
def test_anything_else_is_left_to_the_server(source):
    assert condition_ast(compile_expression(source)) == {"server": True}


def test_a_field_without_a_condition_has_none():
    assert condition_ast(None) is None


def test_constraints_and_cascades(acme):
    fields = {f["name"]: f for f in client_rules(acme.item("system-access"))["fields"]}
    assert fields["role"]["depends_on"] == "system"
    assert (fields["access_until"]["min"], fields["access_until"]["max"]) == (
        "2026-01-01", "2027-12-31")
    assert fields["access_until"]["required_if"] == {
        "op": "==", "left": {"field": "level"}, "right": {"const": "admin"}}
    table = {f["name"]: f for f in client_rules(acme.item("monitor-peripherals"))["fields"]}
    accessories = table["accessories"]
    assert (accessories["min_items"], accessories["max_items"]) == (1, 6)
    assert [c["name"] for c in accessories["columns"]] == ["accessory", "quantity"]
    assert (accessories["columns"][1]["min"], accessories["columns"][1]["max"]) == (1, 4)


def test_patterns_javascript_reads_alike_are_given(acme):
    fields = {f["name"]: f for f in client_rules(acme.item("shared-mailbox"))["fields"]}
    assert fields["mailbox_address"]["pattern"] == "^[a-z0-9.-]+@acme\\.example$"
    laptop = {f["name"]: f for f in client_rules(acme.item("new-laptop"))["fields"]}
    assert laptop["cost_center"]["pattern"] == "^CC-[0-9]{4}$"


def test_rules_of_every_acme_item_are_json(acme):
    for item in acme.items:
        rules = client_rules(item)
        assert json.loads(json.dumps(rules)) == rules
        assert [f["name"] for f in rules["fields"]] == [f.name for f in item.fields]


def test_checks_across_fields_reach_the_browser_with_their_message_and_field(acme):
    assert client_rules(acme.item("new-hire-onboarding"))["checks"] == [{
        "when": {"and": [{"field": "contract_end"},
                         {"op": "<", "left": {"field": "contract_end"},
                          "right": {"field": "start_date"}}]},
        "message": "The contract cannot end before the start date.", "field": "contract_end"}]
