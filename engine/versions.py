"""Workflow versions: stored in the database, and the models rebuilt from them."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import PurePosixPath

from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.source import SourceDoc
from catalog.workflow import Workflow
from catalog.workflow_parser import parse_workflow
from engine.errors import StoredWorkflowBroken
from engine.models import WorkflowVersion

#: workflow models by version (a content hash): one per version a request runs on
_cache: LRUCache[str, Workflow] = LRUCache(maxsize=256)
_lock = threading.Lock()


def store_version(session: Session, wf: Workflow, now: datetime) -> WorkflowVersion:
    """Return the stored version of `wf`, writing it the first time a request uses it."""
    row = session.scalar(select(WorkflowVersion).where(
        WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == wf.version))
    return keep_version(session, wf, now, row)


def keep_version(session: Session, wf: Workflow, now: datetime,
                 row: WorkflowVersion | None) -> WorkflowVersion:
    """`store_version` when the caller has read the stored row already (None: not stored yet)."""
    if row is None:
        row = WorkflowVersion(workflow_id=wf.id, version=wf.version,
                              definition=dict(wf.definition["data"]), created_at=now)
        try:
            with session.begin_nested():  # a savepoint: a lost race undoes this row only
                session.add(row)
        except IntegrityError:
            # another transaction stored this version first (several first requests at once):
            # its row is committed now (PostgreSQL made this insert wait for it), so read it
            row = session.scalars(select(WorkflowVersion).where(
                WorkflowVersion.workflow_id == wf.id,
                WorkflowVersion.version == wf.version)).one()
    with _lock:
        _cache.setdefault(wf.version, wf)
    return row


def workflow_of(row: WorkflowVersion) -> Workflow:
    """The workflow model of a stored version, rebuilt from its definition once per process."""
    with _lock:
        found = _cache.get(row.version)
    if found is not None:
        return found
    doc = SourceDoc(PurePosixPath(f"db/workflow_versions/{row.id}"), row.definition, "")
    parsed = parse_workflow(doc)
    errors = [p for p in parsed.problems if p.is_error]
    if errors or parsed.model is None:
        raise StoredWorkflowBroken(f"stored workflow {row.workflow_id} {row.version} does not load: "
                           + "; ".join(e.render() for e in errors[:3]))
    with _lock:
        return _cache.setdefault(row.version, parsed.model)


def workflow_by_id(session: Session, version_id: int, version: str) -> Workflow:
    """`workflow_of` the stored version `version_id` whose content hash is `version` (a caller
    that selected it with its rows): no statement once the model is parsed."""
    with _lock:
        found = _cache.get(version)
    return found if found is not None else workflow_of(session.get_one(WorkflowVersion, version_id))
