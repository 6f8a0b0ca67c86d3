"""`deskflow test`: run a catalog's scenario tests (tests/*.yaml) on the in-memory engine."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree as ET

import click

from catalog.errors import DeskflowError, SpecError, UsageError

Decorator = Callable[[Any], Any]


class ScenarioFilesInvalid(DeskflowError):
    """Scenario files (or the catalog) have errors: each with file:line:col."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))


def test_command(friendly: Decorator, catalog_option: Decorator) -> click.Command:
    """The `deskflow test` command, with web.cli's error handling."""

    @click.command("test")
    @click.argument("paths", nargs=-1, metavar="[PATH]...",
                    type=click.Path(path_type=Path))
    @click.option("--format", "fmt", type=click.Choice(["text", "junit", "github"]),
                  default="text", show_default=True,
                  help="A line per scenario, JUnit XML for CI, or GitHub annotations.")
    @catalog_option
    @friendly
    def test(paths: tuple[Path, ...], fmt: str, catalog_path: Path) -> None:
        """Run scenario tests (default: the catalog's tests/); exit 1 when one fails.

        PATH is a scenario file or a folder of them, or a catalog directory (one with a
        deskflow.yaml): then that catalog's own tests/ run against it."""
        from catalog.loader import load_catalog
        from engine.scenarios import run_scenarios

        if len(paths) == 1 and (paths[0] / "deskflow.yaml").is_file():
            catalog_path, paths = paths[0], ()
        catalog = load_catalog(catalog_path)
        prefix = "" if str(catalog_path) == "." else catalog_path.as_posix().rstrip("/") + "/"
        if not catalog.ok:
            raise ScenarioFilesInvalid(
                [prefix + e.render() for e in catalog.errors]
                + [f"{catalog_path}: {len(catalog.errors)} error(s); fix them "
                   "(deskflow validate) before running the scenarios"])
        if paths:
            files, shown = _read(paths, catalog), ""
        else:
            files, shown = list(catalog.scenarios), prefix
            if not files:
                raise UsageError(f"{prefix or './'}tests: no scenario tests (tests/*.yaml)")
            _checked(files, catalog, prefix)  # the loader only warns: a stale test still serves
        results = run_scenarios(catalog, files)
        failed = [r for r in results if not r.ok]
        steps = sum(r.steps for r in results)
        summary = (f"{len(results)} scenario{'s' * (len(results) != 1)}: "
                   f"{len(results) - len(failed)} passed, {len(failed)} failed ({steps} steps)")
        if fmt == "junit":
            click.echo(_junit(results, shown))
        else:
            for r in results:
                where = f"{shown}{r.file}:{r.scenario.where.line}"
                if fmt == "text" or r.ok:
                    click.echo(f"{'PASS' if r.ok else 'FAIL'} {where}: {r.scenario.name}")
                if r.failure is not None:
                    if fmt == "github":
                        f = r.failure
                        click.echo(f"::error file={_escape(shown + str(f.where.file), True)},"
                                   f"line={f.where.line},col={f.where.col},"
                                   f"title={_escape(r.scenario.name, True)}::"
                                   f"{_escape(_body(r.failure, shown))}")
                    else:
                        click.echo("  " + _body(r.failure, shown).replace("\n", "\n  "))
            click.echo(summary)
        sys.exit(1 if failed else 0)

    return test


def _read(paths: tuple[Path, ...], catalog: Any) -> list[Any]:
    """The scenario files a PATH names (a file, or a folder's *.yaml), checked against `catalog`."""
    from catalog.scenario_parser import read_scenario_file

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    files, problems = [], []
    for path in found:
        model, errors = read_scenario_file(path, PurePosixPath(path.as_posix()))
        problems += errors
        if model is not None:
            files.append(model)
    errors = [p for p in problems if p.is_error]
    if errors:
        errors.sort(key=SpecError.sort_key)
        raise ScenarioFilesInvalid([e.render() for e in errors])
    _checked(files, catalog, "")
    return files


def _checked(files: list[Any], catalog: Any, prefix: str) -> None:
    """Refuse scenarios naming people, items, states... the catalog does not have."""
    from catalog.scenario_parser import check_scenarios

    errors = check_scenarios(files, {i.id: i for i in catalog.items},
                             {w.id: w for w in catalog.workflows}, catalog.directory,
                             catalog.settings)
    if errors:
        errors.sort(key=SpecError.sort_key)
        raise ScenarioFilesInvalid([prefix + e.render() for e in errors])


def _body(failure: Any, prefix: str) -> str:
    return f"{prefix}{failure.render()}"


def _escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _junit(results: list[Any], prefix: str) -> str:
    """JUnit XML: one test suite per file, one test case per scenario."""
    root = ET.Element("testsuites", name="deskflow scenarios", tests=str(len(results)),
                      failures=str(sum(not r.ok for r in results)))
    suites: dict[str, ET.Element] = {}
    for r in results:
        name = prefix + r.file
        suite = suites.get(name)
        if suite is None:
            suite = suites[name] = ET.SubElement(root, "testsuite", name=name, tests="0",
                                                 failures="0")
        suite.set("tests", str(int(suite.get("tests", "0")) + 1))
        case = ET.SubElement(suite, "testcase", name=r.scenario.name, classname=name,
                             file=name, line=str(r.scenario.where.line),
                             time=f"{r.seconds:.3f}")
        if r.failure is not None:
            suite.set("failures", str(int(suite.get("failures", "0")) + 1))
            failure = ET.SubElement(case, "failure", message=r.failure.message)
            failure.text = _body(r.failure, prefix)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
