"""one-click email action links

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-27 16:20:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'email_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('approval_id', sa.Integer(), nullable=True),
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('nonce', sa.String(length=32), nullable=False),
        sa.Column('created_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('used_action', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['approval_id'], ['approvals.id'],
                                name=op.f('fk_email_actions_approval_id_approvals'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                                name=op.f('fk_email_actions_person_id_people'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                                name=op.f('fk_email_actions_request_id_requests'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_email_actions')),
    )
    with op.batch_alter_table('email_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_actions_approval_id'), ['approval_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_email_actions_person_id'), ['person_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_email_actions_request_id'), ['request_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('email_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_actions_request_id'))
        batch_op.drop_index(batch_op.f('ix_email_actions_person_id'))
        batch_op.drop_index(batch_op.f('ix_email_actions_approval_id'))
    op.drop_table('email_actions')
