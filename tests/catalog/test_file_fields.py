"""`type: file` in the catalog language: what a file field may say, and each refusal at its line."""

from __future__ import annotations

import pytest

from catalog.answers import check_answers
from catalog.choices import CatalogChoices
from catalog.fields import Upload
from catalog.loader import load_catalog
from catalog.models import FieldType
from tests.catalog.test_loader import DIRECTORY, SETTINGS, WORKFLOW

HEAD = "kind: CatalogItem\nid: a\nname: X\ncategory: C\nsummary: S\nworkflow: wf\n"


@pytest.fixture
def catalog_dir(tmp_path):
    (tmp_path / "deskflow.yaml").write_text(SETTINGS)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    for folder in ("items", "workflows", "fieldsets"):
        (tmp_path / folder).mkdir()
    (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW)
    return tmp_path


def errors(catalog_dir, form: str, extra: str = "") -> list[str]:
    (catalog_dir / "items" / "a.yaml").write_text(HEAD + "form:\n" + form + extra)
    return [e.render() for e in load_catalog(catalog_dir).errors]


def test_a_file_field_with_its_options_loads(catalog_dir):
    (catalog_dir / "fieldsets" / "evidence.yaml").write_text(
        "kind: FieldSet\nid: evidence\nname: Evidence\nfields:\n"
        "  - {name: receipt, type: file, required: true, accept: [pdf, image]}\n")
    form = ("  - {name: kind, type: choice, choices: [a, b]}\n"
            "  - {name: shot, type: file, show_if: \"form.kind == 'a'\", required_if: \"form.kind == 'a'\"}\n"
            "  - {name: logs, type: file, multiple: true, max_items: 3, accept: [text, zip]}\n"
            "  - {use: evidence}\n")
    (catalog_dir / "items" / "a.yaml").write_text(HEAD + "form:\n" + form)
    loaded = load_catalog(catalog_dir)
    assert [e.render() for e in loaded.errors] == []
    item = loaded.item("a")
    shot, logs, receipt = item.fields[1:]
    assert (shot.type, shot.multiple, shot.accept, shot.show_if is not None) == (
        FieldType.FILE, False, (), True)
    assert (logs.multiple, logs.max_items, logs.accept) == (True, 3, ("text", "zip"))
    assert (receipt.required, receipt.accept) == (True, ("pdf", "image"))


@pytest.mark.parametrize(("form", "expected"), [
    ("  - {name: f, type: file, default: x.png}\n",
     "items/a.yaml:8:36: form[0].default: a file field cannot have a default "
     "(the person ordering attaches the file)"),
    ("  - {name: f, type: file, choices: [a]}\n",
     "items/a.yaml:8:36: form[0].choices: choices apply to choice and multichoice fields, not file"),
    ("  - {name: f, type: file, accept: [image, photo]}\n",
     "items/a.yaml:8:43: form[0].accept[1]: unknown kind of file photo (kinds: image, pdf, "
     "document, spreadsheet, presentation, zip, text)"),
    ("  - {name: f, type: file, accept: [pdf, pdf]}\n",
     "items/a.yaml:8:41: form[0].accept[1]: duplicate kind of file pdf (each kind of file may appear once)"),
    ("  - {name: f, type: file, max_items: 2}\n",
     "items/a.yaml:8:38: form[0].max_items: max_items applies to file fields with multiple: true"),
    ("  - {name: f, type: string, multiple: true}\n",
     "items/a.yaml:8:39: form[0].multiple: multiple applies to file fields, not string"),
    ("  - {name: f, type: choice, choices: [a], accept: [pdf]}\n",
     "items/a.yaml:8:51: form[0].accept: accept applies to file fields, not choice"),
    ("  - {name: f, type: file, multiple: yes}\n",
     "items/a.yaml:8:37: form[0].multiple: 'yes' is not of type 'boolean'"),
    ("  - {name: t, type: table, columns: [{name: f, type: file}]}\n",
     "items/a.yaml:8:54: form[0].columns[0].type: a table cannot contain a file field "
     "(put the file field next to the table)"),
    ("  - {name: f, type: file}\n  - {name: g, type: string, show_if: 'form.f != None'}\n",
     "items/a.yaml:9:38: form[1].show_if: show_if reads file field f (conditions and checks "
     "cannot read file fields; make the file field conditional instead)"),
])
def test_each_refusal_is_said_at_its_place(catalog_dir, form, expected):
    assert errors(catalog_dir, form) == [expected]


def test_a_check_cannot_read_a_file_field(catalog_dir):
    assert errors(catalog_dir, "  - {name: f, type: file}\n",
                  "checks:\n  - {when: 'form.f == None', message: Attach it}\n") == [
        "items/a.yaml:10:12: checks[0].when: when reads file field f (conditions and checks "
        "cannot read file fields; make the file field conditional instead)"]


def test_the_answers_pipeline_takes_uploads_and_refuses_anything_else(catalog_dir):
    (catalog_dir / "items" / "a.yaml").write_text(
        HEAD + "form:\n  - {name: one, type: file, required: true}\n"
        "  - {name: many, type: file, multiple: true, max_items: 2}\n")
    cat = load_catalog(catalog_dir)
    fields = cat.item("a").fields
    shot = Upload("s.png", b"\x89PNG")

    def check(answers):
        result = check_answers(fields, answers, CatalogChoices(cat))
        return result.errors or result.values

    assert check({"one": shot, "many": [shot, shot]}) == {"one": shot, "many": [shot, shot]}
    assert check({"one": shot, "many": []}) == {"one": shot, "many": None}
    assert check({"many": [shot, shot, shot]}) == {
        "one": ["This field is required."], "many": ["Must have at most 2 files."]}
    assert check({"one": "s.png", "many": shot}) == {
        "one": ["Must be a file: an object with filename and content (base64)."],
        "many": ["Must be a list of files."]}


def test_a_conditional_file_field_drops_the_files_of_a_hidden_field(catalog_dir):
    (catalog_dir / "items" / "a.yaml").write_text(
        HEAD + "form:\n  - {name: kind, type: choice, choices: [a, b]}\n"
        "  - {name: shot, type: file, show_if: \"form.kind != 'b'\", required_if: \"form.kind == 'a'\"}\n")
    cat = load_catalog(catalog_dir)
    fields = cat.item("a").fields
    shot = Upload("s.png", b"\x89PNG")
    hidden = check_answers(fields, {"kind": "b", "shot": shot}, CatalogChoices(cat))
    assert (hidden.errors, hidden.values, hidden.hidden) == ({}, {"kind": "b", "shot": None},
                                                              frozenset({"shot"}))
    assert check_answers(fields, {"kind": "a"}, CatalogChoices(cat)).errors == {
        "shot": ["This field is required."]}
