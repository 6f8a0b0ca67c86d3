"""`diff_catalogs(old, new)`: what a catalog change means, not which lines moved.

Items, fields, choices, conditions, workflow states and transitions, approvals, SLAs
and business hours are compared as loaded models; each change points at the line of
the new side (of the old side for a removal). Given the requests in flight
(`InFlight` rows, read by `engine.checks.requests_in_flight`), each change lists the
open requests it touches. Rendering is `catalog.diff_render`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from catalog.catalog import Catalog
from catalog.diff_model import CatalogDiff, Change, InFlight, affected, props, show
from catalog.errors import SpecError
from catalog.expressions import Expression
from catalog.file_cache import FileCache
from catalog.loader import load_catalog
from catalog.models import CatalogItem, Field, Settings
from catalog.source import SourceDoc, parse_yaml
from catalog.workflow import ApprovalSpec, State, TaskSpec, Trigger, Workflow

_HOURS_LABELS = {"working_days": "business days", "day_start": "business hours start",
                 "day_end": "business hours end", "time_zone": "time zone"}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def load_pair(old: Path, new: Path) -> tuple[Catalog, Catalog]:
    """Load both sides through one file cache, so files the same on both are parsed once."""
    cache = FileCache()
    return load_catalog(old, cache), load_catalog(new, cache)


def diff_catalogs(old: Catalog, new: Catalog, old_name: str = "old", new_name: str = "new",
                  in_flight: Iterable[InFlight] | None = None) -> CatalogDiff:
    """The semantic changes from `old` to `new`; with `in_flight`, the open requests each touches."""
    out = _Differ(old, new)
    out.settings()
    out.directory()
    out.items()
    out.workflows()
    for subject, attr in (("fieldset", "fieldsets"), ("lookup", "lookups"), ("article", "articles"),
                          ("response", "responses"), ("view", "views"), ("ci_type", "ci_types"),
                          ("guide", "guides")):
        out.collection(subject, attr)
    changes = sorted(out.changes, key=Change.sort_key)
    if in_flight is not None:
        rows = tuple(in_flight)
        changes = [dataclasses.replace(c, affected=affected(c, rows)) if c.scope else c
                   for c in changes]
    return CatalogDiff(old_name, new_name, tuple(changes))

class _Locator:
    """Lines of things in one side's files, each file parsed again only when asked."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog, self.docs = catalog, dict[str, SourceDoc | None]()

    def doc(self, file: PurePosixPath) -> SourceDoc | None:
        key = file.as_posix()
        if key not in self.docs:
            try:
                self.docs[key] = parse_yaml((self.catalog.root / key).read_bytes(), file)
            except (OSError, SpecError):
                self.docs[key] = None
        return self.docs[key]

    def line(self, file: PurePosixPath, path: Sequence[str | int] = ()) -> int:
        doc = self.doc(file)
        return doc.locate_key(path).line if doc is not None else 1

    def field_path(self, item: CatalogItem, name: str) -> tuple[tuple[str | int, ...], str]:
        """Where `name` is in the item's form, and the fieldset it comes from ("" if none)."""
        doc = self.doc(item.source)
        form = doc.data.get("form", []) if doc is not None and isinstance(doc.data, dict) else []
        for i, entry in enumerate(form):
            if isinstance(entry, dict) and entry.get("name") == name:
                return ("form", i), ""
        fieldsets = {fs.id: fs for fs in self.catalog.fieldsets}
        for i, entry in enumerate(form):
            fs = fieldsets.get(str(entry.get("use"))) if isinstance(entry, dict) else None
            if fs is not None and any(f.name == name for f in fs.fields):
                return ("form", i), fs.id
        return ("form",), ""


class _Differ:
    def __init__(self, old: Catalog, new: Catalog) -> None:
        self.old, self.new = old, new
        self.at_old, self.at_new = _Locator(old), _Locator(new)
        self.changes: list[Change] = []

    def add(self, kind: str, sign: str, subject: str, subject_id: str, message: str,
            file: PurePosixPath, path: Sequence[str | int] = (), *, before: Any = None,
            after: Any = None, scope: tuple[str, ...] = (), side: str = "new") -> None:
        at = self.at_old if side == "old" else self.at_new
        self.changes.append(Change(
            kind, sign, subject, subject_id, message, file, at.line(file, path), side,
            None if before is None else show(before), None if after is None else show(after),
            scope))

    def changed(self, kind: str, subject: str, subject_id: str, what: str, before: Any,
                after: Any, file: PurePosixPath, path: Sequence[str | int],
                scope: tuple[str, ...] = ()) -> None:
        self.add(kind, "~", subject, subject_id, f"{what}: {show(before)} → {show(after)}",
                 file, path, before=before, after=after, scope=scope)

    # ------------------------------------------------------------ settings, directory

    def settings(self) -> None:
        a, b, file = self.old.settings, self.new.settings, PurePosixPath("deskflow.yaml")
        hours = {"time_zone": ("time_zone",), "working_days": ("business_hours", "days"),
                 "day_start": ("business_hours", "start"), "day_end": ("business_hours", "end"),
                 "holidays": ("holidays",)}
        for name in props(a, frozenset({"priorities"})):
            before, after = getattr(a, name), getattr(b, name)
            if before == after:
                continue
            if name == "working_days":
                before, after = _days(before), _days(after)
            kind = "business_hours_changed" if name in hours else "property_changed"
            label = _HOURS_LABELS.get(name, name.replace("_", " "))
            self.changed(kind, "settings", "", label, before, after, file, hours.get(name, (name,)))
        self.priorities(a, b, file)

    def priorities(self, a: Settings, b: Settings, file: PurePosixPath) -> None:
        old, new = {p.id: p for p in a.priorities}, {p.id: p for p in b.priorities}
        for pid in sorted(old.keys() - new.keys()):
            self.add("priority_removed", "-", "settings", "", f"removes priority {pid}", file,
                     ("priorities", pid), side="old")
        for pid in sorted(new.keys() - old.keys()):
            self.add("priority_added", "+", "settings", "", f"adds priority {pid}", file,
                     ("priorities", pid))
        for pid in sorted(old.keys() & new.keys()):
            for name in ("name", "response", "resolution"):
                before, after = getattr(old[pid], name), getattr(new[pid], name)
                if before != after:
                    kind = "property_changed" if name == "name" else "sla_changed"
                    self.changed(kind, "settings", "", f"priority {pid} {name}", before, after,
                                 file, ("priorities", pid, name))

    def directory(self) -> None:
        file = PurePosixPath("directory.yaml")
        for what, attr in (("person", "people"), ("group", "groups"), ("role", "roles")):
            old = {x.id: x for x in getattr(self.old.directory, attr)}
            new = {x.id: x for x in getattr(self.new.directory, attr)}
            self._keyed(old, new, "directory", "", what, _position(attr, list(old)),
                        _position(attr, list(new)), file, file)

    def _keyed(self, old: Mapping[str, Any], new: Mapping[str, Any], subject: str,
               subject_id: str, what: str, old_path: Callable[[str], tuple[str | int, ...]],
               new_path: Callable[[str], tuple[str | int, ...]], old_file: PurePosixPath,
               new_file: PurePosixPath) -> None:
        """Added, removed and changed entries of one keyed list, each property on its own line."""
        for k in sorted(old.keys() - new.keys()):
            self.add(f"{what}_removed", "-", subject, subject_id, f"removes {what} {k}", old_file,
                     old_path(k), side="old")
        for k in sorted(new.keys() - old.keys()):
            self.add(f"{what}_added", "+", subject, subject_id, f"adds {what} {k}", new_file,
                     new_path(k))
        for k in sorted(old.keys() & new.keys()):
            for name in props(old[k], frozenset({"id"})):
                before, after = getattr(old[k], name), getattr(new[k], name)
                if before != after:
                    self.changed("property_changed", subject, subject_id, f"{what} {k} {name}",
                                 before, after, new_file, (*new_path(k), name))

    # ------------------------------------------------------------ items and their fields

    def items(self) -> None:
        old, new = {i.id: i for i in self.old.items}, {i.id: i for i in self.new.items}
        for iid in sorted(old.keys() - new.keys()):
            self.add("item_removed", "-", "item", iid, f"removes item {iid}", old[iid].source,
                     ("id",), side="old", scope=("item", iid))
        for iid in sorted(new.keys() - old.keys()):
            self.add("item_added", "+", "item", iid, f"adds item {iid} ({new[iid].name})",
                     new[iid].source, ("id",))
        for iid in sorted(old.keys() & new.keys()):
            if old[iid] != new[iid]:
                self.item(old[iid], new[iid])

    def item(self, a: CatalogItem, b: CatalogItem) -> None:
        for name in props(a, frozenset({"id", "fields"})):
            before, after = getattr(a, name), getattr(b, name)
            if before != after:
                self.changed("property_changed", "item", a.id, name, before, after,
                             b.source, (name,))
        old, new = {f.name: f for f in a.fields}, {f.name: f for f in b.fields}
        for name in sorted(old.keys() - new.keys()):
            path, via = self.at_old.field_path(a, name)
            self.add("field_removed", "-", "item", a.id,
                     f"removes field {name}{_via(via)}", a.source, path, side="old",
                     scope=("item", a.id))
        for name in sorted(new.keys() - old.keys()):
            f = new[name]
            path, via = self.at_new.field_path(b, name)
            required = "required " if f.required else ""
            self.add("field_added", "+", "item", a.id,
                     f"adds {required}field {name} ({f.type.value}){_via(via)}", b.source, path,
                     scope=("item", a.id) if f.required else ())
        for name in sorted(old.keys() & new.keys()):
            if old[name] != new[name]:
                self.field(b, old[name], new[name])

    def field(self, item: CatalogItem, a: Field, b: Field) -> None:
        path, via = self.at_new.field_path(item, a.name)
        subject = ("item", item.id)
        label = f"field {a.name}{_via(via)}"
        if a.type != b.type:
            self.add("field_retyped", "~", *subject, f"{label}: type {a.type.value} → {b.type.value}",
                     item.source, (*path, "type"), before=a.type, after=b.type, scope=subject)
        if a.required != b.required:
            text = f"makes {label} required" if b.required else f"makes {label} optional"
            self.add("field_required" if b.required else "field_optional", "~", *subject, text,
                     item.source, (*path, "required"), before=a.required, after=b.required,
                     scope=subject if b.required else ())
        for cond in ("show_if", "required_if"):
            before, after = getattr(a, cond), getattr(b, cond)
            if before != after:
                self.changed("condition_changed", *subject, f"{label} {cond}", before, after,
                             item.source, (*path, cond))
        old = {c.value: c for c in a.choices}
        new = {c.value: c for c in b.choices}
        new_order = [c.value for c in b.choices]
        old_order = [c.value for c in a.choices]
        for v in sorted(old.keys() - new.keys()):
            self.add("choice_removed", "-", *subject, f"{label}: removes choice {v}",
                     item.source, (*path, "choices", old_order.index(v)), side="old",
                     scope=subject)
        for v in sorted(new.keys() - old.keys()):
            self.add("choice_added", "+", *subject, f"{label}: adds choice {v}", item.source,
                     (*path, "choices", new_order.index(v)))
        for v in sorted(old.keys() & new.keys()):
            if old[v] != new[v]:
                self.changed("property_changed", *subject, f"{label} choice {v}", old[v].label
                             if old[v].parent == new[v].parent else old[v], new[v].label
                             if old[v].parent == new[v].parent else new[v], item.source,
                             (*path, "choices", new_order.index(v)))
        skip = frozenset({"name", "type", "required", "show_if", "required_if", "choices"})
        for name in props(a, skip):
            before, after = getattr(a, name), getattr(b, name)
            if before != after:
                self.changed("property_changed", *subject, f"{label} {name}", before, after,
                             item.source, (*path, name))

    # ------------------------------------------------------------ workflows

    def workflows(self) -> None:
        old, new = {w.id: w for w in self.old.workflows}, {w.id: w for w in self.new.workflows}
        for wid in sorted(old.keys() - new.keys()):
            self.add("workflow_removed", "-", "workflow", wid, f"removes workflow {wid}",
                     old[wid].source, ("id",), side="old", scope=("workflow", wid))
        for wid in sorted(new.keys() - old.keys()):
            self.add("workflow_added", "+", "workflow", wid, f"adds workflow {wid}",
                     new[wid].source, ("id",))
        for wid in sorted(old.keys() & new.keys()):
            if old[wid].version != new[wid].version:
                self.workflow(old[wid], new[wid])

    def workflow(self, a: Workflow, b: Workflow) -> None:
        wid, file = a.id, b.source
        self.add("version_changed", "~", "workflow", wid,
                 f"new version {b.version[:8]} (was {a.version[:8]}); open requests keep theirs",
                 file, ("id",), before=a.version, after=b.version, scope=("workflow", wid))
        for name in ("name", "description", "start"):
            if getattr(a, name) != getattr(b, name):
                self.changed("property_changed", "workflow", wid, name,
                             getattr(a, name), getattr(b, name), file, (name,))
        if a.sla != b.sla:
            for name in ("response", "resolution", "from_priority", "on_warning", "on_breach"):
                before = getattr(a.sla, name) if a.sla else None
                after = getattr(b.sla, name) if b.sla else None
                if before != after:
                    self.changed("sla_changed", "workflow", wid, f"sla {name.replace('_', ' ')}",
                                 before, after, file, ("sla", name))
        old, new = {s.name: s for s in a.states}, {s.name: s for s in b.states}
        for s in sorted(old.keys() - new.keys()):
            self.add("state_removed", "-", "workflow", wid, f"removes state {s}", a.source,
                     ("states", s), side="old", scope=("state", wid, s))
        for s in sorted(new.keys() - old.keys()):
            self.add("state_added", "+", "workflow", wid, f"adds state {s}", file, ("states", s))
        for s in sorted(old.keys() & new.keys()):
            self.state(wid, file, old[s], new[s])
        self.transitions(a, b)

    def state(self, wid: str, file: PurePosixPath, a: State, b: State) -> None:
        path: tuple[str | int, ...] = ("states", a.name)
        scope = ("state", wid, a.name)
        for name in ("kind", "label", "wait", "outcome", "actions", "review"):
            before, after = getattr(a, name), getattr(b, name)
            if before != after:
                kind = "sla_changed" if name == "wait" else "property_changed"
                self.changed(kind, "workflow", wid, f"state {a.name} {name}", before, after,
                             file, (*path, name), scope=scope if name == "kind" else ())
        self._parts(wid, file, path, "approval", a.approvals, b.approvals, scope)
        self._parts(wid, file, path, "task", a.tasks, b.tasks, scope)

    def _parts(self, wid: str, file: PurePosixPath, path: tuple[str | int, ...], what: str,
               a: Sequence[ApprovalSpec | TaskSpec], b: Sequence[ApprovalSpec | TaskSpec],
               scope: tuple[str, ...]) -> None:
        """The approvals (or tasks) of one state, matched by name."""
        old, new = {x.name: x for x in a}, {x.name: x for x in b}
        single = len(b) == 1
        here = (*path, what) if single else (*path, f"{what}s")
        for n in sorted(old.keys() - new.keys()):
            self.add(f"{what}_removed", "-", "workflow", wid, f"state {path[1]}: removes {what} {n}",
                     file, here, scope=scope)
        for n in sorted(new.keys() - old.keys()):
            self.add(f"{what}_added", "+", "workflow", wid, f"state {path[1]}: adds {what} {n}",
                     file, here, scope=scope)
        for n in sorted(old.keys() & new.keys()):
            x, y = old[n], new[n]
            if x == y:
                continue
            at = here if single else (*here, [p.name for p in b].index(n))
            name_of = "" if single and n == path[1] else f" {n}"
            for prop in props(x, frozenset({"name"})):
                before, after = getattr(x, prop), getattr(y, prop)
                if before == after:
                    continue
                if what == "approval":
                    kind = "approval_changed"
                else:
                    kind = "sla_changed" if prop == "sla" else "task_changed"
                key = "approvers" if prop == "approvers" else prop.replace("_", " ")
                self.changed(kind, "workflow", wid, f"state {path[1]} {what}{name_of} {key}",
                             before, after, file, (*at, prop),
                             scope=scope if what == "approval" else ())

    def transitions(self, a: Workflow, b: Workflow) -> None:
        old, new = _edges(a), _edges(b)
        for key in sorted(old.keys() - new.keys()):
            src, trig, dest, _ = key
            if b.state(src) is None:
                continue  # said by "removes state"
            self.add("transition_removed", "-", "workflow", a.id,
                     f"removes transition {src} → {dest} (on {trig})", a.source,
                     _edge_path(a, key), side="old", scope=("state", a.id, src))
        for key in sorted(new.keys() - old.keys()):
            src, trig, dest, _ = key
            if a.state(src) is None:
                continue  # said by "adds state"
            self.add("transition_added", "+", "workflow", a.id,
                     f"adds transition {src} → {dest} (on {trig})", b.source, _edge_path(b, key))
        for key in sorted(old.keys() & new.keys()):
            if old[key] != new[key]:
                src, trig, dest, _ = key
                self.changed("condition_changed", "workflow", a.id,
                             f"route {src} → {dest} when", old[key], new[key], b.source,
                             (*_edge_path(b, key), "when"))

    # ------------------------------------------------------------ everything else

    def collection(self, subject: str, attr: str) -> None:
        old = {x.id: x for x in getattr(self.old, attr)}
        new = {x.id: x for x in getattr(self.new, attr)}
        folder = {"fieldset": "fieldsets", "lookup": "lookups", "article": "kb",
                  "response": "responses", "view": "views", "ci_type": "cmdb",
                  "guide": "guides"}[subject]
        for k in sorted(old.keys() - new.keys()):
            self.add(f"{subject}_removed", "-", subject, k, f"removes {subject} {k}",
                     _file_of(self.old, folder, k), side="old")
        for k in sorted(new.keys() - old.keys()):
            self.add(f"{subject}_added", "+", subject, k, f"adds {subject} {k}",
                     _file_of(self.new, folder, k))
        for k in sorted(old.keys() & new.keys()):
            if old[k] != new[k]:
                what = ", ".join(n for n in props(old[k], frozenset({"id"}))
                                 if getattr(old[k], n) != getattr(new[k], n))
                self.add(f"{subject}_changed", "~", subject, k, f"changes {subject} {k} ({what})",
                         _file_of(self.new, folder, k))


def _position(key: str, ids: list[str]) -> Callable[[str], tuple[str | int, ...]]:
    """The path of an entry of the list at `key`, by its id."""
    return lambda ident: (key, ids.index(ident))


def _via(fieldset: str) -> str:
    return f" (from fieldset {fieldset})" if fieldset else ""


def _days(days: tuple[int, ...]) -> str:
    return ", ".join(_WEEKDAYS[d] for d in days)


Edge = tuple[str, str, str, int]


def _edges(w: Workflow) -> dict[Edge, Expression | None]:
    """Each transition but cancel, by (source, trigger, destination, how many such came before).

    The count keeps two routes of one decision to the same state apart.
    """
    out: dict[Edge, Expression | None] = {}
    for t in w.transitions():
        if t.trigger != Trigger.CANCEL.value:
            n = sum(1 for k in out if k[:3] == (t.source, t.trigger, t.dest))
            out[(t.source, t.trigger, t.dest, n)] = t.condition
    return out


def _edge_path(w: Workflow, key: Edge) -> tuple[str | int, ...]:
    src, trig, dest, n = key
    state = w.state(src)
    if state is None:
        return ("states",)
    if trig == Trigger.ROUTE.value:
        at = [i for i, r in enumerate(state.routes) if r.goto == dest]
        return ("states", src, "decide", at[n] if n < len(at) else 0)
    if trig in (Trigger.NEXT.value, Trigger.TIMER.value):
        return ("states", src, "next")
    return ("states", src, "on", trig)


def _file_of(catalog: Catalog, folder: str, ident: str) -> PurePosixPath:
    """The file defining `ident` in `folder` (its usual name, else the folder's first match)."""
    suffixes = (".md",) if folder == "kb" else (".yaml", ".yml")
    for suffix in suffixes:
        if (catalog.root / folder / f"{ident}{suffix}").is_file():
            return PurePosixPath(folder, f"{ident}{suffix}")
    return PurePosixPath(folder)
