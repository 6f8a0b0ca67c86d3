"""Checks across files: references, duplicate ids, expanded forms, workflow use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from catalog.change_parser import check_change_fields, check_emergency_workflow
from catalog.errors import Severity, SpecError, suggest
from catalog.expressions import ExpressionError, compile_expression
from catalog.guards import unguarded_orderings
from catalog.models import (
    CHOICE_TYPES,
    CatalogItem,
    Directory,
    Field,
    FieldSet,
    FieldType,
    Settings,
)
from catalog.parse import FORM_ROOTS, Parsed, Reference
from catalog.workflow import StateKind, Workflow

#: conditions cannot read a file field: the browser cannot see a file, nor a rule its bytes
FILES_UNREAD = "conditions and checks cannot read file fields; make the file field conditional instead"


class Index:
    """What the catalog defines, by kind and id, for resolving references."""

    def __init__(self, parsed: list[Parsed]) -> None:
        self.by_kind: dict[str, dict[str, Parsed]] = {}
        self.problems: list[SpecError] = []
        #: ids of files that failed their schema: known, so references to them do not cascade
        self.invalid: dict[str, set[str]] = {}
        #: every modelled file by kind, duplicates included (their contents are checked too)
        self.all: dict[str, list[Parsed]] = {}
        for p in parsed:
            if p.model is not None:
                self.all.setdefault(p.kind, []).append(p)
            if p.model is None and isinstance(p.doc.data, dict) and isinstance(
                    p.doc.data.get("id"), str):
                self.invalid.setdefault(p.kind, set()).add(p.doc.data["id"])
            if p.model is None or p.kind in ("Settings", "Directory"):
                continue
            ident = p.model.id
            seen = self.by_kind.setdefault(p.kind, {})
            if ident in seen:
                first = seen[ident].doc.locate(("id",))
                self.problems.append(p.doc.error(
                    ("id",), f"duplicate {_noun(p.kind)} id {ident}", f"also defined at {first}"))
            else:
                seen[ident] = p
        settings = [p.model for p in parsed if p.kind == "Settings" and p.model]
        directories = [p.model for p in parsed if p.kind == "Directory" and p.model]
        self.settings: Settings = settings[0] if settings else Settings()
        self.directory: Directory = directories[0] if directories else Directory()
        self.has_directory = bool(directories)

    def ids(self, kind: str) -> set[str]:
        if kind == "person":
            return {p.id for p in self.directory.people}
        if kind == "group":
            return {g.id for g in self.directory.groups}
        if kind == "role":
            return {r.id for r in self.directory.roles}
        if kind == "priority":
            return {p.id for p in self.settings.priorities}
        return set(self.by_kind.get(_KINDS[kind], {})) | self.invalid.get(_KINDS[kind], set())

    def model(self, kind: str, ident: str) -> Any:
        found = self.by_kind.get(_KINDS[kind], {}).get(ident)
        return found.model if found else None


_KINDS = {"workflow": "Workflow", "fieldset": "FieldSet", "lookup": "Lookup",
          "article": "Article", "item": "CatalogItem", "CI type": "CIType"}


def _noun(kind: str) -> str:
    return {"CatalogItem": "item", "FieldSet": "fieldset", "Workflow": "workflow",
            "Lookup": "lookup", "Article": "article", "CIType": "CI type"}.get(kind, kind.lower())


def check_references(refs: Iterable[Reference], index: Index) -> list[SpecError]:
    problems = []
    cache: dict[str, set[str]] = {}
    for ref in refs:
        if ref.kind == "CI type" and "CIType" not in index.by_kind and \
                ref.path[-2:-1] == ("create_asset",):
            continue  # a catalog without a cmdb/ folder records assets of any type
        known = cache.setdefault(ref.kind, index.ids(ref.kind))
        if ref.id not in known:
            where = "directory.yaml" if ref.kind in ("person", "group", "role") else None
            hint = suggest(ref.id, known)
            if where and not index.has_directory:
                hint = "there is no directory.yaml"
            problems.append(ref.error(f"unknown {ref.kind} {ref.id}", hint))
    return problems


def expand_items(index: Index) -> tuple[list[CatalogItem], list[SpecError]]:
    """Insert field sets into forms and check each form as a whole."""
    items, problems = [], []
    first = index.by_kind.get("CatalogItem", {})
    for p in index.all.get("CatalogItem", []):
        fields: list[Field] = []
        sites = dict(p.sites)
        for entry in p.form:
            if isinstance(entry, Field):
                fields.append(entry)
                continue
            _, fs_id, _path = entry
            fs = index.by_kind.get("FieldSet", {}).get(fs_id)
            if fs is not None and isinstance(fs.model, FieldSet):
                fields.extend(fs.model.fields)
                sites.update(fs.sites)
        item = replace(p.model, fields=tuple(fields))
        problems += _check_form(p, item, sites, index)
        if first.get(item.id) is p:
            items.append(item)
    return items, problems


def _check_form(p: Parsed, item: CatalogItem, sites: dict[int, Any],
                index: Index) -> list[SpecError]:
    problems: list[SpecError] = []
    names = [f.name for f in item.fields]
    files = {f.name for f in item.fields if f.type is FieldType.FILE}
    seen: set[str] = set()
    for position, f in enumerate(item.fields):
        site = sites[id(f)]
        later = set(names[position:])
        if f.name in seen:
            problems.append(site.doc.error((*site.path, "name"), f"duplicate field name {f.name} "
                            f"in item {item.id}", "field names must be unique within a form"))
        seen.add(f.name)
        for key in ("show_if", "required_if"):
            expr = getattr(f, key)
            for name in sorted(expr.fields() - set(names)) if expr else ():
                problems.append(site.doc.error((*site.path, key), f"{key} names unknown field "
                                f"{name}", suggest(name, names)))
            for name in sorted(expr.fields() & later) if expr else ():
                problems.append(site.doc.error(
                    (*site.path, key), f"{key} reads field {name}, which is not above it",
                    "a condition can only read fields earlier in the form; move it below " + name))
            for name in sorted(expr.fields() & files) if expr else ():
                problems.append(site.doc.error((*site.path, key), f"{key} reads file field "
                                f"{name}", FILES_UNREAD))
            for name in unguarded_orderings(expr) if expr else ():
                if (read := item.get_field(name)) is not None and _may_be_empty(read):
                    problems.append(_empty_comparison(site.doc, (*site.path, key), read))
        if f.default_template:
            pass  # default templates read the requester only (checked at parse)
        if f.depends_on is not None:
            if f.depends_on not in names:
                problems.append(site.doc.error((*site.path, "depends_on"), f"depends_on names "
                                f"unknown field {f.depends_on}", suggest(f.depends_on, names)))
            elif f.depends_on in later:
                problems.append(site.doc.error(
                    (*site.path, "depends_on"), f"depends_on names field {f.depends_on}, which is "
                    "not above it", "a cascading field comes after the field it depends on"))
            elif f.choices_from and not f.choices_from.startswith("lookup:"):
                problems.append(site.doc.error(
                    (*site.path, "depends_on"), f"choices from {f.choices_from} cannot cascade",
                    "use a lookup whose values have a parent"))
            elif f.choices_from and (lk := index.model("lookup", f.choices_from[7:])) and \
                    not any(v.parent for v in lk.values):
                problems.append(site.doc.error(
                    (*site.path, "depends_on"), f"lookup {lk.id} has no values with a parent",
                    "give each value the parent value it belongs to"))
            elif f.choices and not any(c.parent for c in f.choices):
                problems.append(site.doc.error((*site.path, "depends_on"), "depends_on needs "
                                "choices with a parent", "give each choice the parent value it belongs to"))
        if f.choices_from and f.choices_from.startswith("lookup:") and f.default is not None:
            lookup = index.model("lookup", f.choices_from[7:])
            values = {v.value for v in lookup.values} if lookup else None
            bad = [d for d in (f.default if isinstance(f.default, list) else [f.default])
                   if values is not None and d not in values]
            if bad:
                problems.append(site.doc.error((*site.path, "default"), f"default {bad[0]!r} fails "
                                f"the field's own validation: {bad[0]} is not one of the choices",
                                "change the default or the rule"))
    problems += _check_form_checks(p, names, files)
    if item.category_from is not None and item.get_field(item.category_from) is None:
        problems.append(p.doc.error(("category_from",), f"unknown field {item.category_from}",
                                    suggest(item.category_from, names)))
    problems += check_change_fields(p.doc, item)
    for key, name, kinds, what in (
            ("service", item.concerns and item.concerns.service, CHOICE_TYPES, "a choice field"),
            ("ci", item.concerns and item.concerns.ci, ("asset",), "an asset field")):
        if name and (found := item.get_field(name)) is None:
            problems.append(p.doc.error(("concerns", key), f"unknown field {name}", suggest(name, names)))
        elif name and found is not None and found.type not in kinds:
            problems.append(p.doc.error(("concerns", key), f"field {name} must be {what}",
                                        "known errors match on its values"))
    rule = item.priority
    if rule and rule.impact_field:
        for key, name, axis in (("impact", rule.impact_field, index.settings.impacts),
                                ("urgency", rule.urgency_field, index.settings.urgencies)):
            found = item.get_field(name or "")
            if found is None:
                problems.append(p.doc.error(("priority", key), f"unknown field {name}",
                                            suggest(name or "", names)))
            elif found.type not in CHOICE_TYPES or not found.choices:
                problems.append(p.doc.error(("priority", key), f"field {name} must be a choice "
                                            "field with choices", "its values are the matrix's axis values"))
            else:
                missing = [c.value for c in found.choices if c.value not in axis]
                if missing:
                    plural = {"impact": "impacts", "urgency": "urgencies"}[key]
                    problems.append(p.doc.error(
                        ("priority", key), f"choice {missing[0]} of field {name} is not an {key} "
                        "in the priority matrix", f"{plural}: {', '.join(axis) or 'none defined'}"))
    return problems


def _check_form_checks(p: Parsed, names: list[str], files: set[str]) -> list[SpecError]:
    """A check's `field` and every `form.NAME` its `when` reads are fields of the form."""
    problems: list[SpecError] = []
    raw = p.doc.data.get("checks", []) if isinstance(p.doc.data, dict) else []
    for i, check in enumerate(raw):
        try:
            read = compile_expression(check["when"], FORM_ROOTS).fields()
        except ExpressionError:
            read = set()  # reported when the item was parsed
        for name in sorted(read - set(names)):
            problems.append(p.doc.error(("checks", i, "when"), f"when names unknown field {name}",
                                        suggest(name, names)))
        for name in sorted(read & files):
            problems.append(p.doc.error(("checks", i, "when"), f"when reads file field {name}",
                                        FILES_UNREAD))
        name = check.get("field")
        if name is not None and name not in names:
            problems.append(p.doc.error(("checks", i, "field"), f"unknown field {name}",
                                        suggest(name, names)))
    return problems


def check_workflow_use(items: list[CatalogItem], index: Index) -> list[SpecError]:
    """Items give the fields their workflow reads; approvals can be met; unused workflows warn."""
    problems: list[SpecError] = []
    workflows = index.by_kind.get("Workflow", {})
    used: set[str] = set()
    for p in index.all.get("CatalogItem", []):
        used.add(p.model.workflow)
    reads: dict[str, set[str]] = {}
    for item in items:
        wp = workflows.get(item.workflow)
        if wp is None:
            continue
        if item.workflow not in reads:
            reads[item.workflow] = wp.model.form_fields_read() - wp.model.fields_set()
        have = {f.name for f in item.fields}
        for name in sorted(reads[item.workflow] - have):
            doc = index.by_kind["CatalogItem"][item.id].doc
            problems.append(doc.error(("workflow",), f"workflow {item.workflow} reads form.{name}, "
                                      f"but item {item.id} has no field {name}",
                                      "add the field or use another workflow"))
        problems += _check_route_guards(wp, item)
        if item.change is not None and item.change.type == "emergency":
            problems += check_emergency_workflow(wp.doc, wp.model, item.id)
    for wf_id, wp in workflows.items():
        problems += _check_approvals(wp, index)
        if wf_id not in used:
            problems.append(wp.doc.error(("id",), f"workflow {wf_id} is not used by any item",
                                         "point an item's workflow at it or remove it",
                                         severity=Severity.WARNING))
    for fs_id, fp in index.by_kind.get("FieldSet", {}).items():
        if not any(fs_id == entry[1] for p in index.by_kind.get("CatalogItem", {}).values()
                   for entry in p.form if isinstance(entry, tuple)):
            problems.append(fp.doc.error(("id",), f"fieldset {fs_id} is not used by any item",
                                         severity=Severity.WARNING))
    return problems


_NEVER_NULL = frozenset({FieldType.BOOLEAN, FieldType.MULTICHOICE, FieldType.TABLE})


def _may_be_empty(f: Field) -> bool:
    """An optional or conditional field's answer is null when left empty or hidden."""
    return (not f.required or f.show_if is not None) and f.type not in _NEVER_NULL


def _empty_comparison(doc: Any, path: tuple[str | int, ...], f: Field, item: str = "") -> SpecError:
    fallback = f", or use default(form.{f.name}, 0)" if f.type in (
        FieldType.INTEGER, FieldType.NUMBER) else ""
    where = f" in item {item}" if item else ""
    return doc.error(path, f"form.{f.name} may be empty{where}; a comparison with an empty value "
                     f"is false", f'guard it with "form.{f.name} is not null and ..."{fallback}',
                     severity=Severity.WARNING)


def _check_route_guards(wp: Parsed, item: CatalogItem) -> list[SpecError]:
    """Warn where a decide route compares a field `item` may leave empty, unguarded."""
    problems = []
    for s in wp.model.states:
        for i, route in enumerate(s.routes):
            for name in unguarded_orderings(route.when) if route.when else ():
                if (read := item.get_field(name)) is not None and _may_be_empty(read):
                    problems.append(_empty_comparison(
                        wp.doc, ("states", s.name, "decide", i, "when"), read, item.id))
    return problems


def _check_approvals(wp: Parsed, index: Index) -> list[SpecError]:
    wf: Workflow = wp.model
    directory = index.directory
    problems = []
    for s in wf.states:
        if s.kind is not StateKind.APPROVAL:
            continue
        for i, a in enumerate(s.approvals):
            path: tuple[str | int, ...] = (("states", s.name, "approval") if len(s.approvals) == 1
                                           else ("states", s.name, "approvals", i))
            if any(r.kind == "expression" for r in a.approvers):
                continue  # who approves is known only per request
            people: set[str] = set()
            if not all(_resolves(r, directory) for r in a.approvers):
                continue  # reported as an unknown reference
            for r in a.approvers:
                if r.kind == "person" and (x := directory.person(r.value)) and x.active:
                    people.add(r.value)
                elif r.kind == "group" and directory.group(r.value):
                    g = directory.group(r.value)
                    people |= {m for m in g.members if (x := directory.person(m)) and x.active}  # type: ignore[union-attr]
                elif r.kind == "role":
                    people |= set(directory.holders_of(r.value))
            if not index.has_directory:
                continue
            need = a.policy.quorum if a.policy.kind == "quorum" else 1
            if len(people) < need or not people:
                who = ", ".join(str(r) for r in a.approvers)
                problems.append(wp.doc.error((*path, "policy") if a.policy.kind == "quorum"
                                             else (*path, "approvers"),
                                             f"approval can never be met: {a.policy} of {who}, "
                                             f"which has {len(people)} active "
                                             f"{'person' if len(people) == 1 else 'people'}",
                                             "lower the quorum or add approvers"))
    return problems


def _resolves(ref: Any, directory: Directory) -> bool:
    if ref.kind == "person":
        return directory.person(ref.value) is not None
    if ref.kind == "group":
        return directory.group(ref.value) is not None
    return ref.kind != "role" or directory.role(ref.value) is not None
