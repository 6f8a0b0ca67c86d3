"""per-record figures for the dashboards (engine.record_figures), filled from the audit trail

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27 16:20:00.000000
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

import engine.models
from engine.record_figures import SOURCE_COLUMNS, computed, fact_row, write_facts

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

BATCH = 2000
# the search index's pause (engine.search_index `pause`/`resume`), frozen here
_RECORD = ("coalesce(NEW.number, '') || char(10) || coalesce(NEW.title, '') || char(10) "
           "|| coalesce(CAST(NEW.answers AS TEXT), '')")
_INSERT = ("INSERT INTO record_search(rowid, record, comments, notes) "
           f"VALUES (NEW.id, {_RECORD}, '', ''); END")
_UPDATE = f"UPDATE record_search SET record = {_RECORD} WHERE rowid = NEW.id; END"
_WHEN = "WHEN NOT EXISTS (SELECT 1 FROM record_search_paused) "
SQLITE_TRIGGERS = {
    "record_search_request_insert": "AFTER INSERT ON requests {when}BEGIN " + _INSERT,
    "record_search_request_update":
        "AFTER UPDATE OF number, title, answers ON requests {when}BEGIN " + _UPDATE}
PG_FUNCTION = """CREATE OR REPLACE FUNCTION record_search_request() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  {check}PERFORM record_search_refresh(NEW.id);
  RETURN NULL;
END $$"""
PG_CHECK = "IF EXISTS (SELECT 1 FROM record_search_paused) THEN RETURN NULL; END IF;\n  "
FILTERS = ["opened_at", "group_id", "record_type", "item_id"]
INDEXES = {
    "ix_record_facts_opened": ["opened_at"], "ix_record_facts_state": ["state"],
    "ix_record_facts_resolve": ["priority", "resolve_h", "sla_met", *FILTERS],
    "ix_record_facts_respond": ["priority", "respond_h", *FILTERS],
    "ix_record_facts_duration": ["duration_h", "priority", *FILTERS],
    "ix_record_facts_group": ["group_id", "open", "sla_met"],
    "ix_record_facts_backlog": ["open", "opened_at"],
    "ix_record_facts_opened_day": ["opened_day"], "ix_record_facts_resolved_day": ["resolved_day"],
    "ix_record_facts_groups": ["groups"],
    "ix_record_facts_tiers": ["tiers_seen", "escalated_to"]}
COLUMNS = ("group_path", "group_changes", "ping_pong", "tiers_seen", "escalated_to")


def upgrade() -> None:
    op.add_column("requests", sa.Column("group_path", sa.Text(), nullable=True))
    op.add_column("requests", sa.Column("group_changes", sa.Integer(), server_default="0",
                                        nullable=False))
    op.add_column("requests", sa.Column("ping_pong", sa.Boolean(), server_default=sa.false(),
                                        nullable=False))
    op.add_column("requests", sa.Column("tiers_seen", sa.String(length=64), nullable=True))
    op.add_column("requests", sa.Column("escalated_to", sa.String(length=32), nullable=True))
    op.create_table(
        "record_facts",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=32), nullable=True),
        sa.Column("group_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("opened_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opened_day", sa.Integer(), nullable=False),
        sa.Column("resolved_day", sa.Integer(), nullable=True),
        sa.Column("respond_h", sa.Float(), nullable=True),
        sa.Column("resolve_h", sa.Float(), nullable=True),
        sa.Column("duration_h", sa.Float(), nullable=False),
        sa.Column("sla_met", sa.Integer(), nullable=True),
        sa.Column("ever_resolved", sa.Boolean(), nullable=False),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.Column("reassignments", sa.Integer(), nullable=False),
        sa.Column("ping_pong", sa.Boolean(), nullable=False),
        sa.Column("groups", sa.Text(), nullable=True),
        sa.Column("tiers_seen", sa.String(length=64), nullable=True),
        sa.Column("escalated_to", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE",
                                name=op.f("fk_record_facts_request_id_requests")),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_record_facts")))
    for name, columns in INDEXES.items():
        op.create_index(name, "record_facts", columns)
    conn = op.get_bind()
    backfill(conn)
    facts(conn)
    search_pause(conn, True)


def search_pause(conn: sa.Connection, on: bool) -> None:
    """The table that pauses the search triggers, and triggers that look at it (or neither)."""
    if on:
        conn.exec_driver_sql("CREATE TABLE record_search_paused (paused INTEGER NOT NULL)")
    if conn.dialect.name == "sqlite":
        for name, body in SQLITE_TRIGGERS.items():
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE TRIGGER {name} " + body.format(when=_WHEN if on else ""))
    else:
        conn.exec_driver_sql(PG_FUNCTION.format(check=PG_CHECK if on else ""))
    if not on:
        conn.exec_driver_sql("DROP TABLE record_search_paused")


def backfill(conn: sa.Connection) -> None:
    """The figures of the records that changed group or tier, from their audit rows in order."""
    events = sa.table("audit_events", sa.column("id"), sa.column("request_id"),
                      sa.column("event"), sa.column("detail"), sa.column("at"))
    requests = sa.table("requests", sa.column("id"), sa.column("group_path"),
                        sa.column("group_changes"), sa.column("ping_pong"),
                        sa.column("tiers_seen"), sa.column("escalated_to"))
    last = 0
    while True:
        ids = [r for (r,) in conn.execute(
            sa.select(requests.c.id).where(requests.c.id > last).order_by(requests.c.id)
            .limit(BATCH))]
        if not ids:
            return
        last = ids[-1]
        first: dict[int, str | None] = {}
        changes: dict[int, list[dict[str, Any]]] = {}
        for rid, event, detail in conn.execute(
                sa.select(events.c.request_id, events.c.event, events.c.detail).where(
                    events.c.request_id.in_(ids),
                    events.c.event.in_(("submitted", "record_changed")))
                .order_by(events.c.request_id, events.c.at, events.c.id)):
            detail = json.loads(detail) if isinstance(detail, str) else (detail or {})
            if event == "submitted":
                first[rid] = detail.get("tier")
            elif detail.get("changes"):
                changes.setdefault(rid, []).append(detail["changes"])
        rows = [{"rid": rid, **{f"b_{k}": v for k, v in
                                computed(first.get(rid), changes.get(rid, ())).columns().items()}}
                for rid in first.keys() | changes.keys()]
        rows = [r for r in rows if r["b_group_path"] is not None or r["b_tiers_seen"] is not None]
        if rows:
            conn.execute(requests.update().where(requests.c.id == sa.bindparam("rid")).values(
                {name: sa.bindparam(f"b_{name}") for name in COLUMNS}), rows)


def facts(conn: sa.Connection) -> None:
    """One facts row per record (engine.record_figures `fact_row`)."""
    requests = engine.models.Request.__table__
    columns = [requests.c[name] for name in SOURCE_COLUMNS]
    last = 0
    while True:
        rows = conn.execute(sa.select(*columns).where(requests.c.id > last)
                            .order_by(requests.c.id).limit(BATCH)).mappings().all()
        if not rows:
            return
        last = rows[-1]["id"]
        write_facts(conn, [fact_row(row.get) for row in rows])


def downgrade() -> None:
    search_pause(op.get_bind(), False)
    for name in INDEXES:
        op.drop_index(name, table_name="record_facts")
    op.drop_table("record_facts")
    for name in reversed(COLUMNS):
        if op.get_bind().dialect.name == "sqlite":
            # SQLite 3.35+ drops a plain column in place; batch mode's copy of the table would
            # drop the old one, and with it (ON DELETE CASCADE) every audit row
            op.execute(f"ALTER TABLE requests DROP COLUMN {name}")
        else:
            op.drop_column("requests", name)
