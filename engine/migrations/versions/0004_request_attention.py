"""request attention: a workflow step that failed at runtime, for an admin to retry or route

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attention_at', engine.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('attention_state', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('attention_step', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('attention_error', sa.Text(), nullable=True))
        batch_op.create_index('ix_requests_attention', ['attention_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_attention')
        batch_op.drop_column('attention_error')
        batch_op.drop_column('attention_step')
        batch_op.drop_column('attention_state')
        batch_op.drop_column('attention_at')
