"""examples/broken holds one instance of every error kind; each is reported exactly."""

from __future__ import annotations

import pytest

from catalog.loader import load_catalog

EXPECTED_ERRORS = [
    # unknown workflow reference
    "items/laptop-copy.yaml:6:11: workflow: unknown workflow missing-workflow "
    "(known: Bad_Schema, two-step)",
    # expression that does not parse
    "items/laptop-copy.yaml:10:18: form[0].required_if: expression 'form.note ==' does not "
    "parse: invalid syntax (expressions look like form.model == 'pro16')",
    # expression naming an unknown variable
    "items/laptop-copy.yaml:11:14: form[0].show_if: expression 'secret.value > 1' is invalid: "
    "unknown name secret (names available here: form, requester)",
    # duplicate id
    "items/laptop.yaml:2:5: id: duplicate item id laptop "
    "(also defined at items/laptop-copy.yaml:2:5)",
    # unknown group
    "items/laptop.yaml:7:8: owner: unknown group helpdesk (known: pair)",
    # unknown role
    "items/laptop.yaml:8:14: visible_to[0]: unknown role contractor (known: employee)",
    # unknown fieldset
    "items/laptop.yaml:10:10: form[0].use: unknown fieldset adress (known: contact)",
    # choices with duplicate values
    "items/laptop.yaml:13:25: form[1].choices[2]: duplicate choice value std "
    "(each choice value may appear once)",
    # show_if naming an unknown field
    "items/laptop.yaml:16:14: form[2].show_if: show_if names unknown field modle "
    "(did you mean model?)",
    # a default that fails its own field's validation
    "items/laptop.yaml:21:14: form[3].default: default 9 fails the field's own validation: "
    "must be at most 5 (change the default or the rule)",
    # invalid regular expression
    "items/laptop.yaml:24:14: form[4].pattern: invalid regular expression [unclosed: "
    "a [ is not closed",
    # a pattern RE2 cannot match in linear time
    "fieldsets/contact.yaml:4:42: fields[0].pattern: invalid regular expression ^(?!0)[0-9]+$: "
    "it uses lookaround (backreferences and lookaround are not supported: answers are matched "
    "in linear time)",
    # schema: pattern and unknown key
    "workflows/bad-schema.yaml:2:5: id: 'Bad_Schema' does not match '^[a-z][a-z0-9-]*$'",
    "workflows/bad-schema.yaml:5:19: states.go.colour: unknown key colour "
    "(known: actions, approval, approvals, decide, end, label, next, on, ...)",
    # custom tags and duplicate keys
    "workflows/bad-tag.yaml:3:8: tag !!python/object/apply:os.system is not allowed "
    "(only plain YAML: strings, numbers, booleans, null, lists, mappings)",
    "workflows/bad-yaml.yaml:4:1: duplicate key 'start' (each key may appear once in a mapping)",
    # approval policy that can never be met
    "workflows/two-step.yaml:6:49: states.review.approval.policy: approval can never be met: "
    "quorum 3 of group:pair, which has 2 active people (lower the quorum or add approvers)",
    # transition to an unknown state
    "workflows/two-step.yaml:7:38: states.review.on.rejected: unknown state rejectd "
    "(known: cancelled, done, fulfil, limbo, orphan, review)",
    # unknown person
    "workflows/two-step.yaml:9:35: states.fulfil.task.assignee: unknown person zed "
    "(known: ann, ben)",
    # a state that cannot be reached
    "workflows/two-step.yaml:11:3: states.orphan: state orphan cannot be reached from review "
    "(route to it from another state or remove it)",
    # a state from which no end state can be reached
    "workflows/two-step.yaml:14:3: states.limbo: no end state can be reached from state limbo "
    "(every path must lead to a state with end)",
]

EXPECTED_WARNINGS = [
    "fieldsets/contact.yaml:2:5: id: fieldset contact is not used by any item",
]


@pytest.fixture(scope="module")
def broken(broken_path):
    return load_catalog(broken_path)


@pytest.mark.parametrize("expected", EXPECTED_ERRORS)
def test_every_error_kind_is_reported_where_it_is_written(broken, expected):
    assert expected in [e.render() for e in broken.errors]


@pytest.mark.parametrize("expected", EXPECTED_WARNINGS)
def test_warnings_are_not_errors(broken, expected):
    assert expected in [w.render() for w in broken.warnings]
    assert expected not in [e.render() for e in broken.errors]


def test_all_errors_are_reported_together_in_file_order(broken):
    rendered = [e.render() for e in broken.errors]
    assert len(rendered) >= len(EXPECTED_ERRORS)
    keys = [e.sort_key() for e in broken.errors]
    assert keys == sorted(keys)
