"""Random submissions: clean_answers only ever returns answers or errors, never raises."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from catalog.answers import Answers
from forms.answers import clean_answers

ACME_ITEMS = ["new-laptop", "system-access", "monitor-peripherals", "meeting-room-equipment",
              "new-hire-onboarding", "normal-change", "offboarding", "shared-mailbox",
              "report-incident", "mobile-phone"]
FIELD_NAMES = ["model", "justification", "system", "role", "level", "accessories", "floor",
               "building", "equipment", "attendees", "meeting_date", "start_date", "members",
               "hiring_manager", "estimated_cost", "keep_number", "catering_budget"]

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["pro16", "crm", "crm-read", "home",
                                                           "catering", "2026-02-02", "20260202",
                                                           "1e999", "NaN", "CC-1234", "ann"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
KEYS = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12),
                 st.builds(lambda n, i, c: f"{n}-{i}-{c}", st.sampled_from(FIELD_NAMES),
                           st.integers(min_value=0, max_value=10 ** 12),
                           st.sampled_from(["accessory", "quantity", "x"])))
FORM_TEXT = st.one_of(st.text(max_size=20), st.sampled_from(
    ["on", "3", "-0", "1e5", "9" * 5000, "pro16", "crm", "crm-read", "catering", "2026-13-01"]))
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def check(answers: Answers, item) -> None:
    assert isinstance(answers, Answers)
    assert set(answers.values) == {f.name for f in item.fields}
    assert json.loads(json.dumps(answers.values, allow_nan=False)) == answers.values
    for key, messages in answers.errors.items():
        assert isinstance(key, str) and messages
        assert all(isinstance(m, str) and m.endswith(".") for m in messages)
    if answers.ok:
        assert not answers.errors


@SETTINGS
@given(item_id=st.sampled_from(ACME_ITEMS),
       body=st.dictionaries(KEYS, JSON, max_size=8),
       requester=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), JSON, max_size=3)))
def test_random_json_bodies(acme, item_id, body, requester):
    item = acme.item(item_id)
    check(clean_answers(item, body, acme, requester), item)


@SETTINGS
@given(item_id=st.sampled_from(ACME_ITEMS),
       pairs=st.lists(st.tuples(KEYS, FORM_TEXT), max_size=12))
def test_random_html_posts(acme, item_id, pairs):
    item = acme.item(item_id)
    check(clean_answers(item, MultiDict(pairs), acme, from_html=True), item)


@SETTINGS
@given(item_id=st.sampled_from(ACME_ITEMS), body=JSON)
def test_random_values_as_html_mappings(acme, item_id, body: Any):
    item = acme.item(item_id)
    raw = body if isinstance(body, dict) else {"model": body, "accessories": body}
    check(clean_answers(item, raw, acme, from_html=True), item)


@SETTINGS
@given(body=JSON)
def test_bodies_that_are_not_objects(acme, body):
    item = acme.item("new-laptop")
    check(clean_answers(item, body, acme), item)
