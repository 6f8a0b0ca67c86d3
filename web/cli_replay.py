"""`deskflow replay`: another desk's history driven through a workflow (engine.history.replay,
docs/import.md "Replay")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Any], Any]
#: engine.history.mapping.BUILT_IN, named here so `deskflow --help` loads no replay code
BUILT_IN = ("servicenow", "bpic2013")


def replay_command(friendly: Decorator, catalog_option: Decorator) -> click.Command:
    """The `deskflow replay` command, with web.cli's error handling and catalog option."""

    @click.command("replay")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--mapping", "mapping_name", required=True, metavar="MAP.yaml",
                  help="The column mapping of the export, or a built-in one: "
                  f"{', '.join(BUILT_IN)}.")
    @click.option("--item", "item_id", required=True, metavar="ITEM",
                  help="The catalog item whose workflow replays the cases.")
    @click.option("--states", "states_file", default=None, metavar="STATES.yaml",
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="Source state -> workflow state (default: the shipped one of a built-in "
                  "mapping).")
    @click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
                  show_default=True, help="The report's format.")
    @click.option("--out", "out", default=None, type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the report to this file (default: standard output).")
    @click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
                  help="Replay only the first N cases (by case number).")
    @catalog_option
    @friendly
    def replay(file: Path, mapping_name: str, item_id: str, states_file: Path | None, fmt: str,
               out: Path | None, limit: int | None, catalog_path: Path) -> None:
        """Replay the cases of FILE (CSV, or a zip of one) through ITEM's workflow and report
        how many it accepts, the transitions it refuses and where cases wait."""
        from catalog.errors import UsageError, suggest
        from catalog.loader import load_valid_catalog
        from engine.businesstime import BusinessCalendar
        from engine.history.mapping import built_in_path, load_mapping
        from engine.history.reader import read_cases
        from engine.history.replay import built_in_states, load_states, render_text, replay
        from engine.history.replay_html import render_html
        from engine.lifecycle import DEFAULT_REOPEN_WINDOW

        if mapping_name in BUILT_IN:
            mapping = load_mapping(built_in_path(mapping_name), f"{mapping_name}.yaml")
        else:
            path = Path(mapping_name)
            if not path.is_file():
                raise UsageError(f"--mapping: no file {mapping_name} and no built-in mapping of "
                                 f"that name ({', '.join(BUILT_IN)})")
            mapping = load_mapping(path)
        catalog = load_valid_catalog(catalog_path)
        item = catalog.item(item_id)
        if item is None:
            raise UsageError(f"--item: no catalog item {item_id}"
                             f"{_hint(suggest(item_id, [i.id for i in catalog.items]))}")
        workflow = catalog.workflow(item.workflow)
        assert workflow is not None
        if states_file is None:
            found = built_in_states(mapping.id, workflow.id) if mapping_name in BUILT_IN else None
            if found is None:
                raise UsageError(f"--states: no shipped state mapping for {mapping.id} and "
                                 f"workflow {workflow.id}; give one with --states STATES.yaml")
            states = load_states(found, workflow, f"{found.name}")
            shown = found.name
        else:
            states = load_states(states_file, workflow)
            shown = str(states_file)
        calendar = BusinessCalendar(catalog.settings)
        window = catalog.settings.reopen_window or DEFAULT_REOPEN_WINDOW
        read = read_cases(file, mapping, str(file))
        report = replay(read, mapping, states, workflow, item_id, shown,
                        lambda at: calendar.add(at, window), limit)
        if fmt == "json":
            text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        elif fmt == "html":
            text = render_html(report)
        else:
            text = render_text(report)
        if out is None:
            click.echo(text, nl=False)
        else:
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
            click.echo(f"report written to {out}")

    return replay


def _hint(hint: str) -> str:
    return f" ({hint})" if hint else ""
