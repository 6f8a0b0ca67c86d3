"""report snapshots: the dashboards' figures per filters, shared by every process

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-28 03:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'report_snapshots',
        sa.Column('key', sa.String(length=500), nullable=False),
        sa.Column('figures', sa.JSON(), nullable=False),
        sa.Column('computed_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_report_snapshots')),
    )


def downgrade() -> None:
    op.drop_table('report_snapshots')
