"""`deskflow migrate`: move the open requests of a workflow onto another of its versions."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from engine.workflow_migration import Move, Plan

Decorator = Callable[[Any], Any]


def migrate_command(friendly: Decorator, db_option: Decorator,
                    catalog_option: Decorator) -> click.Command:
    """The `deskflow migrate` command, with web.cli's error handling."""

    @click.command("migrate")
    @click.argument("workflow_id", metavar="WORKFLOW")
    @click.option("--to", "version", required=True, metavar="VERSION",
                  help="A stored version (its hash or a prefix, as diff shows) or current.")
    @click.option("--map", "pairs", multiple=True, metavar="OLD=NEW",
                  help="Move requests in state OLD to state NEW of the target (repeatable).")
    @click.option("--dry-run", is_flag=True, help="Print what would happen; change nothing.")
    @click.option("--skip-problems", is_flag=True,
                  help="Move the requests that can move; list the others and exit 1.")
    @click.option("--as", "actor", metavar="PERSON",
                  help="Who migrates (a person id, named on each request's timeline).")
    @db_option
    @catalog_option
    @friendly
    def migrate(workflow_id: str, version: str, pairs: tuple[str, ...], dry_run: bool,
                skip_problems: bool, actor: str | None, db_url: str, catalog_path: Path) -> None:
        """Move WORKFLOW's open requests onto version VERSION (dry run first)."""
        from catalog.errors import UsageError
        from catalog.loader import load_valid_catalog
        from engine.db import make_engine, make_sessionmaker
        from engine.service import utcnow
        from engine.unit import UnitRunner
        from engine.workflow_migration import (
            check_actor,
            parse_map,
            plan_migration,
            resolve_target,
        )
        from engine.workflow_migration import (
            migrate as run,
        )

        mapping = parse_map(pairs)
        catalog = load_valid_catalog(catalog_path)
        engine = make_engine(db_url)
        try:
            sessions = make_sessionmaker(engine)
            with sessions() as session:
                target = resolve_target(session, catalog, workflow_id, version, utcnow())
                if actor:
                    check_actor(session, actor)
                plan = plan_migration(session, workflow_id, target, mapping)
                if not dry_run and not actor:  # raised before the commit: nothing stored
                    raise UsageError("give --as PERSON: who migrates (named on each request's "
                                     "timeline)")
                if dry_run or not plan.moves:
                    session.rollback()  # `current` was stored for the plan only
                else:
                    session.commit()
            if not plan.moves:  # done already (a resumed run that finished): not a mistake
                click.echo(f"{workflow_id}: nothing to migrate (no open request is on "
                           f"another version than {plan.target[:8]})")
                return
            for line in render_plan(plan):
                click.echo(line)
            if dry_run:
                sys.exit(1 if plan.problems else 0)
            assert actor is not None
            moved = run(UnitRunner(sessions, lambda: catalog, utcnow), plan, actor, skip_problems,
                        on_moved=lambda m: click.echo(f"migrated {m.number}"))
            click.echo(f"{len(moved)} migrated, {len(plan.problems)} not migrated")
            if plan.problems:
                sys.exit(1)
        finally:
            engine.dispose()

    return migrate


def render_plan(plan: Plan) -> list[str]:
    """One line per request, then the summary."""
    return [render_move(m) for m in plan.moves] + [plan.summary()]


def render_move(m: Move) -> str:
    head = (f"{m.number}: {m.from_version[:8]} → {m.to_version[:8]}, "
            f"state {m.from_state} → {m.to_state}, {m.work}")
    return head + ("; PROBLEM: " + "; ".join(m.problems) if m.problems else "")
