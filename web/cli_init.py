"""`deskflow init`: a new catalog repository that validates, with editor, pre-commit and CI set up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Any], Any]


def init_command(friendly: Decorator) -> click.Command:
    """The `deskflow init` command, with web.cli's error handling."""

    @click.command("init")
    @click.argument("directory", metavar="[DIR]", default=".",
                    type=click.Path(path_type=Path))
    @click.option("--force", is_flag=True,
                  help="Add the files missing from a directory that is not empty; "
                  "existing files are never overwritten.")
    @click.option("--no-git", is_flag=True, help="Do not run git init.")
    @click.option("--deskflow-url", metavar="URL", default=None,
                  help="The git repository your organisation installs Deskflow from, for the "
                  "pre-commit hooks and CI (default: a placeholder to edit).")
    @click.option("--update-schemas", is_flag=True,
                  help="Only refresh .deskflow/schemas/ in an existing catalog with this "
                  "Deskflow's JSON Schemas.")
    @friendly
    def init(directory: Path, force: bool, no_git: bool, deskflow_url: str | None,
             update_schemas: bool) -> None:
        """Create a catalog repository in DIR (default: here): a catalog that validates,
        a scenario test, editor schemas, pre-commit hooks and a CI workflow."""
        from catalog.errors import UsageError
        from catalog.scaffold import DEFAULT_URL, scaffold_catalog
        from catalog.scaffold import update_schemas as refresh

        if update_schemas:
            if force or no_git or deskflow_url:
                raise UsageError("--update-schemas only refreshes the schemas: "
                                 "it takes no other option")
            changed, same = refresh(directory)
            for path in changed:
                click.echo(f"updated {directory / path}")
            click.echo(f"{len(changed)} schema{'s' * (len(changed) != 1)} updated, "
                       f"{len(same)} already current")
            return
        if deskflow_url is not None and not deskflow_url.startswith(("https://", "ssh://", "git@")):
            raise UsageError(f"--deskflow-url {deskflow_url}: give a git URL (https://..., "
                             "ssh://... or git@...)")
        url = (deskflow_url or DEFAULT_URL).rstrip("/").removesuffix(".git")
        done = scaffold_catalog(directory, force=force, git=not no_git, deskflow_url=url)
        click.echo(f"Created a catalog repository in {directory}: {len(done.written)} files "
                   f"written, {len(done.skipped)} skipped; git: {done.git}.")
        for path in done.skipped:
            click.echo(f"  skipped (exists) {path}")
        placeholder = " (replace YOUR-ORG: --deskflow-url)" if deskflow_url is None else ""
        steps = [
            *([f"cd {directory}"] if directory != Path(".") else []),
            "deskflow validate               # every file, and across files",
            "deskflow test                   # the scenarios in tests/",
            f"pre-commit install              # both before each commit{placeholder}",
            "git add . && git commit -m 'A new catalog'",
            "deskflow db upgrade && deskflow directory sync && deskflow password ada",
            "deskflow serve --insecure-cookies  # try it on this machine, signed in as ada",
        ]
        click.echo("Next steps:")
        for step in steps:
            click.echo(f"  {step}")
        click.echo("Then edit items/ and workflows/; docs/changing-the-catalog.md walks a change "
                   "from branch to reload.")

    return init
