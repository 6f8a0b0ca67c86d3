"""`deskflow diff`: what a catalog change means, between two directories or git revisions."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from catalog.errors import DeskflowError, SpecError, UsageError

Decorator = Callable[[Any], Any]
WORKING_TREE = "working tree"


class CatalogSideInvalid(DeskflowError):
    """One side of a diff does not validate: its errors, each with file:line:col."""

    def __init__(self, label: str, prefix: str, errors: tuple[SpecError, ...]) -> None:
        shown = "\n".join(prefix + e.render() for e in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{label}: catalog has {len(errors)} error{'s' * (len(errors) != 1)} "
                         f"(run deskflow validate on it):\n{shown}{more}")


def diff_command(friendly: Decorator) -> click.Command:
    """The `deskflow diff` command, with web.cli's error handling."""

    @click.command("diff")
    @click.argument("old", metavar="OLD")
    @click.argument("new", metavar="[NEW]", required=False)
    @click.option("--catalog", "catalog_path", default=".", show_default=True,
                  type=click.Path(file_okay=False, path_type=Path),
                  help="The catalog directory in a git repository, for revisions.")
    @click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
                  default="text", show_default=True,
                  help="For people, for a pull request, or for tools.")
    @click.option("--db", "db_url", metavar="URL",
                  help="List the open requests in this database each change touches (read-only).")
    @click.option("--exit-code", is_flag=True, help="Exit 1 when there are changes, as git diff.")
    @friendly
    def diff(old: str, new: str | None, catalog_path: Path, fmt: str, db_url: str | None,
             exit_code: bool) -> None:
        """Compare two catalogs: OLD NEW directories or revisions, REV..REV, or REV (to the files)."""
        from catalog.diff import diff_catalogs, load_pair
        from catalog.diff_render import render

        with ExitStack() as stack:
            if new is None and ".." in old:
                first, _, second = old.partition("..")
                if second.startswith(".") or not (first or second):
                    raise UsageError(f"{old}: give a range as OLD..NEW")
                sides = [_side(first or "HEAD", catalog_path, stack, range_=True),
                         _side(second or "HEAD", catalog_path, stack, range_=True)]
            elif new is None:
                _catalog_dir(catalog_path)
                prefix = "" if catalog_path == Path(".") else catalog_path.as_posix().rstrip("/") + "/"
                sides = [_side(old, catalog_path, stack), (catalog_path, WORKING_TREE, prefix)]
            else:
                sides = [_side(old, catalog_path, stack), _side(new, catalog_path, stack)]
            (old_dir, old_label, old_prefix), (new_dir, new_label, new_prefix) = sides
            before, after = load_pair(old_dir, new_dir)
            if before.errors:
                raise CatalogSideInvalid(old_label, old_prefix, before.errors)
            if after.errors:
                raise CatalogSideInvalid(new_label, new_prefix, after.errors)
            in_flight = None
            if db_url:
                from engine.checks import requests_in_flight

                in_flight = requests_in_flight(db_url)
            result = diff_catalogs(before, after, old_label, new_label, in_flight)
            click.echo(render(result, fmt), nl=fmt != "markdown")
        sys.exit(1 if exit_code and result else 0)

    return diff


def _side(arg: str, catalog: Path, stack: ExitStack, range_: bool = False) -> tuple[Path, str, str]:
    """(directory, label, error prefix) of one side: a directory, or a revision read from git."""
    from catalog.revisions import extract, repository_of

    path = Path(arg)
    if not range_ and path.is_dir():
        _catalog_dir(path)
        return path, arg, "" if arg == "." else path.as_posix().rstrip("/") + "/"
    if not range_ and path.exists():
        raise UsageError(f"{arg}: not a directory")
    if not range_ and (path.is_absolute() or arg.startswith(("./", "../"))):
        raise UsageError(f"{arg}: no such directory")  # a path, never a revision
    if not catalog.is_dir():
        raise UsageError(f"--catalog {catalog}: no such directory")
    if not range_:
        try:
            repository_of(catalog)
        except UsageError:
            raise UsageError(f"{arg}: neither a directory nor a revision ({catalog} is not in "
                             "a git repository)") from None
    into = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deskflow-diff-")))
    return extract(catalog, arg, into), arg, f"{arg}:"


def _catalog_dir(path: Path) -> None:
    if not path.is_dir():
        raise UsageError(f"{path}: no such directory")
    if not (path / "deskflow.yaml").is_file():
        raise UsageError(f"{path}: not a catalog directory (no deskflow.yaml)")
