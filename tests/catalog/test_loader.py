"""From a directory to validated models: schema errors, reload caching, kinds and folders."""

from __future__ import annotations

import time

import pytest

from catalog.errors import UsageError
from catalog.file_cache import FileCache
from catalog.loader import load_catalog

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
     "(known: articles, category, category_from, change, checks, concerns, description, form, ...)"),
    ("id: laptop\nform:\n  - {name: a, type: strng}\n",
     "items/item.yaml:8:21: form[0].type: 'strng' is not one of string, textarea, integer, "
     "number, boolean, choice, multichoice, date, email, url, person, table, asset, file"),
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


DATES = ("form:\n  - {name: start_date, type: date}\n  - {name: end_date, type: date}\n"
         "checks:\n")


@pytest.mark.parametrize(("checks", "expected"), [
    ("  - {when: \"form.end_date < form.start\", message: Too early, field: end_date}\n",
     "items/item.yaml:11:12: checks[0].when: when names unknown field start "
     "(did you mean start_date?)"),
    ("  - {when: \"form.end_date < form.start_date\", message: Too early, field: end}\n",
     "items/item.yaml:11:74: checks[0].field: unknown field end (known: end_date, start_date)"),
    ("  - {when: \"form.end_date <\", message: Too early}\n",
     "items/item.yaml:11:12: checks[0].when: expression 'form.end_date <' does not parse: "
     "invalid syntax (expressions look like form.model == 'pro16')"),
    ("  - {when: \"form.end_date ** 2\", message: Too early}\n",
     "items/item.yaml:11:12: checks[0].when: expression 'form.end_date ** 2' is invalid: "
     "the ** operator is not allowed"),
    ("  - {when: \"request.number\", message: Too early}\n",
     "items/item.yaml:11:12: checks[0].when: expression 'request.number' is invalid: "
     "unknown name request (names available here: form, requester)"),
    ("  - {when: \"form.end_date < form.start_date\"}\n",
     "items/item.yaml:11:5: checks[0]: missing required key message"),
    ("  - {when: \"form.end_date < form.start_date\", message: Too early, field: end_date}\n", ""),
])
def test_a_check_across_fields_is_checked_when_the_catalog_loads(catalog_dir, checks, expected):
    (catalog_dir / "items" / "item.yaml").write_text(item("id: a\n" + DATES + checks))
    assert [e.render() for e in load_catalog(catalog_dir).errors] == ([expected] if expected else [])


ARTICLE = "---\nid: {id}\ntitle: T\n---\nBody.\n"
OUTSIDE = "symlink points outside the catalog directory (copy the file into the catalog instead)"


def test_a_symlink_leading_out_of_the_catalog_is_refused_not_read(catalog_dir, tmp_path_factory):
    secret = tmp_path_factory.mktemp("elsewhere") / "hostname.md"
    secret.write_text(ARTICLE.format(id="leak"))
    (catalog_dir / "kb").mkdir()
    (catalog_dir / "kb" / "leak.md").symlink_to(secret)
    catalog = load_catalog(catalog_dir, FileCache())
    assert [e.render() for e in catalog.errors] == [f"kb/leak.md:1:1: {OUTSIDE}"]
    assert catalog.article("leak") is None


def test_a_symlinked_folder_leading_out_of_the_catalog_is_refused(catalog_dir, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "leak.md").write_text(ARTICLE.format(id="leak"))
    (catalog_dir / "kb").mkdir()
    (catalog_dir / "kb" / "more").symlink_to(elsewhere, target_is_directory=True)
    (catalog_dir / "lookups").symlink_to(elsewhere, target_is_directory=True)
    assert [e.render() for e in load_catalog(catalog_dir, FileCache()).errors] == [
        f"kb/more:1:1: {OUTSIDE}", f"lookups:1:1: {OUTSIDE}"]


def test_a_symlinked_settings_file_leading_out_is_refused(catalog_dir, tmp_path_factory):
    settings = tmp_path_factory.mktemp("elsewhere") / "deskflow.yaml"
    settings.write_text(SETTINGS)
    (catalog_dir / "deskflow.yaml").unlink()
    (catalog_dir / "deskflow.yaml").symlink_to(settings)
    assert [e.render() for e in load_catalog(catalog_dir, FileCache()).errors] == [
        f"deskflow.yaml:1:1: {OUTSIDE}"]


def test_a_symlink_within_the_catalog_is_followed(catalog_dir):
    (catalog_dir / "shared").mkdir()
    (catalog_dir / "shared" / "guide.md").write_text(ARTICLE.format(id="guide"))
    (catalog_dir / "kb").mkdir()
    (catalog_dir / "kb" / "guide.md").symlink_to(catalog_dir / "shared" / "guide.md")
    catalog = load_catalog(catalog_dir, FileCache())
    assert catalog.errors == ()
    assert catalog.article("guide") is not None


def test_a_symlink_loop_is_a_file_that_cannot_be_read(catalog_dir):
    (catalog_dir / "kb").mkdir()
    (catalog_dir / "kb" / "loop.md").symlink_to(catalog_dir / "kb" / "loop.md")
    [error] = [e.render() for e in load_catalog(catalog_dir, FileCache()).errors]
    assert error.startswith("kb/loop.md:1:1: cannot read file: ")  # then the system's reason


def test_an_oversized_file_is_refused_without_reading_it_all(catalog_dir):
    (catalog_dir / "kb").mkdir()
    with (catalog_dir / "kb" / "huge.md").open("wb") as fh:
        fh.write(b"---\nid: huge\ntitle: T\n---\n")
        fh.truncate(2 * 1024 ** 3)  # sparse: 2 GiB that take no disk
    started = time.perf_counter()
    catalog = load_catalog(catalog_dir, FileCache())
    assert [e.render() for e in catalog.errors] == [
        "kb/huge.md:1:1: file is larger than 1024 KiB (split it into smaller files)"]
    assert time.perf_counter() - started < 2.0
