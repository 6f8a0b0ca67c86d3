"""configuration items: assets gain an owner group, a status, typed data, a key; relations

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 11:20:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_group_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=False,
                                      server_default='in_use'))
        batch_op.add_column(sa.Column('data', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('updated_at', engine.models.UTCDateTime(timezone=True),
                                      nullable=True))
    # Carry each asset's model and serial into its typed data before the columns go.
    assets = sa.table('assets', sa.column('id', sa.Integer()), sa.column('model', sa.String()),
                      sa.column('serial', sa.String()), sa.column('data', sa.JSON()),
                      sa.column('key', sa.String()),
                      sa.column('created_at', engine.models.UTCDateTime(timezone=True)),
                      sa.column('updated_at', engine.models.UTCDateTime(timezone=True)))
    bind = op.get_bind()
    rows = bind.execute(sa.select(assets.c.id, assets.c.model, assets.c.serial,
                                  assets.c.created_at)).all()
    for row in rows:
        data = {k: v for k, v in (("model", row.model), ("serial", row.serial)) if v}
        bind.execute(assets.update().where(assets.c.id == row.id).values(
            data=data, key=row.serial or None, updated_at=row.created_at))
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.alter_column('data', existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column('updated_at', existing_type=engine.models.UTCDateTime(timezone=True),
                              nullable=False)
        batch_op.alter_column('status', existing_type=sa.String(length=20), server_default=None)
        batch_op.alter_column('owner_id', existing_type=sa.String(length=64), nullable=True)
        batch_op.drop_column('model')
        batch_op.drop_column('serial')
        batch_op.create_foreign_key(batch_op.f('fk_assets_owner_group_id_groups'), 'groups',
                                    ['owner_group_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_assets_owner_group_id'), ['owner_group_id'],
                              unique=False)
        batch_op.create_index('ix_assets_type_status', ['type', 'status'], unique=False)
        batch_op.create_unique_constraint('uq_assets_type_key', ['type', 'key'])
    op.create_table('asset_relations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('created_at', engine.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['assets.id'],
                            name=op.f('fk_asset_relations_source_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['assets.id'],
                            name=op.f('fk_asset_relations_target_id_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_relations')),
    sa.UniqueConstraint('source_id', 'target_id', 'kind', name='uq_asset_relations_edge')
    )
    with op.batch_alter_table('asset_relations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_asset_relations_target_id'), ['target_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('asset_relations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_asset_relations_target_id'))
    op.drop_table('asset_relations')
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model', sa.String(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('serial', sa.String(length=200), nullable=False,
                                      server_default=''))
        batch_op.drop_constraint('uq_assets_type_key', type_='unique')
        batch_op.drop_index('ix_assets_type_status')
        batch_op.drop_index(batch_op.f('ix_assets_owner_group_id'))
        batch_op.drop_constraint(batch_op.f('fk_assets_owner_group_id_groups'),
                                 type_='foreignkey')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('key')
        batch_op.drop_column('data')
        batch_op.drop_column('status')
        batch_op.drop_column('owner_group_id')

