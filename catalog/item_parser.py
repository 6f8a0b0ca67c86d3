"""Catalog items, field sets, lookups and knowledge articles, each from its own file."""

from __future__ import annotations

from datetime import date
from types import MappingProxyType
from typing import Any

from catalog.change_parser import parse_change
from catalog.field_parser import parse_field
from catalog.models import (
    Article,
    CatalogItem,
    Concerns,
    Field,
    FieldSet,
    FormCheck,
    Lookup,
    LookupValue,
    PriorityRule,
)
from catalog.parse import FORM_ROOTS, Parsed, Path
from catalog.source import SourceDoc


def parse_item(doc: SourceDoc) -> Parsed:
    p, d = Parsed("CatalogItem", doc), doc.data
    form: list[Field | tuple[str, str, Path]] = []
    for i, entry in enumerate(d.get("form", [])):
        if "use" in entry:
            p.ref("fieldset", entry["use"], ("form", i, "use"))
            form.append(("use", entry["use"], ("form", i, "use")))
        else:
            form.append(parse_field(p, entry, ("form", i)))
    p.form = tuple(form)
    p.ref("workflow", d["workflow"], ("workflow",))
    if "owner" in d:
        p.ref("group", d["owner"], ("owner",))
    for i, who in enumerate(d.get("visible_to", [])):
        p.principal_ref(who, ("visible_to", i))
    for i, art in enumerate(d.get("articles", [])):
        p.ref("article", art, ("articles", i))
    rule = None
    if isinstance(d.get("priority"), str):
        rule = PriorityRule(fixed=d["priority"])
        p.ref("priority", d["priority"], ("priority",))
    elif isinstance(d.get("priority"), dict):
        rule = PriorityRule(impact_field=d["priority"]["impact"],
                            urgency_field=d["priority"]["urgency"])
    p.model = CatalogItem(
        id=d["id"], name=d["name"], category=d["category"], summary=d["summary"],
        workflow=d["workflow"], fields=tuple(f for f in form if isinstance(f, Field)),
        description=d.get("description", ""), keywords=tuple(d.get("keywords", [])),
        icon=d.get("icon", ""), owner=d.get("owner"),
        visible_to=tuple(d.get("visible_to", ["everyone"])), priority=rule,
        articles=tuple(d.get("articles", [])), order_for_others=d.get("order_for_others", True),
        checks=_form_checks(p, d.get("checks", [])),
        record_type=d.get("record_type", "request"), change=parse_change(p, d),
        category_from=d.get("category_from"),
        concerns=Concerns(**d["concerns"]) if "concerns" in d else None, source=doc.path)
    return p


def _form_checks(p: Parsed, raw: list[dict[str, Any]]) -> tuple[FormCheck, ...]:
    """Checks across fields; the fields they name are checked once field sets are inserted."""
    out = []
    for i, d in enumerate(raw):
        when = p.expression(d["when"], ("checks", i, "when"), FORM_ROOTS)
        if when is not None:
            out.append(FormCheck(when, d["message"], d.get("field")))
    return tuple(out)



def parse_fieldset(doc: SourceDoc) -> Parsed:
    p, d = Parsed("FieldSet", doc), doc.data
    fields = tuple(parse_field(p, f, ("fields", i)) for i, f in enumerate(d["fields"]))
    p.model = FieldSet(d["id"], d.get("name", d["id"]), fields)
    return p


def parse_lookup(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Lookup", doc), doc.data
    values = tuple(LookupValue(v["value"], v.get("label") or v["value"], v.get("parent"),
                               MappingProxyType(dict(v.get("data", {}))))
                   for v in d["values"])
    seen: set[tuple[str | None, str]] = set()
    for i, v in enumerate(values):
        if (v.parent, v.value) in seen:
            p.error(("values", i, "value"), f"duplicate value {v.value}", "each value may appear once")
        seen.add((v.parent, v.value))
    p.model = Lookup(d["id"], d.get("name", d["id"]), values)
    return p


def parse_article(doc: SourceDoc, body: str) -> Parsed:
    p, d = Parsed("Article", doc), doc.data
    for i, item in enumerate(d.get("items", [])):
        p.ref("item", item, ("items", i))
    for i, who in enumerate(d.get("visible_to", [])):
        p.principal_ref(who, ("visible_to", i))
    stem = doc.path.stem
    if d["id"] != stem:
        p.error(("id",), f"article id {d['id']} differs from its file name {stem}.md",
                "name the file after the id")
    updated = date.fromisoformat(d["updated"]) if "updated" in d else None
    p.model = Article(d["id"], d["title"], body, d.get("summary", ""), d.get("category", "General"),
                      tuple(d.get("keywords", [])), tuple(d.get("items", [])),
                      tuple(d.get("visible_to", ["everyone"])), updated)
    return p

