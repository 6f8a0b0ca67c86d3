"""inbound email

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-27 17:00:00.000000
"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'mail_receipts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_key', sa.String(length=255), nullable=False),
        sa.Column('sender', sa.String(length=254), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=True),
        sa.Column('mailbox', sa.String(length=255), nullable=True),
        sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
        sa.Column('uid', sa.BigInteger(), nullable=True),
        sa.Column('received_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                                name=op.f('fk_mail_receipts_request_id_requests'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_receipts')),
        sa.UniqueConstraint('mailbox', 'uidvalidity', 'uid', name='uq_mail_receipts_mailbox_uid'),
        sa.UniqueConstraint('message_key', name=op.f('uq_mail_receipts_message_key')),
    )
    with op.batch_alter_table('mail_receipts', schema=None) as batch_op:
        batch_op.create_index('ix_mail_receipts_sender_at', ['sender', 'received_at'], unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_digest', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_message_digest'), ['message_digest'],
                              unique=False)
    # emails already in the outbox: a reply to one threads by its Message-ID too
    outbox = sa.table('outbox', sa.column('id', sa.Integer()), sa.column('kind', sa.String()),
                      sa.column('idempotency_key', sa.String()),
                      sa.column('message_digest', sa.String()))
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.idempotency_key)
                        .where(outbox.c.kind == 'email')).all()
    for row_id, key in rows:
        conn.execute(outbox.update().where(outbox.c.id == row_id).values(
            message_digest=hashlib.sha256(key.encode()).hexdigest()[:32]))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_digest'))
        batch_op.drop_column('message_digest')
    with op.batch_alter_table('mail_receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_receipts_sender_at')
    op.drop_table('mail_receipts')
