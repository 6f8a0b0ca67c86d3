"""Where choices come from: static lists, lookups, the directory, and cascading."""

from __future__ import annotations

from catalog.choices import all_choices, choice_labels, choices_for
from catalog.models import Choice

FORM = """\
  - {name: colour, type: choice, choices_from: "lookup:colours"}
  - {name: team, type: choice, choices_from: groups}
  - {name: someone, type: choice, choices_from: people}
  - {name: member, type: multichoice, choices_from: "group:team"}
  - {name: who, type: person}
  - {name: size, type: choice, choices: [s, {value: m, label: Medium}]}
"""


def test_static_choices_keep_their_labels(make_item):
    catalog = make_item(FORM)
    field = catalog.item("thing").get_field("size")
    assert choices_for(field, catalog) == [Choice("s", "s"), Choice("m", "Medium")]


def test_lookup_values_are_choices(make_item):
    catalog = make_item(FORM)
    field = catalog.item("thing").get_field("colour")
    assert choices_for(field, catalog) == [Choice("red", "Red"), Choice("blue", "Blue")]


def test_groups_are_choices(make_item):
    catalog = make_item(FORM)
    field = catalog.item("thing").get_field("team")
    assert choices_for(field, catalog) == [Choice("team", "The Team"),
                                           Choice("ops", "Operations")]


def test_people_are_the_active_ones_with_name_and_id(make_item):
    catalog = make_item(FORM)
    for name in ("someone", "who"):
        field = catalog.item("thing").get_field(name)
        assert choices_for(field, catalog) == [Choice("ann", "Ann Smit (ann)"),
                                               Choice("cy", "Cy Young (cy)")]


def test_group_members_are_its_active_people(make_item):
    catalog = make_item(FORM)
    field = catalog.item("thing").get_field("member")
    assert choices_for(field, catalog) == [Choice("ann", "Ann Smit (ann)")]


def test_cascading_choices_follow_the_parent_answer(acme):
    role = acme.item("system-access").get_field("role")
    crm = [c.value for c in choices_for(role, acme, {"system": "crm"})]
    assert crm == ["crm-read", "crm-write", "crm-admin"]
    assert [c.parent for c in choices_for(role, acme, {"system": "erp"})] == ["erp"] * 3


def test_cascading_choices_without_a_parent_answer_offer_nothing(acme):
    role = acme.item("system-access").get_field("role")
    assert choices_for(role, acme) == []
    assert choices_for(role, acme, {"system": None}) == []
    assert choices_for(role, acme, {"system": {"not": "a value"}}) == []


def test_all_choices_ignore_the_cascade(acme):
    role = acme.item("system-access").get_field("role")
    assert len(all_choices(role, acme)) == 15
    assert {c.parent for c in all_choices(role, acme)} == {
        "crm", "erp", "hr-portal", "data-warehouse", "source-control"}


def test_a_multichoice_parent_offers_the_children_of_each_answer(make_item):
    catalog = make_item("""\
  - {name: regions, type: multichoice, choices: [eu, us]}
  - name: offices
    type: multichoice
    depends_on: regions
    choices:
      - {value: ams, parent: eu}
      - {value: nyc, parent: us}
      - {value: ber, parent: eu}
""")
    offices = catalog.item("thing").get_field("offices")
    assert [c.value for c in choices_for(offices, catalog, {"regions": ["eu"]})] == ["ams", "ber"]
    assert len(choices_for(offices, catalog, {"regions": ["eu", "us"]})) == 3
    assert choices_for(offices, catalog, {"regions": []}) == []


def test_a_cascading_value_is_labelled_through_the_parent_answered(make_item, tmp_path):
    (tmp_path / "lookups").mkdir()
    (tmp_path / "lookups" / "roles.yaml").write_text("""\
kind: Lookup
id: roles
values:
  - {value: admin, label: "CRM: administrator", parent: crm}
  - {value: admin, label: "ERP: administrator", parent: erp}
""")
    catalog = make_item("""\
  - {name: system, type: choice, choices: [crm, erp]}
  - {name: role, type: choice, choices_from: "lookup:roles", depends_on: system}
""")
    role = catalog.item("thing").get_field("role")
    assert choice_labels(role, catalog, {"system": "crm"}) == {"admin": "CRM: administrator"}
    assert choice_labels(role, catalog, {"system": "erp"}) == {"admin": "ERP: administrator"}
    assert choice_labels(role, catalog, {}) == {"admin": "CRM: administrator"}
