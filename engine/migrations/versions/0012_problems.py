"""problem records and known errors

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 13:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('problem_records',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('root_cause', sa.Text(), nullable=False),
    sa.Column('workaround', sa.Text(), nullable=False),
    sa.Column('known_error', sa.Boolean(), nullable=False),
    sa.Column('known_error_at', engine.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('service', sa.String(length=64), nullable=True),
    sa.Column('ci_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['ci_id'], ['assets.id'],
                            name=op.f('fk_problem_records_ci_id_assets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                            name=op.f('fk_problem_records_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_problem_records'))
    )
    with op.batch_alter_table('problem_records', schema=None) as batch_op:
        batch_op.create_index('ix_problem_records_known_error', ['known_error', 'service'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('problem_records', schema=None) as batch_op:
        batch_op.drop_index('ix_problem_records_known_error')
    op.drop_table('problem_records')
