"""The values a choice, multichoice or person field offers, and where they come from.

A `ChoiceSource` says what a field can ever offer; `choices_for` narrows that to
the answers so far, the one definition of cascading (`depends_on`): a cascading
field offers only the choices whose `parent` is an answer of the field it depends
on. `CatalogChoices` reads the catalog's YAML (static `choices`,
`choices_from: lookup:ID | groups | people | group:ID`, and the directory's active
people for person fields); the engine passes one that reads its database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from catalog.catalog import Catalog
from catalog.fields import is_empty
from catalog.models import Choice, Directory, Field, FieldType, Person


class ChoiceSource(Protocol):
    """Where the choices of fields come from (the catalog's files, or a database)."""

    def offered(self, field: Field) -> Sequence[Choice]:
        """Every choice `field` can ever offer, ignoring `depends_on` (each keeps its `parent`)."""
        ...


class CatalogChoices:
    """Choices as the catalog's files define them."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def offered(self, field: Field) -> Sequence[Choice]:
        return all_choices(field, self.catalog)


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


def offered_now(field: Field, source: ChoiceSource,
                answers: Mapping[str, Any] | None = None) -> list[Choice]:
    """The choices `source` offers for `field` given the answers so far.

    A cascading field offers the choices whose parent is the answer of its
    `depends_on` field (any of them, when that field is a multichoice); with no
    answer there it offers none.
    """
    choices = list(source.offered(field))
    if field.depends_on is None:
        return choices
    return of_parent(field, choices, answers)


def choices_for(field: Field, catalog: Catalog,
                answers: Mapping[str, Any] | None = None) -> list[Choice]:
    """The catalog's choices on offer given the answers so far (see `offered_now`)."""
    return offered_now(field, CatalogChoices(catalog), answers)


def of_parent(field: Field, choices: Sequence[Choice],
              answers: Mapping[str, Any] | None) -> list[Choice]:
    """The choices whose parent is an answer of the field `field` depends on."""
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
        labels.update((c.value, c.label) for c in of_parent(field, choices, answers))
    return labels


class Named(Protocol):
    """A person as the catalog or a database holds one."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


def person_label(person: Named) -> str:
    """How a person is shown in a list: `Name (id)`."""
    return f"{person.name} ({person.id})"


def _people(directory: Directory, people: tuple[Person, ...]) -> list[Choice]:
    return [Choice(p.id, person_label(p)) for p in people if p.active]
