"""imported history: imported people, original timestamps, import runs

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27 13:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('imported_from', sa.String(length=32), nullable=True))
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('imported_from', sa.String(length=32), nullable=True))
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('import_source', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('import_digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('made_sla', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('reassignment_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('support_tier', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('ci_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_requests_ci_id'), ['ci_id'], unique=False)
        batch_op.create_unique_constraint('uq_requests_import_source',
                                          ['import_source', 'external_id'])
    op.create_table(
        'import_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('file', sa.String(length=500), nullable=False),
        sa.Column('started_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_runs')),
    )
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_runs_source'), ['source'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_runs_source'))
    op.drop_table('import_runs')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_constraint('uq_requests_import_source', type_='unique')
        batch_op.drop_index(batch_op.f('ix_requests_ci_id'))
        batch_op.drop_column('ci_id')
        batch_op.drop_column('support_tier')
        batch_op.drop_column('reassignment_count')
        batch_op.drop_column('made_sla')
        batch_op.drop_column('import_digest')
        batch_op.drop_column('external_id')
        batch_op.drop_column('import_source')
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.drop_column('imported_from')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('imported_from')
