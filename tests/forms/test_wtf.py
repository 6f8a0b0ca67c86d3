"""Generated WTForms classes: fields, HTML attributes, validation by clean_answers, caching."""

from __future__ import annotations

import json
import re

import pytest
import wtforms
from werkzeug.datastructures import MultiDict
from wtforms import Form
from wtforms.csrf.session import SessionCSRF

from catalog.answers import REQUIRED, defaults_for
from catalog.loader import load_catalog
from catalog.models import FieldType
from forms.answers import clean_answers
from forms.wtf import (
    FIELD_TYPES,
    IsoDateField,
    RowList,
    build_form_class,
    form_class_for,
    form_field,
    raw_answers,
)


def attrs(html: str) -> dict[str, str]:
    """The attributes of the first tag in `html` (bare ones as '')."""
    tag = re.match(r"<\w+([^>]*)>", str(html))
    assert tag
    return {m.group(1): m.group(3) or "" for m in
            re.finditer(r'([\w-]+)(="([^"]*)")?', tag.group(1))}


def test_one_wtforms_field_per_catalog_field(everything):
    form = build_form_class(everything.item("everything"), everything)()
    kinds = {f.short_name: type(f) for f in form}
    assert kinds == {
        "title": wtforms.StringField, "notes": wtforms.TextAreaField,
        "count": wtforms.IntegerField, "amount": wtforms.FloatField,
        "agree": wtforms.BooleanField, "colour": wtforms.SelectField,
        "tags": wtforms.SelectMultipleField, "day": IsoDateField, "mail": wtforms.EmailField,
        "link": wtforms.URLField, "owner": wtforms.SelectField, "lines": RowList}


def test_the_registry_covers_every_field_type():
    assert set(FIELD_TYPES) == set(FieldType)


def test_every_acme_item_builds_and_renders(acme):
    for item in acme.items:
        form = build_form_class(item, acme)(data=defaults_for(item, {"email": "a@b.example"}))
        for field in form:
            assert str(field())


def test_labels_help_and_html5_attributes(everything):
    form = build_form_class(everything.item("everything"), everything)()
    assert form.title.label.text == "Title"
    assert form.title.description == "Say what it is."
    assert attrs(form.title()) == {
        "aria-describedby": "title-help", "data-field": "title", "id": "title",
        "maxlength": "10", "minlength": "3", "name": "title", "pattern": "^[A-Z][a-z ]*$",
        "placeholder": "Title", "required": "", "type": "text", "value": ""}
    assert attrs(form.count()) == {"data-field": "count", "id": "count", "max": "5", "min": "1",
                                   "name": "count", "type": "number", "value": ""}
    assert attrs(form.amount())["step"] == "any"
    assert (attrs(form.day())["min"], attrs(form.day())["max"]) == ("2026-01-01", "2026-12-31")
    assert attrs(form.tags())["data-max-items"] == "2"
    assert attrs(form.notes())["maxlength"] == "50"


def test_choices_come_from_the_catalog_with_a_blank_option_for_single_choice(everything):
    form = build_form_class(everything.item("everything"), everything)()
    assert [(c.value, c.label) for c in form.colour.iter_choices()] == [
        ("", "Choose one"), ("red", "Red"), ("blue", "Blue")]
    assert [c.value for c in form.owner.iter_choices()] == ["", "ann", "cy"]
    assert [c.value for c in form.tags.iter_choices()] == ["a", "b", "c"]


def test_conditional_fields_carry_their_rules_and_no_required(acme):
    form = build_form_class(acme.item("new-laptop"), acme)()
    justification = attrs(form.justification())
    assert "required" not in justification
    assert justification["data-required"] == "true"
    assert json.loads(justification["data-show-if"].replace("&#34;", '"')) == {
        "op": "==", "left": {"field": "model"}, "right": {"const": "pro16"}}
    assert "required" in attrs(form.model())


def test_cascading_options_carry_their_parent(acme):
    form = build_form_class(acme.item("system-access"), acme)()
    assert attrs(form.role())["data-depends-on"] == "system"
    html = str(form.role())
    assert '<option data-parent="crm" value="crm-read">' in html
    assert html.count("data-parent=") == 15


def test_patterns_javascript_reads_differently_stay_on_the_server(acme):
    form = build_form_class(acme.item("shared-mailbox"), acme)()
    # `[a-z0-9.-]` is an error under the `v` flag browsers use for pattern=
    assert "pattern" not in attrs(form.mailbox_address())
    phone = build_form_class(acme.item("report-incident"), acme)().phone
    assert "pattern" not in attrs(phone())
    laptop = build_form_class(acme.item("new-laptop"), acme)()
    assert attrs(laptop.cost_center())["pattern"] == "^CC-[0-9]{4}$"


def test_a_valid_post_gives_clean_answers(everything, html_answers, clean_values):
    form = build_form_class(everything.item("everything"), everything)(html_answers)
    assert form.validate()
    assert form.errors == {}
    assert form.answers is not None and form.answers.values == clean_values


def test_errors_appear_on_the_fields_in_clean_answers_words(everything):
    raw = MultiDict([("count", "three"), ("day", "tomorrow"), ("lines-0-what", ""),
                     ("lines-0-qty", "0")])
    form = build_form_class(everything.item("everything"), everything)(raw)
    assert not form.validate()
    assert form.errors == {"title": [REQUIRED], "count": ["Must be a whole number."],
                           "day": ["Must be a date (YYYY-MM-DD)."],
                           "lines": ["Row 1: What is required.", "Row 1: Qty must be at least 1."]}
    assert form.answers is not None and form.answers.errors == form.errors


def test_hidden_fields_are_neither_required_nor_kept(acme):
    raw = MultiDict([("model", "std14"), ("justification", "short"), ("cost_center", "CC-1234"),
                     ("building", "ams-hq"), ("floor", "4"), ("home_address", "ignored")])
    form = build_form_class(acme.item("new-laptop"), acme)(raw)
    assert form.validate(), form.errors
    assert form.answers is not None
    assert form.answers.values["justification"] is None
    assert form.answers.values["home_address"] is None
    assert form.answers.values["floor"] == 4


def test_extra_validators_still_run(everything):
    def no_boxes(form, field):
        if field.data == "Box":
            raise wtforms.ValidationError("No boxes.")

    form = build_form_class(everything.item("everything"), everything)(MultiDict({"title": "Box"}))
    assert not form.validate(extra_validators={"title": [no_boxes]})
    assert form.errors == {"title": ["No boxes."]}


def test_requester_reaches_the_conditions(make_item):
    catalog = make_item("""\
  - {name: server, type: string, required: true, show_if: "requester.department == 'IT'"}
""")
    cls = build_form_class(catalog.item("thing"), catalog)
    assert not cls(MultiDict(), requester={"department": "IT"}).validate()
    assert cls(MultiDict(), requester={"department": "Sales"}).validate()


def test_table_rows_round_trip_through_the_form(acme):
    raw = MultiDict([("accessories-0-accessory", "dock"), ("accessories-0-quantity", "2"),
                     ("accessories-1-accessory", "mouse"), ("accessories-1-quantity", "1"),
                     ("building", "home"), ("home_address", "Dam 1, Amsterdam")])
    form = build_form_class(acme.item("monitor-peripherals"), acme)(raw)
    assert form.validate(), form.errors
    assert form.answers is not None
    assert form.answers.values["accessories"] == [{"accessory": "dock", "quantity": 2},
                                                  {"accessory": "mouse", "quantity": 1}]
    assert len(form.accessories.entries) == 2
    assert raw_answers(form)["accessories"][1] == {"accessory": ["mouse"], "quantity": ["1"]}


def test_an_empty_form_renders_one_table_row_with_column_defaults(acme):
    form = build_form_class(acme.item("monitor-peripherals"), acme)()
    assert len(form.accessories.entries) == 1
    quantity = attrs(form.accessories.entries[0].form.quantity())
    assert (quantity["value"], quantity["name"]) == ("1", "accessories-0-quantity")


def test_defaults_render_in_the_form(acme):
    item = acme.item("normal-change")
    form = build_form_class(item, acme)(data=defaults_for(item, {"email": "a@b.example"}))
    assert attrs(form.contact_email())["value"] == "a@b.example"
    assert 'selected value="none"' in str(form.users_affected())
    hire = acme.item("new-hire-onboarding")
    start = build_form_class(hire, acme)(data={"start_date": "2026-02-02"}).start_date
    assert attrs(start())["value"] == "2026-02-02"


def test_field_names_that_clash_with_wtforms_are_renamed(make_item):
    catalog = make_item("""\
  - {name: data, type: string, required: true}
  - {name: errors, type: integer}
  - {name: validate_data, type: string}
  - {name: answers, type: boolean}
""")
    cls = build_form_class(catalog.item("thing"), catalog)
    form = cls(MultiDict([("data_", "x"), ("errors_", "4"), ("field_validate_data", "y"),
                          ("answers_", "on")]))
    assert form_field(form, "data").name == "data_"
    assert attrs(form_field(form, "data")())["data-field"] == "data"
    assert form.validate(), form.errors
    assert form.answers is not None
    assert form.answers.values == {"data": "x", "errors": 4, "validate_data": "y",
                                   "answers": True}
    empty = cls(MultiDict())
    assert not empty.validate()
    assert empty.errors == {"data_": [REQUIRED]}


def test_form_classes_are_built_once_per_catalog_version(acme, make_catalog):
    item = acme.item("new-laptop")
    cls = form_class_for(item, acme)
    assert form_class_for(item, acme) is cls
    assert form_class_for(item, load_catalog(acme.root)) is cls  # same files, same version

    class Other(Form):
        pass

    assert form_class_for(item, acme, Other) is not cls
    assert issubclass(form_class_for(item, acme, Other), Other)
    small = make_catalog("kind: CatalogItem\nid: new-laptop\nname: N\ncategory: C\nsummary: S\n"
                         "workflow: wf\nform:\n  - {name: model, type: string}\n")
    assert small.version != acme.version
    other = form_class_for(small.item("new-laptop"), small)
    assert other is not cls and [f.short_name for f in other()] == ["model"]


@pytest.mark.parametrize("item_id", ["new-laptop", "system-access", "new-hire-onboarding"])
def test_validate_agrees_with_clean_answers(acme, item_id):
    raw = MultiDict([("model", "pro16"), ("system", "crm"), ("role", "crm-write"),
                     ("start_date", "2026-13-01"), ("equipment", "laptop"), ("level", "admin")])
    form = build_form_class(acme.item(item_id), acme)(raw)
    form.validate()
    direct = clean_answers(acme.item(item_id), raw, acme, from_html=True)
    assert form.answers == direct
    assert form.errors == direct.errors


def test_a_csrf_base_still_checks_its_token(acme):
    session: dict[str, str] = {}

    class Protected(Form):
        class Meta:
            csrf = True
            csrf_class = SessionCSRF
            csrf_secret = b"test secret"

            @property
            def csrf_context(self):
                return session

    cls = form_class_for(acme.item("password-unlock"), acme, Protected)
    token = cls().csrf_token.current_token
    good = cls(MultiDict({"account": "acme", "csrf_token": token}))
    assert good.validate(), good.errors
    forged = cls(MultiDict({"account": "acme", "csrf_token": "forged"}))
    assert not forged.validate()
    assert list(forged.errors) == ["csrf_token"]
    assert forged.answers is not None and forged.answers.ok
