"""`deskflow backup` and `deskflow restore` (engine.backup; docs/operations.md, Backups)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Any], Any]

_ATTACHMENTS_HELP = ("The attachments folder; default: DESKFLOW_ATTACHMENTS_DIR, else attachments/ "
                     "in the instance folder, as the app uses.")


def _attachments_root(given: Path | None) -> Path:
    if given is not None:
        return given
    import os

    from flask import Flask

    from web.config import store_for

    return store_for(os.environ, Flask("web").instance_path).root


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())


def backup_commands(friendly: Decorator, db_option: Decorator) -> list[click.Command]:
    """`deskflow backup` and `deskflow restore`, with web.cli's error handling and options."""

    @click.command("backup")
    @db_option
    @click.option("--to", "to", required=True, metavar="FILE",
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="The archive to write (.tar.gz); it must not exist yet.")
    @click.option("--attachments", "attachments", metavar="DIR",
                  type=click.Path(file_okay=False, path_type=Path), help=_ATTACHMENTS_HELP)
    @friendly
    def backup(db_url: str, to: Path, attachments: Path | None) -> None:
        """Write the database and the attachments to one archive, with a manifest of counts and
        SHA-256 sums (SQLite: online backup API; PostgreSQL: pg_dump)."""
        from engine.backup import backup as run
        from engine.backup import shown
        from engine.service import utcnow

        manifest = run(db_url, to, _attachments_root(attachments), utcnow())
        click.echo(f"backed up {shown(db_url)} at revision {manifest.alembic_revision} to {to}: "
                   f"{_counted(manifest.counts)}")

    @click.command("restore")
    @db_option
    @click.option("--from", "source", required=True, metavar="FILE",
                  type=click.Path(dir_okay=False, path_type=Path),
                  help="An archive written by deskflow backup.")
    @click.option("--attachments", "attachments", metavar="DIR",
                  type=click.Path(file_okay=False, path_type=Path), help=_ATTACHMENTS_HELP)
    @click.option("--force", is_flag=True,
                  help="Replace a database that is not empty (stop the app and workers first).")
    @friendly
    def restore(db_url: str, source: Path, attachments: Path | None, force: bool) -> None:
        """Check an archive against its manifest, then restore the database and attachments
        and compare the restored counts with the manifest."""
        from engine.backup import restore as run
        from engine.backup import shown
        from engine.migrate import schema_problem

        done = run(db_url, source, _attachments_root(attachments), force)
        m = done.manifest
        click.echo(f"restored {source} (made {m.created_at} by Deskflow {m.deskflow}, revision "
                   f"{m.alembic_revision}) into {shown(db_url)}; {done.files_written} "
                   "attachment file(s) written")
        click.echo(f"counts match the manifest: {_counted(done.counts)}")
        problem = schema_problem(db_url)
        if problem:
            click.echo(f"note: {problem}; run deskflow db upgrade before serving it")

    return [backup, restore]
