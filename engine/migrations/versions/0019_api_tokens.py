"""personal API tokens and idempotency keys

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-27 16:20:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('created_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                                name=op.f('fk_api_tokens_person_id_people'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('digest', name=op.f('uq_api_tokens_digest')),
    )
    op.create_index(op.f('ix_api_tokens_person_id'), 'api_tokens', ['person_id'])
    op.create_table(
        'idempotency_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('created_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                                name=op.f('fk_idempotency_keys_person_id_people'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                                name=op.f('fk_idempotency_keys_request_id_requests'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
        sa.UniqueConstraint('person_id', 'key', name='uq_idempotency_keys_person_key'),
    )


def downgrade() -> None:
    op.drop_table('idempotency_keys')
    op.drop_index(op.f('ix_api_tokens_person_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
