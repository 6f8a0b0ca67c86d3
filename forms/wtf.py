"""Field model -> WTForms form class, built once per catalog version.

One WTForms field per catalog field, from the `FIELD_TYPES` registry. The classes
render the form (labels, help, HTML5 attributes, `data-*` rules for the browser
script) but do not define the rules: a generated form's `validate()` runs
`clean_answers` (coercion, then the one pipeline of `catalog.answers`) and puts its
messages on the fields. Its clean answers are then in `form.answers`.

Rendering contract for templates and the browser script: every input carries
`data-field` (the catalog field name; the HTML name is the same unless it clashes
with a WTForms attribute, when it gets a trailing `_`), `data-show-if` and
`data-required-if` (JSON condition ASTs, see forms.client), `data-required` when
a shown field is required, `data-depends-on` on cascading selects (whose options
carry `data-parent`), `data-min-items`/`data-max-items`; `aria-describedby`
points at `<field id>-help`, the element the template renders the help text in.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from types import MappingProxyType
from typing import Any, ClassVar

import wtforms
from cachetools import LRUCache, cached
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    FieldList,
    FileField,
    FloatField,
    Form,
    FormField,
    IntegerField,
    MultipleFileField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.fields.core import UnboundField

from catalog.answers import Answers
from catalog.catalog import Catalog
from catalog.choices import all_choices
from catalog.fields import accepted_types, parse_date
from catalog.models import TEXT_TYPES, CatalogItem, Field, FieldType
from forms.answers import clean_answers
from forms.client import condition_ast
from forms.patterns import ecma_pattern

BLANK_LABEL = "Choose one"
#: form classes kept, by catalog version, item and base class: a few versions of a big catalog
FORM_CLASSES_KEPT = 1024

Builder = Callable[[Field, Catalog, dict[str, Any]], UnboundField]


class IsoDateField(DateField):
    """A date input whose data may also be given as an ISO string (as answers hold dates)."""

    def process_data(self, value: Any) -> None:
        self.data = parse_date(value) if isinstance(value, str | date) else None


#: a table row's index in an input name (`accessories-3-accessory`): ASCII digits, bounded
ROW_INDEX = re.compile(r"[0-9]{1,9}")
ROW_INDEX_MESSAGE = ("A row of this table is numbered wrongly (0 to 999999999, in digits 0-9); "
                     "reload the page and try again.")


class RowList(FieldList):
    """A table's rows. WTForms takes any `str.isdigit()` index ('²', '٣', 5,000 digits),
    which `int()` then refuses or reads; here such an index is an error on the table (422)."""

    misnumbered = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.type = "FieldList"  # what templates tell tables by

    def _extract_indices(self, prefix: str, formdata: Any) -> Iterator[int]:
        self.misnumbered = False
        start = prefix + self._field_separator
        for key in formdata:
            if not key.startswith(start):
                continue
            index = key[len(start):].split(self._field_separator, 1)[0]
            if ROW_INDEX.fullmatch(index):
                yield int(index)
            elif index.isdigit():  # digits, but not ours: other scripts, or far too many
                self.misnumbered = True


class ItemForm(Form):
    """What every generated form shares: the requester, validation by clean_answers."""

    _item: ClassVar[CatalogItem]
    _catalog: ClassVar[Catalog]
    #: catalog field name -> form attribute (and HTML) name
    _attrs: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __init__(self, *args: Any, requester: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self._requester = requester
        self._answers: Answers | None = None
        super().__init__(*args, **kwargs)

    @property
    def answers(self) -> Answers | None:
        """The outcome of the last `validate()`, or None before it."""
        return self._answers

    def validate(self, extra_validators: Mapping[str, Any] | None = None) -> bool:
        """Run WTForms' own checks (CSRF, extra validators), then clean_answers."""
        for attr in self._attrs.values():
            _forget_process_errors(self._fields[attr])
        super().validate(extra_validators)
        result = clean_answers(self._item, raw_answers(self), self._catalog, self._requester,
                               from_html=True)
        self._answers = result
        for attr in self._attrs.values():
            bound = self._fields[attr]
            bound.errors = [e for e in bound.errors if isinstance(e, str)]
        for name, messages in result.errors.items():
            where = self._attrs.get(name)
            if where is None:
                self.form_errors.extend(messages)
            else:
                self._fields[where].errors[:0] = messages
        for attr in self._attrs.values():
            bound = self._fields[attr]
            if isinstance(bound, RowList) and bound.misnumbered:
                bound.errors.append(ROW_INDEX_MESSAGE)
        return not self.errors


def raw_answers(form: wtforms.Form) -> dict[str, Any]:
    """The submitted strings of a generated form, by catalog field name (rows as dicts)."""
    raw: dict[str, Any] = {}
    for name, attr in type(form)._attrs.items():
        bound = form._fields[attr]
        if isinstance(bound, FieldList):
            raw[name] = [{col: _raw_of(entry.form._fields[a])
                          for col, a in type(entry.form)._attrs.items()} for entry in bound.entries]
        else:
            raw[name] = _raw_of(bound)
    return raw


def form_field(form: wtforms.Form, name: str) -> wtforms.Field:
    """The bound WTForms field of catalog field `name`."""
    return form._fields[type(form)._attrs[name]]


def _raw_of(bound: wtforms.Field) -> list[Any]:
    if bound.raw_data is not None:
        return list(bound.raw_data)
    return raw_value(bound.data)


def raw_value(data: Any) -> list[Any]:
    """A value as an HTML form would send it: a list of texts, a ticked box as `y`."""
    if data is None or data is False:
        return []
    if data is True:
        return ["y"]
    if isinstance(data, list):
        return [str(v) for v in data]
    return [data.isoformat() if isinstance(data, date) else str(data)]


def _forget_process_errors(bound: wtforms.Field) -> None:
    """Drop WTForms' parse errors ("Not a valid integer value."): clean_answers words them."""
    bound.process_errors = []
    for entry in getattr(bound, "entries", ()):
        entry.process_errors = []
        for sub in entry.form:
            sub.process_errors = []


# ---------------------------------------------------------------- builders

def string_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return StringField(**kw)


def textarea_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return TextAreaField(**kw)


def integer_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return IntegerField(**kw)


def number_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return FloatField(**kw)


def boolean_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return BooleanField(**kw)


def choice_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return SelectField(choices=select_choices(f, catalog, blank=True), validate_choice=False,
                       **kw)


def multichoice_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return SelectMultipleField(choices=select_choices(f, catalog), validate_choice=False, **kw)


def date_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return IsoDateField(**kw)


def email_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return EmailField(**kw)


def url_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    return URLField(**kw)


def table_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    # cells are marked required only when the table is: a blank row of an optional table is fine
    table_required = f.required and f.show_if is None
    body = _class_body(f.columns, catalog, Form, lambda c: c.required and table_required)
    row = type(f"Row_{f.name}", (Form,), body)
    # one row more than the rules allow, so that too many rows is an error, not lost rows
    return RowList(FormField(row), min_entries=1, max_entries=f.max_rows + 1, **kw)


def file_field(f: Field, catalog: Catalog, kw: dict[str, Any]) -> UnboundField:
    """A file input; the page's form is sent as multipart/form-data (see `has_files`)."""
    return MultipleFileField(**kw) if f.multiple else FileField(**kw)


def has_files(item: CatalogItem) -> bool:
    """Whether the item's order form uploads files (and so must be sent as multipart)."""
    return any(f.type is FieldType.FILE for f in item.fields)


FIELD_TYPES: dict[FieldType, Builder] = {
    FieldType.STRING: string_field, FieldType.TEXTAREA: textarea_field,
    FieldType.INTEGER: integer_field, FieldType.NUMBER: number_field,
    FieldType.BOOLEAN: boolean_field, FieldType.CHOICE: choice_field,
    FieldType.MULTICHOICE: multichoice_field, FieldType.DATE: date_field,
    FieldType.EMAIL: email_field, FieldType.URL: url_field,
    FieldType.PERSON: choice_field, FieldType.TABLE: table_field,
    # the catalog knows no configuration items: `web` fills the choices from the database
    FieldType.ASSET: choice_field,
    FieldType.FILE: file_field,
}


def select_choices(f: Field, catalog: Catalog, blank: bool = False) -> list[SelectChoice]:
    """Options of a select: every choice, cascading ones marked with `data-parent`."""
    options = [SelectChoice("", f.placeholder or BLANK_LABEL)] if blank else []
    for c in all_choices(f, catalog):
        options.append(SelectChoice(c.value, c.label,
                                    {"data-parent": c.parent} if c.parent is not None else {}))
    return options


def render_kw(f: Field, attr: str, *, required: bool) -> dict[str, Any]:
    """HTML attributes of the field's input: HTML5 constraints and the browser rules."""
    kw: dict[str, Any] = {"data-field": f.name}
    if f.placeholder:
        kw["placeholder"] = f.placeholder
    if f.help:
        kw["aria-describedby"] = f"{attr}-help"
    if required and f.type is not FieldType.TABLE:
        kw["required"] = True
    elif f.required:
        kw["data-required"] = "true"
    for key, expression in (("data-show-if", f.show_if), ("data-required-if", f.required_if)):
        rule = condition_ast(expression)
        if rule is not None:
            kw[key] = json.dumps(rule, separators=(",", ":"))
    if f.depends_on:
        kw["data-depends-on"] = f.depends_on
    if f.type in TEXT_TYPES:
        if f.min_length:
            kw["minlength"] = f.min_length
        kw["maxlength"] = f.effective_max_length
        browser = ecma_pattern(f.pattern, unicode_sets=True) if f.pattern else None
        if browser is not None:
            kw["pattern"] = browser
    for key, bound in (("min", f.min), ("max", f.max)):
        if bound is not None:
            kw[key] = bound.isoformat() if isinstance(bound, date) else bound
    types = accepted_types(f) if f.type is FieldType.FILE else None
    if types:
        kw["accept"] = ",".join(sorted(types))
    for key, count in (("data-min-items", f.min_items), ("data-max-items", f.max_items)):
        if count is not None:
            kw[key] = count
    return kw


def _field_kwargs(f: Field, attr: str, required: bool) -> dict[str, Any]:
    kw: dict[str, Any] = {"label": f.label, "description": f.help,
                          "render_kw": render_kw(f, attr, required=required)}
    if f.default is not None and f.type is not FieldType.TABLE:
        kw["default"] = f.default
    return kw


def _attribute_names(fields: tuple[Field, ...], base: type[wtforms.Form]) -> dict[str, str]:
    """Catalog names as form attributes, renamed where WTForms or the base class would clash.

    `data`, `errors`, `validate`... would shadow the form's own attributes, and
    `validate_X`/`filter_X` would be taken for field X's inline validator or filter.
    """
    taken = {n for n in (*dir(base), *dir(ItemForm)) if not n.startswith("_")}
    taken.add(getattr(getattr(base, "Meta", None), "csrf_field_name", "csrf_token"))
    names = {f.name for f in fields}
    out: dict[str, str] = {}
    for f in fields:
        attr = f"field_{f.name}" if f.name.startswith(("validate_", "filter_")) else f.name
        while attr in taken or attr in out.values() or (attr != f.name and attr in names):
            attr += "_"
        out[f.name] = attr
    return out


def _class_body(fields: tuple[Field, ...], catalog: Catalog, base: type[wtforms.Form],
                required: Callable[[Field], bool]) -> dict[str, Any]:
    """The unbound fields of a form class, and `_attrs`, the field name -> attribute map."""
    attrs_of = _attribute_names(fields, base)
    body: dict[str, Any] = {"_attrs": MappingProxyType(attrs_of)}
    for f in fields:
        attr = attrs_of[f.name]
        body[attr] = FIELD_TYPES[f.type](f, catalog, _field_kwargs(f, attr, required(f)))
    return body


def build_form_class(item: CatalogItem, catalog: Catalog,
                     base: type[wtforms.Form] = Form) -> type[ItemForm]:
    """A WTForms class for `item`; `web` passes `base=FlaskForm` for CSRF."""
    body = _class_body(item.fields, catalog, base, lambda f: f.required and f.show_if is None)
    body["_item"], body["_catalog"] = item, catalog
    return type(f"Form_{item.id.replace('-', '_')}", (ItemForm, base), body)


@cached(LRUCache(maxsize=FORM_CLASSES_KEPT), lock=threading.Lock(),
        key=lambda item, catalog, base=Form: (catalog.version, item.id, base))
def form_class_for(item: CatalogItem, catalog: Catalog,
                   base: type[wtforms.Form] = Form) -> type[ItemForm]:
    """The form class of `item`, built once per catalog version (the most recent are kept)."""
    return build_form_class(item, catalog, base)
