"""Order guides (`guides/*.yaml`): items, shared questions and conditions checked at load."""

from __future__ import annotations

import shutil

import pytest

from catalog.diff import diff_catalogs
from catalog.loader import load_catalog
from catalog.models import FieldType

HEAD = ("kind: Guide\nid: starter\nname: Starter\nsummary: Day one\n"
        "questions:\n  - {name: role, type: choice, choices: [engineer, sales], required: true}\n")


@pytest.fixture(scope="module")
def acme_copy(tmp_path_factory, acme_path):
    root = tmp_path_factory.mktemp("guides") / "acme"
    shutil.copytree(acme_path, root)
    shutil.rmtree(root / "guides", ignore_errors=True)
    (root / "guides").mkdir()
    return root


def load_with(root, text: str):
    (root / "guides" / "starter.yaml").write_text(text)
    return load_catalog(root)


def test_the_acme_guide_loads_with_its_questions_items_and_conditions(acme):
    guide = acme.guide("new-hire")
    assert guide is not None and acme.errors == ()
    assert [q.name for q in guide.questions] == ["cost_center", "needed_by", "team"]
    assert guide.question("needed_by").type is FieldType.DATE
    assert [e.item for e in guide.items] == ["new-laptop", "mobile-phone", "system-access"]
    assert [e.item for e in guide.included({"team": "engineer"})] == ["new-laptop", "system-access"]
    assert [e.item for e in guide.included({"team": "sales"})] == [
        "new-laptop", "mobile-phone", "system-access"]
    laptop = acme.item("new-laptop")
    assert "cost_center" not in [f.name for f in guide.asked(guide.items[0], laptop)]
    assert [f.name for f in guide.asked(guide.items[2], acme.item("system-access"))] == [
        "system", "role", "reason", "access_until"]  # level is fixed by the guide


@pytest.mark.parametrize(("text", "expected"), [
    (HEAD + "items:\n  - item: new-laptopp\n",
     "guides/starter.yaml:8:11: items[0].item: unknown item new-laptopp (did you mean new-laptop?)"),
    (HEAD + "items:\n  - item: new-laptop\n  - item: new-laptop\n",
     "guides/starter.yaml:9:11: items[1].item: duplicate item new-laptop (each item may appear once)"),
    (HEAD + "items:\n  - item: new-laptop\n    when: \"guide.rol == 'sales'\"\n",
     "guides/starter.yaml:9:11: items[0].when: unknown shared question rol (did you mean role?)"),
    (HEAD + "items:\n  - item: new-laptop\n    when: \"form.role == 'sales'\"\n",
     "guides/starter.yaml:9:11: items[0].when: expression \"form.role == 'sales'\" is invalid: "
     "unknown name form (names available here: guide)"),
    (HEAD.replace("type: choice, choices: [engineer, sales]", "type: integer")
     + "items:\n  - item: system-access\n",
     "guides/starter.yaml:6:24: questions[0].type: shared question role is integer but field role "
     "of item system-access is choice (give both the same type)"),
    (HEAD + "items:\n  - item: system-access\n    answers: {levle: read}\n",
     "guides/starter.yaml:9:15: items[0].answers.levle: item system-access has no field levle "
     "(did you mean level?)"),
    (HEAD + "items: []\n",
     "guides/starter.yaml:7:8: items: needs at least 1 entry"),
    (HEAD + "items:\n  - item: report-incident\n",
     "guides/starter.yaml:8:11: items[0].item: item report-incident asks for files (screenshots); "
     "a guide's form takes no uploads (order that item on its own)"),
    ("kind: Guide\nid: other\nname: Starter\nsummary: Day one\nitems:\n  - item: new-laptop\n",
     "guides/starter.yaml:2:5: id: guide id other differs from its file name starter.yaml "
     "(name the file after the id)"),
])
def test_guide_errors_point_at_the_line(acme_copy, text, expected):
    assert expected in [str(e) for e in load_with(acme_copy, text).errors]


def test_diff_reports_guides_added_changed_and_removed(acme, acme_copy):
    old = load_with(acme_copy, HEAD + "items:\n  - item: new-laptop\n")
    assert [c.message for c in diff_catalogs(old, acme).changes if c.subject == "guide"] == [
        "adds guide new-hire", "removes guide starter"]
    (acme_copy / "guides" / "starter.yaml").write_text(HEAD + "items:\n  - item: system-access\n")
    new = load_catalog(acme_copy)
    [change] = [c for c in diff_catalogs(old, new).changes if c.subject == "guide"]
    assert (change.message, str(change.file)) == ("changes guide starter (items)",
                                                  "guides/starter.yaml")
