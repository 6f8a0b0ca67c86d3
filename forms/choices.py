"""The values a choice, multichoice or person field offers, wherever they come from.

Static `choices`, `choices_from: lookup:ID | groups | people | group:ID`, and the
directory's active people for person fields. Cascading fields (`depends_on`) offer
only the choices whose `parent` is the current answer of the field they depend on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.fields import is_empty
from catalog.loader import Catalog
from catalog.models import Choice, Directory, Field, FieldType, Person


def all_choices(field: Field, catalog: Catalog) -> list[Choice]:
    """Every choice the field can ever offer, ignoring `depends_on` (each keeps its `parent`)."""
    if field.type is FieldType.PERSON:
        return _people(catalog.directory, catalog.directory.people)
    source = field.choices_from
    if source is None:
        return list(field.choices)
    if source.startswith("lookup:"):
        lookup = catalog.lookup(source.removeprefix("lookup:"))
        return [Choice(v.value, v.label, v.parent) for v in lookup.values] if lookup else []
    if source == "groups":
        return [Choice(g.id, g.name) for g in catalog.directory.groups]
    if source == "people":
        return _people(catalog.directory, catalog.directory.people)
    if source.startswith("group:"):
        group = catalog.directory.group(source.removeprefix("group:"))
        if group is None:
            return []
        members = (catalog.directory.person(m) for m in group.members)
        return _people(catalog.directory, tuple(p for p in members if p is not None))
    return []


def choices_for(field: Field, catalog: Catalog,
                answers: Mapping[str, Any] | None = None) -> list[Choice]:
    """The choices on offer given the answers so far.

    A cascading field offers the choices whose parent is the answer of its
    `depends_on` field (any of them, when that field is a multichoice); with no
    answer there it offers none.
    """
    choices = all_choices(field, catalog)
    if field.depends_on is None:
        return choices
    return _of_parent(field, choices, answers)


def _of_parent(field: Field, choices: list[Choice],
               answers: Mapping[str, Any] | None) -> list[Choice]:
    parent = (answers or {}).get(field.depends_on or "")
    if is_empty(parent):
        return []
    values = parent if isinstance(parent, list) else [parent]
    parents = {p for p in values if isinstance(p, str)}
    return [c for c in choices if c.parent is not None and c.parent in parents]


def choice_labels(field: Field, catalog: Catalog,
                  answers: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Value -> label, for showing answers.

    A cascading field's values need only be unique per parent, so its labels are
    those of the parent that `answers` chose; a value no chosen parent offers keeps
    the label it has first.
    """
    choices = all_choices(field, catalog)
    labels: dict[str, str] = {}
    for c in choices:
        labels.setdefault(c.value, c.label)
    if field.depends_on is not None:
        labels.update((c.value, c.label) for c in _of_parent(field, choices, answers))
    return labels


def allowed_values(field: Field, catalog: Catalog,
                   answers: Mapping[str, Any] | None = None) -> set[str]:
    """The values an answer may take, given the answers so far."""
    return {c.value for c in choices_for(field, catalog, answers)}


def person_label(person: Person) -> str:
    """How a person is shown in a list: `Name (id)`."""
    return f"{person.name} ({person.id})"


def _people(directory: Directory, people: tuple[Person, ...]) -> list[Choice]:
    return [Choice(p.id, person_label(p)) for p in people if p.active]
