"""Forced-photometry targets: positions an operator or a Level 5 catalog asks to be measured (forced_targets) and
their measurements on every L2 image that covers them (target_phot).

The tables start empty; ``romanarchive targets add`` fills forced_targets and queues the L2s' forced_phot jobs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:45:00.000000
"""

import sqlalchemy as sa

from alembic import op
from romanarchive.db.registry import SPoint

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_RUNS = ('Provenance of the time-series tables: one row per run of a step (forced photometry of an L2 image, index '
         'recomputation, difference imaging of a skycell and filter); {} rows point here through run_id.')
_RUNS_OLD = _RUNS.format('forced_phot, variability and dia_sources')
_RUNS_NEW = _RUNS.format('forced_phot, target_phot, variability and dia_sources')


def upgrade() -> None:
    op.create_table('forced_targets',
    sa.Column('target_id', sa.BigInteger(), nullable=False, comment='Target identifier'),
    sa.Column('name', sa.Text(), nullable=False, comment='Name given by the origin (unique within it)'),
    sa.Column('ra', sa.Double(), nullable=False, comment='Right ascension (ICRS)'),
    sa.Column('dec', sa.Double(), nullable=False, comment='Declination (ICRS)'),
    sa.Column('pos', SPoint(), nullable=False, comment='Position as a pgsphere point (indexed)'),
    sa.Column('origin', sa.Text(), nullable=False,
              comment="Who asked: 'operator', or 'level5:<product>' for the rows of a Level 5 catalog"),
    sa.Column('added', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False,
              comment='When the target was added or last moved'),
    sa.PrimaryKeyConstraint('target_id', name=op.f('pk_forced_targets')),
    sa.UniqueConstraint('origin', 'name', name='uq_forced_targets_origin_name'),
    comment='Forced-photometry targets: sky positions an operator or a Level 5 catalog asked to be measured on every '
            'L2 image that covers them (as point sources), whether or not the static catalog has an object there. '
            'Measurements: target_phot.')
    op.create_index('ix_forced_targets_pos', 'forced_targets', ['pos'], unique=False, postgresql_using='gist')
    op.create_table('target_phot',
    sa.Column('target_id', sa.BigInteger(), nullable=False, comment='Target (forced_targets.target_id)'),
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='L2 product measured (products.product_id)'),
    sa.Column('filter', sa.String(length=20), nullable=False, comment='Filter of the image'),
    sa.Column('mjd', sa.Double(), nullable=False, comment='Mid-exposure time (MJD, UTC)'),
    sa.Column('flux', sa.Double(), nullable=True,
              comment='Total flux from a linear PSF fit (flux and local sky) at the fixed target position'),
    sa.Column('flux_err', sa.Double(), nullable=True, comment="1-sigma uncertainty of flux from the image's err array"),
    sa.Column('flux_ap', sa.Double(), nullable=True,
              comment="Aperture flux (r = 2.5 pix, sky from the PSF fit), corrected to total with the PSF's aperture "
                      "correction"),
    sa.Column('flux_ap_err', sa.Double(), nullable=True, comment='1-sigma uncertainty of flux_ap'),
    sa.Column('dra', sa.REAL(), nullable=True,
              comment='Centroid minus target position, east (dRA cos Dec); NULL when not measurable'),
    sa.Column('ddec', sa.REAL(), nullable=True,
              comment='Centroid minus target position, north; NULL when not measurable'),
    sa.Column('shift_err', sa.REAL(), nullable=True,
              comment='1-sigma uncertainty of dra and ddec (each), systematic floor included'),
    sa.Column('flags', sa.SmallInteger(), nullable=False,
              comment='Bits: 1 stamp off the edge, 2 bad pixels in the stamp, 4 centroid shifted beyond the noise, '
                      '8 centroid not measurable, 16 saturated core'),
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='Run that measured the row (timeseries_runs.run_id)'),
    sa.ForeignKeyConstraint(['target_id'], ['forced_targets.target_id'], name=op.f('fk_target_phot_target_id'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('target_id', 'product_id', name=op.f('pk_target_phot')),
    sa.UniqueConstraint('product_id', 'target_id', name='uq_target_phot_product_id_target_id'),
    comment='Forced photometry of the forced_targets positions on every L2 image that covers them: one row per '
            'target and image, measured with the PSF and aperture of forced_phot (same columns, units and flags).')
    op.create_index('ix_target_phot_mjd', 'target_phot', ['mjd'], unique=False)
    op.create_table_comment('timeseries_runs', _RUNS_NEW, existing_comment=_RUNS_OLD)


def downgrade() -> None:
    op.create_table_comment('timeseries_runs', _RUNS_OLD, existing_comment=_RUNS_NEW)
    op.drop_index('ix_target_phot_mjd', table_name='target_phot')
    op.drop_table('target_phot')
    op.drop_index('ix_forced_targets_pos', table_name='forced_targets', postgresql_using='gist')
    op.drop_table('forced_targets')
