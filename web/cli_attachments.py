"""`deskflow attachments prune`: stored files no live attachment names (engine.attachment_prune)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

Decorator = Callable[[Any], Any]


def attachments_commands(friendly: Decorator, db_option: Decorator) -> click.Group:
    """The `deskflow attachments` group, with web.cli's error handling and options."""

    @click.group("attachments")
    def attachments() -> None:
        """The attachment store (docs/attachments.md)."""

    @attachments.command("prune")
    @click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
    @click.option("--min-age", default=60.0, show_default=True, type=click.FloatRange(min=0),
                  metavar="MINUTES", help="Leave files younger than this alone (their row may "
                  "not be committed yet).")
    @db_option
    @friendly
    def prune(dry_run: bool, min_age: float, db_url: str) -> None:
        """Remove stored files that no live attachment names; print each and the bytes freed."""
        import os

        from flask import Flask

        from engine.attachment_prune import prune_store
        from engine.db import make_engine, make_sessionmaker
        from web.config import store_for

        store = store_for(os.environ, Flask("web").instance_path)
        engine = make_engine(db_url)
        try:
            with make_sessionmaker(engine)() as session:
                pruned = prune_store(session, store, min_age * 60, dry_run)
        finally:
            engine.dispose()
        verb = "would remove" if dry_run else "removed"
        for path, size in pruned.files:
            click.echo(f"{verb} {path} ({size} bytes)")
        click.echo(f"{'dry run: ' if dry_run else ''}{len(pruned.files)} file(s) {verb}, "
                   f"{pruned.freed} bytes {'to free' if dry_run else 'freed'} in {store.root}")

    return attachments
