"""change records, affected configuration items and the change calendar

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 13:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('changes',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('change_type', sa.String(length=16), nullable=False),
    sa.Column('risk', sa.String(length=16), nullable=True),
    sa.Column('planned_start', engine.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('planned_end', engine.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                            name=op.f('fk_changes_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_changes'))
    )
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.create_index('ix_changes_planned_start', ['planned_start'], unique=False)

    op.create_table('change_cis',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'],
                            name=op.f('fk_change_cis_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                            name=op.f('fk_change_cis_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('request_id', 'asset_id', name=op.f('pk_change_cis'))
    )
    with op.batch_alter_table('change_cis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_cis_asset_id'), ['asset_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('change_cis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_cis_asset_id'))
    op.drop_table('change_cis')
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_index('ix_changes_planned_start')
    op.drop_table('changes')
