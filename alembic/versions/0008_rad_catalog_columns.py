"""The object catalog takes rad's source_catalog_columns (romancal's MultibandCatalogStep output, fluxes in nJy).

The archive's own measurement columns (point_like, <band>_flux_ap/_psfm/_kron, r_half, photoz_err, ...) are replaced
by rad's names and units, in the order of ``romanarchive.db.tables_catalog.OBJECTS`` (the view ``objects_latest``
follows it). Rows already in ``objects`` keep their positions and ids but lose their measurements: rebuild the
catalogs with ``romanarchive catalog --all`` after upgrading.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 20:05:21.223733
"""

import sqlalchemy as sa

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_LATEST = ("CREATE VIEW objects_latest AS SELECT o.* FROM objects o WHERE o.release = "
           "(SELECT r.release FROM releases r ORDER BY r.created_at DESC, r.release DESC LIMIT 1)")
_OLD = (
    'point_like', 'ra_err', 'dec_err', 'x_det', 'y_det', 'segment_id',
    'det_snr', 'area', 'semimajor_sigma', 'semiminor_sigma', 'ellipticity', 'position_angle',
    'r_half', 'concentration', 'flags', 'photoz', 'photoz_err', 'photoz_chi2',
    'photoz_template', 'n_bands', 'f062_flux_ap', 'f062_flux_ap_err', 'f062_flux_psfm', 'f062_flux_psfm_err',
    'f062_flux_kron', 'f062_flux_kron_err', 'f062_mag_ap', 'f062_mag_ap_err', 'f062_bkg_local', 'f087_flux_ap',
    'f087_flux_ap_err', 'f087_flux_psfm', 'f087_flux_psfm_err', 'f087_flux_kron', 'f087_flux_kron_err', 'f087_mag_ap',
    'f087_mag_ap_err', 'f087_bkg_local', 'f106_flux_ap', 'f106_flux_ap_err', 'f106_flux_psfm', 'f106_flux_psfm_err',
    'f106_flux_kron', 'f106_flux_kron_err', 'f106_mag_ap', 'f106_mag_ap_err', 'f106_bkg_local', 'f129_flux_ap',
    'f129_flux_ap_err', 'f129_flux_psfm', 'f129_flux_psfm_err', 'f129_flux_kron', 'f129_flux_kron_err', 'f129_mag_ap',
    'f129_mag_ap_err', 'f129_bkg_local', 'f146_flux_ap', 'f146_flux_ap_err', 'f146_flux_psfm', 'f146_flux_psfm_err',
    'f146_flux_kron', 'f146_flux_kron_err', 'f146_mag_ap', 'f146_mag_ap_err', 'f146_bkg_local', 'f158_flux_ap',
    'f158_flux_ap_err', 'f158_flux_psfm', 'f158_flux_psfm_err', 'f158_flux_kron', 'f158_flux_kron_err', 'f158_mag_ap',
    'f158_mag_ap_err', 'f158_bkg_local', 'f184_flux_ap', 'f184_flux_ap_err', 'f184_flux_psfm', 'f184_flux_psfm_err',
    'f184_flux_kron', 'f184_flux_kron_err', 'f184_mag_ap', 'f184_mag_ap_err', 'f184_bkg_local', 'f213_flux_ap',
    'f213_flux_ap_err', 'f213_flux_psfm', 'f213_flux_psfm_err', 'f213_flux_kron', 'f213_flux_kron_err', 'f213_mag_ap',
    'f213_mag_ap_err', 'f213_bkg_local',
)
_NEW = (
    'is_extended', 'label', 'x_centroid', 'y_centroid', 'x_centroid_err', 'y_centroid_err',
    'x_centroid_win', 'y_centroid_win', 'ra_centroid', 'dec_centroid', 'ra_centroid_err', 'dec_centroid_err',
    'ra_centroid_win', 'dec_centroid_win', 'ra_centroid_win_err', 'dec_centroid_win_err', 'segment_area', 'semimajor',
    'semiminor', 'ellipticity', 'orientation_sky', 'kron_radius', 'fwhm', 'nn_distance',
    'warning_flags', 'image_flags', 'flagged_spatial_id', 'photoz', 'photoz_low68', 'photoz_high68',
    'photoz_gof', 'photoz_sed', 'ra_err', 'dec_err', 'n_bands', 'flags',
    'psf_f062_flux', 'psf_f062_flux_err', 'psf_flags_f062', 'psf_gof_f062', 'ra_psf_f062', 'dec_psf_f062',
    'ra_psf_f062_err', 'dec_psf_f062_err', 'kron_f062_flux', 'kron_f062_flux_err', 'kron_f062_abmag', 'kron_f062_abmag_err',
    'segment_f062_flux', 'segment_f062_flux_err', 'aper02_f062_flux', 'aper02_f062_flux_err', 'aper04_f062_flux', 'aper04_f062_flux_err',
    'aper_bkg_f062_flux', 'aper_bkg_f062_flux_err', 'is_extended_f062', 'sharpness_f062', 'roundness1_f062', 'fluxfrac_radius_50_f062',
    'psf_f087_flux', 'psf_f087_flux_err', 'psf_flags_f087', 'psf_gof_f087', 'ra_psf_f087', 'dec_psf_f087',
    'ra_psf_f087_err', 'dec_psf_f087_err', 'kron_f087_flux', 'kron_f087_flux_err', 'kron_f087_abmag', 'kron_f087_abmag_err',
    'segment_f087_flux', 'segment_f087_flux_err', 'aper02_f087_flux', 'aper02_f087_flux_err', 'aper04_f087_flux', 'aper04_f087_flux_err',
    'aper_bkg_f087_flux', 'aper_bkg_f087_flux_err', 'is_extended_f087', 'sharpness_f087', 'roundness1_f087', 'fluxfrac_radius_50_f087',
    'psf_f106_flux', 'psf_f106_flux_err', 'psf_flags_f106', 'psf_gof_f106', 'ra_psf_f106', 'dec_psf_f106',
    'ra_psf_f106_err', 'dec_psf_f106_err', 'kron_f106_flux', 'kron_f106_flux_err', 'kron_f106_abmag', 'kron_f106_abmag_err',
    'segment_f106_flux', 'segment_f106_flux_err', 'aper02_f106_flux', 'aper02_f106_flux_err', 'aper04_f106_flux', 'aper04_f106_flux_err',
    'aper_bkg_f106_flux', 'aper_bkg_f106_flux_err', 'is_extended_f106', 'sharpness_f106', 'roundness1_f106', 'fluxfrac_radius_50_f106',
    'psf_f129_flux', 'psf_f129_flux_err', 'psf_flags_f129', 'psf_gof_f129', 'ra_psf_f129', 'dec_psf_f129',
    'ra_psf_f129_err', 'dec_psf_f129_err', 'kron_f129_flux', 'kron_f129_flux_err', 'kron_f129_abmag', 'kron_f129_abmag_err',
    'segment_f129_flux', 'segment_f129_flux_err', 'aper02_f129_flux', 'aper02_f129_flux_err', 'aper04_f129_flux', 'aper04_f129_flux_err',
    'aper_bkg_f129_flux', 'aper_bkg_f129_flux_err', 'is_extended_f129', 'sharpness_f129', 'roundness1_f129', 'fluxfrac_radius_50_f129',
    'psf_f146_flux', 'psf_f146_flux_err', 'psf_flags_f146', 'psf_gof_f146', 'ra_psf_f146', 'dec_psf_f146',
    'ra_psf_f146_err', 'dec_psf_f146_err', 'kron_f146_flux', 'kron_f146_flux_err', 'kron_f146_abmag', 'kron_f146_abmag_err',
    'segment_f146_flux', 'segment_f146_flux_err', 'aper02_f146_flux', 'aper02_f146_flux_err', 'aper04_f146_flux', 'aper04_f146_flux_err',
    'aper_bkg_f146_flux', 'aper_bkg_f146_flux_err', 'is_extended_f146', 'sharpness_f146', 'roundness1_f146', 'fluxfrac_radius_50_f146',
    'psf_f158_flux', 'psf_f158_flux_err', 'psf_flags_f158', 'psf_gof_f158', 'ra_psf_f158', 'dec_psf_f158',
    'ra_psf_f158_err', 'dec_psf_f158_err', 'kron_f158_flux', 'kron_f158_flux_err', 'kron_f158_abmag', 'kron_f158_abmag_err',
    'segment_f158_flux', 'segment_f158_flux_err', 'aper02_f158_flux', 'aper02_f158_flux_err', 'aper04_f158_flux', 'aper04_f158_flux_err',
    'aper_bkg_f158_flux', 'aper_bkg_f158_flux_err', 'is_extended_f158', 'sharpness_f158', 'roundness1_f158', 'fluxfrac_radius_50_f158',
    'psf_f184_flux', 'psf_f184_flux_err', 'psf_flags_f184', 'psf_gof_f184', 'ra_psf_f184', 'dec_psf_f184',
    'ra_psf_f184_err', 'dec_psf_f184_err', 'kron_f184_flux', 'kron_f184_flux_err', 'kron_f184_abmag', 'kron_f184_abmag_err',
    'segment_f184_flux', 'segment_f184_flux_err', 'aper02_f184_flux', 'aper02_f184_flux_err', 'aper04_f184_flux', 'aper04_f184_flux_err',
    'aper_bkg_f184_flux', 'aper_bkg_f184_flux_err', 'is_extended_f184', 'sharpness_f184', 'roundness1_f184', 'fluxfrac_radius_50_f184',
    'psf_f213_flux', 'psf_f213_flux_err', 'psf_flags_f213', 'psf_gof_f213', 'ra_psf_f213', 'dec_psf_f213',
    'ra_psf_f213_err', 'dec_psf_f213_err', 'kron_f213_flux', 'kron_f213_flux_err', 'kron_f213_abmag', 'kron_f213_abmag_err',
    'segment_f213_flux', 'segment_f213_flux_err', 'aper02_f213_flux', 'aper02_f213_flux_err', 'aper04_f213_flux', 'aper04_f213_flux_err',
    'aper_bkg_f213_flux', 'aper_bkg_f213_flux_err', 'is_extended_f213', 'sharpness_f213', 'roundness1_f213', 'fluxfrac_radius_50_f213',
)


def upgrade() -> None:
    # The view expands SELECT * when created: drop it while columns change, recreate it with the new ones.
    op.execute('DROP VIEW IF EXISTS objects_latest')
    for name in _OLD:
        op.drop_column('objects', name)
    op.add_column('objects', sa.Column('is_extended', sa.Boolean(), nullable=True, comment="Extended (galaxy) rather than point-like (star): rad's is_extended_<band> of the band with the highest PSF-flux S/N"))
    op.add_column('objects', sa.Column('label', sa.Integer(), nullable=True, comment='Label of the source segment in the segmentation image [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('x_centroid', sa.REAL(), nullable=True, comment='Column coordinate of the source centroid from image moments (0 indexed) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('y_centroid', sa.REAL(), nullable=True, comment='Row coordinate of the source centroid in the detection image from image moments (0 indexed) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('x_centroid_err', sa.REAL(), nullable=True, comment='Uncertainty x_centroid [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('y_centroid_err', sa.REAL(), nullable=True, comment='Uncertainty on y_centroid [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('x_centroid_win', sa.REAL(), nullable=True, comment='Column coordinate of the windowed source centroid in the detection image from image moments (0 indexed) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('y_centroid_win', sa.REAL(), nullable=True, comment='Row coordinate of the windowed source centroid in the detection image from image moments (0 indexed) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_centroid', sa.Double(), nullable=True, comment='Right ascension (ICRS) of the source centroid [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_centroid', sa.Double(), nullable=True, comment='Declination of the source centroid (ICRS) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_centroid_err', sa.REAL(), nullable=True, comment='Uncertainty in ra_centroid [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_centroid_err', sa.REAL(), nullable=True, comment='Uncertainty in dec_centroid [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_centroid_win', sa.Double(), nullable=True, comment='Right ascension (ICRS) of the windowed source centroid [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_centroid_win', sa.Double(), nullable=True, comment='Declination (ICRS) of the windowed source centroid [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_centroid_win_err', sa.REAL(), nullable=True, comment='Uncertainty in ra_centroid_win [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_centroid_win_err', sa.REAL(), nullable=True, comment='Uncertainty in dec_centroid_win [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_area', sa.REAL(), nullable=True, comment='Area of the source segment [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('semimajor', sa.REAL(), nullable=True, comment='Length of the source semimajor axis computed from image moments [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('semiminor', sa.REAL(), nullable=True, comment='Length of the source semiminor axis computed from image moments [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ellipticity', sa.REAL(), nullable=True, comment='Source ellipticity as 1 - (semimajor / semiminor) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('orientation_sky', sa.REAL(), nullable=True, comment='Position angle from North of the source major axis computed from image moments [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_radius', sa.REAL(), nullable=True, comment='First-moment radius measured in the detection image [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fwhm', sa.REAL(), nullable=True, comment='Circularized full width at half maximum (FWHM) calculated from the semimajor and semiminor axes as 2*sqrt(ln(2) * (semimajor**2 + semiminor**2)) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('nn_distance', sa.REAL(), nullable=True, comment='Distance to the nearest neighbor in this skycell [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('warning_flags', sa.Integer(), nullable=True, comment='Warning bit flags (0=good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('image_flags', sa.Integer(), nullable=True, comment='Image quality bit flags (0=good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('flagged_spatial_id', sa.BigInteger(), nullable=True, comment="Bit flag encoding the overlap flag, projection, skycell and pixel coordinates of the source (archive layout, as romancal's but with 16 region bits: bit 60 outside the home core, 44-59 projection region, 38-43 cell row, 32-37 cell column, 16-31 / 0-15 y / x in 0.05-arcsec pixels) [rad source_catalog_columns]"))
    op.add_column('objects', sa.Column('photoz', sa.REAL(), nullable=True, comment='Recommended point estimate of photometric redshift [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('photoz_low68', sa.REAL(), nullable=True, comment='68% confidence lower bound on photometric redshift [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('photoz_high68', sa.REAL(), nullable=True, comment='68% confidence upper bound on photometric redshift [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('photoz_gof', sa.REAL(), nullable=True, comment='Photo-z goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('photoz_sed', sa.Integer(), nullable=True, comment='Best-fit spectral-energy distribution for this photometric redshift [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_err', sa.REAL(), nullable=True, comment="Uncertainty of ra (times cos dec): the PSF fit's or the windowed centroid's, as for ra"))
    op.add_column('objects', sa.Column('dec_err', sa.REAL(), nullable=True, comment="Uncertainty of dec: the PSF fit's or the windowed centroid's, as for dec"))
    op.add_column('objects', sa.Column('n_bands', sa.SmallInteger(), nullable=True, comment='Bands with a PSF-flux measurement'))
    op.add_column('objects', sa.Column('flags', sa.Integer(), nullable=True, comment="Archive bit flags: 1 within the halo/spike mask of a bright star, 2 saturated core (the bright star itself), 4 fewer than all bands of the skycell measured, 8 segment touches the data's edge"))
    op.add_column('objects', sa.Column('psf_f062_flux', sa.REAL(), nullable=True, comment='F062: Total PSF flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f062_flux_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in psf_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_flags_f062', sa.Integer(), nullable=True, comment='F062: PSF fitting bit flags (0 = good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_gof_f062', sa.REAL(), nullable=True, comment='F062: PSF goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f062', sa.Double(), nullable=True, comment='F062: Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f062', sa.Double(), nullable=True, comment='F062: Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f062_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in ra_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f062_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in dec_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f062_flux', sa.REAL(), nullable=True, comment='F062: Flux within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f062_flux_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f062_abmag', sa.REAL(), nullable=True, comment='F062: AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f062_abmag_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in kron_abmag [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f062_flux', sa.REAL(), nullable=True, comment='F062: Isophotal flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f062_flux_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in segment_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f062_flux', sa.REAL(), nullable=True, comment='F062: Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f062_flux_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f062_flux', sa.REAL(), nullable=True, comment='F062: Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f062_flux_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f062_flux', sa.REAL(), nullable=True, comment='F062: Local background estimated within a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f062_flux_err', sa.REAL(), nullable=True, comment='F062: Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('is_extended_f062', sa.Boolean(), nullable=True, comment='F062: Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('sharpness_f062', sa.REAL(), nullable=True, comment='F062: Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('roundness1_f062', sa.REAL(), nullable=True, comment='F062: Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fluxfrac_radius_50_f062', sa.REAL(), nullable=True, comment='F062: Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f087_flux', sa.REAL(), nullable=True, comment='F087: Total PSF flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f087_flux_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in psf_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_flags_f087', sa.Integer(), nullable=True, comment='F087: PSF fitting bit flags (0 = good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_gof_f087', sa.REAL(), nullable=True, comment='F087: PSF goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f087', sa.Double(), nullable=True, comment='F087: Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f087', sa.Double(), nullable=True, comment='F087: Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f087_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in ra_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f087_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in dec_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f087_flux', sa.REAL(), nullable=True, comment='F087: Flux within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f087_flux_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f087_abmag', sa.REAL(), nullable=True, comment='F087: AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f087_abmag_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in kron_abmag [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f087_flux', sa.REAL(), nullable=True, comment='F087: Isophotal flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f087_flux_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in segment_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f087_flux', sa.REAL(), nullable=True, comment='F087: Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f087_flux_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f087_flux', sa.REAL(), nullable=True, comment='F087: Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f087_flux_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f087_flux', sa.REAL(), nullable=True, comment='F087: Local background estimated within a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f087_flux_err', sa.REAL(), nullable=True, comment='F087: Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('is_extended_f087', sa.Boolean(), nullable=True, comment='F087: Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('sharpness_f087', sa.REAL(), nullable=True, comment='F087: Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('roundness1_f087', sa.REAL(), nullable=True, comment='F087: Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fluxfrac_radius_50_f087', sa.REAL(), nullable=True, comment='F087: Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f106_flux', sa.REAL(), nullable=True, comment='F106: Total PSF flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f106_flux_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in psf_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_flags_f106', sa.Integer(), nullable=True, comment='F106: PSF fitting bit flags (0 = good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_gof_f106', sa.REAL(), nullable=True, comment='F106: PSF goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f106', sa.Double(), nullable=True, comment='F106: Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f106', sa.Double(), nullable=True, comment='F106: Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f106_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in ra_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f106_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in dec_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f106_flux', sa.REAL(), nullable=True, comment='F106: Flux within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f106_flux_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f106_abmag', sa.REAL(), nullable=True, comment='F106: AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f106_abmag_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in kron_abmag [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f106_flux', sa.REAL(), nullable=True, comment='F106: Isophotal flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f106_flux_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in segment_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f106_flux', sa.REAL(), nullable=True, comment='F106: Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f106_flux_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f106_flux', sa.REAL(), nullable=True, comment='F106: Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f106_flux_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f106_flux', sa.REAL(), nullable=True, comment='F106: Local background estimated within a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f106_flux_err', sa.REAL(), nullable=True, comment='F106: Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('is_extended_f106', sa.Boolean(), nullable=True, comment='F106: Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('sharpness_f106', sa.REAL(), nullable=True, comment='F106: Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('roundness1_f106', sa.REAL(), nullable=True, comment='F106: Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fluxfrac_radius_50_f106', sa.REAL(), nullable=True, comment='F106: Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f129_flux', sa.REAL(), nullable=True, comment='F129: Total PSF flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f129_flux_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in psf_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_flags_f129', sa.Integer(), nullable=True, comment='F129: PSF fitting bit flags (0 = good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_gof_f129', sa.REAL(), nullable=True, comment='F129: PSF goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f129', sa.Double(), nullable=True, comment='F129: Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f129', sa.Double(), nullable=True, comment='F129: Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f129_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in ra_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f129_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in dec_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f129_flux', sa.REAL(), nullable=True, comment='F129: Flux within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f129_flux_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f129_abmag', sa.REAL(), nullable=True, comment='F129: AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f129_abmag_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in kron_abmag [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f129_flux', sa.REAL(), nullable=True, comment='F129: Isophotal flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f129_flux_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in segment_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f129_flux', sa.REAL(), nullable=True, comment='F129: Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f129_flux_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f129_flux', sa.REAL(), nullable=True, comment='F129: Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f129_flux_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f129_flux', sa.REAL(), nullable=True, comment='F129: Local background estimated within a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f129_flux_err', sa.REAL(), nullable=True, comment='F129: Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('is_extended_f129', sa.Boolean(), nullable=True, comment='F129: Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('sharpness_f129', sa.REAL(), nullable=True, comment='F129: Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('roundness1_f129', sa.REAL(), nullable=True, comment='F129: Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fluxfrac_radius_50_f129', sa.REAL(), nullable=True, comment='F129: Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f146_flux', sa.REAL(), nullable=True, comment='F146: Total PSF flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f146_flux_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in psf_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_flags_f146', sa.Integer(), nullable=True, comment='F146: PSF fitting bit flags (0 = good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_gof_f146', sa.REAL(), nullable=True, comment='F146: PSF goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f146', sa.Double(), nullable=True, comment='F146: Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f146', sa.Double(), nullable=True, comment='F146: Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f146_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in ra_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f146_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in dec_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f146_flux', sa.REAL(), nullable=True, comment='F146: Flux within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f146_flux_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f146_abmag', sa.REAL(), nullable=True, comment='F146: AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f146_abmag_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in kron_abmag [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f146_flux', sa.REAL(), nullable=True, comment='F146: Isophotal flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f146_flux_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in segment_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f146_flux', sa.REAL(), nullable=True, comment='F146: Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f146_flux_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f146_flux', sa.REAL(), nullable=True, comment='F146: Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f146_flux_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f146_flux', sa.REAL(), nullable=True, comment='F146: Local background estimated within a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f146_flux_err', sa.REAL(), nullable=True, comment='F146: Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('is_extended_f146', sa.Boolean(), nullable=True, comment='F146: Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('sharpness_f146', sa.REAL(), nullable=True, comment='F146: Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('roundness1_f146', sa.REAL(), nullable=True, comment='F146: Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fluxfrac_radius_50_f146', sa.REAL(), nullable=True, comment='F146: Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f158_flux', sa.REAL(), nullable=True, comment='F158: Total PSF flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f158_flux_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in psf_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_flags_f158', sa.Integer(), nullable=True, comment='F158: PSF fitting bit flags (0 = good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_gof_f158', sa.REAL(), nullable=True, comment='F158: PSF goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f158', sa.Double(), nullable=True, comment='F158: Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f158', sa.Double(), nullable=True, comment='F158: Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f158_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in ra_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f158_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in dec_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f158_flux', sa.REAL(), nullable=True, comment='F158: Flux within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f158_flux_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f158_abmag', sa.REAL(), nullable=True, comment='F158: AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f158_abmag_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in kron_abmag [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f158_flux', sa.REAL(), nullable=True, comment='F158: Isophotal flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f158_flux_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in segment_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f158_flux', sa.REAL(), nullable=True, comment='F158: Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f158_flux_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f158_flux', sa.REAL(), nullable=True, comment='F158: Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f158_flux_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f158_flux', sa.REAL(), nullable=True, comment='F158: Local background estimated within a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f158_flux_err', sa.REAL(), nullable=True, comment='F158: Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('is_extended_f158', sa.Boolean(), nullable=True, comment='F158: Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('sharpness_f158', sa.REAL(), nullable=True, comment='F158: Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('roundness1_f158', sa.REAL(), nullable=True, comment='F158: Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fluxfrac_radius_50_f158', sa.REAL(), nullable=True, comment='F158: Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f184_flux', sa.REAL(), nullable=True, comment='F184: Total PSF flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f184_flux_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in psf_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_flags_f184', sa.Integer(), nullable=True, comment='F184: PSF fitting bit flags (0 = good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_gof_f184', sa.REAL(), nullable=True, comment='F184: PSF goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f184', sa.Double(), nullable=True, comment='F184: Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f184', sa.Double(), nullable=True, comment='F184: Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f184_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in ra_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f184_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in dec_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f184_flux', sa.REAL(), nullable=True, comment='F184: Flux within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f184_flux_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f184_abmag', sa.REAL(), nullable=True, comment='F184: AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f184_abmag_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in kron_abmag [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f184_flux', sa.REAL(), nullable=True, comment='F184: Isophotal flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f184_flux_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in segment_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f184_flux', sa.REAL(), nullable=True, comment='F184: Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f184_flux_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f184_flux', sa.REAL(), nullable=True, comment='F184: Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f184_flux_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f184_flux', sa.REAL(), nullable=True, comment='F184: Local background estimated within a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f184_flux_err', sa.REAL(), nullable=True, comment='F184: Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('is_extended_f184', sa.Boolean(), nullable=True, comment='F184: Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('sharpness_f184', sa.REAL(), nullable=True, comment='F184: Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('roundness1_f184', sa.REAL(), nullable=True, comment='F184: Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fluxfrac_radius_50_f184', sa.REAL(), nullable=True, comment='F184: Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f213_flux', sa.REAL(), nullable=True, comment='F213: Total PSF flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_f213_flux_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in psf_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_flags_f213', sa.Integer(), nullable=True, comment='F213: PSF fitting bit flags (0 = good) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('psf_gof_f213', sa.REAL(), nullable=True, comment='F213: PSF goodness of fit metric [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f213', sa.Double(), nullable=True, comment='F213: Right ascension (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f213', sa.Double(), nullable=True, comment='F213: Declination (ICRS) of the PSF-fitted position [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('ra_psf_f213_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in ra_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('dec_psf_f213_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in dec_psf [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f213_flux', sa.REAL(), nullable=True, comment='F213: Flux within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f213_flux_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in kron_<band>_flux_err [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f213_abmag', sa.REAL(), nullable=True, comment='F213: AB magnitude within the elliptical Kron aperture [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('kron_f213_abmag_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in kron_abmag [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f213_flux', sa.REAL(), nullable=True, comment='F213: Isophotal flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('segment_f213_flux_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in segment_flux [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f213_flux', sa.REAL(), nullable=True, comment='F213: Flux within circular aperture (radius in tenths of arcsec) (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper02_f213_flux_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in flux within circular aperture (radius 0.2 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f213_flux', sa.REAL(), nullable=True, comment='F213: Flux within circular aperture (radius in tenths of arcsec) (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper04_f213_flux_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in flux within circular aperture (radius 0.4 arcsec, not aperture-corrected) [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f213_flux', sa.REAL(), nullable=True, comment='F213: Local background estimated within a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('aper_bkg_f213_flux_err', sa.REAL(), nullable=True, comment='F213: Uncertainty in local background estimated in a circular annulus [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('is_extended_f213', sa.Boolean(), nullable=True, comment='F213: Flag indicating that the source appears to be more extended than a point source [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('sharpness_f213', sa.REAL(), nullable=True, comment='F213: Photutils DAOFinder sharpness statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('roundness1_f213', sa.REAL(), nullable=True, comment='F213: Photutils DAOFinder roundness1 statistic [rad source_catalog_columns]'))
    op.add_column('objects', sa.Column('fluxfrac_radius_50_f213', sa.REAL(), nullable=True, comment='F213: Radius of a circle centered on the source centroid that encloses 50% of the Kron flux [rad source_catalog_columns]'))
    op.alter_column('objects', 'ra', existing_type=sa.Double(), existing_nullable=False,
                    comment='Right ascension (ICRS), best estimate: the PSF fit of the highest-S/N band for point sources, the windowed centroid otherwise')
    op.alter_column('objects', 'dec', existing_type=sa.Double(), existing_nullable=False,
                    comment='Declination (ICRS), best estimate')
    op.alter_column('objects', 'skycell', existing_type=sa.String(length=32), existing_nullable=True,
                    comment='Home skycell of the object: the one whose core contains it (each object is measured once, in its home skycell)')
    op.create_table_comment('objects', "Static-sky multiband object catalog built from the L3 mosaics by romancal's MultibandCatalogStep (rad source_catalog_columns, fluxes in nJy): one row per object per release.")
    op.alter_column('injected_sources', 'point_like_out', existing_type=sa.Boolean(), existing_nullable=True,
                    comment='Recovered as point-like (is_extended false)')
    op.execute(_LATEST)


def downgrade() -> None:
    op.execute('DROP VIEW IF EXISTS objects_latest')
    for name in _NEW:
        op.drop_column('objects', name)
    op.add_column('objects', sa.Column('point_like', sa.Boolean(), nullable=True,
                                       comment='Classified as point-like (star) from its shape'))
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
    op.alter_column('objects', 'ra', existing_type=sa.Double(), existing_nullable=False, comment='Right ascension (ICRS)')
    op.alter_column('objects', 'dec', existing_type=sa.Double(), existing_nullable=False, comment='Declination (ICRS)')
    op.alter_column('objects', 'skycell', existing_type=sa.String(length=32), existing_nullable=True,
                    comment='Sky tessellation cell the object was measured in')
    op.create_table_comment('objects', 'Static-sky multiband object catalog built from the L3 mosaics: one row per '
                            'object per release.')
    op.alter_column('injected_sources', 'point_like_out', existing_type=sa.Boolean(), existing_nullable=True,
                    comment='Recovered star/galaxy class')
    op.execute(_LATEST)
