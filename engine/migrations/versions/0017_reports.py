"""indexes for the dashboards

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27 14:30:00.000000
"""
from __future__ import annotations

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_requests_created", "requests", ["created_at"])
    op.create_index("ix_audit_event_request", "audit_events", ["event", "request_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_event_request", table_name="audit_events")
    op.drop_index("ix_requests_created", table_name="requests")
