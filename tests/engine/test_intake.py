"""The engine's intake refuses what the forms refuse, in their words: checks across fields, rows."""

from __future__ import annotations

import pytest

from engine.errors import InvalidInput


def test_intake_refuses_answers_a_check_across_fields_refuses(service, answers):
    fixed_term = answers["new-hire-onboarding"] | {"contract_type": "fixed-term",
                                                   "contract_end": "2026-12-31"}
    with pytest.raises(InvalidInput) as info:
        service.submit("new-hire-onboarding", "alice", fixed_term)
    assert info.value.fields == {"contract_end": ["The contract cannot end before the start date."]}


def test_intake_takes_answers_the_check_lets_through(service, answers):
    fixed_term = answers["new-hire-onboarding"] | {"contract_type": "fixed-term",
                                                   "contract_end": "2027-06-30"}
    assert service.submit("new-hire-onboarding", "alice", fixed_term).answers["contract_end"] == \
        "2027-06-30"


def test_intake_bounds_table_rows_by_max_items(service, answers):
    many = answers["monitor-peripherals"] | {
        "accessories": [{"accessory": "dock", "quantity": 1}] * 1500}
    with pytest.raises(InvalidInput) as info:
        service.submit("monitor-peripherals", "alice", many)
    assert info.value.fields == {"accessories": ["Must have at most 6 rows."]}


def test_intake_words_a_refused_choice_as_the_portal_does(service, answers):
    wrong = answers["new-laptop"] | {"model": "pro99"}
    with pytest.raises(InvalidInput) as info:
        service.submit("new-laptop", "alice", wrong)
    assert info.value.fields == {"model": ["pro99 is not one of the choices."]}
