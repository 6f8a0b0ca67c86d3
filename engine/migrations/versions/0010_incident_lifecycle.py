"""incident lifecycle: resolution data and reopen count on requests

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 11:45:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved_at', engine.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('resolution_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('resolution_notes', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reopen_count', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('reopen_count')
        batch_op.drop_column('resolution_notes')
        batch_op.drop_column('resolution_code')
        batch_op.drop_column('resolved_at')
