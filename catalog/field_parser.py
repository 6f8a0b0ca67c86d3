"""One field of a form as written: its type, rules, choices, columns and default."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from catalog.fields import FILE_KINDS, value_errors
from catalog.models import CHOICE_TYPES, TEXT_TYPES, Choice, Field, FieldType
from catalog.parse import FORM_ROOTS, FieldSite, Parsed, Path
from catalog.patterns import PatternError, check_pattern

#: names the portal's forms use themselves
RESERVED_FIELD_NAMES = frozenset({"csrf_token", "requested_for"})
DEFAULT_ROOTS = frozenset({"requester"})


def parse_field(p: Parsed, d: dict[str, Any], path: Path, *, in_table: bool = False,
                roots: frozenset[str] = FORM_ROOTS) -> Field:
    """Build one field, reporting what is wrong with it on its own."""
    t = FieldType(d["type"])
    name = d["name"]
    if name in RESERVED_FIELD_NAMES:
        p.error((*path, "name"), f"field name {name} is reserved", "pick another name")
    label = d.get("label") or name.replace("_", " ").capitalize()
    show_if = p.expression(d["show_if"], (*path, "show_if"), roots) if "show_if" in d else None
    required_if = (p.expression(d["required_if"], (*path, "required_if"), roots)
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
                         ("min_items", {FieldType.MULTICHOICE, FieldType.TABLE, FieldType.FILE}),
                         ("max_items", {FieldType.MULTICHOICE, FieldType.TABLE, FieldType.FILE})):
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
            p.duplicates([c.name for c in columns], lambda i: (*path, "columns", i, "name"),
                        "column")
    elif "columns" in d:
        p.error((*path, "columns"), f"columns apply to table fields, not {t.value}")
    default, default_template = d.get("default"), None
    if isinstance(default, str) and "{{" in default:
        default_template = p.template(default, (*path, "default"), DEFAULT_ROOTS)
        default = None
    built = Field(
        name=name, type=t, label=label, required=d.get("required", False), required_if=required_if,
        show_if=show_if, default=default, default_template=default_template, help=d.get("help", ""),
        placeholder=d.get("placeholder", ""), pattern=pattern, min=lo, max=hi,
        min_length=d.get("min_length"), max_length=d.get("max_length"),
        min_items=d.get("min_items"), max_items=d.get("max_items"), choices=choices,
        choices_from=d.get("choices_from"), depends_on=d.get("depends_on"), columns=columns,
        ci_type=d.get("ci_type"), owned_by=d.get("owned_by"), multiple=d.get("multiple", False),
        accept=tuple(d.get("accept", ())))
    _asset(p, built, d, path, in_table)
    _file(p, built, d, path, in_table)
    if default is not None and t is not FieldType.FILE:
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


def _asset(p: Parsed, f: Field, d: dict[str, Any], path: Path, in_table: bool) -> None:
    """An asset field names its CI type; other fields name none."""
    if f.type is not FieldType.ASSET:
        for key in ("ci_type", "owned_by"):
            if key in d:
                p.error((*path, key), f"{key} applies to asset fields, not {f.type.value}")
        return
    if in_table:
        p.error((*path, "type"), "a table cannot contain an asset field")
    if f.ci_type is None:
        p.error(path, f"asset field {f.name} needs ci_type", "name a CI type from cmdb/",
                at_key=False)
    else:
        p.ref("CI type", f.ci_type, (*path, "ci_type"))


def _file(p: Parsed, f: Field, d: dict[str, Any], path: Path, in_table: bool) -> None:
    """A file field names the kinds it accepts, has no default, and is no table column."""
    if f.type is not FieldType.FILE:
        for key in ("multiple", "accept"):
            if key in d:
                p.error((*path, key), f"{key} applies to file fields, not {f.type.value}")
        return
    if in_table:
        p.error((*path, "type"), "a table cannot contain a file field",
                "put the file field next to the table")
    if "default" in d:
        p.error((*path, "default"), "a file field cannot have a default",
                "the person ordering attaches the file")
    if not f.multiple:
        for key in ("min_items", "max_items"):
            if key in d:
                p.error((*path, key), f"{key} applies to file fields with multiple: true")
    for i, kind in enumerate(f.accept):
        if kind not in FILE_KINDS:
            p.error((*path, "accept", i), f"unknown kind of file {kind}",
                    "kinds: " + ", ".join(FILE_KINDS))
    p.duplicates(list(f.accept), lambda i: (*path, "accept", i), "kind of file")


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
    p.duplicates([c.value for c in out], lambda i: (*path, "choices", i), "choice value")
    return out

