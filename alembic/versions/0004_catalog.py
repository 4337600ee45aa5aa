"""L3/L4 static sky: data releases, the object catalog, and jobs on targets (skycells) with parameters.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 08:20:00.000000
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from romanarchive.db.registry import SPoint

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Jobs on no single product (a skycell and filter to co-add, a catalog to build) name their target.
    op.add_column('jobs', sa.Column('target', sa.String(length=128), nullable=True,
                                    comment='What a job on no single product works on, e.g. a skycell and filter'))
    op.add_column('jobs', sa.Column('params', postgresql.JSONB(astext_type=sa.Text()),
                                    server_default=sa.text("'{}'::jsonb"), nullable=False, comment='Job parameters'))
    op.create_index('ix_jobs_target', 'jobs', ['target'], unique=False)
    op.create_table('releases',
    sa.Column('release', sa.String(length=64), nullable=False, comment='Release tag'),
    sa.Column('description', sa.Text(), nullable=True, comment='What the release contains'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the release was frozen'),
    sa.Column('n_products', sa.BigInteger(), nullable=True, comment='Products in the release'),
    sa.Column('n_objects', sa.BigInteger(), nullable=True, comment='Object catalog rows in the release'),
    sa.PrimaryKeyConstraint('release', name=op.f('pk_releases')),
    comment="Data releases: a frozen, named set of products and catalog rows ('live' is the current, changing set)."
    )
    op.create_table('objects',
    sa.Column('source_id', sa.BigInteger(), nullable=False, comment="Stable object identifier; source_id >> 35 is the nested HEALPix order-12 index of its position (as Gaia DR3's)"),
    sa.Column('release', sa.String(length=64), nullable=False, comment="Data release the row belongs to ('live' until frozen)"),
    sa.Column('ra', sa.Double(), nullable=False, comment='Right ascension (ICRS)'),
    sa.Column('dec', sa.Double(), nullable=False, comment='Declination (ICRS)'),
    sa.Column('pos', SPoint(), nullable=False, comment='Position as a pgsphere point (indexed)'),
    sa.Column('hpx', sa.BigInteger(), nullable=False, comment='HEALPix nested index, order 29, of the position'),
    sa.Column('skycell', sa.String(length=32), nullable=True, comment='Sky tessellation cell the object was measured in'),
    sa.Column('point_like', sa.Boolean(), nullable=True, comment='Classified as point-like (star) from its shape'),
    sa.PrimaryKeyConstraint('source_id', 'release', name=op.f('pk_objects')),
    comment='Static-sky multiband object catalog built from the L3 mosaics: one row per object per release.'
    )
    op.create_index('ix_objects_hpx', 'objects', ['hpx'], unique=False)
    op.create_index('ix_objects_pos', 'objects', ['pos'], unique=False, postgresql_using='gist')
    op.create_index('ix_objects_skycell', 'objects', ['skycell'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_objects_skycell', table_name='objects')
    op.drop_index('ix_objects_pos', table_name='objects', postgresql_using='gist')
    op.drop_index('ix_objects_hpx', table_name='objects')
    op.drop_table('objects')
    op.drop_table('releases')
    op.drop_index('ix_jobs_target', table_name='jobs')
    op.drop_column('jobs', 'params')
    op.drop_column('jobs', 'target')
