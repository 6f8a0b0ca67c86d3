"""order guides

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-27 23:50:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'orders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=20), nullable=True),
        sa.Column('guide_id', sa.String(length=64), nullable=False),
        sa.Column('guide_name', sa.String(length=120), nullable=False),
        sa.Column('requester_id', sa.String(length=64), nullable=False),
        sa.Column('requested_for_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['requested_for_id'], ['people.id'],
                                name=op.f('fk_orders_requested_for_id_people')),
        sa.ForeignKeyConstraint(['requester_id'], ['people.id'],
                                name=op.f('fk_orders_requester_id_people')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
        sa.UniqueConstraint('number', name=op.f('uq_orders_number')),
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_guide_id'), ['guide_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_requested_for_id'), ['requested_for_id'],
                              unique=False)
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('order_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_requests_order_id'), ['order_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_requests_order_id_orders'), 'orders',
                                    ['order_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_requests_order_id_orders'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_requests_order_id'))
        batch_op.drop_column('order_id')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_requested_for_id'))
        batch_op.drop_index(batch_op.f('ix_orders_requester_id'))
        batch_op.drop_index(batch_op.f('ix_orders_guide_id'))
    op.drop_table('orders')
