"""Forced-photometry time series, variability indices and difference-imaging sources.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 08:20:00.000000
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from romanarchive.db.registry import SPoint

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Must match romanarchive.db.tables_timeseries.N_PARTITIONS (alembic env skips forced_phot_p<k> in `check`).
N_PARTITIONS = 8


def upgrade() -> None:
    op.create_table('forced_phot',
    sa.Column('source_id', sa.BigInteger(), nullable=False, comment='Object (objects.source_id)'),
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='L2 product measured (products.product_id)'),
    sa.Column('filter', sa.String(length=20), nullable=False, comment='Filter of the image'),
    sa.Column('mjd', sa.Double(), nullable=False, comment='Mid-exposure time (MJD, UTC)'),
    sa.Column('flux', sa.Double(), nullable=True, comment='Total flux from a linear PSF fit (flux and local sky) at the fixed catalog position'),
    sa.Column('flux_err', sa.Double(), nullable=True, comment="1-sigma uncertainty of flux from the image's err array"),
    sa.Column('flux_ap', sa.Double(), nullable=True, comment="Aperture flux (r = 2.5 pix, sky from the PSF fit), corrected to total with the PSF's aperture correction"),
    sa.Column('flux_ap_err', sa.Double(), nullable=True, comment='1-sigma uncertainty of flux_ap'),
    sa.Column('x', sa.REAL(), nullable=True, comment='Column of the catalog position in the image (0-based)'),
    sa.Column('y', sa.REAL(), nullable=True, comment='Row of the catalog position in the image (0-based)'),
    sa.Column('dra', sa.REAL(), nullable=True, comment='Centroid minus catalog position, east (dRA cos Dec); NaN when not measurable'),
    sa.Column('ddec', sa.REAL(), nullable=True, comment='Centroid minus catalog position, north; NaN when not measurable'),
    sa.Column('shift_err', sa.REAL(), nullable=True, comment='1-sigma uncertainty of dra and ddec (each), systematic floor included'),
    sa.Column('shift_snr', sa.REAL(), nullable=True, comment='Centroid shift over its uncertainty'),
    sa.Column('flux_shifted', sa.Double(), nullable=True, comment='PSF flux at the centroid, for measurements flagged as shifted (else NULL)'),
    sa.Column('flux_shifted_err', sa.Double(), nullable=True, comment='1-sigma uncertainty of flux_shifted'),
    sa.Column('flags', sa.SmallInteger(), nullable=False, comment='Bits: 1 stamp off the edge, 2 bad pixels in the stamp, 4 centroid shifted beyond the noise, 8 centroid not measurable, 16 saturated core'),
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='Run that measured the row (timeseries_runs.run_id)'),
    sa.PrimaryKeyConstraint('source_id', 'product_id', name=op.f('pk_forced_phot')),
    sa.UniqueConstraint('product_id', 'source_id', name='uq_forced_phot_product_id_source_id'),
    comment='Forced photometry of point-like catalog objects on every L2 image that covers them: one row per object and image (partitioned by HASH on source_id).',
    postgresql_partition_by='HASH (source_id)',
    )
    for k in range(N_PARTITIONS):
        op.execute(f"CREATE TABLE forced_phot_p{k} PARTITION OF forced_phot "
                   f"FOR VALUES WITH (MODULUS {N_PARTITIONS}, REMAINDER {k})")
    op.create_index('ix_forced_phot_mjd', 'forced_phot', ['mjd'], unique=False)
    op.create_table('variability',
    sa.Column('source_id', sa.BigInteger(), nullable=False, comment='Object (objects.source_id)'),
    sa.Column('filter', sa.String(length=20), nullable=False, comment='Filter'),
    sa.Column('n_epochs', sa.Integer(), nullable=False, comment='Measurements used (unflagged)'),
    sa.Column('n_flagged', sa.Integer(), nullable=False, comment='Measurements with quality flags (not used)'),
    sa.Column('mjd_min', sa.Double(), nullable=True, comment='First measurement'),
    sa.Column('mjd_max', sa.Double(), nullable=True, comment='Last measurement'),
    sa.Column('mean_flux', sa.Double(), nullable=True, comment='Inverse-variance weighted mean flux'),
    sa.Column('chi2_red', sa.Double(), nullable=True, comment='Reduced chi-square of the light curve about the weighted mean'),
    sa.Column('stetson_j', sa.Double(), nullable=True, comment='Stetson (1996) J index, consecutive-pair form'),
    sa.Column('stetson_k', sa.Double(), nullable=True, comment='Stetson K kurtosis index (sqrt(2/pi) ~ 0.80 for Gaussian noise)'),
    sa.Column('eta', sa.Double(), nullable=True, comment='von Neumann ratio: mean squared successive difference over variance'),
    sa.Column('amplitude', sa.Double(), nullable=True, comment='Half of max - min of the flux'),
    sa.Column('mad', sa.Double(), nullable=True, comment='Median absolute deviation of the flux from its median'),
    sa.Column('flags', sa.Integer(), nullable=False, comment='Bits: 1 moving (centroid drift), 2 flagged measurements left out, 4 fewer than 3 epochs, 8 one measurement dominates chi2'),
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='Run that computed the indices (timeseries_runs.run_id)'),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the indices were computed'),
    sa.PrimaryKeyConstraint('source_id', 'filter', name=op.f('pk_variability')),
    comment='Variability indices of the forced-photometry light curves, per object and filter.'
    )
    op.create_table('dia_sources',
    sa.Column('dia_id', sa.BigInteger(), nullable=False, comment='Detection identifier'),
    sa.Column('skycell', sa.String(length=32), nullable=False, comment='Skycell of the images'),
    sa.Column('filter', sa.String(length=20), nullable=False, comment='Filter'),
    sa.Column('mjd', sa.Double(), nullable=False, comment='Mean mid-exposure time of the epoch image'),
    sa.Column('science_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='L2 products co-added into the epoch image'),
    sa.Column('template_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Earlier L2 products co-added into the template'),
    sa.Column('ra', sa.Double(), nullable=False, comment='Right ascension (ICRS)'),
    sa.Column('dec', sa.Double(), nullable=False, comment='Declination (ICRS)'),
    sa.Column('pos', SPoint(), nullable=False, comment='Position as a pgsphere point (indexed)'),
    sa.Column('x', sa.REAL(), nullable=True, comment='Column in the skycell grid (0-based)'),
    sa.Column('y', sa.REAL(), nullable=True, comment='Row in the skycell grid (0-based)'),
    sa.Column('flux', sa.Double(), nullable=True, comment='Difference flux from a PSF fit (negative: fainter than the template)'),
    sa.Column('flux_err', sa.Double(), nullable=True, comment='1-sigma uncertainty of flux from the propagated noise'),
    sa.Column('snr', sa.Double(), nullable=True, comment='Matched-filter signal-to-noise ratio of the detection'),
    sa.Column('flux_template', sa.Double(), nullable=True, comment='Template flux at the position (PSF fit)'),
    sa.Column('nearest_source_id', sa.BigInteger(), nullable=True, comment='Nearest static object (objects.source_id, live release) or NULL'),
    sa.Column('nearest_sep', sa.Double(), nullable=True, comment='Distance to that object'),
    sa.Column('flags', sa.SmallInteger(), nullable=False, comment='Bits: 1 negative (fainter than template), 2 near the coverage edge, 4 PSF matched (template or image convolved), 8 new (no static object within 0.3 arcsec)'),
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='Run that wrote the row (timeseries_runs.run_id)'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the row was written'),
    sa.PrimaryKeyConstraint('dia_id', name=op.f('pk_dia_sources')),
    comment='Difference-imaging detections: sources on an epoch co-add of a skycell and filter minus a template co-added from earlier images.'
    )
    op.create_index('ix_dia_sources_mjd', 'dia_sources', ['mjd'], unique=False)
    op.create_index('ix_dia_sources_pos', 'dia_sources', ['pos'], unique=False, postgresql_using='gist')
    op.create_index('ix_dia_sources_skycell', 'dia_sources', ['skycell'], unique=False)
    op.create_table('timeseries_runs',
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='Run identifier'),
    sa.Column('step', sa.String(length=64), nullable=False, comment='Processing step, e.g. romanarchive.ForcedPhotStep'),
    sa.Column('target', sa.String(length=128), nullable=False, comment="What the run worked on: 'product:<id>', a skycell and filter, or 'all'"),
    sa.Column('software', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Package versions used'),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Step configuration'),
    sa.Column('inputs', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Input products (ids and file names) and the catalog release measured'),
    sa.Column('n_rows', sa.BigInteger(), nullable=True, comment='Rows the run wrote'),
    sa.Column('wall_time_s', sa.Double(), nullable=True, comment='Wall time of the run'),
    sa.Column('peak_rss_mb', sa.Double(), nullable=True, comment='Peak resident memory of the process during the run'),
    sa.Column('host', sa.Text(), nullable=True, comment='Worker that ran it'),
    sa.Column('job_id', sa.BigInteger(), nullable=True, comment='Job that ran it (NULL when run by hand)'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the run was recorded'),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_timeseries_runs')),
    comment='Provenance of the time-series tables: one row per run of a step (forced photometry of an L2 image, index recomputation, difference imaging of a skycell and filter); forced_phot, variability and dia_sources rows point here through run_id.'
    )


def downgrade() -> None:
    op.drop_table('timeseries_runs')
    op.drop_index('ix_dia_sources_skycell', table_name='dia_sources')
    op.drop_index('ix_dia_sources_pos', table_name='dia_sources', postgresql_using='gist')
    op.drop_index('ix_dia_sources_mjd', table_name='dia_sources')
    op.drop_table('dia_sources')
    op.drop_table('variability')
    op.drop_table('forced_phot')  # drops its partitions and indexes
