"""knowledge: article feedback (one vote per person per article) and article views from order forms

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 11:20:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('article_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('created_at', engine.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', engine.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                            name=op.f('fk_article_feedback_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_article_feedback')),
    sa.UniqueConstraint('article_id', 'person_id', name='uq_article_feedback_article_person')
    )
    op.create_table('article_views',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('article_id', sa.String(length=64), nullable=False),
    sa.Column('item_id', sa.String(length=64), nullable=False),
    sa.Column('viewed_at', engine.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ordered', sa.Boolean(), nullable=False),
    sa.Column('ordered_at', engine.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                            name=op.f('fk_article_views_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_article_views'))
    )
    with op.batch_alter_table('article_views', schema=None) as batch_op:
        batch_op.create_index('ix_article_views_person_item', ['person_id', 'item_id', 'viewed_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_article_views_viewed_at'), ['viewed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('article_views', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_article_views_viewed_at'))
        batch_op.drop_index('ix_article_views_person_item')
    op.drop_table('article_views')
    op.drop_table('article_feedback')
