"""Per-image (L2) source catalogs: l2_sources, one row per source romancal's SourceCatalogStep finds on a
calibrated L2 image (rad source_catalog_columns of one band, nJy).

ivoa.obscore calls catalog products (wfi_l2_cat, wfi_l4_cat, as Level 5 catalogs) 'measurements' (ObsCore 1.1
dataproduct_type), no longer 'image'.

The table starts empty; the ``l2_catalog`` job (queued by every new L2) or ``romanarchive l2-catalog`` fills it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:39:24.534218
"""

import sqlalchemy as sa

from alembic import op
from romanarchive.db.registry import SPoint

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# ivoa.obscore as in 0007, except that the archive's own catalog products are 'measurements' too.
OBSCORE_VIEW = """
CREATE OR REPLACE VIEW ivoa.obscore AS
SELECT
    CASE WHEN p.level <= 1 THEN 'cube' WHEN p.product_type IN ('l5_catalog', 'wfi_l4_cat', 'wfi_l2_cat')
        THEN 'measurements' ELSE 'image' END::text AS dataproduct_type,
    LEAST(p.level, 4)::smallint AS calib_level,
    'ROMAN'::text AS obs_collection,
    p.obs_id AS obs_id,
    'ivo://romanarchive/product?' || p.product_id AS obs_publisher_did,
    COALESCE((SELECT value FROM archive_settings WHERE key = 'base_url'), 'http://127.0.0.1:8000')
        || '/files/' || p.product_id AS access_url,
    f.media_type::text AS access_format,
    ((f.size + 1023) / 1024)::bigint AS access_estsize,
    NULL::text AS target_name,
    p.s_ra AS s_ra,
    p.s_dec AS s_dec,
    p.s_fov AS s_fov,
    p.s_region AS s_region,
    NULL::double precision AS s_resolution,
    p.s_xel1 AS s_xel1,
    p.s_xel2 AS s_xel2,
    CASE WHEN p.level <= 1 THEN NULL ELSE 1 END::bigint AS t_xel,
    p.t_min AS t_min,
    p.t_max AS t_max,
    p.t_exptime AS t_exptime,
    p.t_exptime AS t_resolution,
    1::bigint AS em_xel,
    p.em_min AS em_min,
    p.em_max AS em_max,
    (p.em_min + p.em_max) / 2 / NULLIF(p.em_max - p.em_min, 0) AS em_res_power,
    'phot.flux.density'::text AS o_ucd,
    NULL::text AS pol_states,
    NULL::bigint AS pol_xel,
    'Roman'::text AS facility_name,
    'WFI'::text AS instrument_name,
    p.product_id AS product_id,
    p.level AS level,
    p.filter::text AS filter,
    p.detector::text AS detector,
    p.release::text AS release
FROM products p JOIN files f ON f.file_id = p.file_id
"""
_DPTYPE_0007 = ("CASE WHEN p.level <= 1 THEN 'cube' WHEN p.product_type = 'l5_catalog' THEN 'measurements' "
                "ELSE 'image' END::text\n        AS dataproduct_type,")
_DPTYPE_0013 = ("CASE WHEN p.level <= 1 THEN 'cube' WHEN p.product_type IN ('l5_catalog', 'wfi_l4_cat', 'wfi_l2_cat')\n"
                "        THEN 'measurements' ELSE 'image' END::text AS dataproduct_type,")


def upgrade() -> None:
    op.create_table('l2_sources',
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='L2 image the source was measured on (products.product_id)'),
    sa.Column('label', sa.Integer(), nullable=False, comment="Segment number of the source in this image's segmentation map (Label of the source segment in the segmentation image) [rad source_catalog_columns]"),
    sa.Column('filter', sa.String(length=20), nullable=False, comment='Filter of the image'),
    sa.Column('detector', sa.String(length=10), nullable=True, comment='WFI detector of the image'),
    sa.Column('mjd', sa.Double(), nullable=True, comment='Mid-exposure time of the image (MJD, UTC)'),
    sa.Column('ra', sa.Double(), nullable=False, comment='Right ascension (ICRS), best estimate: the PSF fit, else the windowed centroid (Best estimate of the right ascension (ICRS)) [rad source_catalog_columns]'),
    sa.Column('dec', sa.Double(), nullable=False, comment='Declination (ICRS), best estimate (Best estimate of the declination (ICRS)) [rad source_catalog_columns]'),
    sa.Column('pos', SPoint(), nullable=False, comment='Position as a pgsphere point (indexed)'),
    sa.Column('flagged_spatial_id', sa.BigInteger(), nullable=True, comment='Bit flag encoding the overlap flag, projection, skycell and pixel coordinates of the source [rad source_catalog_columns]'),
    sa.Column('x_centroid', sa.REAL(), nullable=True, comment='Column coordinate of the source centroid from image moments (0 indexed) [rad source_catalog_columns]'),
    sa.Column('y_centroid', sa.REAL(), nullable=True, comment='Row coordinate of the source centroid in the detection image from image moments (0 indexed) [rad source_catalog_columns]'),
    sa.Column('x_centroid_err', sa.REAL(), nullable=True, comment='Uncertainty x_centroid [rad source_catalog_columns]'),
    sa.Column('y_centroid_err', sa.REAL(), nullable=True, comment='Uncertainty on y_centroid [rad source_catalog_columns]'),
    sa.Column('x_centroid_win', sa.REAL(), nullable=True, comment='Column coordinate of the windowed source centroid in the detection image from image moments (0 indexed) [rad source_catalog_columns]'),
    sa.Column('y_centroid_win', sa.REAL(), nullable=True, comment='Row coordinate of the windowed source centroid in the detection image from image moments (0 indexed) [rad source_catalog_columns]'),
    sa.Column('x_centroid_win_err', sa.REAL(), nullable=True, comment='Uncertainty on x_centroid_win [rad source_catalog_columns]'),
    sa.Column('y_centroid_win_err', sa.REAL(), nullable=True, comment='Uncertainty on y_centroid_win [rad source_catalog_columns]'),
    sa.Column('x_psf', sa.REAL(), nullable=True, comment='Column coordinate of the source from PSF fitting (0 indexed) [rad source_catalog_columns]'),
    sa.Column('x_psf_err', sa.REAL(), nullable=True, comment='Uncertainty in x_psf [rad source_catalog_columns]'),
    sa.Column('y_psf', sa.REAL(), nullable=True, comment='Row coordinate of the source from PSF fitting (0 indexed) [rad source_catalog_columns]'),
    sa.Column('y_psf_err', sa.REAL(), nullable=True, comment='Uncertainty on y_psf [rad source_catalog_columns]'),
    sa.Column('ra_centroid', sa.Double(), nullable=True, comment='Right ascension (ICRS) of the source centroid [rad source_catalog_columns]'),
    sa.Column('dec_centroid', sa.Double(), nullable=True, comment='Declination of the source centroid (ICRS) [rad source_catalog_columns]'),
    sa.Column('ra_centroid_err', sa.REAL(), nullable=True, comment='Uncertainty in ra_centroid [rad source_catalog_columns]'),
    sa.Column('dec_centroid_err', sa.REAL(), nullable=True, comment='Uncertainty in dec_centroid [rad source_catalog_columns]'),
    sa.Column('ra_centroid_win', sa.Double(), nullable=True, comment='Right ascension (ICRS) of the windowed source centroid [rad source_catalog_columns]'),
    sa.Column('dec_centroid_win', sa.Double(), nullable=True, comment='Declination (ICRS) of the windowed source centroid [rad source_catalog_columns]'),
    sa.Column('ra_centroid_win_err', sa.REAL(), nullable=True, comment='Uncertainty in ra_centroid_win [rad source_catalog_columns]'),
    sa.Column('dec_centroid_win_err', sa.REAL(), nullable=True, comment='Uncertainty in dec_centroid_win [rad source_catalog_columns]'),
    sa.Column('ra_psf', sa.Double(), nullable=True, comment='Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'),
    sa.Column('dec_psf', sa.Double(), nullable=True, comment='Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'),
    sa.Column('ra_psf_err', sa.REAL(), nullable=True, comment='Uncertainty in ra_psf [rad source_catalog_columns]'),
    sa.Column('dec_psf_err', sa.REAL(), nullable=True, comment='Uncertainty in dec_psf [rad source_catalog_columns]'),
    sa.Column('bbox_xmin', sa.Integer(), nullable=True, comment='Column index of the left edge of the source bounding box (0 indexed) [rad source_catalog_columns]'),
    sa.Column('bbox_xmax', sa.Integer(), nullable=True, comment='Column index of the right edge of the source bounding box (0 indexed) [rad source_catalog_columns]'),
    sa.Column('bbox_ymin', sa.Integer(), nullable=True, comment='Row index of the bottom edge of the source bounding box (0 indexed) [rad source_catalog_columns]'),
    sa.Column('bbox_ymax', sa.Integer(), nullable=True, comment='Row index of the top edge of the source bounding box (0 indexed) [rad source_catalog_columns]'),
    sa.Column('segment_area', sa.REAL(), nullable=True, comment='Area of the source segment [rad source_catalog_columns]'),
    sa.Column('semimajor', sa.REAL(), nullable=True, comment='Length of the source semimajor axis computed from image moments [rad source_catalog_columns]'),
    sa.Column('semiminor', sa.REAL(), nullable=True, comment='Length of the source semiminor axis computed from image moments [rad source_catalog_columns]'),
    sa.Column('fwhm', sa.REAL(), nullable=True, comment='Circularized full width at half maximum (FWHM) calculated from the semimajor and semiminor axes as 2*sqrt(ln(2) * (semimajor**2 + semiminor**2)) [rad source_catalog_columns]'),
    sa.Column('ellipticity', sa.REAL(), nullable=True, comment='Source ellipticity as 1 - (semimajor / semiminor) [rad source_catalog_columns]'),
    sa.Column('orientation_pix', sa.REAL(), nullable=True, comment='Angle measured counter-clockwise from the positive X axis to the source major axis computed from image moments [rad source_catalog_columns]'),
    sa.Column('orientation_sky', sa.REAL(), nullable=True, comment='Position angle from North of the source major axis computed from image moments [rad source_catalog_columns]'),
    sa.Column('cxx', sa.REAL(), nullable=True, comment='Coefficient for the x**2 term in the generalized quadratic ellipse equation [rad source_catalog_columns]'),
    sa.Column('cxy', sa.REAL(), nullable=True, comment='Coefficient for the x*y term in the generalized quadratic ellipse equation [rad source_catalog_columns]'),
    sa.Column('cyy', sa.REAL(), nullable=True, comment='Coefficient for the y**2 term in the generalized quadratic ellipse equation [rad source_catalog_columns]'),
    sa.Column('kron_radius', sa.REAL(), nullable=True, comment='First-moment radius measured in the detection image [rad source_catalog_columns]'),
    sa.Column('nn_label', sa.Integer(), nullable=True, comment='Segment label of the nearest neighbor in this skycell [rad source_catalog_columns]'),
    sa.Column('nn_distance', sa.REAL(), nullable=True, comment='Distance to the nearest neighbor in this skycell [rad source_catalog_columns]'),
    sa.Column('sharpness', sa.REAL(), nullable=True, comment='Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'),
    sa.Column('roundness1', sa.REAL(), nullable=True, comment='Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'),
    sa.Column('is_extended', sa.Boolean(), nullable=True, comment='Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'),
    sa.Column('fluxfrac_radius_50', sa.REAL(), nullable=True, comment='Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'),
    sa.Column('aper_bkg_flux', sa.REAL(), nullable=True, comment='Local background estimated within a circular annulus [rad source_catalog_columns]'),
    sa.Column('aper_bkg_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'),
    sa.Column('aper01_flux', sa.REAL(), nullable=True, comment='Flux within circular aperture (radius in tenths of arcsec) (radius 0.1 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper01_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in flux within circular aperture (radius 0.1 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper02_flux', sa.REAL(), nullable=True, comment='Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper02_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper04_flux', sa.REAL(), nullable=True, comment='Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper04_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper08_flux', sa.REAL(), nullable=True, comment='Flux within circular aperture (radius in tenths of arcsec) (radius 0.8 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper08_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in flux within circular aperture (radius 0.8 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper16_flux', sa.REAL(), nullable=True, comment='Flux within circular aperture (radius in tenths of arcsec) (radius 1.6 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('aper16_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in flux within circular aperture (radius 1.6 arcsec, not aperture-corrected) [rad source_catalog_columns]'),
    sa.Column('psf_flux', sa.REAL(), nullable=True, comment='Total PSF flux [rad source_catalog_columns]'),
    sa.Column('psf_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in psf_flux [rad source_catalog_columns]'),
    sa.Column('segment_flux', sa.REAL(), nullable=True, comment='Isophotal flux [rad source_catalog_columns]'),
    sa.Column('segment_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in segment_flux [rad source_catalog_columns]'),
    sa.Column('kron_flux', sa.REAL(), nullable=True, comment='Flux within the elliptical Kron aperture [rad source_catalog_columns]'),
    sa.Column('kron_flux_err', sa.REAL(), nullable=True, comment='Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'),
    sa.Column('kron_abmag', sa.REAL(), nullable=True, comment='AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'),
    sa.Column('kron_abmag_err', sa.REAL(), nullable=True, comment='Uncertainty in kron_abmag [rad source_catalog_columns]'),
    sa.Column('warning_flags', sa.Integer(), nullable=True, comment='Warning bit flags (0=good) [rad source_catalog_columns]'),
    sa.Column('image_flags', sa.Integer(), nullable=True, comment='Image quality bit flags (0=good) [rad source_catalog_columns]'),
    sa.Column('psf_flags', sa.Integer(), nullable=True, comment='PSF fitting bit flags (0 = good) [rad source_catalog_columns]'),
    sa.Column('psf_gof', sa.REAL(), nullable=True, comment='PSF goodness of fit metric [rad source_catalog_columns]'),
    sa.Column('dust_ebv', sa.REAL(), nullable=True, comment='Estimated dust extinction in B-V, taken by default from the map of Schlegel, Finkbeiner, and Davis (1998) [rad source_catalog_columns]'),
    sa.ForeignKeyConstraint(['product_id'], ['products.product_id'], name=op.f('fk_l2_sources_product_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('product_id', 'label', name=op.f('pk_l2_sources')),
    comment="Per-image source catalogs: romancal's SourceCatalogStep on every calibrated L2 image (rad source_catalog_columns of one band, fluxes in nJy), one row per source per image; the catalog file is the wfi_l2_cat product of the same exposure."
    )
    op.create_index('ix_l2_sources_pos', 'l2_sources', ['pos'], unique=False, postgresql_using='gist')
    op.execute(OBSCORE_VIEW)


def downgrade() -> None:
    op.execute(OBSCORE_VIEW.replace(_DPTYPE_0013, _DPTYPE_0007))
    op.drop_index('ix_l2_sources_pos', table_name='l2_sources', postgresql_using='gist')
    op.drop_table('l2_sources')
