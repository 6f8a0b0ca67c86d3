"""Turn schema-valid YAML data into models, with the checks one file can make alone.

Each `parse_*` function returns a `Parsed`: the model, the problems found, and the
references to other files that the cross-file checks resolve later.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, time
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog.errors import Severity, SpecError
from catalog.expressions import (
    ROOTS,
    Expression,
    ExpressionError,
    Template,
    compile_expression,
    compile_template,
)
from catalog.fields import value_errors
from catalog.models import (
    CHOICE_TYPES,
    TEXT_TYPES,
    Article,
    CatalogItem,
    Choice,
    Directory,
    Duration,
    Field,
    FieldSet,
    FieldType,
    FormCheck,
    Group,
    Holiday,
    Holidays,
    Lookup,
    LookupValue,
    Person,
    Priority,
    PriorityRule,
    Role,
    Settings,
)
from catalog.patterns import PatternError, check_pattern
from catalog.public_holidays import country_days, region_problem
from catalog.source import SourceDoc
from catalog.workflow import (
    CANCELLED,
    RESERVED_TRIGGERS,
    Action,
    ApprovalSpec,
    ApproverRef,
    Policy,
    Route,
    State,
    StateKind,
    TaskSpec,
    Workflow,
    WorkflowSla,
)

Path = tuple[str | int, ...]
FORM_ROOTS = frozenset({"form", "requester"})
#: names the portal's forms use themselves
RESERVED_FIELD_NAMES = frozenset({"csrf_token", "requested_for"})
DEFAULT_ROOTS = frozenset({"requester"})
_REF = re.compile(r"^(person|group|role):([a-z][a-z0-9._-]*)$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RECIPIENTS = frozenset({"requester", "requested_for", "approvers", "assignee", "owner"})


@dataclass(frozen=True, slots=True)
class Reference:
    """A name in one file that must exist in another (or in the same catalog)."""

    kind: str               # workflow | fieldset | group | person | role | lookup | article | item | priority
    id: str
    doc: SourceDoc
    path: Path

    def error(self, message: str, hint: str = "") -> SpecError:
        return self.doc.error(self.path, message, hint)


@dataclass(frozen=True, slots=True)
class FieldSite:
    """Where a field was written, and where its expressions are."""

    doc: SourceDoc
    path: Path


@dataclass(slots=True)
class Parsed:
    kind: str
    doc: SourceDoc
    model: Any = None
    problems: list[SpecError] = field(default_factory=list)
    refs: list[Reference] = field(default_factory=list)
    #: id(Field) -> where it is written (for errors found once fieldsets are expanded)
    sites: dict[int, FieldSite] = field(default_factory=dict)
    #: for items: the form as written, fields and ("use", fieldset id, path) entries
    form: tuple[Field | tuple[str, str, Path], ...] = ()

    def error(self, path: Path, message: str, hint: str = "", **kw: Any) -> None:
        self.problems.append(self.doc.error(path, message, hint, **kw))

    def warn(self, path: Path, message: str, hint: str = "", **kw: Any) -> None:
        self.problems.append(self.doc.error(path, message, hint, severity=Severity.WARNING, **kw))

    def ref(self, kind: str, ident: str, path: Path) -> None:
        self.refs.append(Reference(kind, ident, self.doc, path))


def suggest(name: str, known: Iterable[str]) -> str:
    """A `did you mean X?` hint, or a list of what exists."""
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"did you mean {close[0]}?"
    if not known:
        return "none are defined"
    shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
    return f"known: {shown}"


def _expr(p: Parsed, text: str, path: Path, roots: frozenset[str] = ROOTS) -> Expression | None:
    try:
        expr = compile_expression(text, roots)
    except ExpressionError as exc:
        p.error(path, f"expression {text!r} {_expr_message(exc)}", exc.hint)
        return None
    _lookup_refs(p, expr, path)
    return expr


def _expr_message(exc: ExpressionError) -> str:
    return exc.message if exc.message.startswith("does not parse") else f"is invalid: {exc.message}"


def _template(p: Parsed, text: str, path: Path, roots: frozenset[str] = ROOTS) -> Template | None:
    try:
        tpl = compile_template(text, roots)
    except ExpressionError as exc:
        p.error(path, f"template {text!r}: {exc.message}", exc.hint)
        return None
    for e in tpl.expressions:
        _lookup_refs(p, e, path)
    return tpl


def _lookup_refs(p: Parsed, expr: Expression, path: Path) -> None:
    for name, args in expr.calls:
        if name == "lookup":
            if len(args) != 2 or not isinstance(args[0], str):
                p.error(path, "lookup() takes a lookup id in quotes and a value",
                        "write lookup('systems', form.system)")
            else:
                p.ref("lookup", args[0], path)


# ---------------------------------------------------------------- settings

def parse_settings(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Settings", doc), doc.data
    try:
        ZoneInfo(d["time_zone"])
    except (ZoneInfoNotFoundError, ValueError):
        p.error(("time_zone",), f"unknown time zone {d['time_zone']}",
                "use an IANA name such as Europe/Amsterdam")
    hours = d["business_hours"]
    start = time.fromisoformat(hours["start"])
    end = time(23, 59, 59) if hours["end"] == "24:00" else time.fromisoformat(hours["end"])
    if end <= start:
        p.error(("business_hours", "end"), f"end {hours['end']} is not after start {hours['start']}")
    holidays = _holidays(p, d.get("holidays", []))
    priorities = tuple(
        Priority(pid, pr["name"], _duration(pr.get("response")), _duration(pr.get("resolution")))
        for pid, pr in d.get("priorities", {}).items())
    known = {pr.id for pr in priorities}
    matrix: dict[tuple[str, str], str] = {}
    rows = d.get("priority_matrix", {})
    urgencies = list(next(iter(rows.values()), {}))
    for impact, row in rows.items():
        if sorted(row) != sorted(urgencies):
            p.error(("priority_matrix", impact), f"impact {impact} lists urgencies "
                    f"{', '.join(row)}; the first row lists {', '.join(urgencies)}",
                    "every impact row names the same urgencies")
        for urgency, pid in row.items():
            if pid not in known:
                p.error(("priority_matrix", impact, urgency), f"unknown priority {pid}",
                        suggest(pid, known))
            matrix[(impact, urgency)] = pid
    default = d.get("default_priority")
    if default is not None and default not in known:
        p.error(("default_priority",), f"unknown priority {default}", suggest(default, known))
    p.model = Settings(
        name=d["name"], time_zone=d["time_zone"],
        working_days=tuple(sorted(_DAYS.index(x) for x in hours["days"])),
        day_start=start, day_end=end, holidays=holidays,
        sla_warning_percent=d.get("sla_warning_percent", 75), priorities=priorities,
        default_priority=default, priority_matrix=MappingProxyType(matrix))
    return p


def _duration(text: str | None) -> Duration | None:
    return Duration.parse(text) if text else None


def _holidays(p: Parsed, raw: list[Any] | dict[str, Any]) -> Holidays:
    """The days off: a country's public holidays with dates added and removed, or a list of dates."""
    spec: dict[str, Any] = {"add": raw} if isinstance(raw, list) else raw
    base: Path = ("holidays",) if isinstance(raw, list) else ("holidays", "add")
    add = []
    for i, h in enumerate(spec.get("add", [])):
        if (day := _date(p, (*base, i, "date"), h["date"])) is not None:
            add.append(Holiday(day, h.get("name", "")))
    removed = [(day, ("holidays", "remove", i)) for i, text in enumerate(spec.get("remove", []))
               if (day := _date(p, ("holidays", "remove", i), text)) is not None]
    country, subdivision = spec.get("country"), spec.get("subdivision")
    if country is None:
        for key in ("subdivision", "remove"):
            if key in spec:
                p.error(("holidays", key), f"{key} needs a country", "set holidays.country, e.g. NL")
        return Holidays(add=tuple(add))
    problem = region_problem(country, subdivision)
    if problem is not None:
        key, message, hint = problem
        p.error(("holidays", key), message, hint)
        return Holidays(add=tuple(add))
    for day, path in removed:
        if day not in country_days(country, subdivision, day.year):
            p.warn(path, f"{day} is not a public holiday in {country}",
                   "remove lists the country's holidays on which the desk works")
    return Holidays(country, subdivision, tuple(add), tuple(day for day, _ in removed))


def _date(p: Parsed, path: Path, text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        p.error(path, f"{text} is not a date", "write YYYY-MM-DD")
        return None


def holidays_run_out(p: Parsed, today: date) -> list[SpecError]:
    """Warn when days off listed one by one (no country) end less than a year after today."""
    settings: Settings = p.model
    if settings.holidays.country is not None or not settings.holidays.add:
        return []
    last = max(h.day for h in settings.holidays.add)
    try:
        a_year_on = today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        a_year_on = today.replace(year=today.year + 1, day=28)
    if last >= a_year_on:
        return []
    raw = p.doc.data["holidays"]
    base: Path = ("holidays",) if isinstance(raw, list) else ("holidays", "add")
    entries = raw if isinstance(raw, list) else raw["add"]
    i = next(i for i, h in enumerate(entries) if h["date"] == last.isoformat())
    message = (f"the holidays end on {last}, less than a year from today" if last >= today else
               f"the holidays ended on {last}") + ": after that, business time runs on public holidays"
    return [p.doc.error((*base, i, "date"), message,
                        "add the coming year's holidays, or set holidays.country to follow a "
                        "country's public holidays", severity=Severity.WARNING)]


# ---------------------------------------------------------------- directory

def parse_directory(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Directory", doc), doc.data
    roles = tuple(Role(r["id"], r["name"], r.get("description", "")) for r in d.get("roles", []))
    people = tuple(Person(x["id"], x["name"], x["email"], x.get("manager"), x.get("title", ""),
                          x.get("department", ""), x.get("location", ""), tuple(x.get("roles", [])),
                          x.get("active", True)) for x in d.get("people", []))
    groups = tuple(Group(g["id"], g["name"], g.get("description", ""), g.get("email", ""),
                         g.get("manager"), tuple(g.get("members", []))) for g in d.get("groups", []))
    lists: tuple[tuple[str, tuple[Person | Group | Role, ...]], ...] = (
        ("people", people), ("groups", groups), ("roles", roles))
    for key, things in lists:
        seen: dict[str, int] = {}
        for i, thing in enumerate(things):
            if thing.id in seen:
                first = doc.locate((key, seen[thing.id], "id"))
                p.error((key, i, "id"), f"duplicate id {thing.id}", f"first defined at line {first.line}")
            seen.setdefault(thing.id, i)
    person_ids = {x.id for x in people}
    role_ids = {r.id for r in roles}
    for i, x in enumerate(people):
        if x.manager is not None and x.manager not in person_ids:
            p.error(("people", i, "manager"), f"unknown person {x.manager}", suggest(x.manager, person_ids))
        if x.manager == x.id:
            p.error(("people", i, "manager"), f"{x.id} is their own manager")
        for j, role in enumerate(x.roles):
            if role not in role_ids:
                p.error(("people", i, "roles", j), f"unknown role {role}", suggest(role, role_ids))
    for i, g in enumerate(groups):
        if g.manager is not None and g.manager not in person_ids:
            p.error(("groups", i, "manager"), f"unknown person {g.manager}", suggest(g.manager, person_ids))
        for j, member in enumerate(g.members):
            if member not in person_ids:
                p.error(("groups", i, "members", j), f"unknown person {member}", suggest(member, person_ids))
    directory = Directory(people, groups, roles)
    for i, x in enumerate(people):
        chain = [x.id]
        current = x
        while current.manager and current.manager in person_ids:
            if current.manager in chain:
                if current.manager == x.id and len(chain) > 1:
                    p.error(("people", i, "manager"), "manager chain loops: "
                            + " -> ".join([*chain, x.id]), "someone must have no manager")
                break
            chain.append(current.manager)
            nxt = directory.person(current.manager)
            if nxt is None:
                break
            current = nxt
    p.model = directory
    return p


# ---------------------------------------------------------------- fields

def parse_field(p: Parsed, d: dict[str, Any], path: Path, *, in_table: bool = False,
                roots: frozenset[str] = FORM_ROOTS) -> Field:
    """Build one field, reporting what is wrong with it on its own."""
    t = FieldType(d["type"])
    name = d["name"]
    if name in RESERVED_FIELD_NAMES:
        p.error((*path, "name"), f"field name {name} is reserved", "pick another name")
    label = d.get("label") or name.replace("_", " ").capitalize()
    show_if = _expr(p, d["show_if"], (*path, "show_if"), roots) if "show_if" in d else None
    required_if = (_expr(p, d["required_if"], (*path, "required_if"), roots)
                   if "required_if" in d else None)
    if in_table and (show_if or required_if):
        p.error((*path, "show_if" if show_if else "required_if"),
                "table columns cannot be conditional", "put the condition on the table field")
    pattern = d.get("pattern")
    if pattern is not None:
        if t not in TEXT_TYPES:
            p.error((*path, "pattern"), f"pattern applies to text fields, not {t.value}")
        try:
            check_pattern(pattern)
        except PatternError as exc:
            p.error((*path, "pattern"), exc.message, exc.hint)
            pattern = None
    lo, hi = _bound(p, t, d, "min", path), _bound(p, t, d, "max", path)
    if lo is not None and hi is not None and lo > hi:  # type: ignore[operator]
        p.error((*path, "max"), f"max {d['max']} is below min {d['min']}")
    for key, allowed in (("min_length", TEXT_TYPES), ("max_length", TEXT_TYPES),
                         ("min_items", {FieldType.MULTICHOICE, FieldType.TABLE}),
                         ("max_items", {FieldType.MULTICHOICE, FieldType.TABLE})):
        if key in d and t not in allowed:
            p.error((*path, key), f"{key} does not apply to {t.value} fields")
    for a, b in (("min_length", "max_length"), ("min_items", "max_items")):
        if a in d and b in d and d[a] > d[b]:
            p.error((*path, b), f"{b} {d[b]} is below {a} {d[a]}")
    choices = _choices(p, t, d, path)
    columns: tuple[Field, ...] = ()
    if t is FieldType.TABLE:
        if in_table:
            p.error((*path, "type"), "a table cannot contain a table")
        if "columns" not in d:
            p.error((*path,), "table field needs columns", "list the sub-fields under columns",
                    at_key=False)
        else:
            columns = tuple(parse_field(p, c, (*path, "columns", i), in_table=True, roots=roots)
                            for i, c in enumerate(d["columns"]))
            _duplicates(p, [c.name for c in columns], lambda i: (*path, "columns", i, "name"),
                        "column")
    elif "columns" in d:
        p.error((*path, "columns"), f"columns apply to table fields, not {t.value}")
    default, default_template = d.get("default"), None
    if isinstance(default, str) and "{{" in default:
        default_template = _template(p, default, (*path, "default"), DEFAULT_ROOTS)
        default = None
    built = Field(
        name=name, type=t, label=label, required=d.get("required", False), required_if=required_if,
        show_if=show_if, default=default, default_template=default_template, help=d.get("help", ""),
        placeholder=d.get("placeholder", ""), pattern=pattern, min=lo, max=hi,
        min_length=d.get("min_length"), max_length=d.get("max_length"),
        min_items=d.get("min_items"), max_items=d.get("max_items"), choices=choices,
        choices_from=d.get("choices_from"), depends_on=d.get("depends_on"), columns=columns)
    if default is not None:
        problems = value_errors(built, default)
        if problems:
            p.error((*path, "default"), f"default {_show(default)} fails the field's own "
                    f"validation: {problems[0]}", "change the default or the rule")
    if built.choices_from:
        source = built.choices_from
        if source.startswith("lookup:"):
            p.ref("lookup", source[7:], (*path, "choices_from"))
        elif source.startswith("group:"):
            p.ref("group", source[6:], (*path, "choices_from"))
    p.sites[id(built)] = FieldSite(p.doc, path)
    return built


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def _bound(p: Parsed, t: FieldType, d: dict[str, Any], key: str, path: Path) -> Any:
    if key not in d:
        return None
    value = d[key]
    if t is FieldType.DATE:
        try:
            return date.fromisoformat(value) if isinstance(value, str) else _bad(p, path, key, value)
        except ValueError:
            return _bad(p, path, key, value)
    if t in (FieldType.INTEGER, FieldType.NUMBER) and isinstance(value, int | float):
        return value
    if t in (FieldType.INTEGER, FieldType.NUMBER, FieldType.DATE):
        return _bad(p, path, key, value)
    p.error((*path, key), f"{key} applies to number, integer and date fields, not {t.value}",
            "use min_length/max_length or min_items/max_items")
    return None


def _bad(p: Parsed, path: Path, key: str, value: Any) -> None:
    p.error((*path, key), f"{key} {_show(value)} is not a valid bound for this field",
            "numbers for number fields, YYYY-MM-DD for date fields")


def _choices(p: Parsed, t: FieldType, d: dict[str, Any], path: Path) -> tuple[Choice, ...]:
    raw = d.get("choices")
    if t in CHOICE_TYPES:
        if raw is None and "choices_from" not in d:
            p.error(path, f"{t.value} field {d['name']} needs choices or choices_from",
                    "list choices, or take them from lookup:ID, groups or people")
        if raw is not None and "choices_from" in d:
            p.error((*path, "choices_from"), "give either choices or choices_from, not both")
    elif raw is not None or "choices_from" in d:
        p.error((*path, "choices" if raw is not None else "choices_from"),
                f"choices apply to choice and multichoice fields, not {t.value}")
        return ()
    if "depends_on" in d and t not in CHOICE_TYPES:
        p.error((*path, "depends_on"), "depends_on applies to choice and multichoice fields")
    out = tuple(Choice(c, c) if isinstance(c, str) else
                Choice(c["value"], c.get("label") or c["value"], c.get("parent"))
                for c in raw or ())
    _duplicates(p, [c.value for c in out], lambda i: (*path, "choices", i), "choice value")
    return out


def _duplicates(p: Parsed, values: list[str], where: Any, what: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            p.error(where(i), f"duplicate {what} {v}", f"each {what} may appear once")
        seen.add(v)


# ---------------------------------------------------------------- items, fieldsets, lookups

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
        _principal_ref(p, who, ("visible_to", i))
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
        source=doc.path)
    return p


def _form_checks(p: Parsed, raw: list[dict[str, Any]]) -> tuple[FormCheck, ...]:
    """Checks across fields; the fields they name are checked once field sets are inserted."""
    out = []
    for i, d in enumerate(raw):
        when = _expr(p, d["when"], ("checks", i, "when"), FORM_ROOTS)
        if when is not None:
            out.append(FormCheck(when, d["message"], d.get("field")))
    return tuple(out)


def _principal_ref(p: Parsed, who: str, path: Path) -> None:
    m = _REF.match(who)
    if m:
        p.ref(m.group(1), m.group(2), path)


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
        _principal_ref(p, who, ("visible_to", i))
    stem = doc.path.stem
    if d["id"] != stem:
        p.error(("id",), f"article id {d['id']} differs from its file name {stem}.md",
                "name the file after the id")
    updated = date.fromisoformat(d["updated"]) if "updated" in d else None
    p.model = Article(d["id"], d["title"], body, d.get("summary", ""), d.get("category", ""),
                      tuple(d.get("keywords", [])), tuple(d.get("items", [])),
                      tuple(d.get("visible_to", ["everyone"])), updated)
    return p


# ---------------------------------------------------------------- workflows

_KIND_KEYS = {"approval": StateKind.APPROVAL, "approvals": StateKind.APPROVAL,
              "task": StateKind.TASK, "tasks": StateKind.TASK, "decide": StateKind.DECISION,
              "wait": StateKind.WAIT, "end": StateKind.END}


def workflow_version(data: Any) -> str:
    """A content hash of the definition: same meaning, same version, whatever the layout."""
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def parse_workflow(doc: SourceDoc) -> Parsed:
    p, d = Parsed("Workflow", doc), doc.data
    states = [_state(p, name, s, ("states", name)) for name, s in d["states"].items()]
    names = {s.name for s in states}
    if CANCELLED not in names:
        states.append(State(CANCELLED, StateKind.END, "Cancelled", outcome=CANCELLED))
        names.add(CANCELLED)
    if d["start"] not in names:
        p.error(("start",), f"unknown state {d['start']}", suggest(d["start"], names))
    sla = None
    if "sla" in d:
        s = d["sla"]
        sla = WorkflowSla(_duration(s.get("response")), _duration(s.get("resolution")),
                          s.get("from_priority", False),
                          tuple(_action(p, a, ("sla", "on_warning", i))
                                for i, a in enumerate(s.get("on_warning", []))),
                          tuple(_action(p, a, ("sla", "on_breach", i))
                                for i, a in enumerate(s.get("on_breach", []))))
        if sla.from_priority and (sla.response or sla.resolution):
            p.error(("sla", "from_priority"), "give targets or from_priority, not both")
    wf = Workflow(id=d["id"], start=d["start"], states=tuple(states),
                  version=workflow_version(d), name=d.get("name", d["id"]),
                  description=d.get("description", ""), sla=sla, source=doc.path,
                  definition=MappingProxyType({"data": d}))
    _check_graph(p, wf)
    p.model = wf
    return p


def _state(p: Parsed, name: str, d: dict[str, Any], path: Path) -> State:
    kinds = [k for k in _KIND_KEYS if k in d]
    if len(kinds) > 1:
        p.error(path, f"state {name} is both {kinds[0]} and {kinds[1]}",
                "a state is exactly one of approval, approvals, task, tasks, decide, wait, end",
                at_key=True)
    kind = _KIND_KEYS[kinds[0]] if kinds else StateKind.ACTION
    if not kinds and "actions" not in d:
        p.error(path, f"state {name} does nothing",
                "give it approval, task, decide, wait or end, or actions with next", at_key=True)
    if name == CANCELLED and kind is not StateKind.END:
        p.error(path, "state cancelled is reserved for cancelled requests and must be an end state",
                at_key=True)
    actions = tuple(_action(p, a, (*path, "actions", i)) for i, a in enumerate(d.get("actions", [])))
    approvals: tuple[ApprovalSpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    if "approval" in d:
        approvals = (_approval(p, d["approval"], (*path, "approval"), d["approval"].get("name", name)),)
    elif "approvals" in d:
        approvals = tuple(_approval(p, a, (*path, "approvals", i), a.get("name", ""))
                          for i, a in enumerate(d["approvals"]))
        _names_required(p, d["approvals"], (*path, "approvals"), "approval")
    if "task" in d:
        tasks = (_task(p, d["task"], (*path, "task"), d["task"].get("name", name)),)
    elif "tasks" in d:
        tasks = tuple(_task(p, t, (*path, "tasks", i), t.get("name", ""))
                      for i, t in enumerate(d["tasks"]))
        _names_required(p, d["tasks"], (*path, "tasks"), "task")
        for i, t in enumerate(tasks):
            if t.outcomes != ("done",):
                p.error((*path, "tasks", i, "outcomes"), "parallel tasks end with done only",
                        "use a single task to route on outcomes")
    routes = tuple(Route(r["goto"], _expr(p, r["when"], (*path, "decide", i, "when"))
                         if "when" in r else None) for i, r in enumerate(d.get("decide", [])))
    for i, r in enumerate(routes):
        last = i == len(routes) - 1
        if r.when is None and not last and "when" not in d["decide"][i]:
            p.error((*path, "decide", i), "only the last route may leave out when",
                    "routes after it could never be taken")
        if last and "when" in d["decide"][i]:
            p.error((*path, "decide", i, "when"), "the last route must have no when",
                    "it is the route taken when no condition holds")
    state = State(name=name, kind=kind, label=d.get("label", ""), approvals=approvals, tasks=tasks,
                  routes=routes, wait=_duration(d.get("wait")), outcome=d.get("end"),
                  actions=actions, next=d.get("next"), on=MappingProxyType(dict(d.get("on", {}))))
    _check_exits(p, state, d, path)
    return state


def _names_required(p: Parsed, entries: list[dict[str, Any]], path: Path, what: str) -> None:
    names = [e.get("name") for e in entries]
    for i, n in enumerate(names):
        if not n:
            p.error((*path, i), f"parallel {what}s each need a name")
    _duplicates(p, [n for n in names if n], lambda i: (*path, i, "name"), f"{what} name")


def _check_exits(p: Parsed, s: State, d: dict[str, Any], path: Path) -> None:
    """`on` names exactly the state's triggers; `next` only where it is used."""
    wants_next = s.kind in (StateKind.ACTION, StateKind.WAIT)
    if wants_next and "next" not in d:
        p.error(path, f"state {s.name} needs next", "say where to go after it", at_key=True)
    if not wants_next and "next" in d:
        p.error((*path, "next"), f"next applies to actions and wait states, not {s.kind.value}",
                "use on for approvals and tasks")
    uses_on = s.kind in (StateKind.APPROVAL, StateKind.TASK)
    if not uses_on:
        if "on" in d:
            p.error((*path, "on"), f"on does not apply to {s.kind.value} states")
        return
    triggers = s.triggers()
    for trig in d.get("on", {}):
        if trig not in triggers:
            p.error((*path, "on", trig), f"{s.kind.value} state {s.name} has no outcome {trig}",
                    f"its outcomes: {', '.join(triggers)}", at_key=True)
    for trig in triggers:
        if trig not in d.get("on", {}):
            p.error((*path, "on") if "on" in d else path,
                    f"state {s.name} does not say where {trig} goes", f"add on: {{{trig}: STATE}}",
                    at_key=True)


def _approval(p: Parsed, d: dict[str, Any], path: Path, name: str) -> ApprovalSpec:
    raw = d["approvers"] if isinstance(d["approvers"], list) else [d["approvers"]]
    refs = []
    for i, text in enumerate(raw):
        where = (*path, "approvers", i) if isinstance(d["approvers"], list) else (*path, "approvers")
        ref = _approver(p, text, where)
        if ref:
            refs.append(ref)
    policy_raw = d.get("policy", "any")
    policy = Policy("quorum", policy_raw["quorum"]) if isinstance(policy_raw, dict) else \
        Policy(policy_raw)
    if "on_timeout" in d and "timeout" not in d:
        p.error((*path, "on_timeout"), "on_timeout needs a timeout", "add timeout: 3 business days")
    return ApprovalSpec(name, tuple(refs), policy, _duration(d.get("timeout")),
                        d.get("on_timeout", "remind" if "timeout" in d else None))


def _approver(p: Parsed, text: str, path: Path) -> ApproverRef | None:
    m = _REF.match(text)
    if m:
        p.ref(m.group(1), m.group(2), path)
        return ApproverRef(m.group(1), m.group(2))
    if text == "everyone":
        p.error(path, "everyone is not a person, group or role here",
                "name a person, group, role or an expression")
        return None
    expr = _expr(p, text, path)
    return ApproverRef("expression", text, expr) if expr else None


def _assignee(p: Parsed, text: str, path: Path) -> ApproverRef | None:
    ref = _approver(p, text, path)
    if ref is not None and ref.kind in ("group", "role"):
        p.error(path, f"a task is assigned to one person, not {text}",
                "use person:ID or an expression naming a person; queue names the group")
        return None
    return ref


def _task(p: Parsed, d: dict[str, Any], path: Path, name: str) -> TaskSpec:
    p.ref("group", d["queue"], (*path, "queue"))
    for i, g in enumerate(d.get("escalate_to", [])):
        p.ref("group", g, (*path, "escalate_to", i))
    outcomes = tuple(d.get("outcomes", ["done"]))
    for i, o in enumerate(outcomes):
        if o in RESERVED_TRIGGERS:
            p.error((*path, "outcomes", i), f"{o} is a reserved trigger name", "pick another word")
    fields = tuple(parse_field(p, f, (*path, "form", i), roots=frozenset({"form"}))
                   for i, f in enumerate(d.get("form", [])))
    _duplicates(p, [f.name for f in fields], lambda i: (*path, "form", i, "name"), "field name")
    names = [f.name for f in fields]
    for i, f in enumerate(fields):
        for key in ("show_if", "required_if"):
            expr = getattr(f, key)
            for unknown in sorted(expr.fields() - set(names)) if expr else ():
                p.error((*path, "form", i, key), f"{key} names unknown field {unknown}",
                        suggest(unknown, names))
    return TaskSpec(
        name=name, queue=d["queue"],
        title=_template(p, d["title"], (*path, "title")) if "title" in d else None,
        instructions=(_template(p, d["instructions"], (*path, "instructions"))
                      if "instructions" in d else None),
        escalate_to=tuple(d.get("escalate_to", [])),
        assignee=_assignee(p, d["assignee"], (*path, "assignee")) if "assignee" in d else None,
        sla=_duration(d.get("sla")), outcomes=outcomes, fields=fields)


def _action(p: Parsed, d: dict[str, Any], path: Path) -> Action:
    (kind, raw), = d.items()
    where = (*path, kind)
    if kind == "notify":
        spec = {"to": raw} if isinstance(raw, str) else raw
        to = spec["to"]
        if to not in _RECIPIENTS:
            m = _REF.match(to)
            if m and m.group(1) in ("person", "group"):
                p.ref(m.group(1), m.group(2), (*where, "to") if isinstance(raw, dict) else where)
            else:
                p.error((*where, "to") if isinstance(raw, dict) else where,
                        f"unknown recipient {to}",
                        f"use {', '.join(sorted(_RECIPIENTS))}, person:ID or group:ID")
        params: dict[str, Any] = {"to": to, "template": spec.get("template", "")}
        for key in ("subject", "message"):
            if key in spec:
                params[key] = _template(p, spec[key], (*where, key))
        return Action("notify", MappingProxyType(params))
    if kind == "webhook":
        body = tuple((k, _template(p, v, (*where, "body", k)) if isinstance(v, str) else v)
                     for k, v in raw.get("body", {}).items())
        return Action("webhook", MappingProxyType({
            "url": _template(p, raw["url"], (*where, "url")), "secret": raw.get("secret", ""),
            "body": body}))
    if kind == "set":
        return Action("set", MappingProxyType({
            "field": raw["field"], "value": _template(p, raw["value"], (*where, "value"))}))
    if kind == "create_asset":
        return Action("create_asset", MappingProxyType(
            {k: (_template(p, v, (*where, k)) if k != "type" else v) for k, v in raw.items()}))
    return Action("escalate", MappingProxyType({"what": raw}))


def _check_graph(p: Parsed, wf: Workflow) -> None:
    names = set(wf.state_names)
    for s in wf.states:
        base: Path = ("states", s.name)
        for i, r in enumerate(s.routes):
            if r.goto not in names:
                p.error((*base, "decide", i, "goto"), f"unknown state {r.goto}", suggest(r.goto, names))
        if s.next is not None and s.next not in names:
            p.error((*base, "next"), f"unknown state {s.next}", suggest(s.next, names))
        for trig, dest in s.on.items():
            if dest not in names:
                p.error((*base, "on", trig), f"unknown state {dest}", suggest(dest, names))
    if wf.start not in names:
        return
    reachable = wf.reachable()
    finishing = wf.can_finish()
    for s in wf.states:
        if s.name == CANCELLED and s.name not in wf.definition["data"]["states"]:
            continue
        if s.name not in reachable and s.name != CANCELLED:
            p.error(("states", s.name), f"state {s.name} cannot be reached from {wf.start}",
                    "route to it from another state or remove it", at_key=True)
        elif s.name not in finishing:
            p.error(("states", s.name), f"no end state can be reached from state {s.name}",
                    "every path must lead to a state with end", at_key=True)
