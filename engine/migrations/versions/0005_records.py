"""records: record type and agent-editable record fields on requests, record links, watchers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 11:15:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_type', sa.String(length=16), nullable=False,
                                      server_default='request'))
        batch_op.add_column(sa.Column('title', sa.String(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('impact', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('urgency', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('category', sa.String(length=120), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('assignment_group_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('assignee_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=False,
                                      server_default='portal'))
        batch_op.create_foreign_key(batch_op.f('fk_requests_assignment_group_id_groups'),
                                    'groups', ['assignment_group_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_requests_assignee_id_people'),
                                    'people', ['assignee_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_requests_assignment_group_id'),
                              ['assignment_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_requests_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index('ix_requests_type_status_created',
                              ['record_type', 'status', 'created_at'], unique=False)
    # existing requests: their title is the item's name (the model default is '' for new rows)
    op.execute(sa.text("UPDATE requests SET title = substr(item_name, 1, 200)"))
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.alter_column('record_type', server_default=None)
        batch_op.alter_column('title', server_default=None)
        batch_op.alter_column('category', server_default=None)
        batch_op.alter_column('channel', server_default=None)

    op.create_table('record_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('created_at', engine.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['people.id'],
                            name=op.f('fk_record_links_created_by_id_people')),
    sa.ForeignKeyConstraint(['source_id'], ['requests.id'],
                            name=op.f('fk_record_links_source_id_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['requests.id'],
                            name=op.f('fk_record_links_target_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_links')),
    sa.UniqueConstraint('source_id', 'target_id', 'kind', name=op.f('uq_record_links_source_id'))
    )
    with op.batch_alter_table('record_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_links_target_id'), ['target_id'], unique=False)

    op.create_table('watchers',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'],
                            name=op.f('fk_watchers_person_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                            name=op.f('fk_watchers_request_id_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('request_id', 'person_id', name=op.f('pk_watchers'))
    )


def downgrade() -> None:
    op.drop_table('watchers')
    with op.batch_alter_table('record_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_links_target_id'))
    op.drop_table('record_links')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_type_status_created')
        batch_op.drop_index(batch_op.f('ix_requests_assignee_id'))
        batch_op.drop_index(batch_op.f('ix_requests_assignment_group_id'))
        batch_op.drop_constraint(batch_op.f('fk_requests_assignee_id_people'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_requests_assignment_group_id_groups'),
                                 type_='foreignkey')
        batch_op.drop_column('channel')
        batch_op.drop_column('assignee_id')
        batch_op.drop_column('assignment_group_id')
        batch_op.drop_column('category')
        batch_op.drop_column('urgency')
        batch_op.drop_column('impact')
        batch_op.drop_column('title')
        batch_op.drop_column('record_type')
