"""list search: the ids of a kind, status and group from one index, for a text search

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-28 03:30:00.000000
"""
from __future__ import annotations

from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

COLUMNS = ['record_type', 'status', 'assignment_group_id', 'id']


def upgrade() -> None:
    op.create_index('ix_requests_type_status_group', 'requests', COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index('ix_requests_type_status_group', table_name='requests')
