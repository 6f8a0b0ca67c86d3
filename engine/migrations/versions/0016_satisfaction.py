"""satisfaction surveys

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27 14:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'csat_responses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('nonce', sa.String(length=32), nullable=False),
        sa.Column('sent_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('answered_at', engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('expires_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                                name=op.f('fk_csat_responses_person_id_people'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                                name=op.f('fk_csat_responses_request_id_requests'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_responses')),
        sa.UniqueConstraint('request_id', name=op.f('uq_csat_responses_request_id')),
    )
    with op.batch_alter_table('csat_responses', schema=None) as batch_op:
        batch_op.create_index('ix_csat_responses_answered_at', ['answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_csat_responses_person_id'), ['person_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('csat_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_csat_responses_person_id'))
        batch_op.drop_index('ix_csat_responses_answered_at')
    op.drop_table('csat_responses')
