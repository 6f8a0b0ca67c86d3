"""Read an export (a CSV file, or a zip holding one) into cases of typed rows.

The whole file is read and checked before anything is written: a truncated zip or a
header missing a column stops the import with nothing done (UnusableInput). A bad row
(undecodable bytes, a malformed date, a wrong value, a wrong number of cells) is skipped
with its line and reason; its case keeps its good rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.history.mapping import (
    BOOLS,
    DATES,
    INTS,
    MAX_LENGTH,
    FieldSpec,
    HistoryMapping,
    UnusableInput,
    check_header,
)

#: bytes the decoder could not read, kept as lone surrogates (errors="surrogateescape")
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)
TRUE, FALSE = frozenset({"true", "yes", "1", "y"}), frozenset({"false", "no", "0", "n"})
MAX_CELL = 10_000
csv.field_size_limit(MAX_CELL * 10)


@dataclass(slots=True)
class Row:
    """One good row: its line, typed values by target field, extra columns, raw cells."""

    line: int
    values: dict[str, Any]
    extra: dict[str, str]
    cells: tuple[str, ...]

    @property
    def at(self) -> datetime:
        at: datetime = self.values["at"]
        return at


@dataclass(slots=True)
class Case:
    external_id: str
    rows: list[Row] = field(default_factory=list)

    def ordered(self) -> list[Row]:
        """Rows in the order they happened: by sequence (when mapped), then time, then line."""
        return sorted(self.rows, key=lambda r: (r.values.get("sequence") or 0, r.at, r.line))

    def digest(self, mapping_text: str) -> str:
        """Changes when a row of the case or the mapping changes (unchanged cases are skipped)."""
        h = hashlib.sha256(mapping_text.encode("utf-8", "surrogateescape"))
        for r in sorted(self.rows, key=lambda r: r.cells):
            h.update("\x1f".join(r.cells).encode("utf-8", "surrogateescape") + b"\x1e")
        return h.hexdigest()


@dataclass(slots=True)
class ReadResult:
    file: str
    header: list[str]
    cases: dict[str, Case]
    rows_read: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def read_bytes(path: Path) -> bytes:
    """The CSV's bytes: the file, or the one CSV member of a zip archive."""
    try:
        is_zip = path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)
        if not is_zip:
            return path.read_bytes()
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()
                       and not i.filename.startswith("__MACOSX/")]
            if len(members) != 1:
                names = ", ".join(i.filename for i in members) or "none"
                raise UnusableInput([f"{path}: a zip archive must hold exactly one CSV file "
                                     f"(it holds: {names})"])
            return archive.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise UnusableInput([f"{path}: not a readable zip archive (truncated or damaged: "
                             f"{exc})"]) from None
    except OSError as exc:
        raise UnusableInput([f"{path}: cannot read the file: {exc.strerror or exc}"]) from None


def read_cases(path: Path, mapping: HistoryMapping, shown: str | None = None,
               checks: Mapping[str, Callable[[Any], str | None]] | None = None) -> ReadResult:
    """Every good row of the export grouped by case, and the skipped rows with reasons.

    `checks[target](value)` may refuse a typed value (e.g. a priority the catalog lacks)
    with a reason.
    """
    file = shown or str(path)
    text = read_bytes(path).decode(mapping.encoding, errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=mapping.delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise UnusableInput([f"{file}: the file is empty (no header line)"]) from None
    except csv.Error as exc:
        raise UnusableInput([f"{file}:1: the header line is not CSV: {exc}"]) from None
    header = [h.strip() for h in header]
    check_header(mapping, header, file)
    index = {name: i for i, name in enumerate(header)}
    tz = ZoneInfo(mapping.time_zone)
    result = ReadResult(file, header, {})
    readers = [(spec, _cell_reader(spec, index, mapping), _typer(spec.target, mapping, tz),
                (checks or {}).get(spec.target)) for spec in mapping.fields.values()]
    extra = [(name, index[name]) for name in mapping.extra]
    for line, cells, error in _rows(reader):
        if cells is None:  # a CSV error: the line is reported, reading goes on
            result.skipped.append((line, error))
            continue
        if not cells or cells == [""]:
            continue
        result.rows_read += 1
        problems: list[str] = []
        if _UNDECODABLE.search("".join(cells)):
            result.skipped.append((line, f"undecodable bytes (the file is read as {mapping.encoding})"))
            continue
        if len(cells) != len(header):
            result.skipped.append((line, f"{len(cells)} cells where the header has {len(header)}"))
            continue
        values: dict[str, Any] = {}
        for spec, cell, typed, check in readers:
            raw = cell(cells)
            try:
                value = typed(raw)
                reason = check(value) if check is not None and value is not None else None
            except ValueError as exc:
                problems.append(f"{_label(spec)}: {exc}")
                continue
            if reason:
                problems.append(f"{_label(spec)}: {reason}")
            values[spec.target] = value
        for target in ("case", "at", "state"):
            if target in values and values[target] is None:
                problems.append(f"{target}: empty")
        if problems:
            result.skipped.append((line, "; ".join(problems)))
            continue
        case_id = values["case"]
        case = result.cases.get(case_id)
        if case is None:
            case = result.cases[case_id] = Case(case_id)
        case.rows.append(Row(line, values, {n: cells[i] for n, i in extra
                                            if cells[i] and cells[i] not in mapping.null_values},
                             tuple(cells)))
    result.skipped.sort()
    return result


def _rows(reader: Any) -> Iterator[tuple[int, list[str] | None, str]]:
    """(first line, cells, "") of each row; a row the csv module cannot read is (line, None, why)."""
    last = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield last + 1, None, f"not CSV: {exc}"
        else:
            yield last + 1, cells, ""
        last = reader.line_num


def _label(spec: FieldSpec) -> str:
    """The column(s) a value came from, as a skipped row's reason names them."""
    return "+".join(spec.columns) or spec.target


def _cell_reader(spec: FieldSpec, index: dict[str, int],
                 mapping: HistoryMapping) -> Callable[[list[str]], str | None]:
    nulls = mapping.null_values
    positions = [index[c] for c in spec.columns]

    def clean(text: str | None) -> str | None:
        if text is None:
            return None
        text = text.strip()
        return None if not text or text in nulls else text

    if len(positions) == 1 and not spec.values and spec.default is None:
        only = positions[0]

        def plain(cells: list[str]) -> str | None:
            text = cells[only].strip()
            return None if not text or text in nulls else text

        return plain

    def read(cells: list[str]) -> str | None:
        if spec.value is not None:
            raw = clean(spec.value)
        elif len(positions) == 1:
            raw = clean(cells[positions[0]])
        else:
            parts = [p for p in (clean(cells[i]) for i in positions) if p is not None]
            raw = spec.separator.join(parts) if parts else None
        if raw is not None and raw in spec.values:
            raw = spec.values[raw]
        if raw is None and spec.default is not None:
            raw = spec.default
        return raw

    return read


#: strptime directives read as plain numbers by `_numeric_format`: name and digits allowed
_NUMERIC = {"d": ("day", "1,2"), "m": ("month", "1,2"), "Y": ("year", "4"), "H": ("hour", "1,2"),
            "M": ("minute", "1,2"), "S": ("second", "1,2")}


def _numeric_format(fmt: str) -> Callable[[str], datetime] | None:
    """A parser for a format made only of %d %m %Y %H %M %S and literal characters (such as
    ServiceNow's `%d/%m/%Y %H:%M`), several times faster than strptime on a large export and
    as strict: the whole text must match, and datetime() refuses a day or month out of range
    (ValueError, as strptime). None for any other format (strptime reads it)."""
    pattern, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            spec = _NUMERIC.get(fmt[i + 1:i + 2])
            if spec is None:
                return None
            pattern.append(f"(?P<{spec[0]}>[0-9]{{{spec[1]}}})")
            i += 2
        else:
            pattern.append(re.escape(fmt[i]))
            i += 1
    if any(f"%{k}" not in fmt for k in "dmY"):
        return None
    compiled = re.compile("".join(pattern), re.ASCII)

    def quick(raw: str) -> datetime:
        found = compiled.fullmatch(raw)
        if found is None:
            raise ValueError(raw)
        parts = {k: int(v) for k, v in found.groupdict().items()}
        return datetime(parts["year"], parts["month"], parts["day"], parts.get("hour", 0),
                        parts.get("minute", 0), parts.get("second", 0))

    return quick


def _typer(target: str, mapping: HistoryMapping, tz: tzinfo) -> Callable[[str | None], Any]:
    if target in DATES:
        fmt = mapping.date_format
        shown = "an ISO 8601 date" if fmt == "iso" else fmt
        seen: dict[str, datetime] = {}  # rows of a case repeat their dates

        def date(raw: str | None) -> datetime | None:
            if raw is None:
                return None
            found = seen.get(raw)
            if found is not None:
                return found
            seen[raw] = found = parse(raw)
            return found

        quick = _numeric_format(fmt)

        def parse(raw: str) -> datetime:
            try:
                found = datetime.fromisoformat(raw) if fmt == "iso" else \
                    quick(raw) if quick is not None else datetime.strptime(raw, fmt)
            except ValueError:
                raise ValueError(f"malformed date {raw!r} (expected {shown})") from None
            if found.tzinfo is None:
                found = found.replace(tzinfo=tz)
            return found.astimezone(UTC)

        return date
    if target in INTS:
        def whole(raw: str | None) -> int | None:
            if raw is None:
                return None
            if not _DIGITS.fullmatch(raw):
                raise ValueError(f"{raw!r} is not a whole number")
            return int(raw)

        return whole
    if target in BOOLS:
        def boolean(raw: str | None) -> bool | None:
            if raw is None:
                return None
            word = raw.lower()
            if word in TRUE or word in FALSE:
                return word in TRUE
            raise ValueError(f"{raw!r} is neither true nor false")

        return boolean
    limit = MAX_LENGTH.get(target, 200)

    def text(raw: str | None) -> str | None:
        if raw is not None and len(raw) > limit:
            raise ValueError(f"longer than {limit} characters")
        return raw

    return text
