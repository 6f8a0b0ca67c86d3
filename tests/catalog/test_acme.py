"""The example company catalog is clean and complete."""

from __future__ import annotations

from collections import Counter

from catalog.loader import load_catalog
from catalog.models import FieldType
from catalog.workflow import StateKind


def test_acme_validates_clean(acme_path):
    catalog = load_catalog(acme_path)
    assert [e.render() for e in catalog.problems] == []


def test_acme_is_a_realistic_company(acme_path):
    catalog = load_catalog(acme_path)
    assert len(catalog.items) >= 12
    assert len({i.category for i in catalog.items}) >= 5
    assert len(catalog.workflows) >= 8
    assert len(catalog.articles) >= 6
    assert 12 <= len(catalog.directory.people) <= 20
    for required in ("new-laptop", "software-licence", "system-access", "new-hire-onboarding",
                     "report-incident", "password-unlock", "standard-change", "normal-change",
                     "offboarding"):
        assert catalog.item(required) is not None, required
    assert len(catalog.directory.managers_of("alice")) >= 2


def test_acme_uses_every_field_type_and_state_kind(acme_path):
    catalog = load_catalog(acme_path)
    types = {f.type for i in catalog.items for f in i.fields}
    assert types == set(FieldType)
    kinds = Counter(s.kind for w in catalog.workflows for s in w.states)
    assert set(kinds) == set(StateKind)
    assert any(len(s.tasks) > 1 for w in catalog.workflows for s in w.states)
    assert any(len(s.approvals) > 1 for w in catalog.workflows for s in w.states)
    assert any(a.policy.kind == "quorum" for w in catalog.workflows for s in w.states
               for a in s.approvals)
