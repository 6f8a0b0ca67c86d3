"""From a directory to validated models: schema errors, reload caching, kinds and folders."""

from __future__ import annotations

import pytest

from catalog.errors import UsageError
from catalog.loader import FileCache, load_catalog

SETTINGS = ("kind: Settings\nname: T\ntime_zone: UTC\n"
            "business_hours: {days: [mon], start: '09:00', end: '17:00'}\n")
WORKFLOW = ("kind: Workflow\nid: wf\nstart: work\nstates:\n"
            "  work: {task: {queue: team}, on: {done: done}}\n  done: {end: fulfilled}\n")
DIRECTORY = ("people:\n  - {id: ann, name: Ann, email: ann@example.com}\n"
             "groups:\n  - {id: team, name: Team, members: [ann]}\n")


@pytest.fixture
def catalog_dir(tmp_path):
    (tmp_path / "deskflow.yaml").write_text(SETTINGS)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    (tmp_path / "items").mkdir()
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW)
    return tmp_path


def item(text: str) -> str:
    return "kind: CatalogItem\nname: X\ncategory: C\nsummary: S\nworkflow: wf\n" + text


@pytest.mark.parametrize(("text", "expected"), [
    ("id: Laptop\n", "items/item.yaml:6:5: id: 'Laptop' does not match '^[a-z][a-z0-9-]*$'"),
    ("id: laptop\nform: 3\n", "items/item.yaml:7:7: form: 3 is not of type 'array'"),
    ("id: laptop\ncolour: red\n", "items/item.yaml:7:1: colour: unknown key colour "
     "(known: articles, category, description, form, icon, id, keywords, kind, ...)"),
    ("id: laptop\nform:\n  - {name: a, type: strng}\n",
     "items/item.yaml:8:21: form[0].type: 'strng' is not one of string, textarea, integer, "
     "number, boolean, choice, multichoice, date, email, url, person, table"),
    ("id: laptop\nform:\n  - {name: a, type: string, requird: true}\n",
     "items/item.yaml:8:29: form[0].requird: unknown key requird (did you mean required?)"),
    ("id: laptop\nform:\n  - {name: a, type: choice}\n",
     "items/item.yaml:8:5: form[0]: choice field a needs choices or choices_from "
     "(list choices, or take them from lookup:ID, groups or people)"),
    ("id: laptop\nform:\n  - {name: a, type: string, min: 3}\n",
     "items/item.yaml:8:34: form[0].min: min applies to number, integer and date fields, not "
     "string (use min_length/max_length or min_items/max_items)"),
    ("id: laptop\n", ""),
])
def test_schema_errors_point_at_the_line(catalog_dir, text, expected):
    (catalog_dir / "items" / "item.yaml").write_text(text if text.startswith("kind") else item(text))
    rendered = [e.render() for e in load_catalog(catalog_dir).errors]
    assert rendered == ([expected] if expected else [])


def test_missing_required_key_names_it(catalog_dir):
    (catalog_dir / "items" / "item.yaml").write_text("kind: CatalogItem\nid: x\nname: X\n")
    rendered = [e.render() for e in load_catalog(catalog_dir).errors]
    assert "items/item.yaml:1:1: missing required key category" in rendered


def test_a_file_in_the_wrong_folder_is_named(catalog_dir):
    (catalog_dir / "items" / "wf2.yaml").write_text(WORKFLOW.replace("id: wf", "id: wf2"))
    assert [e.render() for e in load_catalog(catalog_dir).errors] == [
        "items/wf2.yaml:1:7: kind: a Workflow in a folder of CatalogItem files (move it to workflows/)"]


def test_missing_settings_is_an_error(tmp_path):
    assert [e.render() for e in load_catalog(tmp_path).errors] == [
        "deskflow.yaml:1:1: file is missing (every catalog needs its settings file)"]


def test_not_a_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not a catalog directory"):
        load_catalog(tmp_path / "nope")


def test_reload_revalidates_only_changed_files(catalog_dir, monkeypatch):
    (catalog_dir / "items" / "a.yaml").write_text(item("id: a\n"))
    (catalog_dir / "items" / "b.yaml").write_text(item("id: b\n"))
    cache = FileCache()
    first = load_catalog(catalog_dir, cache)
    calls: list[str] = []
    import catalog.loader as loader

    real = loader._load_file
    monkeypatch.setattr(loader, "_load_file", lambda rel, raw, kind: calls.append(str(rel))
                        or real(rel, raw, kind))
    (catalog_dir / "items" / "b.yaml").write_text(item("id: b\nkeywords: [new]\n"))
    second = load_catalog(catalog_dir, cache)
    assert calls == ["items/b.yaml"]
    assert second.item("b").keywords == ("new",)
    assert second.version != first.version
    assert second.item("a") is first.item("a") or second.item("a") == first.item("a")


def test_workflow_version_ignores_formatting_but_not_meaning(catalog_dir):
    before = load_catalog(catalog_dir).workflow("wf").version
    (catalog_dir / "workflows" / "wf.yaml").write_text("# a comment\n" + WORKFLOW.replace(
        "{task: {queue: team}, on: {done: done}}", "\n    task: {queue: team}\n    on: {done: done}"))
    assert load_catalog(catalog_dir).workflow("wf").version == before
    (catalog_dir / "workflows" / "wf.yaml").write_text(WORKFLOW.replace("fulfilled", "closed"))
    assert load_catalog(catalog_dir).workflow("wf").version != before


def test_workflow_reads_fields_every_item_must_have(catalog_dir):
    (catalog_dir / "workflows" / "wf.yaml").write_text(WORKFLOW.replace(
        "start: work", "start: route").replace(
        "states:\n", "states:\n  route:\n    decide:\n      - {when: \"form.model == 'x'\", "
        "goto: work}\n      - {goto: done}\n"))
    (catalog_dir / "items" / "a.yaml").write_text(item("id: a\n"))
    assert [e.render() for e in load_catalog(catalog_dir).errors] == [
        "items/a.yaml:5:11: workflow: workflow wf reads form.model, but item a has no field model "
        "(add the field or use another workflow)"]


def test_kb_articles_need_front_matter(catalog_dir):
    (catalog_dir / "kb").mkdir()
    (catalog_dir / "kb" / "a.md").write_text("# Just text\n")
    (catalog_dir / "kb" / "b.md").write_text("---\nid: b\ntitle: B\nitems: [nope]\n---\nBody\n")
    rendered = [e.render() for e in load_catalog(catalog_dir).errors]
    assert rendered == [
        "kb/a.md:1:1: article has no front matter (start the file with --- , the YAML keys, "
        "and --- again)",
        "kb/b.md:4:9: items[0]: unknown item nope (none are defined)"]


@pytest.mark.parametrize(("form", "expected"), [
    ("  - {name: a, type: string, show_if: \"form.b == 'x'\"}\n  - {name: b, type: string}\n",
     "items/item.yaml:8:38: form[0].show_if: show_if reads field b, which is not above it "
     "(a condition can only read fields earlier in the form; move it below b)"),
    ("  - {name: csrf_token, type: string}\n",
     "items/item.yaml:8:12: form[0].name: field name csrf_token is reserved (pick another name)"),
    ("  - {name: a, type: choice, choices_from: people, depends_on: b}\n"
     "  - {name: b, type: string}\n",
     "items/item.yaml:8:63: form[0].depends_on: depends_on names field b, which is not above it "
     "(a cascading field comes after the field it depends on)"),
    ("  - {name: b, type: string}\n  - {name: a, type: choice, choices_from: people, depends_on: b}\n",
     "items/item.yaml:9:63: form[1].depends_on: choices from people cannot cascade "
     "(use a lookup whose values have a parent)"),
])
def test_form_order_and_cascades_are_checked(catalog_dir, form, expected):
    (catalog_dir / "items" / "item.yaml").write_text(item("id: a\nform:\n" + form))
    assert [e.render() for e in load_catalog(catalog_dir).errors] == [expected]
