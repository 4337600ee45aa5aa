"""Per-image (L2) source catalogs: romancal's ``SourceCatalogStep`` on each calibrated image, one row per source.

Roman's SOC makes a source catalog of every calibrated exposure (WFI summary §2.6 item 1): detections, positions,
shapes and single-band photometry (rad ``source_catalog_columns`` without the band in their names, fluxes in nJy).
Rows belong to the L2 product they were measured on (``product_id``, deleted with it) and are replaced when that
image is catalogued again; ``label`` is romancal's segment number, unique within the image only.
"""

from __future__ import annotations

from dataclasses import replace

from romanarchive.db.registry import ColumnSpec, TableSpec
from romanarchive.db.tables_catalog import rad_image_column

C = ColumnSpec

#: romancal 1.1.0's ``ImageSourceCatalogModel`` columns (PSF fit on), in its order; ``label``, ``ra`` and ``dec``
#: lead the table.
L2_RAD_COLUMNS: tuple[str, ...] = (
    "flagged_spatial_id", "x_centroid", "y_centroid", "x_centroid_err", "y_centroid_err", "x_centroid_win",
    "y_centroid_win", "x_centroid_win_err", "y_centroid_win_err", "x_psf", "x_psf_err", "y_psf", "y_psf_err",
    "ra_centroid", "dec_centroid", "ra_centroid_err", "dec_centroid_err", "ra_centroid_win", "dec_centroid_win",
    "ra_centroid_win_err", "dec_centroid_win_err", "ra_psf", "dec_psf", "ra_psf_err", "dec_psf_err", "bbox_xmin",
    "bbox_xmax", "bbox_ymin", "bbox_ymax", "segment_area", "semimajor", "semiminor", "fwhm", "ellipticity",
    "orientation_pix", "orientation_sky", "cxx", "cxy", "cyy", "kron_radius", "nn_label", "nn_distance",
    "sharpness", "roundness1", "is_extended", "fluxfrac_radius_50", "aper_bkg_flux", "aper_bkg_flux_err",
    "aper01_flux", "aper01_flux_err", "aper02_flux", "aper02_flux_err", "aper04_flux", "aper04_flux_err",
    "aper08_flux", "aper08_flux_err", "aper16_flux", "aper16_flux_err", "psf_flux", "psf_flux_err", "segment_flux",
    "segment_flux_err", "kron_flux", "kron_flux_err", "kron_abmag", "kron_abmag_err", "warning_flags",
    "image_flags", "psf_flags", "psf_gof", "dust_ebv",
)

# UCDs rad's names do not give by the shared prefix/suffix rules.
_UCD = {"bbox_xmin": "pos.cartesian.x;stat.min", "bbox_xmax": "pos.cartesian.x;stat.max",
        "bbox_ymin": "pos.cartesian.y;stat.min", "bbox_ymax": "pos.cartesian.y;stat.max",
        "cxx": "src.morph.param", "cxy": "src.morph.param", "cyy": "src.morph.param", "nn_label": "meta.id.cross",
        "dust_ebv": "phys.absorption.gal"}
_PRINCIPAL = {"psf_flux", "psf_flux_err", "kron_flux", "is_extended"}


def _rad(name: str) -> ColumnSpec:
    col = rad_image_column(name)
    return replace(col, ucd=_UCD.get(name, col.ucd), principal=name in _PRINCIPAL)


L2_SOURCES = TableSpec(
    "l2_sources",
    "Per-image source catalogs: romancal's SourceCatalogStep on every calibrated L2 image (rad "
    "source_catalog_columns of one band, fluxes in nJy), one row per source per image; the catalog file is the "
    "wfi_l2_cat product of the same exposure.",
    (
        C("product_id", "bigint", "L2 image the source was measured on (products.product_id)", ucd="meta.id",
          primary_key=True, principal=True, foreign_key="products.product_id"),
        replace(rad_image_column("label", "Segment number of the source in this image's segmentation map"),
                ucd="meta.id.part", primary_key=True, principal=True),
        C("filter", "varchar(20)", "Filter of the image", ucd="instr.filter", nullable=False, principal=True),
        C("detector", "varchar(10)", "WFI detector of the image", ucd="instr.det"),
        C("mjd", "double", "Mid-exposure time of the image (MJD, UTC)", unit="d", ucd="time.epoch;obs.exposure"),
        replace(rad_image_column("ra", "Right ascension (ICRS), best estimate: the PSF fit, else the windowed "
                                 "centroid"), ucd="pos.eq.ra;meta.main", nullable=False, principal=True),
        replace(rad_image_column("dec", "Declination (ICRS), best estimate"), ucd="pos.eq.dec;meta.main",
                nullable=False, principal=True),
        C("pos", "spoint", "Position as a pgsphere point (indexed)", unit="deg", ucd="pos.eq", nullable=False,
          indexed=True),
        *(_rad(n) for n in L2_RAD_COLUMNS),
    ),
    published=True,
    spoint_column="pos",
    spoint_of=("ra", "dec"),
)

TABLES: tuple[TableSpec, ...] = (L2_SOURCES,)
