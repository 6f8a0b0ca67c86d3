"""Canned responses (`responses/*.yaml`): schema, references and templates checked at load."""

from __future__ import annotations

import pytest

from catalog.loader import load_catalog
from tests.catalog.test_loader import DIRECTORY, SETTINGS, WORKFLOW

GOOD = ("kind: Response\nid: ask\ntitle: Ask for a screenshot\n"
        "body: 'Hello {{ requester.name }}, from {{ agent.name }}'\n")


@pytest.fixture
def catalog_dir(tmp_path):
    (tmp_path / "deskflow.yaml").write_text(SETTINGS)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "responses").mkdir()
    return tmp_path


def test_a_response_loads_with_its_checked_template(catalog_dir):
    (catalog_dir / "responses" / "ask.yaml").write_text(GOOD + "visible_to_groups: [team]\n")
    cat = load_catalog(catalog_dir)
    assert cat.errors == ()
    response = cat.response("ask")
    assert response.title == "Ask for a screenshot"
    assert response.visible_to_groups == ("team",)
    assert response.body.render({"requester": {"name": "Ann"}, "agent": {"name": "Bo"}}) == \
        "Hello Ann, from Bo"


@pytest.mark.parametrize(("text", "expected"), [
    ("kind: Response\nid: ask\ntitle: T\nbody: 'Hi {{ requestor.name }}'\n",
     "responses/ask.yaml:4:7: body: template 'Hi {{ requestor.name }}': in {{ requestor.name }}: "
     "unknown name requestor (names available here: agent, form, item, now, request, "
     "requested_for, requester)"),
    ("kind: Response\nid: ask\ntitle: T\nbody: 'Hi {{ requester.name'\n",
     "responses/ask.yaml:4:7: body: template 'Hi {{ requester.name': unbalanced {{ }} in "
     "template (close every {{ with }})"),
    (GOOD + "visible_to_groups: [tema]\n",
     "responses/ask.yaml:5:21: visible_to_groups[0]: unknown group tema (did you mean team?)"),
    (GOOD + "items: [laptop]\n",
     "responses/ask.yaml:5:9: items[0]: unknown item laptop (none are defined)"),
    ("kind: Response\nid: ask\ntitle: T\n",
     "responses/ask.yaml:1:1: missing required key body"),
    (GOOD + "colour: red\n",
     "responses/ask.yaml:5:1: colour: unknown key colour (known: body, id, items, kind, title, "
     "visible_to_groups)"),
    (GOOD.replace("id: ask", "id: other"),
     "responses/ask.yaml:2:5: id: response id other differs from its file name ask.yaml "
     "(name the file after the id)"),
])
def test_a_bad_response_is_an_error_at_its_line(catalog_dir, text, expected):
    (catalog_dir / "responses" / "ask.yaml").write_text(text)
    assert [e.render() for e in load_catalog(catalog_dir).errors] == [expected]


def test_acme_has_canned_responses(acme):
    assert sorted(r.id for r in acme.responses) == [
        "ask-for-screenshot", "laptop-collection", "password-reset-self-service", "working-on-it"]


def test_an_article_without_a_category_is_filed_under_general(catalog_dir):
    (catalog_dir / "kb").mkdir()
    (catalog_dir / "kb" / "a.md").write_text("---\nid: a\ntitle: A\n---\nBody\n")
    assert load_catalog(catalog_dir).article("a").category == "General"
