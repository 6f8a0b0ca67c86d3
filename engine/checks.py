"""Checks of a catalog against a database: what reloading it would do to requests in flight."""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath

from sqlalchemy import func, select

from catalog.catalog import Catalog
from catalog.errors import Location, SpecError
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
