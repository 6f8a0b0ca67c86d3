"""`deskflow assets import`: CSV rows to configuration items, idempotent on the type's key.

Each row is checked like a CI form (`cmdb.checked`) in its own savepoint, so a broken
row is reported with its line number and never stops the good ones.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from sqlalchemy.orm import Session

from catalog.answers import from_form
from catalog.catalog import Catalog
from engine.cmdb import CIInput, checked, ci_type_of, find_by_key
from engine.errors import InvalidInput
from engine.models import Asset, AuditEvent

BUILT_IN_COLUMNS = ("name", "owner", "owner_group", "status")
MAX_ROWS = 100_000


@dataclass(slots=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def read_rows(stream: IO[str]) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and (line number, row) pairs of a CSV file."""
    reader = csv.DictReader(stream)
    header = list(reader.fieldnames or [])

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for row in reader:
            yield reader.line_num, {k: (v or "") for k, v in row.items() if k is not None}

    return header, rows()


def check_header(catalog: Catalog, type_id: str, header: list[str]) -> None:
    ci_type = ci_type_of(catalog, type_id)
    known = set(BUILT_IN_COLUMNS) | {f.name for f in ci_type.fields}
    unknown = [h for h in header if h not in known]
    if unknown:
        raise InvalidInput(f"unknown column {unknown[0]}", {"header": [
            f"Columns are {', '.join(sorted(known))}."]})
    if "name" not in header:
        raise InvalidInput("the file has no name column")
    if ci_type.key and ci_type.key not in header:
        raise InvalidInput(f"the file has no {ci_type.key} column (the key of {type_id})")


def import_rows(session: Session, catalog: Catalog, type_id: str,
                rows: Iterable[tuple[int, dict[str, str]]], now: datetime,
                progress: Callable[[], None] = lambda: None) -> ImportResult:
    """Create or update one CI per row; the caller commits (or rolls back for a dry run)."""
    ci_type = ci_type_of(catalog, type_id)
    result = ImportResult()
    for n, (line, row) in enumerate(rows):
        progress()
        if n >= MAX_ROWS:
            result.rejected.append((line, f"more than {MAX_ROWS} rows"))
            break
        given = CIInput(name=row.get("name", ""), status=row.get("status") or "in_use",
                        owner_id=row.get("owner") or None,
                        owner_group_id=row.get("owner_group") or None,
                        fields={f.name: from_form(f, row[f.name]) for f in ci_type.fields
                                if f.name in row})
        try:
            with session.begin_nested():
                values = checked(session, catalog, ci_type, given)
                found = find_by_key(session, type_id, values["key"]) if values["key"] else None
                if found is None:
                    ci = Asset(type=type_id, created_at=now, updated_at=now, **values)
                    session.add(ci)
                    session.flush()
                    _audit(session, ci, "ci_created", now)
                    result.created += 1
                    continue
                changed = sorted(k for k, v in values.items() if getattr(found, k) != v)
                if not changed:
                    result.unchanged += 1
                    continue
                for k in changed:
                    setattr(found, k, values[k])
                found.updated_at = now
                session.flush()
                _audit(session, found, "ci_updated", now, changed=changed)
                result.updated += 1
        except InvalidInput as exc:
            result.rejected.append((line, " ".join(
                f"{k}: {' '.join(v)}" for k, v in exc.fields.items()) or exc.message))
    return result


def _audit(session: Session, ci: Asset, event: str, now: datetime, **detail: Any) -> None:
    session.add(AuditEvent(request_id=None, actor_id=None, event=event,
                           detail={"asset": ci.id, "via": "import", **detail}, at=now))
