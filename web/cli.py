"""The `deskflow` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from catalog.errors import DeskflowError, SpecError, UsageError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Report a failure the one way: `deskflow: message` on stderr, the error class's exit code.

    Commands raise a DeskflowError (its class owns the exit code); never a traceback.
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeskflowError as exc:
            click.echo(f"deskflow: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - last resort: a person never sees a traceback
            click.echo(f"deskflow: internal error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deskflow")
def main() -> None:
    """Deskflow: a config-as-code service catalog and service desk."""


def _github_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _problem_json(p: SpecError, prefix: str) -> dict[str, Any]:
    return {"file": f"{prefix}/{p.where.file}" if prefix else str(p.where.file),
            "line": p.where.line, "col": p.where.col, "severity": p.severity.value,
            "path": p.key, "message": p.message, "hint": p.hint}


DEFAULT_DB = "sqlite:///instance/deskflow.sqlite"


def db_option(fn: F) -> F:
    return click.option("--db", "db_url", envvar="DESKFLOW_DATABASE_URL", default=DEFAULT_DB,
                        show_default=True, metavar="URL",
                        help="Database URL (env DESKFLOW_DATABASE_URL).")(fn)  # type: ignore[return-value]


def catalog_option(fn: F) -> F:
    return click.option("--catalog", "catalog_path", envvar="DESKFLOW_CATALOG", default=None,
                        type=click.Path(file_okay=False, path_type=Path), callback=_catalog_default,
                        help="The catalog directory (env DESKFLOW_CATALOG); default: the current "
                        "directory if it holds a deskflow.yaml, else the bundled acme demo.")(fn)  # type: ignore[return-value]


def log_options(fn: F) -> F:
    """Add --log-format and --log-level; configure logging before the command runs."""
    @wraps(fn)
    def wrapper(*args: Any, log_format: str, log_level: str, **kwargs: Any) -> Any:
        from web.logs import configure

        configure(log_format, log_level)
        return fn(*args, **kwargs)

    wrapper = click.option("--log-level", envvar="DESKFLOW_LOG_LEVEL", default="INFO",
                           show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"],
                                                                case_sensitive=False),
                           help="Log records from this level up (env DESKFLOW_LOG_LEVEL).")(wrapper)
    wrapper = click.option("--log-format", envvar="DESKFLOW_LOG_FORMAT", default="text",
                           show_default=True, type=click.Choice(["text", "json"], case_sensitive=False),
                           help="Log lines on stderr as text or JSON, with the request id "
                           "(env DESKFLOW_LOG_FORMAT).")(wrapper)
    return wrapper  # type: ignore[return-value]


def _catalog_default(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path:
    if value is not None:
        return value
    if Path("deskflow.yaml").is_file():
        return Path(".")
    from web.bundled import bundled_catalog

    return bundled_catalog()


@main.command()
@click.argument("path", required=False, default=".",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="Output for people, for tools, or GitHub annotations.")
@click.option("--db", "db_url", metavar="URL",
              help="Also report workflows removed while requests in this database still run on them.")
@friendly
def validate(path: Path, fmt: str, db_url: str | None) -> None:
    """Check a catalog directory; exit 1 when it has errors."""
    from catalog.loader import load_catalog

    if not path.exists():
        raise UsageError(f"{path}: no such directory")
    catalog = load_catalog(path)
    if db_url:
        from engine.checks import removed_workflows

        catalog = removed_workflows(catalog, db_url)
    prefix = "" if str(path) == "." else path.as_posix().rstrip("/")
    errors, warnings = len(catalog.errors), len(catalog.warnings)
    summary = (f"{prefix or '.'}: {errors} error{'s' * (errors != 1)}, "
               f"{warnings} warning{'s' * (warnings != 1)} in {catalog.files} files "
               f"({len(catalog.items)} items, {len(catalog.workflows)} workflows)")
    if fmt == "json":
        click.echo(json.dumps({"catalog": prefix or ".", "ok": catalog.ok, "errors": errors,
                               "warnings": warnings, "files": catalog.files,
                               "problems": [_problem_json(p, prefix) for p in catalog.problems]},
                              indent=2))
    elif fmt == "github":
        for p in catalog.problems:
            level = "error" if p.is_error else "warning"
            file = f"{prefix}/{p.where.file}" if prefix else str(p.where.file)
            title = p.key or "catalog"
            msg = f"{p.message} ({p.hint})" if p.hint else p.message
            click.echo(f"::{level} file={_github_escape(file, True)},line={p.where.line},"
                       f"col={p.where.col},title={_github_escape(title, True)}::"
                       f"{_github_escape(msg)}")
        click.echo(summary)
    else:
        for p in catalog.problems:
            text = p.render(prefix)
            if not p.is_error:
                where, _, rest = text.partition(": ")
                text = f"{where}: warning: {rest}"
            click.echo(text)
        click.echo(summary)
    sys.exit(0 if catalog.ok else 1)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write one .schema.json file per kind into this directory.")
@friendly
def schema(out: Path | None) -> None:
    """Print (or write) the JSON Schemas of the catalog files, for editor completion."""
    from catalog.validation import SCHEMA_NAMES
    from catalog.validation import schema as load_schema

    if out is None:
        click.echo(json.dumps({n: load_schema(n) for n in SCHEMA_NAMES}, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name in SCHEMA_NAMES:
        (out / f"{name}.schema.json").write_text(json.dumps(load_schema(name), indent=2) + "\n")
        click.echo(out / f"{name}.schema.json")


@main.command()
@click.argument("workflow_id")
@click.option("--catalog", "catalog_path", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The catalog directory.")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "svg"]), default="mermaid",
              show_default=True, help="Mermaid text, or a standalone SVG drawing.")
@click.option("--current", metavar="STATE", help="Highlight this state.")
@friendly
def diagram(workflow_id: str, catalog_path: Path, fmt: str, current: str | None) -> None:
    """Draw a workflow as Mermaid text or as SVG."""
    import difflib

    from catalog.loader import load_catalog
    from workflows.diagram import to_mermaid, to_svg

    catalog = load_catalog(catalog_path)
    wf = catalog.workflow(workflow_id)
    if wf is None:
        known = sorted(w.id for w in catalog.workflows)
        close = difflib.get_close_matches(workflow_id, known, n=3)
        hint = (f"did you mean {' or '.join(close)}?" if close
                else f"known: {', '.join(known)}" if known else "it has no workflows")
        if not catalog.ok:
            hint += f"; the catalog has errors, see deskflow validate {catalog_path}"
        raise DeskflowError(f"{catalog_path}: no workflow {workflow_id} ({hint})")
    if not catalog.ok:
        click.echo(f"deskflow: warning: {catalog_path} has {len(catalog.errors)} error(s); "
                   f"see deskflow validate {catalog_path}", err=True)
    click.echo(to_svg(wf, current) if fmt == "svg" else to_mermaid(wf, current), nl=False)


@main.group()
def db() -> None:
    """Manage the database."""


@db.command("upgrade")
@db_option
@friendly
def db_upgrade(db_url: str) -> None:
    """Apply the schema migrations."""
    from engine.migrate import current, upgrade

    upgrade(db_url)
    click.echo(f"database at revision {current(db_url)}")


@main.command()
@click.argument("item_id", required=False)
@click.option("--as", "person", help="Who orders it (a person id); needed unless --scenario names "
              "a scenario, whose requester it then replaces.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="An answer, as the order form takes it; repeat for more. Multichoice: "
              "comma-separated. Table: a JSON list of rows, e.g. 'accessories=[{\"accessory\": \"dock\"}]'.")
@click.option("--reject", metavar="STATE", help="Reject the approval in this approval state.")
@click.option("--outcome", "outcomes", multiple=True, metavar="STATE=OUTCOME",
              help="End the task in STATE with OUTCOME instead of its first outcome.")
@click.option("--strict", is_flag=True,
              help="Assume no answers: a needed field not given with --set is an error.")
@click.option("--scenario", metavar="FILE[:NAME]",
              help="Take the requester, the person it is for, the answers and the start time from "
              "a scenario of the catalog's tests/*.yaml (NAME when the file has several); ITEM may "
              "then be left out, and --set and --as override it.")
@click.option("--at", "at_text", metavar="ISO-DATETIME",
              help="Order it at this time, e.g. 2026-05-01T16:00 (the catalog's time zone unless "
              "one is given); default: now, or the scenario's `at`.")
@catalog_option
@friendly
def simulate(item_id: str | None, person: str | None, sets: tuple[str, ...], reject: str | None,
             outcomes: tuple[str, ...], strict: bool, scenario: str | None, at_text: str | None,
             catalog_path: Path) -> None:
    """Dry-run an item's workflow: the path, approvers, tasks, due times and notifications, each
    decision explained, touching no data."""
    from datetime import datetime

    from catalog.loader import load_catalog
    from engine.errors import InvalidInput
    from engine.simulate import pick_scenario, start_time
    from engine.simulate import simulate as run

    catalog = load_catalog(catalog_path)
    if not catalog.ok:
        raise DeskflowError(f"{catalog_path} has {len(catalog.errors)} error(s); "
                            f"run deskflow validate {catalog_path}")
    values = dict(_pair(s, "--set") for s in sets)
    ends = dict(_pair(s, "--outcome") for s in outcomes)
    at = None
    if at_text is not None:
        try:
            at = datetime.fromisoformat(at_text)
        except ValueError:
            raise UsageError(f"--at {at_text}: not a date and time (write YYYY-MM-DDTHH:MM, "
                             "like 2026-05-01T16:00)") from None
    answers: dict[str, Any] = {}
    requested_for = None
    if scenario is not None:
        sc = pick_scenario(catalog, scenario)
        if item_id is not None and item_id != sc.item:
            raise UsageError(f"--scenario {scenario}: the scenario orders {sc.item}, not {item_id} "
                             "(leave ITEM out)")
        item_id, answers, requested_for = sc.item, dict(sc.answers), sc.requested_for
        person = person or sc.requester
        at = at or sc.at
    if item_id is None:
        raise UsageError("give the ITEM to simulate, or a --scenario that names it")
    if person is None:
        raise UsageError("--as PERSON is needed: who orders the item (or give a --scenario)")
    try:
        result = run(catalog, item_id, person, values, reject=reject, outcomes=ends, strict=strict,
                     now=start_time(catalog, at) if at else None, answers=answers,
                     requested_for=requested_for)
    except InvalidInput as exc:
        lines = [f"cannot simulate: {exc.message}; give answers with --set NAME=VALUE"]
        lines += [f"  {' '.join(messages)}" if name.startswith("_")  # `_form`: across fields
                  else f"  {name}: {' '.join(messages)}" for name, messages in exc.fields.items()]
        raise DeskflowError("\n".join(lines)) from None
    click.echo(result.render())


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"{option} takes NAME=VALUE, not {text!r}")
    return key.strip(), value


@main.command()
@db_option
@catalog_option
@click.option("--once", is_flag=True, help="Do one round of work and exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls when idle.")
@log_options
@friendly
def worker(db_url: str, catalog_path: Path, once: bool, interval: float) -> None:
    """Fire due timers, deliver the outbox (emails, webhooks) and refresh the reports snapshot
    until stopped."""
    import logging
    import os
    import threading

    from flask import Flask
    from sqlalchemy.engine import make_url

    from catalog.loader import load_valid_catalog
    from engine.db import make_engine, make_sessionmaker
    from engine.errors import DatabaseUnreadable
    from engine.service import RequestService, utcnow
    from engine.worker import install_signal_handlers, work_for
    from web.config import secret_key

    catalog = load_valid_catalog(catalog_path)
    try:
        _require_current_schema(db_url, "then start the worker again")
    except DatabaseUnreadable as exc:
        # a server still starting (or restarting): each pass retries it, as it would later on
        logging.getLogger("engine.worker").warning("%s; starting anyway, each pass tries again", exc)
    # the portal's key (DESKFLOW_SECRET_KEY, else the one in the portal's instance folder), so
    # the signed links in emails the worker queues (satisfaction surveys, email actions) open in
    # the portal
    service = RequestService(make_sessionmaker(make_engine(db_url)), lambda: catalog, utcnow,
                             base_url=os.environ.get("DESKFLOW_BASE_URL", ""),
                             secret_key=secret_key(Flask("web").instance_path))
    stop = threading.Event()
    install_signal_handlers(stop)
    logging.getLogger("engine.worker").info(
        "worker for %s, catalog %s (%s), polling every %ss",
        make_url(db_url).render_as_string(hide_password=True), catalog_path, catalog.version, interval)
    work_for(service, stop, poll_interval=interval, once=once)


def _require_current_schema(db_url: str, then: str) -> None:
    """Refuse a database whose schema is not this Deskflow's (SchemaOutOfDate, naming the
    upgrade command); DatabaseUnreadable when it cannot be read at all."""
    from sqlalchemy.engine import make_url

    from engine.errors import SchemaOutOfDate
    from engine.migrate import schema_problem

    problem = schema_problem(db_url)
    if problem:
        shown = make_url(db_url).render_as_string(hide_password=True)
        upgrade = "deskflow db upgrade" + ("" if db_url == DEFAULT_DB else f" --db '{shown}'")
        raise SchemaOutOfDate(f"{problem}; run `{upgrade}` first, {then}.")


# ---------------------------------------------------------------- serving


def _serve(app: Any, host: str, port: int) -> None:
    """Serve `app` with werkzeug: threaded, no debugger, no reloader."""
    from werkzeug import serving
    from werkzeug.serving import run_simple

    serving._log_add_style = False  # no terminal colours in access lines: they go to log files
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    except OSError as exc:
        raise DeskflowError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                            "(choose another --port)") from None


def _http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _start_worker(app: Any, interval: float = 5.0) -> tuple[Any, Any]:
    """Run timers and outbox deliveries in a daemon thread; return (stop event, thread)."""
    from engine.worker import start_in_background

    return start_in_background(app.extensions["deskflow"].service, interval)


@main.command()
@catalog_option
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--insecure-cookies", is_flag=True,
              help="Send the sign-in cookie over plain http too (no HTTPS in front; trials only).")
@log_options
@friendly
def serve(catalog_path: Path, db_url: str, host: str, port: int, insecure_cookies: bool) -> None:
    """Serve a catalog with werkzeug: for trials and small teams (gunicorn for production)."""
    from web import create_app

    _require_current_schema(db_url, "then serve again")
    config: dict[str, Any] = {"DESKFLOW_DATABASE_URL": db_url,
                              "DESKFLOW_CATALOG": str(catalog_path.resolve())}
    if insecure_cookies:
        config["DESKFLOW_SECURE_COOKIES"] = False
    app = create_app(config)
    click.echo(f"deskflow: serving {catalog_path} ({app.extensions['deskflow'].catalog.version}) "
               f"on {_http_url(host, port)}")
    if app.config["SESSION_COOKIE_SECURE"]:
        click.echo("deskflow: sign-in cookies are Secure: browse through HTTPS (a proxy in front), "
                   "or pass --insecure-cookies on a trusted network", err=True)
    _serve(app, host, port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--with-history", "history", is_flag=False, flag_value="", default=None,
              metavar="[PATH]", help="Import the ServiceNow log (PATH, or "
              "../shared/data/servicenow-incident-event-log.csv.zip), else generate a year.")
@log_options
@friendly
def demo(host: str, port: int, history: str | None) -> None:
    """Try Deskflow: the acme demo company, its database in ./instance, served over http."""
    from web.demo import DEMO_LOGINS, DEMO_PASSWORD, prepare_demo

    instance = Path("instance")
    reused = (instance / "deskflow.sqlite").is_file()
    base_url = _http_url(host, port)
    if history and not Path(history).exists():
        raise UsageError(f"--with-history {history}: there is no such file or folder")
    app = prepare_demo(instance, base_url=base_url,
                       history=False if history is None else Path(history) if history else True)
    seeded = app.extensions["deskflow_demo"]
    catalog = app.extensions["deskflow"].catalog
    names = {p.id: p.name for p in catalog.directory.people}
    database = (instance / "deskflow.sqlite").resolve()
    click.echo(f"{catalog.settings.name}: the Deskflow demo")
    click.echo(f"  database  {database} "
               + ("(reused)" if reused and not seeded else f"({len(seeded)} demo requests created)"))
    click.echo(f"  catalog   {catalog.root}")
    if "deskflow_history" in app.extensions:
        click.echo(f"  history   {_history_line(app.extensions['deskflow_history'])}")
    click.echo("")
    click.echo(f"Sign in at {base_url} as")
    width = max(len(names.get(pid, pid)) for pid, _ in DEMO_LOGINS)
    click.echo(f"  {'login':<7} {'who':<{width}}  role")
    for pid, role in DEMO_LOGINS:
        click.echo(f"  {pid:<7} {names.get(pid, pid):<{width}}  {role}")
    click.echo(f"  password for everyone: {DEMO_PASSWORD}")
    click.echo("")
    click.echo("Emails wait in the outbox and are retried until an SMTP server answers "
               "(DESKFLOW_SMTP_HOST). Stop with Ctrl+C.")
    stop, thread = _start_worker(app)
    try:
        _serve(app, host, port)
    finally:
        stop.set()
        thread.join(timeout=10)


def _history_line(outcome: Any) -> str:
    """What `demo --with-history` imported or generated (engine.history.generate.HistoryOutcome)."""
    what = outcome.file or "a generated year of incidents"
    if outcome.summary is None:
        return f"{outcome.source}: imported before, nothing new ({what})"
    s = outcome.summary
    return (f"{outcome.source}: {s.created} records created, {s.updated} updated, {s.unchanged} "
            f"unchanged, {s.events} timeline events, {len(s.skipped)} rows skipped ({what})")


@main.group()
def directory() -> None:
    """People, groups and roles in the database."""


@directory.command("sync")
@db_option
@catalog_option
@friendly
def directory_sync(db_url: str, catalog_path: Path) -> None:
    """Copy the catalog's directory.yaml into the database (passwords are kept)."""
    from catalog.loader import load_valid_catalog
    from engine.db import transaction
    from engine.directory import sync_directory

    catalog = load_valid_catalog(catalog_path)
    with transaction(db_url) as session:
        counts = sync_directory(session, catalog.directory)
    click.echo(f"directory: {counts['people']} people, {counts['groups']} groups, "
               f"{counts['roles']} roles")


@main.group()
def assets() -> None:
    """Configuration items (assets) in the database."""


@assets.command("import")
@click.argument("csv_file", metavar="FILE.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "type_id", required=True, help="The CI type of every row (cmdb/ID.yaml).")
@click.option("--dry-run", is_flag=True, help="Check and count every row; change nothing.")
@db_option
@catalog_option
@friendly
def assets_import(csv_file: Path, type_id: str, dry_run: bool, db_url: str,
                  catalog_path: Path) -> None:
    """Create or update CIs from a CSV file: the type's fields plus name, owner, status."""
    import time
    from datetime import UTC, datetime

    from catalog.loader import load_valid_catalog
    from engine.cmdb_import import check_header, import_rows, read_rows
    from engine.db import transaction

    catalog = load_valid_catalog(catalog_path)
    with csv_file.open(encoding="utf-8-sig", newline="") as stream:
        header, rows = read_rows(stream)
        check_header(catalog, type_id, header)
        pairs = list(rows)
    started = time.monotonic()

    def rate(_: Any) -> str:
        return f"{bar.pos / max(time.monotonic() - started, 1e-6):.0f} rows/s"

    with transaction(db_url) as session:
        with click.progressbar(length=len(pairs), label="importing", item_show_func=rate,
                               file=sys.stderr) as bar:
            result = import_rows(session, catalog, type_id, pairs, datetime.now(UTC),
                                 progress=lambda: bar.update(1))
        if dry_run:
            session.rollback()
    click.echo(f"{'dry run: ' if dry_run else ''}{result.created} created, {result.updated} "
               f"updated, {result.unchanged} unchanged, {len(result.rejected)} rejected")
    for line, reason in result.rejected:
        click.echo(f"{csv_file}:{line}: {reason}")
    if result.rejected:
        sys.exit(1)


@main.command("password")
@click.argument("person_id")
@db_option
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new password (asked for when not given; at least 12 characters).")
@friendly
def set_password(person_id: str, db_url: str, password: str) -> None:
    """Set a person's password and sign them out everywhere."""
    from engine.db import transaction
    from engine.people import set_password_hash
    from web.passwords import hash_password

    try:
        hashed = hash_password(password)
    except ValueError as exc:  # too short: the password option was given wrongly
        raise UsageError(str(exc)) from None
    with transaction(db_url) as session:
        set_password_hash(session, person_id, hashed)
    click.echo(f"password set for {person_id}")


from web.cli_import import import_commands  # noqa: E402 - it is given the options above

main.add_command(import_commands(friendly, db_option, catalog_option))
from web.cli_replay import replay_command  # noqa: E402 - it is given the options above

main.add_command(replay_command(friendly, catalog_option))
from web.cli_report import report_command  # noqa: E402 - it is given the options above

main.add_command(report_command(friendly, db_option, catalog_option))
from web.cli_token import token_commands  # noqa: E402 - it is given the options above

main.add_command(token_commands(friendly, db_option))
from web.cli_mail import mail_command  # noqa: E402 - it is given the options above

main.add_command(mail_command(friendly, db_option, catalog_option))
from web.cli_attachments import attachments_commands  # noqa: E402 - it is given the options above

main.add_command(attachments_commands(friendly, db_option))
from web.cli_diff import diff_command  # noqa: E402 - it is given the options above

main.add_command(diff_command(friendly))
from web.cli_migrate import migrate_command  # noqa: E402 - it is given the options above

main.add_command(migrate_command(friendly, db_option, catalog_option))
from web.cli_init import init_command  # noqa: E402 - it is given the options above

main.add_command(init_command(friendly))
from web.cli_test import test_command  # noqa: E402 - it is given the options above

main.add_command(test_command(friendly, catalog_option))
from web.cli_backup import backup_commands  # noqa: E402 - it is given the options above

for _command in backup_commands(friendly, db_option):
    main.add_command(_command)
