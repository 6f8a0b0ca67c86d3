"""`deskflow report`: the figures of /reports on the command line (engine.reports, docs/reports.md)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Any], Any]


def report_command(friendly: Decorator, db_option: Decorator, catalog_option: Decorator) -> click.Command:
    """The `deskflow report` command, with web.cli's error handling and options."""

    @click.command("report")
    @click.argument("name", required=False)
    @click.option("--from", "since", metavar="DATE", help="Records opened on or after DATE (YYYY-MM-DD).")
    @click.option("--to", "until", metavar="DATE", help="Records opened on or before DATE (YYYY-MM-DD).")
    @click.option("--kind", help="request, incident, problem or change.")
    @click.option("--item", help="A catalog item id (or an imported item).")
    @click.option("--group", help="An assignment group id.")
    @click.option("--priority", help="A priority id.")
    @click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text",
                  show_default=True)
    @db_option
    @catalog_option
    @friendly
    def report(name: str | None, since: str | None, until: str | None, kind: str | None,
               item: str | None, group: str | None, priority: str | None, fmt: str,
               db_url: str, catalog_path: Path) -> None:
        """Print the figures of the dashboards (all, or the one called NAME)."""
        from catalog.loader import load_valid_catalog
        from engine import reports
        from engine.db import make_engine, make_sessionmaker
        from engine.errors import InvalidInput

        if name is not None and name not in reports.FIGURES:
            raise InvalidInput(f"There is no report named {name[:40]!r}",
                               {"name": [f"One of {', '.join(reports.FIGURES)}."]})
        cat = load_valid_catalog(catalog_path)
        engine = make_engine(db_url)
        try:
            with make_sessionmaker(engine)() as session:
                f = reports.parse_filters(
                    session, {"from": since, "to": until, "kind": kind, "item": item,
                              "group": group, "priority": priority},
                    priorities=tuple(p.id for p in cat.settings.priorities),
                    items=tuple(i.id for i in cat.items))
                now = datetime.now(UTC)
                figures = ([reports.figure(session, name, f, now)] if name
                           else reports.all_figures(session, f, now))
        finally:
            engine.dispose()
        if fmt == "json":
            click.echo(json.dumps({fig.name: fig.as_dict() for fig in figures}, indent=2,
                                  default=str))
        elif fmt == "csv":
            out = csv.writer(sys.stdout)
            for fig in figures:
                if len(figures) > 1:
                    out.writerow([f"# {fig.name}"])
                out.writerow(fig.columns)
                out.writerows([["" if v is None else v for v in row] for row in fig.rows])
        else:
            for fig in figures:
                click.echo(_text(fig))

    return report


def _text(fig: Any) -> str:
    cells = [[str(c) for c in fig.columns]] + [["" if v is None else str(v) for v in row]
                                                for row in fig.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(fig.columns))]
    lines = [fig.title, "=" * len(fig.title)]
    for j, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    if len(cells) == 1:
        lines.append("(no data)")
    return "\n".join(lines) + "\n"
