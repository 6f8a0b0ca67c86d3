"""The error root, the location every catalog error points at, and did-you-mean hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath


class DeskflowError(Exception):
    """Base of every error Deskflow raises on purpose."""

    exit_code = 1


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A 1-based line and column in a catalog file, relative to the catalog root."""

    file: PurePosixPath
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SpecError(DeskflowError):
    """A catalog file is malformed or contradicts another one."""

    def __init__(
        self,
        where: Location,
        key: str,
        message: str,
        hint: str = "",
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.where, self.key, self.message, self.hint = where, key, message, hint
        self.severity = severity
        super().__init__(self.render())

    def render(self, prefix: str = "") -> str:
        """Return `path:line:col: key: message (hint)`, the path under `prefix`."""
        where = f"{prefix.rstrip('/')}/{self.where}" if prefix else str(self.where)
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (str(self.where.file), self.where.line, self.where.col, self.message)


class CatalogInvalid(DeskflowError):
    """A catalog has errors; they are all in `errors`."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = errors
        head = "\n".join(e.render() for e in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"catalog has {len(errors)} error(s):\n{head}{more}")


class UsageError(DeskflowError):
    """The command was called wrongly (missing path, unknown option value)."""

    exit_code = 2


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
