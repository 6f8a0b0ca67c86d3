"""README's commands table lists every command and every option of the `deskflow` CLI."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from web.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def commands(group: click.Group, prefix: str = "deskflow") -> dict[str, click.Command]:
    """Every runnable command under `group`, by its full name (`deskflow db upgrade`)."""
    found: dict[str, click.Command] = {}
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found |= commands(command, f"{prefix} {name}")
        else:
            found[f"{prefix} {name}"] = command
    return found


def first_cells() -> list[str]:
    """The command cell of each row of README's commands table, without its backticks."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("\n## Commands\n"):].split("\n## ", 2)[1]
    return [line.split("` |", 1)[0].removeprefix("| `") for line in table.splitlines()
            if line.startswith("| `deskflow ")]


def row_of(name: str) -> str | None:
    return next((c for c in first_cells() if c == name or c.startswith(f"{name} ")), None)


def long_options(command: click.Command) -> list[str]:
    return [opt for p in command.params if isinstance(p, click.Option) and p.name != "help"
            for opt in p.opts if opt.startswith("--")]


@pytest.mark.parametrize("name", sorted(commands(main)))
def test_every_option_of_every_command_is_on_its_row_of_the_readme(name):
    row = row_of(name)
    assert row is not None, f"README's commands table has no row for {name}"
    missing = [opt for opt in long_options(commands(main)[name])
               if not re.search(rf"{re.escape(opt)}(?![\w-])", row)]
    assert missing == []


def test_every_row_of_the_readme_names_a_command_of_the_cli():
    names = commands(main)
    assert [c for c in first_cells()
            if not any(c == n or c.startswith(f"{n} ") for n in names)] == []


def test_the_walk_finds_nested_commands_and_their_options():
    found = commands(main)
    assert "deskflow db upgrade" in found
    assert long_options(found["deskflow simulate"]) == [
        "--as", "--set", "--reject", "--outcome", "--strict", "--scenario", "--at", "--catalog"]
