"""`deskflow import`: history exported from another service desk (engine.history, docs/import.md)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Any], Any]
#: engine.history.mapping.BUILT_IN, named here so `deskflow --help` loads no importer code
BUILT_IN = ("servicenow", "bpic2013")
EXIT_SKIPPED = 1


def import_commands(friendly: Decorator, db_option: Decorator, catalog_option: Decorator) -> click.Group:
    """The `deskflow import` group, with web.cli's error handling and options (passed in, so
    this module does not import web.cli, which registers the group)."""

    @click.group("import")
    def import_group() -> None:
        """Import the history of another service desk from a CSV export (plain or zipped)."""

    def options(fn: Any) -> Any:
        fn = click.option("--dry-run", is_flag=True,
                          help="Read, check and count everything; write nothing.")(fn)
        fn = click.option("--time-zone", "time_zone", default=None, metavar="TZ",
                          help="The time zone of dates without an offset (default: the mapping's).")(fn)
        fn = click.option("--stop-after", "stop_after", type=click.IntRange(min=1), default=None,
                          metavar="N", help="Stop after the first N cases (run again to continue).")(fn)
        fn = click.option("--progress/--no-progress", "show_progress", default=None,
                          help="A progress bar on stderr (default: when stderr is a terminal).")(fn)
        return catalog_option(db_option(fn))

    @import_group.command("csv")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--mapping", "mapping_file", required=True, metavar="MAP.yaml",
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="The mapping of the export's columns (docs/import.md).")
    @options
    @friendly
    def import_csv(file: Path, mapping_file: Path, **kw: Any) -> None:
        """Import FILE (CSV, or a zip holding one) with the column mapping MAP.yaml."""
        from engine.history.mapping import load_mapping

        _run(file, load_mapping(mapping_file), **kw)

    def built_in(name: str) -> None:
        def command(file: Path, **kw: Any) -> None:
            from engine.history.mapping import built_in_path, load_mapping

            _run(file, load_mapping(built_in_path(name), f"{name}.yaml"), **kw)

        command.__doc__ = f"Import FILE with the built-in {name} mapping (docs/import.md)."
        import_group.command(name)(click.argument(
            "file", type=click.Path(dir_okay=False, path_type=Path))(options(friendly(command))))

    for name in BUILT_IN:
        built_in(name)
    return import_group


def _run(file: Path, mapping: Any, *, db_url: str, catalog_path: Path, dry_run: bool,
         time_zone: str | None, stop_after: int | None, show_progress: bool | None) -> None:
    from catalog.loader import load_valid_catalog
    from engine.db import make_engine
    from engine.history.importer import run_import
    from engine.history.mapping import CHANNELS, UnusableInput
    from engine.history.reader import read_cases

    started = time.monotonic()
    mapping = mapping.with_time_zone(time_zone)
    catalog = load_valid_catalog(catalog_path)
    if catalog.ci_type(mapping.ci_type) is None and "configuration_item" in mapping.fields:
        raise UnusableInput([f"{mapping.doc.path}: ci_type: the catalog has no CI type "
                             f"{mapping.ci_type}"])
    priorities = {p.id for p in catalog.settings.priorities}

    def priority(value: Any) -> str | None:
        if value in priorities:
            return None
        return f"{value!r} is not a priority of the catalog ({', '.join(sorted(priorities))})"

    def channel(value: Any) -> str | None:
        return None if value in CHANNELS else f"{value!r} is not one of {', '.join(CHANNELS)}"

    read = read_cases(file, mapping, str(file), {"priority": priority, "channel": channel})
    visible = sys.stderr.isatty() if show_progress is None else show_progress
    engine = make_engine(db_url)
    writing = time.monotonic()
    try:
        total = min(len(read.cases), stop_after or len(read.cases))
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            bar.update(n)

        bar: Any
        with click.progressbar(length=total, label=f"importing {mapping.id}", file=sys.stderr,
                               show_eta=True, show_percent=True, hidden=not visible,
                               item_show_func=lambda _: _rate(done[0], writing)) as bar:
            summary = run_import(engine, mapping, read, datetime.now(UTC), dry_run=dry_run,
                                 stop_after=stop_after, progress=advance)
    finally:
        engine.dispose()
    seconds = time.monotonic() - started
    head = "dry run, nothing written: " if dry_run else ""
    click.echo(f"{head}{summary.cases} cases from {summary.rows_read} rows of {file} "
               f"({mapping.id}) in {seconds:.1f} s")
    click.echo(f"records: {summary.created} created, {summary.updated} updated, "
               f"{summary.unchanged} unchanged; {summary.events} timeline events written")
    click.echo(f"directory: {summary.people_created} people and {summary.groups_created} groups "
               f"created; configuration items: {summary.cis_created} created")
    if summary.stopped_after:
        click.echo(f"stopped after {summary.stopped_after} cases: run the same command again "
                   "to continue")
    click.echo(f"rows skipped: {len(summary.skipped)}")
    for line, reason in summary.skipped:
        click.echo(f"{file}:{line}: {reason}")
    if summary.skipped:
        sys.exit(EXIT_SKIPPED)


def _rate(done: int, started: float) -> str:
    elapsed = max(time.monotonic() - started, 1e-6)
    return f"{done / elapsed:.0f} cases/s"
