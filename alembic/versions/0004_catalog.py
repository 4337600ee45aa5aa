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
    # pgsphere's spoint has no binary I/O, and PostgreSQL's binary COPY needs it for every column of the target
    # table. spoint is two float8 (lng, lat in radians) laid out as the built-in point, so point's binary
    # functions serve it; the objects catalog is then binary-COPied straight into its table.
    op.execute("CREATE OR REPLACE FUNCTION spoint_recv(internal) RETURNS spoint AS 'point_recv' "
               "LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE")
    op.execute("CREATE OR REPLACE FUNCTION spoint_send(spoint) RETURNS bytea AS 'point_send' "
               "LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE")
    op.execute("ALTER TYPE spoint SET (RECEIVE = spoint_recv, SEND = spoint_send)")
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
    op.create_table('release_products',
    sa.Column('release', sa.String(length=64), nullable=False, comment='Release tag'),
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='Product in the release'),
    sa.ForeignKeyConstraint(['product_id'], ['products.product_id'], name=op.f('fk_release_products_product_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['release'], ['releases.release'], name=op.f('fk_release_products_release'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('release', 'product_id', name=op.f('pk_release_products')),
    comment="Products frozen in a data release (romanarchive.releases): live products stay 'live' and are listed here; a frozen product replaced by later processing keeps its row, re-tagged with its newest release."
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
    # The catalog step's measurement columns (romanarchive.db.tables_catalog.OBJECT_MEASUREMENTS).
    op.add_column('objects', sa.Column('ra_err', sa.Double(), nullable=True, comment='Uncertainty of ra (times cos dec), from size over detection S/N'))
    op.add_column('objects', sa.Column('dec_err', sa.Double(), nullable=True, comment='Uncertainty of dec, from size over detection S/N'))
    op.add_column('objects', sa.Column('x_det', sa.Double(), nullable=True, comment='Centroid column in the skycell pixel grid (0-based)'))
    op.add_column('objects', sa.Column('y_det', sa.Double(), nullable=True, comment='Centroid row in the skycell pixel grid (0-based)'))
    op.add_column('objects', sa.Column('segment_id', sa.Integer(), nullable=True, comment='Label of the object in the segmentation map (L4 wfi_l4_segm product)'))
    op.add_column('objects', sa.Column('det_snr', sa.Double(), nullable=True, comment='Signal-to-noise ratio of the segment in the combined detection image'))
    op.add_column('objects', sa.Column('area', sa.Double(), nullable=True, comment='Area of the segment'))
    op.add_column('objects', sa.Column('semimajor_sigma', sa.Double(), nullable=True, comment='Semi-major axis: RMS along the major axis from second moments'))
    op.add_column('objects', sa.Column('semiminor_sigma', sa.Double(), nullable=True, comment='Semi-minor axis: RMS along the minor axis from second moments'))
    op.add_column('objects', sa.Column('ellipticity', sa.Double(), nullable=True, comment='1 - semiminor/semimajor'))
    op.add_column('objects', sa.Column('position_angle', sa.Double(), nullable=True, comment='Position angle of the major axis, east of north'))
    op.add_column('objects', sa.Column('r_half', sa.Double(), nullable=True, comment='Half-light radius in the detection image (PSF-convolved)'))
    op.add_column('objects', sa.Column('concentration', sa.Double(), nullable=True, comment="Flux ratio of apertures of 1.5 and 4 pixel radius in the detection image; compared with the PSF's for point_like"))
    op.add_column('objects', sa.Column('flags', sa.Integer(), nullable=True, comment='Bit flags: 1 deblended from a parent, 2 segment touches the image edge or masked pixels, 4 fewer than all bands measured'))
    op.add_column('objects', sa.Column('photoz', sa.Double(), nullable=True, comment='Photometric redshift from template fitting of the Roman bands (CWW templates)'))
    op.add_column('objects', sa.Column('photoz_err', sa.Double(), nullable=True, comment='Half-width of the redshift range with chi2 < min + 1'))
    op.add_column('objects', sa.Column('photoz_chi2', sa.Double(), nullable=True, comment='Chi-square of the best template fit'))
    op.add_column('objects', sa.Column('photoz_template', sa.SmallInteger(), nullable=True, comment='Best template: 0 E, 1 Sbc, 2 Scd, 3 Im (CWW, galsim share/SEDs)'))
    op.add_column('objects', sa.Column('n_bands', sa.SmallInteger(), nullable=True, comment='Bands with a measurement'))
    op.add_column('objects', sa.Column('f062_flux_ap', sa.Double(), nullable=True, comment="F062 flux in the catalog's circular aperture at the native PSF, local background subtracted"))
    op.add_column('objects', sa.Column('f062_flux_ap_err', sa.Double(), nullable=True, comment='F062 uncertainty of f062_flux_ap from the noise model (err array)'))
    op.add_column('objects', sa.Column('f062_flux_psfm', sa.Double(), nullable=True, comment="F062 flux in the same aperture after matching the PSF to the catalog's reference (broadest) PSF; use for colours"))
    op.add_column('objects', sa.Column('f062_flux_psfm_err', sa.Double(), nullable=True, comment='F062 uncertainty of f062_flux_psfm'))
    op.add_column('objects', sa.Column('f062_flux_kron', sa.Double(), nullable=True, comment='F062 flux in the Kron ellipse (2.5 Kron radii) of the detection image, an estimate of the total flux'))
    op.add_column('objects', sa.Column('f062_flux_kron_err', sa.Double(), nullable=True, comment='F062 uncertainty of f062_flux_kron'))
    op.add_column('objects', sa.Column('f062_mag_ap', sa.Double(), nullable=True, comment='F062 AB magnitude of f062_flux_ap'))
    op.add_column('objects', sa.Column('f062_mag_ap_err', sa.Double(), nullable=True, comment='F062 uncertainty of f062_mag_ap'))
    op.add_column('objects', sa.Column('f062_bkg_local', sa.Double(), nullable=True, comment='F062 local background per pixel in an annulus around the object'))
    op.add_column('objects', sa.Column('f087_flux_ap', sa.Double(), nullable=True, comment="F087 flux in the catalog's circular aperture at the native PSF, local background subtracted"))
    op.add_column('objects', sa.Column('f087_flux_ap_err', sa.Double(), nullable=True, comment='F087 uncertainty of f087_flux_ap from the noise model (err array)'))
    op.add_column('objects', sa.Column('f087_flux_psfm', sa.Double(), nullable=True, comment="F087 flux in the same aperture after matching the PSF to the catalog's reference (broadest) PSF; use for colours"))
    op.add_column('objects', sa.Column('f087_flux_psfm_err', sa.Double(), nullable=True, comment='F087 uncertainty of f087_flux_psfm'))
    op.add_column('objects', sa.Column('f087_flux_kron', sa.Double(), nullable=True, comment='F087 flux in the Kron ellipse (2.5 Kron radii) of the detection image, an estimate of the total flux'))
    op.add_column('objects', sa.Column('f087_flux_kron_err', sa.Double(), nullable=True, comment='F087 uncertainty of f087_flux_kron'))
    op.add_column('objects', sa.Column('f087_mag_ap', sa.Double(), nullable=True, comment='F087 AB magnitude of f087_flux_ap'))
    op.add_column('objects', sa.Column('f087_mag_ap_err', sa.Double(), nullable=True, comment='F087 uncertainty of f087_mag_ap'))
    op.add_column('objects', sa.Column('f087_bkg_local', sa.Double(), nullable=True, comment='F087 local background per pixel in an annulus around the object'))
    op.add_column('objects', sa.Column('f106_flux_ap', sa.Double(), nullable=True, comment="F106 flux in the catalog's circular aperture at the native PSF, local background subtracted"))
    op.add_column('objects', sa.Column('f106_flux_ap_err', sa.Double(), nullable=True, comment='F106 uncertainty of f106_flux_ap from the noise model (err array)'))
    op.add_column('objects', sa.Column('f106_flux_psfm', sa.Double(), nullable=True, comment="F106 flux in the same aperture after matching the PSF to the catalog's reference (broadest) PSF; use for colours"))
    op.add_column('objects', sa.Column('f106_flux_psfm_err', sa.Double(), nullable=True, comment='F106 uncertainty of f106_flux_psfm'))
    op.add_column('objects', sa.Column('f106_flux_kron', sa.Double(), nullable=True, comment='F106 flux in the Kron ellipse (2.5 Kron radii) of the detection image, an estimate of the total flux'))
    op.add_column('objects', sa.Column('f106_flux_kron_err', sa.Double(), nullable=True, comment='F106 uncertainty of f106_flux_kron'))
    op.add_column('objects', sa.Column('f106_mag_ap', sa.Double(), nullable=True, comment='F106 AB magnitude of f106_flux_ap'))
    op.add_column('objects', sa.Column('f106_mag_ap_err', sa.Double(), nullable=True, comment='F106 uncertainty of f106_mag_ap'))
    op.add_column('objects', sa.Column('f106_bkg_local', sa.Double(), nullable=True, comment='F106 local background per pixel in an annulus around the object'))
    op.add_column('objects', sa.Column('f129_flux_ap', sa.Double(), nullable=True, comment="F129 flux in the catalog's circular aperture at the native PSF, local background subtracted"))
    op.add_column('objects', sa.Column('f129_flux_ap_err', sa.Double(), nullable=True, comment='F129 uncertainty of f129_flux_ap from the noise model (err array)'))
    op.add_column('objects', sa.Column('f129_flux_psfm', sa.Double(), nullable=True, comment="F129 flux in the same aperture after matching the PSF to the catalog's reference (broadest) PSF; use for colours"))
    op.add_column('objects', sa.Column('f129_flux_psfm_err', sa.Double(), nullable=True, comment='F129 uncertainty of f129_flux_psfm'))
    op.add_column('objects', sa.Column('f129_flux_kron', sa.Double(), nullable=True, comment='F129 flux in the Kron ellipse (2.5 Kron radii) of the detection image, an estimate of the total flux'))
    op.add_column('objects', sa.Column('f129_flux_kron_err', sa.Double(), nullable=True, comment='F129 uncertainty of f129_flux_kron'))
    op.add_column('objects', sa.Column('f129_mag_ap', sa.Double(), nullable=True, comment='F129 AB magnitude of f129_flux_ap'))
    op.add_column('objects', sa.Column('f129_mag_ap_err', sa.Double(), nullable=True, comment='F129 uncertainty of f129_mag_ap'))
    op.add_column('objects', sa.Column('f129_bkg_local', sa.Double(), nullable=True, comment='F129 local background per pixel in an annulus around the object'))
    op.add_column('objects', sa.Column('f146_flux_ap', sa.Double(), nullable=True, comment="F146 flux in the catalog's circular aperture at the native PSF, local background subtracted"))
    op.add_column('objects', sa.Column('f146_flux_ap_err', sa.Double(), nullable=True, comment='F146 uncertainty of f146_flux_ap from the noise model (err array)'))
    op.add_column('objects', sa.Column('f146_flux_psfm', sa.Double(), nullable=True, comment="F146 flux in the same aperture after matching the PSF to the catalog's reference (broadest) PSF; use for colours"))
    op.add_column('objects', sa.Column('f146_flux_psfm_err', sa.Double(), nullable=True, comment='F146 uncertainty of f146_flux_psfm'))
    op.add_column('objects', sa.Column('f146_flux_kron', sa.Double(), nullable=True, comment='F146 flux in the Kron ellipse (2.5 Kron radii) of the detection image, an estimate of the total flux'))
    op.add_column('objects', sa.Column('f146_flux_kron_err', sa.Double(), nullable=True, comment='F146 uncertainty of f146_flux_kron'))
    op.add_column('objects', sa.Column('f146_mag_ap', sa.Double(), nullable=True, comment='F146 AB magnitude of f146_flux_ap'))
    op.add_column('objects', sa.Column('f146_mag_ap_err', sa.Double(), nullable=True, comment='F146 uncertainty of f146_mag_ap'))
    op.add_column('objects', sa.Column('f146_bkg_local', sa.Double(), nullable=True, comment='F146 local background per pixel in an annulus around the object'))
    op.add_column('objects', sa.Column('f158_flux_ap', sa.Double(), nullable=True, comment="F158 flux in the catalog's circular aperture at the native PSF, local background subtracted"))
    op.add_column('objects', sa.Column('f158_flux_ap_err', sa.Double(), nullable=True, comment='F158 uncertainty of f158_flux_ap from the noise model (err array)'))
    op.add_column('objects', sa.Column('f158_flux_psfm', sa.Double(), nullable=True, comment="F158 flux in the same aperture after matching the PSF to the catalog's reference (broadest) PSF; use for colours"))
    op.add_column('objects', sa.Column('f158_flux_psfm_err', sa.Double(), nullable=True, comment='F158 uncertainty of f158_flux_psfm'))
    op.add_column('objects', sa.Column('f158_flux_kron', sa.Double(), nullable=True, comment='F158 flux in the Kron ellipse (2.5 Kron radii) of the detection image, an estimate of the total flux'))
    op.add_column('objects', sa.Column('f158_flux_kron_err', sa.Double(), nullable=True, comment='F158 uncertainty of f158_flux_kron'))
    op.add_column('objects', sa.Column('f158_mag_ap', sa.Double(), nullable=True, comment='F158 AB magnitude of f158_flux_ap'))
    op.add_column('objects', sa.Column('f158_mag_ap_err', sa.Double(), nullable=True, comment='F158 uncertainty of f158_mag_ap'))
    op.add_column('objects', sa.Column('f158_bkg_local', sa.Double(), nullable=True, comment='F158 local background per pixel in an annulus around the object'))
    op.add_column('objects', sa.Column('f184_flux_ap', sa.Double(), nullable=True, comment="F184 flux in the catalog's circular aperture at the native PSF, local background subtracted"))
    op.add_column('objects', sa.Column('f184_flux_ap_err', sa.Double(), nullable=True, comment='F184 uncertainty of f184_flux_ap from the noise model (err array)'))
    op.add_column('objects', sa.Column('f184_flux_psfm', sa.Double(), nullable=True, comment="F184 flux in the same aperture after matching the PSF to the catalog's reference (broadest) PSF; use for colours"))
    op.add_column('objects', sa.Column('f184_flux_psfm_err', sa.Double(), nullable=True, comment='F184 uncertainty of f184_flux_psfm'))
    op.add_column('objects', sa.Column('f184_flux_kron', sa.Double(), nullable=True, comment='F184 flux in the Kron ellipse (2.5 Kron radii) of the detection image, an estimate of the total flux'))
    op.add_column('objects', sa.Column('f184_flux_kron_err', sa.Double(), nullable=True, comment='F184 uncertainty of f184_flux_kron'))
    op.add_column('objects', sa.Column('f184_mag_ap', sa.Double(), nullable=True, comment='F184 AB magnitude of f184_flux_ap'))
    op.add_column('objects', sa.Column('f184_mag_ap_err', sa.Double(), nullable=True, comment='F184 uncertainty of f184_mag_ap'))
    op.add_column('objects', sa.Column('f184_bkg_local', sa.Double(), nullable=True, comment='F184 local background per pixel in an annulus around the object'))
    op.add_column('objects', sa.Column('f213_flux_ap', sa.Double(), nullable=True, comment="F213 flux in the catalog's circular aperture at the native PSF, local background subtracted"))
    op.add_column('objects', sa.Column('f213_flux_ap_err', sa.Double(), nullable=True, comment='F213 uncertainty of f213_flux_ap from the noise model (err array)'))
    op.add_column('objects', sa.Column('f213_flux_psfm', sa.Double(), nullable=True, comment="F213 flux in the same aperture after matching the PSF to the catalog's reference (broadest) PSF; use for colours"))
    op.add_column('objects', sa.Column('f213_flux_psfm_err', sa.Double(), nullable=True, comment='F213 uncertainty of f213_flux_psfm'))
    op.add_column('objects', sa.Column('f213_flux_kron', sa.Double(), nullable=True, comment='F213 flux in the Kron ellipse (2.5 Kron radii) of the detection image, an estimate of the total flux'))
    op.add_column('objects', sa.Column('f213_flux_kron_err', sa.Double(), nullable=True, comment='F213 uncertainty of f213_flux_kron'))
    op.add_column('objects', sa.Column('f213_mag_ap', sa.Double(), nullable=True, comment='F213 AB magnitude of f213_flux_ap'))
    op.add_column('objects', sa.Column('f213_mag_ap_err', sa.Double(), nullable=True, comment='F213 uncertainty of f213_mag_ap'))
    op.add_column('objects', sa.Column('f213_bkg_local', sa.Double(), nullable=True, comment='F213 local background per pixel in an annulus around the object'))
    op.create_table('injection_runs',
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='Injection run identifier'),
    sa.Column('skycell', sa.String(length=32), nullable=True, comment="Skycell injected into, or 'product:ID' for one image"),
    sa.Column('product_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Products whose images were injected into (never archived with the sources)'),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Injection grid and catalog configuration'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the run was made'),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_injection_runs')),
    comment='Source-injection runs: artificial sources drawn into a copy of an image and catalogued with the same step.'
    )
    op.create_table('injected_sources',
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='Injection run'),
    sa.Column('inj_id', sa.Integer(), nullable=False, comment='Source number within the run'),
    sa.Column('filter', sa.String(length=20), nullable=True, comment='Filter the magnitude refers to'),
    sa.Column('kind', sa.String(length=8), nullable=True, comment='point or sersic'),
    sa.Column('ra', sa.Double(), nullable=True, comment='Injected right ascension'),
    sa.Column('dec', sa.Double(), nullable=True, comment='Injected declination'),
    sa.Column('mag_in', sa.Double(), nullable=True, comment='Injected AB magnitude'),
    sa.Column('sersic_n', sa.Double(), nullable=True, comment='Injected Sersic index (NULL for point sources)'),
    sa.Column('r_half_in', sa.Double(), nullable=True, comment='Injected half-light radius (NULL for point sources)'),
    sa.Column('ellipticity_in', sa.Double(), nullable=True, comment='Injected ellipticity 1 - b/a'),
    sa.Column('recovered', sa.Boolean(), nullable=False, comment='Matched to a detection within the match radius'),
    sa.Column('mag_out', sa.Double(), nullable=True, comment='Recovered aperture AB magnitude'),
    sa.Column('flux_in', sa.Double(), nullable=True, comment='Injected total flux'),
    sa.Column('flux_out', sa.Double(), nullable=True, comment='Recovered Kron flux (estimate of the total flux)'),
    sa.Column('sep', sa.Double(), nullable=True, comment='Distance from injected to recovered position'),
    sa.Column('point_like_out', sa.Boolean(), nullable=True, comment='Recovered star/galaxy class'),
    sa.ForeignKeyConstraint(['run_id'], ['injection_runs.run_id'], name=op.f('fk_injected_sources_run_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'inj_id', name=op.f('pk_injected_sources')),
    comment='Artificial sources of an injection run: injected parameters and what the catalog step recovered.'
    )
    op.create_table('injection_completeness',
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='Injection run'),
    sa.Column('filter', sa.String(length=20), nullable=False, comment='Filter'),
    sa.Column('kind', sa.String(length=8), nullable=False, comment='point or sersic'),
    sa.Column('mag_lo', sa.Double(), nullable=False, comment='Bright edge of the magnitude bin'),
    sa.Column('mag_hi', sa.Double(), nullable=True, comment='Faint edge of the magnitude bin'),
    sa.Column('skycell', sa.String(length=32), nullable=True, comment="Skycell injected into, or 'product:ID' for one image"),
    sa.Column('n_injected', sa.Integer(), nullable=True, comment='Sources injected in the bin'),
    sa.Column('n_recovered', sa.Integer(), nullable=True, comment='Sources recovered'),
    sa.Column('completeness', sa.Double(), nullable=True, comment='n_recovered / n_injected'),
    sa.Column('flux_bias', sa.Double(), nullable=True, comment='Median of flux_out / flux_in - 1 of recovered sources'),
    sa.Column('flux_scatter', sa.Double(), nullable=True, comment='Robust (1.4826 MAD) scatter of flux_out / flux_in'),
    sa.Column('astrometric_scatter', sa.Double(), nullable=True, comment='RMS injected-recovered separation'),
    sa.ForeignKeyConstraint(['run_id'], ['injection_runs.run_id'], name=op.f('fk_injection_completeness_run_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'filter', 'kind', 'mag_lo', name=op.f('pk_injection_completeness')),
    comment='Completeness and flux bias from source injection, per run, filter, source kind and magnitude bin.'
    )
    # Keep last in upgrade(): SELECT * is expanded when the view is created, so every objects column must exist.
    # Rows of the newest frozen release (romanarchive.releases); published through TAP as roman.objects_latest.
    op.execute("CREATE VIEW objects_latest AS SELECT o.* FROM objects o WHERE o.release = "
               "(SELECT r.release FROM releases r ORDER BY r.created_at DESC, r.release DESC LIMIT 1)")


def downgrade() -> None:
    op.execute('DROP VIEW IF EXISTS objects_latest')
    op.drop_table('injection_completeness')
    op.drop_table('injected_sources')
    op.drop_table('injection_runs')
    op.drop_index('ix_objects_skycell', table_name='objects')
    op.drop_index('ix_objects_pos', table_name='objects', postgresql_using='gist')
    op.drop_index('ix_objects_hpx', table_name='objects')
    op.drop_table('objects')
    op.drop_table('release_products')
    op.drop_table('releases')
    op.drop_index('ix_jobs_target', table_name='jobs')
    op.drop_column('jobs', 'params')
    op.drop_column('jobs', 'target')
    op.execute("ALTER TYPE spoint SET (RECEIVE = NONE, SEND = NONE)")
    op.execute("DROP FUNCTION IF EXISTS spoint_send(spoint)")
    op.execute("DROP FUNCTION IF EXISTS spoint_recv(internal)")
