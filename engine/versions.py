"""Workflow versions: snapshots in the database, and the models rebuilt from them."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.parse import parse_workflow
from catalog.source import SourceDoc
from catalog.workflow import Workflow
from engine.models import WorkflowVersion

_cache: dict[str, Workflow] = {}
_lock = threading.Lock()


def snapshot(session: Session, wf: Workflow, now: datetime) -> WorkflowVersion:
    """Return the stored version of `wf`, writing it the first time a request uses it."""
    row = session.scalar(select(WorkflowVersion).where(
        WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == wf.version))
    if row is None:
        row = WorkflowVersion(workflow_id=wf.id, version=wf.version,
                              definition=dict(wf.definition["data"]), created_at=now)
        session.add(row)
        session.flush()
    with _lock:
        _cache.setdefault(wf.version, wf)
    return row


def workflow_of(row: WorkflowVersion) -> Workflow:
    """The workflow model of a stored version, rebuilt from its definition once per process."""
    found = _cache.get(row.version)
    if found is not None:
        return found
    doc = SourceDoc(PurePosixPath(f"db/workflow_versions/{row.id}"), row.definition, "")
    parsed = parse_workflow(doc)
    errors = [p for p in parsed.problems if p.is_error]
    if errors or parsed.model is None:
        raise RuntimeError(f"stored workflow {row.workflow_id} {row.version} does not load: "
                           + "; ".join(e.render() for e in errors[:3]))
    with _lock:
        return _cache.setdefault(row.version, parsed.model)
