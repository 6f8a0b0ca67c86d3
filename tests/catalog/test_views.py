"""Shared views (`views/*.yaml`): filters of the agents' list checked at load."""

from __future__ import annotations

import pytest

from catalog.loader import load_catalog
from tests.catalog.test_loader import DIRECTORY, SETTINGS, WORKFLOW

PRIORITIES = "priorities:\n  p1: {name: Critical}\n  p2: {name: High}\n"
GOOD = "kind: View\nid: mine\nname: Mine\nfilters:\n  assignee: me\n  status: open\n"


@pytest.fixture
def catalog_dir(tmp_path):
    (tmp_path / "deskflow.yaml").write_text(SETTINGS + PRIORITIES)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "views").mkdir()
    return tmp_path


def test_a_view_loads_with_its_filters_and_sort(catalog_dir):
    (catalog_dir / "views" / "mine.yaml").write_text(
        GOOD + "  group: team\n  priority: p1\n  created_from: 2026-11-01\nsort: -priority\n")
    cat = load_catalog(catalog_dir)
    assert cat.errors == ()
    [view] = cat.views
    assert (view.id, view.name, dict(view.filters), view.sort) == (
        "mine", "Mine", {"assignee": "me", "status": "open", "group": "team", "priority": "p1",
                         "created_from": "2026-11-01"}, "-priority")


def test_a_view_sorts_by_most_recently_updated_unless_told(catalog_dir):
    (catalog_dir / "views" / "mine.yaml").write_text(GOOD)
    assert load_catalog(catalog_dir).views[0].sort == "-updated"


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD + "  colour: red\n",
     "views/mine.yaml:7:3: filters.colour: unknown filter colour (known: assignee, category, "
     "created_from, created_to, group, kind, major, priority, ...)"),
    (GOOD + "  asignee: me\n",
     "views/mine.yaml:7:3: filters.asignee: unknown filter asignee (did you mean assignee?)"),
    (GOOD + "  kind: bug\n",
     "views/mine.yaml:7:9: filters.kind: bug is not one of: request, incident, problem, change"),
    (GOOD + "  sla: 3\n",
     "views/mine.yaml:7:8: filters.sla: filter sla must be text, not a number "
     "(write the value in quotes)"),
    (GOOD + "  group: tema\n",
     "views/mine.yaml:7:10: filters.group: unknown group tema (did you mean team?)"),
    (GOOD + "  requester: bo\n",
     "views/mine.yaml:7:14: filters.requester: unknown person bo (known: ann)"),
    (GOOD + "  priority: p3\n",
     "views/mine.yaml:7:13: filters.priority: unknown priority p3 (known: p1, p2)"),
    (GOOD + "  created_to: '2026-02-30'\n",
     "views/mine.yaml:7:15: filters.created_to: 2026-02-30 is not a date (YYYY-MM-DD)"),
    (GOOD + "sort: colour\n",
     "views/mine.yaml:7:7: sort: unknown sort colour (known: -created, -number, -priority, "
     "-updated, created, number, priority, updated)"),
    (GOOD.replace("id: mine", "id: other"),
     "views/mine.yaml:2:5: id: view id other differs from its file name mine.yaml "
     "(name the file after the id)"),
    ("kind: View\nid: mine\nname: Mine\n", "views/mine.yaml:1:1: missing required key filters"),
])
def test_a_bad_view_is_an_error_at_its_line(catalog_dir, text, expected):
    (catalog_dir / "views" / "mine.yaml").write_text(text)
    assert [e.render() for e in load_catalog(catalog_dir).errors] == [expected]


def test_agents_see_is_groups_unless_the_settings_say_all(catalog_dir):
    assert load_catalog(catalog_dir).settings.agents_see == "groups"
    (catalog_dir / "deskflow.yaml").write_text(SETTINGS + PRIORITIES + "agents_see: all\n")
    assert load_catalog(catalog_dir).settings.agents_see == "all"


def test_agents_see_takes_only_all_or_groups(catalog_dir):
    (catalog_dir / "deskflow.yaml").write_text(SETTINGS + PRIORITIES + "agents_see: mine\n")
    assert [e.render() for e in load_catalog(catalog_dir).errors] == [
        "deskflow.yaml:8:13: agents_see: 'mine' is not one of all, groups"]
