"""Moving objects in DIA: per-detection motion across the epoch's exposures (dia_sources.rate_ra, rate_dec,
rate_err; flag 16 moving) and tracks linking them across epochs (dia_tracks, dia_sources.track_id).

Existing dia_sources rows get NULL rates; ``romanarchive diff --all --full`` measures them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 16:30:00.000000
"""

import sqlalchemy as sa

from alembic import op

_FLAGS = ('Bits: 1 negative (fainter than template), 2 near the coverage edge, 4 PSF matched (template or image '
          'convolved), 8 new (no static object within 0.3 arcsec)')
_MOVING = ", 16 moving (centroid drift across the epoch's exposures)"

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dia_tracks',
    sa.Column('track_id', sa.BigInteger(), nullable=False, comment='Track identifier'),
    sa.Column('n_detections', sa.Integer(), nullable=False, comment='Detections linked'),
    sa.Column('n_epochs', sa.Integer(), nullable=False, comment='Distinct epochs (mjd) with a detection'),
    sa.Column('first_mjd', sa.Double(), nullable=False, comment='First detection'),
    sa.Column('last_mjd', sa.Double(), nullable=False, comment='Last detection'),
    sa.Column('ra', sa.Double(), nullable=False, comment='Right ascension at first_mjd (ICRS)'),
    sa.Column('dec', sa.Double(), nullable=False, comment='Declination at first_mjd (ICRS)'),
    sa.Column('rate_ra', sa.Double(), nullable=True,
              comment="Mean motion in RA (times cos dec), weighted by the detections' rate errors"),
    sa.Column('rate_dec', sa.Double(), nullable=True, comment='Mean motion in Dec'),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False,
              comment='When the track was last linked'),
    sa.PrimaryKeyConstraint('track_id', name=op.f('pk_dia_tracks')),
    comment='Moving objects: DIA detections that move within their epoch, linked across epochs by their motion.')
    op.add_column('dia_sources', sa.Column('rate_ra', sa.Double(), nullable=True,
                  comment="Motion in RA (times cos dec) across the epoch's exposures (brightenings)"))
    op.add_column('dia_sources', sa.Column('rate_dec', sa.Double(), nullable=True,
                  comment="Motion in Dec across the epoch's exposures (brightenings)"))
    op.add_column('dia_sources', sa.Column('rate_err', sa.Double(), nullable=True,
                  comment='1-sigma uncertainty of rate_ra and rate_dec'))
    op.add_column('dia_sources', sa.Column('track_id', sa.BigInteger(), nullable=True,
                  comment='Track of a moving detection (dia_tracks.track_id): the same object at other epochs'))
    op.create_index('ix_dia_sources_track_id', 'dia_sources', ['track_id'], unique=False)
    op.alter_column('dia_sources', 'flags', existing_type=sa.SmallInteger(), existing_nullable=False,
                    comment=_FLAGS + _MOVING, existing_comment=_FLAGS)


def downgrade() -> None:
    op.alter_column('dia_sources', 'flags', existing_type=sa.SmallInteger(), existing_nullable=False,
                    comment=_FLAGS, existing_comment=_FLAGS + _MOVING)
    op.drop_index('ix_dia_sources_track_id', table_name='dia_sources')
    for col in ('track_id', 'rate_err', 'rate_dec', 'rate_ra'):
        op.drop_column('dia_sources', col)
    op.drop_table('dia_tracks')
