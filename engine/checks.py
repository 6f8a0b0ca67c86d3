"""Checks of a catalog against a database: what reloading it would do to requests in flight."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path, PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from catalog.catalog import Catalog
from catalog.diff_model import InFlight
from catalog.errors import Location, SpecError, UsageError
from engine.db import make_engine
from engine.models import Request, WorkflowVersion


def open_requests_by_workflow(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(WorkflowVersion.workflow_id, func.count(Request.id))
                .join(Request, Request.workflow_version_id == WorkflowVersion.id)
                .where(Request.status == "open").group_by(WorkflowVersion.workflow_id))
            return {wf: n for wf, n in rows}
    finally:
        engine.dispose()


def removed_workflows(catalog: Catalog, url: str) -> Catalog:
    """The catalog with an error for each workflow it lacks that open requests still run on."""
    problems = list(catalog.problems)
    for wf_id, count in sorted(open_requests_by_workflow(url).items()):
        if catalog.workflow(wf_id) is None:
            problems.append(SpecError(
                Location(PurePosixPath(f"workflows/{wf_id}.yaml"), 1, 1), "",
                f"workflow {wf_id} was removed, but {count} open request"
                f"{'s' if count != 1 else ''} still run on it",
                "keep the file until they finish, or cancel them"))
    return replace(catalog, problems=tuple(problems))


_IN_FLIGHT = (
    select(Request.item_id, WorkflowVersion.workflow_id, WorkflowVersion.version, Request.state,
           func.count(Request.id))
    .join(WorkflowVersion, Request.workflow_version_id == WorkflowVersion.id)
    .where(Request.status == "open")
    .group_by(Request.item_id, WorkflowVersion.workflow_id, WorkflowVersion.version, Request.state))


def in_flight(session: Session) -> list[InFlight]:
    """Open requests counted by item, workflow version and state, for Admin → Reload's diff."""
    return [InFlight(*row) for row in session.execute(_IN_FLIGHT)]


def requests_in_flight(url: str) -> list[InFlight]:
    """Open requests counted by item, workflow version and state (read-only), for `deskflow diff`."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"{url}: not a database URL") from None
    shown = parsed.render_as_string(hide_password=True)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and not Path(database).is_file():
        raise UsageError(f"{shown}: no such database file")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [InFlight(*row) for row in conn.execute(_IN_FLIGHT)]
    except SQLAlchemyError:
        raise UsageError(f"{shown}: cannot read its open requests "
                         "(is it a Deskflow database? deskflow db upgrade makes one)") from None
    finally:
        engine.dispose()
