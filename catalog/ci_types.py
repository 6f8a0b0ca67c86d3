"""CI types (`kind: CIType`, in `cmdb/`): the fields configuration items of a type record."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.errors import suggest
from catalog.field_parser import parse_field
from catalog.models import Field, FieldType
from catalog.parse import Parsed
from catalog.source import SourceDoc

#: the form field types a CI field may have (no tables, no multichoice: one value per column)
CI_FIELD_TYPES = (FieldType.STRING, FieldType.TEXTAREA, FieldType.INTEGER, FieldType.NUMBER,
                  FieldType.BOOLEAN, FieldType.CHOICE, FieldType.DATE, FieldType.EMAIL,
                  FieldType.URL, FieldType.PERSON)
#: columns every CI has besides its type's fields
BUILT_IN = frozenset({"name", "owner", "owner_group", "status"})
STATUSES = ("in_use", "in_stock", "retired", "lost")


@dataclass(frozen=True, slots=True)
class CIType:
    id: str
    name: str
    fields: tuple[Field, ...]
    key: str | None = None
    owner: str = "either"            # person | group | either
    description: str = ""

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


def parse_ci_type(doc: SourceDoc) -> Parsed:
    p, d = Parsed("CIType", doc), doc.data
    names = [t.value for t in CI_FIELD_TYPES]
    fields: list[Field] = []
    for i, raw in enumerate(d["fields"]):
        if raw["type"] not in names:
            p.error(("fields", i, "type"), f"unknown field type {raw['type']}",
                    suggest(raw["type"], names) or f"use one of {', '.join(names)}")
            continue
        if raw["name"] in BUILT_IN:
            p.error(("fields", i, "name"), f"field name {raw['name']} is built in",
                    "every CI has a name, owner, owner_group and status already")
            continue
        fields.append(parse_field(p, raw, ("fields", i), roots=frozenset()))
    p.duplicates([str(f["name"]) for f in d["fields"]], lambda i: ("fields", i, "name"), "field")
    key = d.get("key")
    if key is not None and key not in {str(f["name"]) for f in d["fields"]}:
        p.error(("key",), f"key names unknown field {key}",
                suggest(key, [str(f["name"]) for f in d["fields"]]))
    p.model = CIType(d["id"], d["name"], tuple(fields), key, d.get("owner", "either"),
                     d.get("description", ""))
    return p
