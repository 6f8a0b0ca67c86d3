"""The engine's tables, as typed SQLAlchemy 2 models on the engine's own `Base`.

`web` binds them with Flask-SQLAlchemy (`SQLAlchemy(model_class=Base)`); the engine
itself needs only a `Session`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        if value.tzinfo is not UTC:  # (bulk writes pass many: skip the conversion when UTC)
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(metadata=MetaData(naming_convention=NAMING),
                        type_annotation_map={datetime: UTCDateTime, dict[str, Any]: JSON,
                                             list[Any]: JSON})


# ---------------------------------------------------------------- directory

class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    manager_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), index=True)
    title: Mapped[str] = mapped_column(String(120), default="")
    department: Mapped[str] = mapped_column(String(120), default="")
    location: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: the source of a directory entry made by `deskflow import` (engine.history): inactive,
    #: no password, left alone by the directory sync
    imported_from: Mapped[str | None] = mapped_column(String(32))


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), default="")
    manager_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    #: the source of a group made by `deskflow import` (engine.history)
    imported_from: Mapped[str | None] = mapped_column(String(32))


class Membership(Base):
    __tablename__ = "memberships"

    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"),
                                          primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"),
                                           primary_key=True, index=True)


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))


class PersonRole(Base):
    __tablename__ = "person_roles"

    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"),
                                           primary_key=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)


class Delegation(Base):
    """While away, `person` lets `delegate` decide their approvals."""

    __tablename__ = "delegations"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    delegate_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_at: Mapped[datetime]


# ---------------------------------------------------------------- definitions

class WorkflowVersion(Base):
    """The definition of a workflow version some request ran on; never changed once written."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


# ---------------------------------------------------------------- requests

class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_requester_created", "requester_id", "created_at"),
        Index("ix_requests_requested_for_created", "requested_for_id", "created_at"),
        Index("ix_requests_status_created", "status", "created_at"),
        Index("ix_requests_attention", "attention_at"),
        Index("ix_requests_type_status_created", "record_type", "status", "created_at"),
        # the agents' list in its sort order, the tiebreaker included (engine.worklist):
        # unfiltered, by status, by group, "assigned to me, open", "breached, open",
        # "unassigned, open, by priority"
        Index("ix_requests_status_updated", "status", "updated_at", "id"),
        Index("ix_requests_group_status_updated", "assignment_group_id", "status", "updated_at",
              "id"),
        Index("ix_requests_updated", "updated_at", "id"),
        Index("ix_requests_assignee_status_updated", "assignee_id", "status", "updated_at", "id"),
        Index("ix_requests_sla_status_updated", "sla_state", "status", "updated_at", "id"),
        Index("ix_requests_assignee_status_priority", "assignee_id", "status", "priority", "id"),
        # a text search narrowed by kind, status and group: the matching ids read from the
        # index alone and joined to the text index's hits (engine.worklist)
        Index("ix_requests_type_status_group", "record_type", "status", "assignment_group_id",
              "id"),
        # the reports (engine.reports): records opened in a period
        Index("ix_requests_created", "created_at"),
        UniqueConstraint("import_source", "external_id", name="uq_requests_import_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    item_id: Mapped[str] = mapped_column(String(64), index=True)
    item_name: Mapped[str] = mapped_column(String(120))
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_versions.id"), index=True)
    state: Mapped[str] = mapped_column(String(64))
    #: open | closed
    status: Mapped[str] = mapped_column(String(16), default="open")
    outcome: Mapped[str | None] = mapped_column(String(64))
    answers: Mapped[dict[str, Any]]
    requester_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    requested_for_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    priority: Mapped[str | None] = mapped_column(String(32))
    #: how many states the request has entered; approvals and tasks belong to one visit
    visit: Mapped[int] = mapped_column(Integer, default=0)
    waiting_on_requester: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    sla_paused_at: Mapped[datetime | None]
    sla_state: Mapped[str] = mapped_column(String(16), default="ok")  # ok | warning | breached
    #: set while a workflow step failed at runtime and an admin has to retry or route it
    attention_at: Mapped[datetime | None]
    #: the state the request halted in, the step that failed there (`engine.attention`), why
    attention_state: Mapped[str | None] = mapped_column(String(64))
    attention_step: Mapped[str | None] = mapped_column(String(100))
    attention_error: Mapped[str | None] = mapped_column(Text)
    #: the record model (`engine.records`): request | incident | problem | change
    record_type: Mapped[str] = mapped_column(String(16), default="request")
    title: Mapped[str] = mapped_column(String(200), default="")
    impact: Mapped[str | None] = mapped_column(String(32))
    urgency: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(120), default="")
    assignment_group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"), index=True)
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), index=True)
    #: how the record came in: portal | phone | email | walk-in | chat | monitoring | api
    channel: Mapped[str] = mapped_column(String(16), default="portal")
    #: the incident lifecycle (`engine.lifecycle`): when and how it was last resolved
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    resolution_code: Mapped[str | None] = mapped_column(String(64))
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: the article that solved it, chosen on resolving (a catalog article id)
    solution_article: Mapped[str | None] = mapped_column(String(64))
    #: a major incident (engine.major): flagged by the settings' rule or by an agent
    major: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    major_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    major_by_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    #: imported history (engine.history): the source and the case's id there, a digest of the
    #: case's rows (unchanged cases are skipped), the source's own SLA verdict and counts,
    #: the support tier last involved, the configuration item concerned (an assets.id; no
    #: foreign key, since assets already refer to requests)
    import_source: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(100))
    import_digest: Mapped[str | None] = mapped_column(String(64))
    made_sla: Mapped[bool | None] = mapped_column(Boolean)
    reassignment_count: Mapped[int | None] = mapped_column(Integer)
    support_tier: Mapped[str | None] = mapped_column(String(16))
    #: figures kept as the record changes, for the dashboards (engine.record_figures)
    group_path: Mapped[str | None] = mapped_column(Text)
    group_changes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ping_pong: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    tiers_seen: Mapped[str | None] = mapped_column(String(64))
    escalated_to: Mapped[str | None] = mapped_column(String(32))
    ci_id: Mapped[int | None] = mapped_column(Integer, index=True)
    #: the order (an order guide, engine.orders) this record is one item of
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    # the columns with a server default have a Python one too, so an INSERT that names its id
    # needs nothing back (eager defaults would add RETURNING, built anew for every flush)
    __mapper_args__ = {"version_id_col": lock_version, "eager_defaults": False}

    workflow_version: Mapped[WorkflowVersion] = relationship(lazy="joined")



class Order(Base):
    """Several records ordered at once through an order guide (engine.orders); its state is
    derived from its records', never stored."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    guide_id: Mapped[str] = mapped_column(String(64), index=True)
    guide_name: Mapped[str] = mapped_column(String(120))
    requester_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    requested_for_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    created_at: Mapped[datetime]
    #: the answers to the guide's shared questions
    answers: Mapped[dict[str, Any]]

#: the columns the dashboards filter on besides priority (engine.reports `Filters`)
FACT_FILTERS = ("opened_at", "group_id", "record_type", "item_id")


class RecordFact(Base):
    """A narrow row per record for the dashboards (engine.record_figures `fact_row`, read by
    engine.reports): what they filter on and the durations in hours, kept with the record."""

    __tablename__ = "record_facts"
    #: each figure's query walks one of these narrow indexes instead of the table (SQLite)
    __table_args__ = (
        Index("ix_record_facts_opened", "opened_at"),
        Index("ix_record_facts_state", "state"),
        # the quantiles walk these in order; the filters' columns ride along (covering)
        Index("ix_record_facts_resolve", "priority", "resolve_h", "sla_met", *FACT_FILTERS),
        Index("ix_record_facts_respond", "priority", "respond_h", *FACT_FILTERS),
        Index("ix_record_facts_duration", "duration_h", "priority", *FACT_FILTERS),
        Index("ix_record_facts_group", "group_id", "open", "sla_met"),
        Index("ix_record_facts_backlog", "open", "opened_at"),
        Index("ix_record_facts_opened_day", "opened_day"),
        Index("ix_record_facts_resolved_day", "resolved_day"),
        Index("ix_record_facts_groups", "groups"),
        Index("ix_record_facts_tiers", "tiers_seen", "escalated_to"),
    )

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            primary_key=True)
    record_type: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(32))
    group_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(64))
    #: open now: status open and not resolved
    open: Mapped[bool] = mapped_column(Boolean)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    #: the UTC day (date.toordinal) it was opened and last resolved
    opened_day: Mapped[int] = mapped_column(Integer)
    resolved_day: Mapped[int | None] = mapped_column(Integer)
    #: wall-clock hours from opened to first response, to resolved, to the last change
    respond_h: Mapped[float | None] = mapped_column(Float)
    resolve_h: Mapped[float | None] = mapped_column(Float)
    duration_h: Mapped[float] = mapped_column(Float)
    #: 1 met, 0 missed, NULL not counted (docs/reports.md)
    sla_met: Mapped[int | None] = mapped_column(Integer)
    ever_resolved: Mapped[bool] = mapped_column(Boolean)
    reopened: Mapped[bool] = mapped_column(Boolean)
    reassignments: Mapped[int] = mapped_column(Integer)
    ping_pong: Mapped[bool] = mapped_column(Boolean)
    #: the groups it was assigned to, in order, newline-separated
    groups: Mapped[str | None] = mapped_column(Text)
    tiers_seen: Mapped[str | None] = mapped_column(String(64))
    escalated_to: Mapped[str | None] = mapped_column(String(32))


class ImportRun(Base):
    """One run of `deskflow import` (engine.history): what it read and what it did."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32), index=True)
    file: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime]
    #: null while running, or when the run was interrupted
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RecordLink(Base):
    """A typed link between two records; see `engine.records.LINK_KINDS`."""

    __tablename__ = "record_links"
    __table_args__ = (UniqueConstraint("source_id", "target_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                           index=True)
    kind: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime]
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))


class Change(Base):
    """A change record's change data (engine.changes): type, risk and planned window (UTC)."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_planned_start", "planned_start"),)

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            primary_key=True)
    #: standard | normal | emergency
    change_type: Mapped[str] = mapped_column(String(16))
    #: low | medium | high
    risk: Mapped[str | None] = mapped_column(String(16))
    planned_start: Mapped[datetime | None]
    planned_end: Mapped[datetime | None]


class ChangeCI(Base):
    """A configuration item a change affects."""

    __tablename__ = "change_cis"

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"),
                                          primary_key=True, index=True)


class Watcher(Base):
    """Someone who follows a record and gets its public comments by email."""

    __tablename__ = "watchers"

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"),
                                           primary_key=True)


class Approval(Base):
    """One approver's part in one approval of one visit of a state."""

    __tablename__ = "approvals"
    __table_args__ = (
        # the inbox in its order (engine.queries.inbox_query)
        Index("ix_approvals_inbox", "approver_id", "decision", "created_at", "id"),
        Index("ix_approvals_request_visit", "request_id", "visit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    visit: Mapped[int]
    state: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    #: any | all | quorum:N
    policy: Mapped[str] = mapped_column(String(32))
    approver_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    #: how the approver was chosen, e.g. group:directors or requester.manager
    source: Mapped[str] = mapped_column(String(500), default="")
    #: pending | approved | rejected | delegated | escalated | closed
    decision: Mapped[str] = mapped_column(String(16), default="pending")
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    delegated_from_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        # a queue in each of its sorts, with and without an assignee (engine.queries.queue_query)
        Index("ix_tasks_queue", "queue", "status", "due_at", "id"),
        Index("ix_tasks_queue_id", "queue", "status", "id"),
        Index("ix_tasks_queue_assignee", "queue", "status", "assignee_id", "due_at", "id"),
        Index("ix_tasks_queue_assignee_id", "queue", "status", "assignee_id", "id"),
        Index("ix_tasks_assignee", "assignee_id", "status"),
        Index("ix_tasks_request_visit", "request_id", "visit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    visit: Mapped[int]
    state: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    instructions: Mapped[str] = mapped_column(Text, default="")
    queue: Mapped[str] = mapped_column(ForeignKey("groups.id"))
    tier: Mapped[int] = mapped_column(Integer, default=0)
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    #: open | done | cancelled
    status: Mapped[str] = mapped_column(String(16), default="open")
    outcome: Mapped[str | None] = mapped_column(String(64))
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            index=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    #: comment | question | answer
    kind: Mapped[str] = mapped_column(String(16), default="comment")
    created_at: Mapped[datetime]


class AuditEvent(Base):
    """Append-only: who did what to which request, when, from which state to which."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_request", "request_id", "id"),
                      # the reports: the record_changed events of the matching records
                      Index("ix_audit_event_request", "event", "request_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]


class Timer(Base):
    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            index=True)
    #: approval_timeout | wait | sla_warning | sla_breach
    kind: Mapped[str] = mapped_column(String(32))
    visit: Mapped[int]
    ref: Mapped[str] = mapped_column(String(64), default="")
    due_at: Mapped[datetime]
    #: pending | fired | cancelled | failed (its firing failed; the request needs attention)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    fired_at: Mapped[datetime | None]
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}


class OutboxMessage(Base):
    """An email or webhook to deliver, written in the same transaction as the change."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"),
                                                   index=True)
    #: email | webhook
    kind: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    payload: Mapped[dict[str, Any]]
    #: pending | sending | delivered | dead
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    #: an email's Message-ID is `<digest.deskflow@domain>` (engine.smtp); a reply's
    #: In-Reply-To finds its record by it (engine.mail_in)
    message_digest: Mapped[str | None] = mapped_column(String(32), index=True)


class Asset(Base):
    """A configuration item: a CI type's fields in `data`, unique on the type's key value."""

    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("type", "key", name="uq_assets_type_key"),
                      Index("ix_assets_type_status", "type", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"),
                                                   index=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), index=True)
    owner_group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"), index=True)
    type: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default="in_use")
    data: Mapped[dict[str, Any]]
    key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AssetRelation(Base):
    """A directed edge between two CIs: source runs_on / depends_on / used_by target."""

    __tablename__ = "asset_relations"
    __table_args__ = (UniqueConstraint("source_id", "target_id", "kind",
                                       name="uq_asset_relations_edge"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class LoginSession(Base):
    """A signed-in browser: the cookie holds only this row's random id; logout deletes it."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class ApiToken(Base):
    """A personal API token (engine.tokens): only its SHA-256 is kept; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: the token's first characters, so its owner can tell tokens apart in a list
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """A POST that created a record, by its sender's Idempotency-Key (engine.idempotency)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("person_id", "key", name="uq_idempotency_keys_person_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the request body in canonical JSON: the same key with another body is refused
    fingerprint: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]


class AppState(Base):
    """Small shared facts every process reads, e.g. which catalog version should be serving."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class ReportSnapshot(Base):
    """The dashboards' figures for one set of filters, computed once and served to every
    process until they are older than DESKFLOW_REPORTS_MAX_AGE (engine.report_snapshots)."""

    __tablename__ = "report_snapshots"

    #: the canonical filters (engine.reports `Filters.query()` as sorted JSON); "{}" for none
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    #: every figure (engine.report_snapshots `to_json`)
    figures: Mapped[list[Any]]
    computed_at: Mapped[datetime]


# ---------------------------------------------------------------- knowledge

class ArticleFeedback(Base):
    """One person's verdict on one knowledge article; voting again changes it."""

    __tablename__ = "article_feedback"
    __table_args__ = (UniqueConstraint("article_id", "person_id",
                                       name="uq_article_feedback_article_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ArticleView(Base):
    """An article opened from an item's order form; `ordered` once that item was submitted."""

    __tablename__ = "article_views"
    __table_args__ = (Index("ix_article_views_person_item", "person_id", "item_id", "viewed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    article_id: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(String(64))
    viewed_at: Mapped[datetime] = mapped_column(index=True)
    ordered: Mapped[bool] = mapped_column(Boolean, default=False)
    ordered_at: Mapped[datetime | None]


class Notification(Base):
    """Something that concerns one person, shown in their in-app inbox (engine.notifications)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_inbox", "person_id", "read_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    #: assigned | caller_reply | approval_needed | sla_warning | mentioned | resolved
    kind: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                                   index=True)
    text: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class NotificationPreference(Base):
    """How one person wants to hear of one kind of notification: email, in_app or both."""

    __tablename__ = "notification_preferences"

    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"),
                                           primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime]


class ProblemRecord(Base):
    """What a problem record holds beyond a record's fields (engine.problems)."""

    __tablename__ = "problem_records"
    __table_args__ = (Index("ix_problem_records_known_error", "known_error", "service"),)

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            primary_key=True)
    root_cause: Mapped[str] = mapped_column(Text, default="")
    workaround: Mapped[str] = mapped_column(Text, default="")
    known_error: Mapped[bool] = mapped_column(Boolean, default=False)
    known_error_at: Mapped[datetime | None]
    #: a value of the service field of the items' `concerns` (acme: report-incident's)
    service: Mapped[str | None] = mapped_column(String(64))
    ci_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))


class SavedView(Base):
    """One person's named filters on the agents' list (engine.worklist)."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("person_id", "name", name="uq_saved_views_person_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    query: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class SatisfactionResponse(Base):
    """The one satisfaction question asked about a resolved record (engine.satisfaction)."""

    __tablename__ = "csat_responses"
    __table_args__ = (Index("ix_csat_responses_answered_at", "answered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            unique=True)
    #: who is asked: the requested-for person, else the requester
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"),
                                           index=True)
    #: 1..5, None until answered
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    #: named by the emailed link's signed token; the link is single use
    nonce: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]


class EmailAction(Base):
    """One emailed one-click action link: approve/reject an approval, confirm/reopen a
    resolved record (engine.email_links); spent by its first use."""

    __tablename__ = "email_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: approval (the approve and reject links) or resolution (confirm and reopen)
    kind: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            index=True)
    approval_id: Mapped[int | None] = mapped_column(
        ForeignKey("approvals.id", ondelete="CASCADE"), index=True)
    #: who the link was sent to: it acts as this person
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"),
                                           index=True)
    #: named by the link's signed token; emptied when the link is used
    nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    #: which of the row's two actions was taken
    used_action: Mapped[str | None] = mapped_column(String(16))


class MailReceipt(Base):
    """One inbound email handled by `deskflow mail-in` (engine.mail_in): never twice, and
    counted for the per-sender rate limit."""

    __tablename__ = "mail_receipts"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid",
                                       name="uq_mail_receipts_mailbox_uid"),
                      Index("ix_mail_receipts_sender_at", "sender", "received_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the Message-ID, or `sha256:` and the digest of a message that has none
    message_key: Mapped[str] = mapped_column(String(255), unique=True)
    sender: Mapped[str] = mapped_column(String(254))
    #: opened | commented | answered | reopened | refused | ignored
    outcome: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"))
    #: where an IMAP poll found it (None when piped)
    mailbox: Mapped[str | None] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime]


class Attachment(Base):
    """A file kept for a record (engine.attachments): the bytes live in the store, named by
    their SHA-256; the row says whose, what and when. Deleting one marks it (audited) and the
    file goes when no row names it any more."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            index=True)
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="SET NULL"), index=True)
    #: the name as given, sanitised for display and downloads
    filename: Mapped[str] = mapped_column(String(255))
    #: the SHA-256 of the content, in hex: the file's name in the store
    stored_name: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    #: the media type read from the content (never the one the uploader claimed)
    content_type: Mapped[str] = mapped_column(String(100))
    uploaded_by_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]
    deleted_by_id: Mapped[str | None] = mapped_column(String(64))
    #: the file field of the order form this file answers (None: attached to the record)
    field: Mapped[str | None] = mapped_column(String(64))
