"""clean_answers: from submitted data to clean answers or exact, per-field messages."""

from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import MultiDict

from catalog.answers import REQUIRED, defaults_for
from forms.answers import clean_answers


def clean(catalog, item_id, raw, requester=None, from_html=False):
    return clean_answers(catalog.item(item_id), raw, catalog, requester, from_html=from_html)


def test_every_field_type_round_trips_from_html(everything, html_answers, clean_values):
    answers = clean(everything, "everything", html_answers, from_html=True)
    assert answers.errors == {}
    assert answers.values == clean_values


def test_every_field_type_round_trips_from_json(everything, clean_values):
    answers = clean(everything, "everything", json.loads(json.dumps(clean_values)))
    assert (answers.errors, answers.values) == ({}, clean_values)


def test_clean_answers_clean_again_to_themselves(everything, html_answers):
    first = clean(everything, "everything", html_answers, from_html=True).values
    assert clean(everything, "everything", first).values == first


def test_every_field_is_present_and_empty_ones_are_none(everything):
    answers = clean(everything, "everything", MultiDict([("title", "Box")]), from_html=True)
    assert answers.ok
    assert answers.values == {
        "title": "Box", "notes": None, "count": None, "amount": None, "agree": False,
        "colour": None, "tags": [], "day": None, "mail": None, "link": None, "owner": None,
        "lines": []}


def test_an_unticked_checkbox_is_false_in_html_and_absent_in_json(everything):
    assert clean(everything, "everything", {"title": "Box"}, from_html=True).values["agree"] is False
    assert clean(everything, "everything", {"title": "Box"}).values["agree"] is None


@pytest.mark.parametrize(("text", "expected"), [
    ("on", True), ("true", True), ("1", True), ("y", True), ("", False), ("false", False),
    ("off", False), ("0", False),
])
def test_checkbox_words(everything, text, expected):
    answers = clean(everything, "everything", {"title": "Box", "agree": text}, from_html=True)
    assert answers.values["agree"] is expected


def test_required_field_missing(everything):
    for raw, from_html in (({}, True), ({"title": "  "}, True), ({}, False), ({"title": ""}, False),
                           ({"title": None}, False)):
        answers = clean(everything, "everything", raw, from_html=from_html)
        assert answers.errors == {"title": [REQUIRED]}
        assert answers.values["title"] is None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("title", "Ab", "Must be at least 3 characters."),
    ("title", "Abcdefghijk", "Must be at most 10 characters."),
    ("title", "lower case", "Must match the pattern ^[A-Z][a-z ]*$."),
    ("notes", "x" * 51, "Must be at most 50 characters."),
    ("count", "0", "Must be at least 1."),
    ("count", "6", "Must be at most 5."),
    ("count", "2.5", "Must be a whole number."),
    ("count", "three", "Must be a whole number."),
    ("amount", "99.6", "Must be at most 99.5."),
    ("amount", "-1", "Must be at least 0."),
    ("amount", "1,5", "Must be a number."),
    ("amount", "1e999", "Must be a finite number."),
    ("agree", "maybe", "Must be true or false."),
    ("colour", "green", "green is not one of the choices."),
    ("tags", ["a", "b", "c"], "Must have at most 2 choices."),
    ("tags", ["a", "a"], "Lists a choice twice."),
    ("day", "2025-12-31", "Must be on or after 2026-01-01."),
    ("day", "2027-01-01", "Must be on or before 2026-12-31."),
    ("day", "1 March", "Must be a date (YYYY-MM-DD)."),
    ("mail", "ann.example.com", "Must be an email address."),
    ("link", "ftp://example.com", "Must be an http or https URL."),
    ("owner", "bob", "bob is not a known person."),
    ("owner", "nobody", "nobody is not a known person."),
])
def test_rule_messages_are_exact_sentences(everything, field, value, message):
    raw = MultiDict([("title", "Box")])
    raw.setlist(field, value if isinstance(value, list) else [value])
    answers = clean(everything, "everything", raw, from_html=True)
    assert answers.errors == {field: [message]}
    assert answers.values[field] is None


def test_json_values_are_not_coerced(everything):
    answers = clean(everything, "everything", {"title": "Box", "count": "3", "agree": "true",
                                               "tags": "a", "amount": True})
    assert answers.errors == {"count": ["Must be a whole number."],
                              "agree": ["Must be true or false."],
                              "tags": ["Must be a list of choices."],
                              "amount": ["Must be a number."]}


def test_json_whole_floats_are_integers(everything):
    answers = clean(everything, "everything", {"title": "Box", "count": 3.0})
    assert answers.ok and answers.values["count"] == 3
    assert isinstance(answers.values["count"], int)


def test_json_empty_values_of_another_type_are_wrong(everything):
    answers = clean(everything, "everything", {"title": "Box", "count": "", "tags": "",
                                               "notes": []})
    assert answers.errors == {"count": ["Must be a whole number."],
                              "tags": ["Must be a list of choices."],
                              "notes": ["Must be text."]}


def test_dates_are_kept_as_iso_strings(everything):
    answers = clean(everything, "everything", {"title": "Box", "day": "2026-03-01"})
    assert answers.values["day"] == "2026-03-01"


def test_unknown_json_keys_are_an_error_and_html_ones_are_ignored(everything):
    raw = {"title": "Box", "colour_": "red", "csrf_token": "x", "z" * 100: 1}
    answers = clean(everything, "everything", raw)
    assert answers.errors == {"_unknown": ["Unknown field colour_.", "Unknown field csrf_token.",
                                           f"Unknown field {'z' * 77}...."]}
    assert clean(everything, "everything", raw, from_html=True).ok


def test_a_body_that_is_not_an_object_is_an_error(everything):
    answers = clean(everything, "everything", ["title", "Box"])  # type: ignore[arg-type]
    assert answers.errors == {"_body": ["The answers must be an object of field names and values."]}
    assert set(answers.values) == {f.name for f in everything.item("everything").fields}


# ---------------------------------------------------------------- tables

def test_table_rows_from_html_keys_in_index_order(everything):
    raw = MultiDict([("title", "Box"), ("lines-10-what", "Later"), ("lines-2-what", "First"),
                     ("lines-2-qty", "3")])
    rows = clean(everything, "everything", raw, from_html=True).values["lines"]
    assert rows == [{"what": "First", "qty": 3}, {"what": "Later", "qty": None}]


def test_untouched_table_rows_are_dropped(everything):
    raw = MultiDict([("title", "Box"), ("lines-0-what", ""), ("lines-0-qty", "1"),
                     ("lines-1-what", "Cable"), ("lines-1-qty", "1")])
    rows = clean(everything, "everything", raw, from_html=True).values["lines"]
    assert rows == [{"what": "Cable", "qty": 1}]


def test_table_cell_errors_name_the_row(everything):
    raw = MultiDict([("title", "Box"), ("lines-0-what", "Cable"), ("lines-0-qty", "10"),
                     ("lines-1-what", ""), ("lines-1-qty", "2"), ("lines-2-what", "Plug"),
                     ("lines-2-qty", "x")])
    answers = clean(everything, "everything", raw, from_html=True)
    assert answers.errors == {"lines": ["Row 1: Qty must be at most 9.",
                                        "Row 2: What is required.",
                                        "Row 3: Qty must be a whole number."]}


def test_table_rows_from_json(everything):
    body = {"title": "Box", "lines": [{"what": "Cable"}, {"what": "Plug", "qty": 2.0}]}
    answers = clean(everything, "everything", body)
    assert answers.values["lines"] == [{"what": "Cable", "qty": None}, {"what": "Plug", "qty": 2}]
    bad = clean(everything, "everything", {"title": "Box", "lines": [{"what": "A", "colour": 1}]})
    assert bad.errors == {"lines": ["Row 1: unknown column colour."]}
    many = clean(everything, "everything", {"title": "Box", "lines": [{"what": "A"}] * 4})
    assert many.errors == {"lines": ["Must have at most 3 rows."]}


def test_acme_table_required_with_row_limits(acme):
    answers = clean(acme, "monitor-peripherals",
                    MultiDict([("accessories-0-accessory", ""), ("accessories-0-quantity", "1"),
                               ("building", "home"), ("home_address", "Dam 1, Amsterdam")]),
                    from_html=True)
    assert answers.errors == {"accessories": [REQUIRED]}


def test_table_cells_with_catalog_choices_are_checked(make_item):
    catalog = make_item("""\
  - name: rows
    type: table
    columns:
      - {name: colour, type: choice, choices_from: "lookup:colours"}
      - {name: who, type: person}
""")
    item = catalog.item("thing")
    ok = clean_answers(item, {"rows": [{"colour": "red", "who": "ann"}]}, catalog)
    assert ok.errors == {}
    bad = clean_answers(item, {"rows": [{"colour": "pink", "who": "bob"}]}, catalog)
    assert bad.errors == {"rows": ["Row 1: Who bob is not a known person.",
                                   "Row 1: Colour pink is not one of the choices."]}


# ---------------------------------------------------------------- conditions

def test_show_if_false_hides_the_field_drops_its_value_and_skips_its_rules(acme):
    raw = {"model": "std14", "justification": "too short", "cost_center": "CC-1234",
           "building": "home", "home_address": "Dam 1", "floor": "banana"}
    answers = clean(acme, "new-laptop", raw, from_html=True)
    assert answers.errors == {}
    assert answers.values["justification"] is None
    assert answers.values["floor"] is None
    assert {"justification", "floor", "desk"} <= answers.hidden


def test_show_if_true_applies_required_and_rules(acme):
    base = {"model": "pro16", "cost_center": "CC-1234", "building": "home",
            "home_address": "Dam 1"}
    missing = clean(acme, "new-laptop", base, from_html=True)
    assert missing.errors == {"justification": [REQUIRED]}
    short = clean(acme, "new-laptop", {**base, "justification": "I need it"}, from_html=True)
    assert short.errors == {"justification": ["Must be at least 20 characters."]}
    fine = clean(acme, "new-laptop", {**base, "justification": "I build large models daily"},
                 from_html=True)
    assert fine.ok and fine.values["justification"] == "I build large models daily"


def test_required_if(acme):
    base = {"system": "crm", "role": "crm-admin", "reason": "x" * 20}
    assert clean(acme, "system-access", {**base, "level": "read"}, from_html=True).ok
    admin = clean(acme, "system-access", {**base, "level": "admin"}, from_html=True)
    assert admin.errors == {"access_until": [REQUIRED]}
    dated = clean(acme, "system-access", {**base, "level": "admin", "access_until": "2026-06-30"},
                  from_html=True)
    assert dated.ok and dated.values["access_until"] == "2026-06-30"


def test_conditions_on_a_multichoice(acme):
    raw = MultiDict([("room", "vermeer"), ("meeting_date", "2026-02-02"), ("start_time", "09:30"),
                     ("attendees", "6"), ("equipment", "projector"), ("equipment", "catering")])
    answers = clean(acme, "meeting-room-equipment", raw, from_html=True)
    assert answers.errors == {"catering_budget": [REQUIRED], "cost_center": [REQUIRED]}
    raw.setlist("equipment", ["projector"])
    assert clean(acme, "meeting-room-equipment", raw, from_html=True).ok


def test_a_hidden_field_hides_the_fields_that_depend_on_it(make_item):
    catalog = make_item("""\
  - {name: a, type: boolean}
  - {name: b, type: string, show_if: "form.a"}
  - {name: c, type: string, required: true, show_if: "form.b == 'yes'"}
""")
    answers = clean_answers(catalog.item("thing"), {"b": "yes"}, catalog, from_html=True)
    assert answers.ok and answers.hidden == {"b", "c"}
    shown = clean_answers(catalog.item("thing"), {"a": "on", "b": "yes"}, catalog, from_html=True)
    assert shown.errors == {"c": [REQUIRED]}


def test_conditions_read_the_requester(make_item):
    catalog = make_item("""\
  - {name: server, type: string, required: true, show_if: "requester.department == 'IT'"}
""")
    item = catalog.item("thing")
    assert clean_answers(item, {}, catalog, {"department": "IT"}).errors == {"server": [REQUIRED]}
    assert clean_answers(item, {}, catalog, {"department": "Sales"}).ok
    assert clean_answers(item, {}, catalog, None).ok  # cannot be evaluated: false


def test_cascading_choice_must_belong_to_the_parent_answer(acme):
    base = {"level": "read", "reason": "x" * 20}
    assert clean(acme, "system-access", {**base, "system": "crm", "role": "crm-read"}).ok
    wrong = clean(acme, "system-access", {**base, "system": "crm", "role": "erp-read"})
    assert wrong.errors == {"role": ["erp-read is not one of the choices."]}
    orphan = clean(acme, "system-access", {**base, "role": "crm-read"})
    assert orphan.errors == {"system": [REQUIRED], "role": ["crm-read is not one of the choices."]}


def test_a_required_checkbox_must_be_ticked(make_item):
    catalog = make_item("  - {name: agree, type: boolean, required: true}\n")
    item = catalog.item("thing")
    assert clean_answers(item, {}, catalog, from_html=True).errors == {"agree": [REQUIRED]}
    assert clean_answers(item, {"agree": False}, catalog).errors == {"agree": [REQUIRED]}
    assert clean_answers(item, {"agree": True}, catalog).values == {"agree": True}


def test_answers_of_every_acme_item_are_json(acme):
    for item in acme.items:
        answers = clean_answers(item, {}, acme, {"email": "ann@example.com"}, from_html=True)
        assert json.loads(json.dumps(answers.values)) == answers.values
        assert set(answers.values) == {f.name for f in item.fields}


# ---------------------------------------------------------------- defaults

REQUESTER = {"id": "alice", "name": "Alice Jansen", "email": "alice.jansen@acme.example",
             "department": "Sales"}


def test_default_templates_render_from_the_requester(acme):
    assert defaults_for(acme.item("normal-change"), REQUESTER, acme) == {
        "users_affected": "none", "expected_downtime_minutes": 0, "estimated_cost": 0,
        "contact_email": "alice.jansen@acme.example"}
    laptop = defaults_for(acme.item("new-laptop"), REQUESTER, acme)
    assert laptop["department"] == "Sales"
    assert laptop["model"] == "std14"


def test_a_default_template_that_cannot_render_gives_no_default(acme):
    assert "contact_email" not in defaults_for(acme.item("normal-change"), {}, acme)
    assert "contact_email" not in defaults_for(acme.item("normal-change"), None)


def test_a_default_template_the_field_refuses_gives_no_default(acme):
    who = {**REQUESTER, "email": "not an address"}
    assert "contact_email" not in defaults_for(acme.item("normal-change"), who, acme)


def test_static_defaults_are_copies(acme):
    item = acme.item("new-hire-onboarding")
    defaults = defaults_for(item, REQUESTER)
    assert defaults["equipment"] == ["laptop", "headset"]
    defaults["equipment"].append("phone")
    assert defaults_for(item, REQUESTER)["equipment"] == ["laptop", "headset"]


def test_false_is_not_an_empty_answer_for_other_types(make_item):
    catalog = make_item("  - {name: n, type: integer, required: true}\n")
    answers = clean_answers(catalog.item("thing"), {"n": False}, catalog)
    assert answers.errors == {"n": ["Must be a whole number."]}


# ---------------------------------------------------------------- checks across fields

DATED = """\
  - {name: start_date, type: date, required: true}
  - {name: end_date, type: date}
  - {name: note, type: string}
checks:
  - {when: "form.end_date and form.end_date < form.start_date",
     message: The end date cannot be before the start date, field: end_date}
  - {when: "form.note == 'both'", message: Say one thing only}
"""


@pytest.mark.parametrize("from_html", [True, False])
def test_a_check_across_fields_refuses_with_its_message_next_to_its_field(make_item, from_html):
    thing = make_item(DATED)
    answers = clean(thing, "thing", {"start_date": "2026-03-10", "end_date": "2026-03-09"},
                    from_html=from_html)
    assert answers.errors == {"end_date": ["The end date cannot be before the start date"]}


def test_a_check_that_does_not_hold_lets_the_answers_through(make_item):
    thing = make_item(DATED)
    assert clean(thing, "thing", {"start_date": "2026-03-10", "end_date": "2026-03-10"}).ok
    assert clean(thing, "thing", {"start_date": "2026-03-10"}).ok


def test_a_check_without_a_field_reports_for_the_whole_form(make_item):
    thing = make_item(DATED)
    answers = clean(thing, "thing", {"start_date": "2026-03-10", "note": "both"})
    assert answers.errors == {"_form": ["Say one thing only"]}


def test_a_check_reading_a_field_with_an_error_waits_for_that_field(make_item):
    thing = make_item(DATED)
    answers = clean(thing, "thing", {"start_date": "2026-02-30", "end_date": "2026-01-01"})
    assert answers.errors == {"start_date": ["Must be a date (YYYY-MM-DD)."]}


def test_a_check_about_a_hidden_field_reports_for_the_whole_form(make_item):
    thing = make_item("""\
  - {name: kind, type: choice, choices: [loan, gift]}
  - {name: start_date, type: date}
  - {name: end_date, type: date, show_if: "form.kind == 'loan'"}
checks:
  - {when: "form.kind == 'gift' and form.start_date", message: Gifts have no start date,
     field: end_date}
""")
    answers = clean(thing, "thing", {"kind": "gift", "start_date": "2026-03-10"})
    assert answers.errors == {"_form": ["Gifts have no start date"]}


# ---------------------------------------------------------------- table rows bounded

def test_table_rows_from_html_are_bounded_by_max_items_not_a_global_cap(everything, monkeypatch):
    import forms.answers as answers_module

    parsed = []
    real = answers_module._from_html
    monkeypatch.setattr(answers_module, "_from_html",
                        lambda f, raw, key: parsed.append(key) or real(f, raw, key))
    raw = MultiDict([("title", "Box")] + [(f"lines-{i}-what", f"Cable {i}") for i in range(2000)])
    answers = clean(everything, "everything", raw, from_html=True)
    assert answers.errors == {"lines": ["Must have at most 3 rows."]}
    assert parsed.count("what") == 4  # max_items + 1 rows read, the rest never parsed


def test_table_rows_from_json_are_bounded_by_max_items(everything):
    rows = [{"what": f"Cable {i}"} for i in range(1500)]
    answers = clean(everything, "everything", {"title": "Box", "lines": rows})
    assert answers.errors == {"lines": ["Must have at most 3 rows."]}
