"""A history mapping: which column of an export becomes which of Deskflow's fields.

Checked like a catalog file (JSON Schema, then our own checks), every error at its
`file:line:col`; `check_header` then makes sure each column it names is in the CSV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog.errors import DeskflowError, SpecError, suggest
from catalog.source import SourceDoc, parse_yaml
from catalog.validation import schema_errors

SCHEMA = "history-mapping"
BUILT_IN = ("servicenow", "bpic2013")
HERE = Path(__file__).resolve().parent

#: each target field's type: how its cells are read
DATES = frozenset({"at", "opened_at", "resolved_at", "closed_at"})
PEOPLE = frozenset({"requester", "opened_by", "actor", "assignee", "resolved_by"})
GROUPS = frozenset({"assignment_group"})
BOOLS = frozenset({"made_sla"})
INTS = frozenset({"sequence", "reassignment_count", "reopen_count"})
#: engine.records.CHANNELS (tests/history checks they agree), named here so reading an export
#: needs none of the record use cases
CHANNELS = ("portal", "phone", "email", "walk-in", "chat", "monitoring", "api")
#: the longest value a text field takes (its column's width)
MAX_LENGTH = {"case": 100, "state": 64, "title": 200, "category": 120, "channel": 16,
              "priority": 32, "impact": 32, "urgency": 32, "tier": 16, "resolution_code": 64,
              "configuration_item": 200, "problem": 200, "change": 200, "caused_by": 200}


class UnusableInput(DeskflowError):
    """The mapping or the file cannot be imported at all (exit code 2): nothing was written."""

    exit_code = 2

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one target field's value comes from."""

    target: str
    columns: tuple[str, ...] = ()
    separator: str = " "
    value: str | None = None
    values: Mapping[str, str | None] = field(default_factory=dict)
    default: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryMapping:
    doc: SourceDoc
    id: str
    name: str
    record_type: str
    number_prefix: str
    encoding: str
    delimiter: str
    time_zone: str
    date_format: str
    null_values: frozenset[str]
    closed_states: frozenset[str]
    resolved_states: frozenset[str]
    ci_type: str
    people: Mapping[str, str]
    groups: Mapping[str, str]
    fields: Mapping[str, FieldSpec]
    extra: tuple[str, ...]

    @property
    def source(self) -> str:
        return self.id

    def with_time_zone(self, tz: str | None) -> HistoryMapping:
        """The mapping reading dates in `tz` (the --time-zone option) instead of its own."""
        if not tz:
            return self
        check_time_zone(tz, lambda message: UnusableInput([f"--time-zone: {message}"]))
        return replace(self, time_zone=tz)


def check_time_zone(tz: str, fail: Any) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"unknown time zone {tz} (use an IANA name such as Europe/Amsterdam)") from None


def built_in_path(name: str) -> Path:
    return HERE / f"{name}.yaml"


def read_checked(path: Path, shown: str | None, what: str, shape: str,
                 schema: str) -> Any:
    """Read a YAML config file of the history tools and check it against its JSON Schema:
    the parsed document, or UnusableInput listing every problem at file:line:col.
    `what` names the file when it cannot be read ("the mapping"); `shape` is the message
    when it is not a YAML mapping."""
    where = PurePosixPath(shown or str(path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnusableInput([f"{where}: cannot read {what}: {exc.strerror or exc}"]) from None
    try:
        doc = parse_yaml(raw, where)
    except SpecError as exc:
        raise UnusableInput([exc.render()]) from None
    if not isinstance(doc.data, dict):
        raise UnusableInput([f"{where}:1:1: {shape}"])
    errors = schema_errors(doc, schema)
    if errors:
        raise UnusableInput([e.render() for e in sorted(errors, key=SpecError.sort_key)])
    return doc


def load_mapping(path: Path, shown: str | None = None) -> HistoryMapping:
    """Read and check a mapping file; raise UnusableInput listing every problem at file:line:col."""
    doc = read_checked(path, shown, "the mapping",
                       "a mapping file is a YAML mapping (kind: HistoryMapping)", SCHEMA)
    data: dict[str, Any] = doc.data
    problems: list[SpecError] = []
    tz = data.get("time_zone", "UTC")
    try:
        check_time_zone(tz, ValueError)
    except ValueError as exc:
        problems.append(doc.error(["time_zone"], str(exc)))
    date_format = data.get("date_format", "iso")
    if date_format != "iso" and "%" not in date_format:
        problems.append(doc.error(["date_format"], f"{date_format} is neither iso nor a strptime "
                                  "format", "e.g. %d/%m/%Y %H:%M"))
    specs = {target: _spec(target, given) for target, given in data["fields"].items()}
    for target, spec in specs.items():
        if spec.values and target in DATES | INTS | BOOLS:
            problems.append(doc.error(["fields", target, "values"],
                                      f"{target} is read as a {_kind(target)}; values do not apply",
                                      at_key=True))
    if problems:
        raise UnusableInput([e.render() for e in problems])
    default_prefix = "".join(c for c in data["id"].upper() if c.isalnum())[:8] + "-"
    return HistoryMapping(
        doc=doc, id=data["id"], name=data.get("name", data["id"]),
        record_type=data.get("record_type", "incident"),
        number_prefix=data.get("number_prefix", default_prefix),
        encoding=data.get("encoding", "utf-8-sig"), delimiter=data.get("delimiter", ","),
        time_zone=tz, date_format=date_format,
        null_values=frozenset(data.get("null_values", ())),
        closed_states=frozenset(data.get("closed_states", ())),
        resolved_states=frozenset(data.get("resolved_states", ())),
        ci_type=data.get("ci_type", "application"),
        people=dict(data.get("people", {})), groups=dict(data.get("groups", {})),
        fields=specs, extra=tuple(data.get("extra", ())))


def _kind(target: str) -> str:
    return ("date" if target in DATES else "whole number" if target in INTS
            else "true/false value")


def _spec(target: str, given: Any) -> FieldSpec:
    if isinstance(given, str):
        return FieldSpec(target, (given,))
    columns = tuple(given.get("columns", ())) or ((given["column"],) if "column" in given else ())
    return FieldSpec(target, columns, given.get("separator", " "), given.get("value"),
                     dict(given.get("values", {})), given.get("default"))


def check_header(mapping: HistoryMapping, header: Sequence[str], file: str) -> None:
    """Every column the mapping names must be in the CSV header (UnusableInput otherwise)."""
    present = set(header)
    problems: list[SpecError] = []
    for target, spec in mapping.fields.items():
        raw = mapping.doc.data["fields"][target]
        for i, column in enumerate(spec.columns):
            if column in present:
                continue
            if isinstance(raw, str):
                path: list[str | int] = ["fields", target]
            elif "columns" in raw:
                path = ["fields", target, "columns", i]
            else:
                path = ["fields", target, "column"]
            problems.append(mapping.doc.error(path, f"column {column} is not in the header of "
                                              f"{file}", suggest(column, header)))
    for i, column in enumerate(mapping.extra):
        if column not in present:
            problems.append(mapping.doc.error(["extra", i], f"column {column} is not in the header "
                                              f"of {file}", suggest(column, header)))
    if problems:
        raise UnusableInput([e.render() for e in problems])
