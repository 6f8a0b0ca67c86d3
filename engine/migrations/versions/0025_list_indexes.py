"""list indexes: every list query walks an index in its sort order, the tiebreaker included

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-28 00:40:00.000000
"""
from __future__ import annotations

from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

#: (table, index) -> (columns before, columns after); None: the index is new
CHANGED: dict[tuple[str, str], tuple[list[str] | None, list[str]]] = {
    ('approvals', 'ix_approvals_inbox'): (
        ['approver_id', 'decision', 'created_at'], ['approver_id', 'decision', 'created_at', 'id']),
    ('tasks', 'ix_tasks_queue'): (
        ['queue', 'status', 'due_at'], ['queue', 'status', 'due_at', 'id']),
    ('tasks', 'ix_tasks_queue_id'): (None, ['queue', 'status', 'id']),
    ('tasks', 'ix_tasks_queue_assignee'): (
        None, ['queue', 'status', 'assignee_id', 'due_at', 'id']),
    ('tasks', 'ix_tasks_queue_assignee_id'): (None, ['queue', 'status', 'assignee_id', 'id']),
    ('requests', 'ix_requests_status_updated'): (
        ['status', 'updated_at'], ['status', 'updated_at', 'id']),
    ('requests', 'ix_requests_group_status_updated'): (
        ['assignment_group_id', 'status', 'updated_at'],
        ['assignment_group_id', 'status', 'updated_at', 'id']),
    ('requests', 'ix_requests_assignee_status_updated'): (
        ['assignee_id', 'status', 'updated_at'], ['assignee_id', 'status', 'updated_at', 'id']),
    ('requests', 'ix_requests_sla_status_updated'): (
        ['sla_state', 'status', 'updated_at'], ['sla_state', 'status', 'updated_at', 'id']),
    ('requests', 'ix_requests_assignee_status_priority'): (
        None, ['assignee_id', 'status', 'priority', 'id']),
}


def upgrade() -> None:
    for (table, name), (before, after) in CHANGED.items():
        if before is not None:
            op.drop_index(name, table_name=table)
        op.create_index(name, table, after, unique=False)


def downgrade() -> None:
    for (table, name), (before, _) in CHANGED.items():
        op.drop_index(name, table_name=table)
        if before is not None:
            op.create_index(name, table, before, unique=False)
