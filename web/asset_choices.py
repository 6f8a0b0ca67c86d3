"""The choices of `asset` fields: configuration items from the database, for generated forms."""

from __future__ import annotations

from wtforms import Form
from wtforms.fields.choices import SelectChoice

from catalog.models import Field, FieldType
from engine.intake import DatabaseChoices
from forms.wtf import BLANK_LABEL, form_field
from web.context import catalog, session


def offer_assets(form: Form, fields: tuple[Field, ...], person_id: str) -> None:
    """Fill each asset field's select with the CIs it offers to `person_id` (the requested-for)."""
    source = DatabaseChoices(session(), catalog(), person_id)
    for f in fields:
        if f.type is FieldType.ASSET:
            form_field(form, f.name).choices = [SelectChoice("", f.placeholder or BLANK_LABEL)] + [
                SelectChoice(c.value, c.label) for c in source.offered(f)]
