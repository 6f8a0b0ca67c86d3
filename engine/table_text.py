"""Table answers as templates print them: `username: alice_j, access: read; username: bob, ...`.

A table answer is a list of row mappings; printed as it is, a `{{ form.accounts }}`
placeholder would show Python's `[{'username': 'alice_j', ...}]`. `readable` gives
templates the same rows as `Rows`, which expressions still read as a list of rows
(`len(form.accounts)`, `form.accounts[0].username`) and which prints each row as
`column: value` pairs joined by `, `, rows joined by `; `, empty cells left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

from catalog.fields import is_empty

ROW_SEPARATOR = "; "
CELL_SEPARATOR = ", "
#: between the values of a multichoice cell, so they do not read as separate cells
VALUE_SEPARATOR = " / "


class Row(dict[str, Any]):
    """One row: a mapping for expressions, `column: value, ...` when printed."""

    __slots__ = ()

    def __str__(self) -> str:
        return CELL_SEPARATOR.join(f"{k}: {_cell(v)}" for k, v in self.items() if not is_empty(v))


class Rows(Sequence[Row]):
    """A table answer: a sequence of rows for expressions, readable text when printed."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._rows = [Row(r) for r in rows]

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        return self._rows[index]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rows):
            return self._rows == other._rows
        return isinstance(other, list | tuple) and self._rows == list(other)

    __hash__ = None  # type: ignore[assignment]  # as a list: compared by value, not hashable

    def __str__(self) -> str:
        return ROW_SEPARATOR.join(text for text in map(str, self._rows) if text)


def readable(names: Mapping[str, Any]) -> dict[str, Any]:
    """Template names with every table answer under `form` as `Rows`."""
    form = names.get("form")
    if not isinstance(form, Mapping):
        return dict(names)
    return {**names, "form": {k: Rows(v) if _is_table(v) else v for k, v in form.items()}}


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, Mapping) for r in value)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return VALUE_SEPARATOR.join(_cell(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
