"""Comparisons of fields that may be empty: found without a null guard, warned about at load."""

from __future__ import annotations

import pytest

from catalog.expressions import compile_expression
from catalog.guards import unguarded_orderings
from catalog.loader import load_catalog


@pytest.mark.parametrize(("source", "unguarded"), [
    ("form.budget > 1000", ["budget"]),
    ("form['budget'] >= 1000", ["budget"]),
    ("1 <= form.n < 10", ["n"]),
    ("form.a > form.b", ["a", "b"]),
    ("form.qty * 2 > 10", ["qty"]),
    ("int(form.qty) > 10", ["qty"]),
    ("form.b > 3 if form.b is null else false", ["b"]),
    ("(form.a is not null and form.a > 3) or form.a < 0", ["a"]),
    ("form.end and form.end < form.start", ["start"]),
    ("form.budget is not null and form.budget > 1000", []),
    ("form.budget != null and form.budget > 1000", []),
    ("form.budget and form.budget > 1000", []),
    ("form.budget is null or form.budget > 1000", []),
    ("not form.budget or form.budget > 1000", []),
    ("form.b > 3 if form.b is not null else false", []),
    ("default(form.budget, 0) > 1000", []),
    ("len(form.name) > 3", []),
    ("form.budget == 1000", []),
    ("lookup('software', form.software).data.cost >= 500", []),
])
def test_orderings_without_a_null_guard_are_found(source, unguarded):
    assert list(unguarded_orderings(compile_expression(source))) == unguarded


SETTINGS = ("kind: Settings\nname: T\ntime_zone: UTC\n"
            "business_hours: {days: [mon], start: '09:00', end: '17:00'}\n")
DIRECTORY = ("people:\n  - {id: ann, name: Ann, email: ann@example.com}\n"
             "groups:\n  - {id: team, name: Team, members: [ann]}\n")
WORKFLOW = ("kind: Workflow\nid: wf\nstart: route\nstates:\n"
            "  route:\n    decide:\n      - {when: \"WHEN\", goto: work}\n      - {goto: done}\n"
            "  work: {task: {queue: team}, on: {done: done}}\n  done: {end: fulfilled}\n")
ITEM = "kind: CatalogItem\nid: buy\nname: Buy\ncategory: C\nsummary: S\nworkflow: wf\nform:\n"
BUDGET_HINT = ('(guard it with "form.budget is not null and ...", '
               "or use default(form.budget, 0))")


def write(tmp_path, form: str, when: str = "true") -> None:
    (tmp_path / "deskflow.yaml").write_text(SETTINGS)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    (tmp_path / "items").mkdir()
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW.replace("WHEN", when))
    (tmp_path / "items" / "buy.yaml").write_text(ITEM + form)


@pytest.mark.parametrize(("form", "expected"), [
    ("  - {name: budget, type: number}\n  - {name: why, type: string, show_if: \"form.budget > 1000\"}\n",
     ["items/buy.yaml:9:40: form[1].show_if: form.budget may be empty; a comparison with an "
      f"empty value is false {BUDGET_HINT}"]),
    ("  - {name: budget, type: number}\n"
     "  - {name: why, type: string, required_if: \"form.budget >= 1000\"}\n",
     ["items/buy.yaml:9:44: form[1].required_if: form.budget may be empty; a comparison with an "
      f"empty value is false {BUDGET_HINT}"]),
    ("  - {name: day, type: date}\n  - {name: why, type: string, show_if: \"form.day < '2026-01-01'\"}\n",
     ["items/buy.yaml:9:40: form[1].show_if: form.day may be empty; a comparison with an "
      "empty value is false (guard it with \"form.day is not null and ...\")"]),
    ("  - {name: budget, type: number, required: true}\n"
     "  - {name: why, type: string, show_if: \"form.budget > 1000\"}\n", []),
    ("  - {name: budget, type: number}\n"
     "  - {name: why, type: string, show_if: \"form.budget is not null and form.budget > 1000\"}\n",
     []),
    ("  - {name: budget, type: number}\n"
     "  - {name: why, type: string, show_if: \"default(form.budget, 0) > 1000\"}\n", []),
])
def test_an_unguarded_comparison_of_a_field_that_may_be_empty_is_a_warning(tmp_path, form, expected):
    write(tmp_path, form)
    catalog = load_catalog(tmp_path)
    assert [e.render() for e in catalog.errors] == []
    assert [e.render() for e in catalog.warnings] == expected


def test_a_required_field_with_a_show_if_may_be_empty_too(tmp_path):
    write(tmp_path, "  - {name: big, type: boolean}\n"
                    "  - {name: budget, type: integer, required: true, show_if: form.big}\n"
                    "  - {name: why, type: string, show_if: \"form.budget > 1000\"}\n")
    assert [e.render() for e in load_catalog(tmp_path).warnings] == [
        "items/buy.yaml:10:40: form[2].show_if: form.budget may be empty; a comparison with an "
        f"empty value is false {BUDGET_HINT}"]


@pytest.mark.parametrize(("required", "expected"), [
    ("false", ["workflows/wf.yaml:7:16: states.route.decide[0].when: form.budget may be empty in "
               f"item buy; a comparison with an empty value is false {BUDGET_HINT}"]),
    ("true", []),
])
def test_a_decide_route_is_checked_against_each_item_using_it(tmp_path, required, expected):
    write(tmp_path, f"  - {{name: budget, type: number, required: {required}}}\n",
          when="form.budget > 1000")
    catalog = load_catalog(tmp_path)
    assert [e.render() for e in catalog.errors] == []
    assert [e.render() for e in catalog.warnings] == expected
