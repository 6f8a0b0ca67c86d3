"""major incidents, tier routing and the solving article

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 13:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('solution_article', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('major', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('major_at', engine.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('major_by_id', sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_requests_major_by_id_people'), 'people',
                                    ['major_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_requests_major_by_id_people'), type_='foreignkey')
        batch_op.drop_column('major_by_id')
        batch_op.drop_column('major_at')
        batch_op.drop_column('major')
        batch_op.drop_column('solution_article')
