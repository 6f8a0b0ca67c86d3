"""attachments

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-27 17:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'attachments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('comment_id', sa.Integer(), nullable=True),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('stored_name', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('uploaded_by_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('deleted_at', engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('deleted_by_id', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['comment_id'], ['comments.id'],
                                name=op.f('fk_attachments_comment_id_comments'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                                name=op.f('fk_attachments_request_id_requests'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['people.id'],
                                name=op.f('fk_attachments_uploaded_by_id_people')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments')),
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachments_comment_id'), ['comment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_stored_name'), ['stored_name'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachments_stored_name'))
        batch_op.drop_index(batch_op.f('ix_attachments_request_id'))
        batch_op.drop_index(batch_op.f('ix_attachments_comment_id'))
    op.drop_table('attachments')
