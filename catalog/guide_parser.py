"""Order guides (`guides/*.yaml`): several items ordered at once, shared questions asked once.

A guide lists catalog items; `when` (an expression on `guide.NAME`, the shared answers)
decides whether an item is included. The answer to a shared question goes to every
included item with a field of the same name; `answers` fixes an item's answers outright.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from catalog.errors import SpecError, suggest
from catalog.expressions import Expression, ExpressionError
from catalog.field_parser import parse_field
from catalog.models import CatalogItem, Field, FieldType
from catalog.parse import Parsed
from catalog.source import SourceDoc

GUIDE_ROOTS = frozenset({"guide"})
DEFAULT_CATEGORY = "Order guides"


@dataclass(frozen=True, slots=True)
class GuideItem:
    """One item of a guide: when it is included, and the answers fixed for it."""

    item: str
    when: Expression | None = None
    answers: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Guide:
    """An order guide: shared questions and the items they order."""

    id: str
    name: str
    summary: str
    category: str
    questions: tuple[Field, ...]
    items: tuple[GuideItem, ...]
    description: str = ""
    icon: str = ""
    visible_to: tuple[str, ...] = ("everyone",)
    source: PurePosixPath = field(default=PurePosixPath(), compare=False)

    def question(self, name: str) -> Field | None:
        return next((f for f in self.questions if f.name == name), None)

    def included(self, shared: Mapping[str, Any],
                 functions: Mapping[str, Callable[..., Any]] | None = None) -> tuple[GuideItem, ...]:
        """The items ordered with these shared answers (a condition that fails to evaluate
        excludes its item)."""
        names = {"guide": dict(shared)}
        out = []
        for entry in self.items:
            try:
                if entry.when is None or entry.when.test(names, functions):
                    out.append(entry)
            except ExpressionError:
                continue
        return tuple(out)

    def asked(self, entry: GuideItem, item: CatalogItem) -> tuple[Field, ...]:
        """The fields of `item` still asked for it: not shared, not fixed by the guide."""
        return tuple(f for f in item.fields
                     if self.question(f.name) is None and f.name not in entry.answers)

    def answers_for(self, entry: GuideItem, item: CatalogItem, shared: Mapping[str, Any],
                    own: Mapping[str, Any]) -> dict[str, Any]:
        """The answers an included item is ordered with: shared ones its form has, the
        guide's fixed ones, then the requester's own."""
        names = {f.name for f in item.fields}
        return {**{k: v for k, v in shared.items() if k in names and v is not None},
                **entry.answers, **own}


def parse_guide(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Guide", doc), doc.data
    if d["id"] != doc.path.stem:
        p.error(("id",), f"guide id {d['id']} differs from its file name {doc.path.name}",
                "name the file after the id")
    questions = tuple(parse_field(p, q, ("questions", i)) for i, q in enumerate(d.get("questions", [])))
    p.duplicates([q.name for q in questions], lambda i: ("questions", i, "name"), "question")
    known = {q.name for q in questions}
    p.duplicates([e["item"] for e in d["items"]], lambda i: ("items", i, "item"), "item")
    entries = []
    for i, e in enumerate(d["items"]):
        p.ref("item", e["item"], ("items", i, "item"))
        when = None
        if "when" in e:
            when = p.expression(e["when"], ("items", i, "when"), GUIDE_ROOTS)
            for path in sorted(when.paths) if when else ():
                if len(path) > 1 and path[1] not in known:
                    p.error(("items", i, "when"), f"unknown shared question {path[1]}",
                            suggest(path[1], known))
        entries.append(GuideItem(e["item"], when, MappingProxyType(dict(e.get("answers", {})))))
    for i, who in enumerate(d.get("visible_to", [])):
        p.principal_ref(who, ("visible_to", i))
    p.model = Guide(id=d["id"], name=d["name"], summary=d["summary"],
                    category=d.get("category", DEFAULT_CATEGORY), questions=questions,
                    items=tuple(entries), description=d.get("description", ""),
                    icon=d.get("icon", ""), visible_to=tuple(d.get("visible_to", ["everyone"])),
                    source=doc.path)
    return p


def check_guides(parsed: list[Parsed], items: Mapping[str, CatalogItem]) -> list[SpecError]:
    """What the guides say about the items they list: field types and fixed answers."""
    problems: list[SpecError] = []
    for p in parsed:
        guide: Guide = p.model
        for i, entry in enumerate(guide.items):
            item = items.get(entry.item)
            if item is None:
                continue  # reported as an unknown item
            uploads = [f.name for f in item.fields if f.type is FieldType.FILE]
            if uploads:  # a guide's one form is not multipart: the item could never be ordered
                problems.append(p.doc.error(
                    ("items", i, "item"), f"item {item.id} asks for files ({', '.join(uploads)}); "
                    "a guide's form takes no uploads", "order that item on its own"))
            for q_index, q in enumerate(guide.questions):
                f = item.get_field(q.name)
                if f is not None and f.type is not q.type:
                    problems.append(p.doc.error(
                        ("questions", q_index, "type"),
                        f"shared question {q.name} is {q.type.value} but field {q.name} of item "
                        f"{item.id} is {f.type.value}", "give both the same type"))
            for name in entry.answers:
                if item.get_field(name) is None:
                    problems.append(p.doc.error(
                        ("items", i, "answers", name), f"item {item.id} has no field {name}",
                        suggest(name, [f.name for f in item.fields]), at_key=True))
    return problems
