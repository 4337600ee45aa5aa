"""Level 3/4 static-sky tables: data releases and the multiband object catalog.

The object catalog holds one row per object per release. ``source_id`` encodes the object's HEALPix cell as
Gaia's does (``source_id >> 35`` is its nested order-12 index), so ids are stable across releases and sort by sky
position; ``hpx`` (order 29) and ``pos`` (pgsphere point) give index-backed spatial queries. Photometry, shape and
classification columns are added by the catalog step's specification below.
"""

from __future__ import annotations

from romanarchive.db.registry import ColumnSpec, TableSpec

C = ColumnSpec

#: Release tag of rows and products that are not frozen yet.
LIVE = "live"

RELEASES = TableSpec(
    "releases",
    "Data releases: a frozen, named set of products and catalog rows ('live' is the current, changing set).",
    (
        C("release", "varchar(64)", "Release tag", ucd="meta.version;meta.main", primary_key=True),
        C("description", "text", "What the release contains", ucd="meta.note"),
        C("created_at", "timestamptz", "When the release was frozen", ucd="time.creation", nullable=False,
          server_default="now()"),
        C("n_products", "bigint", "Products in the release", ucd="meta.number"),
        C("n_objects", "bigint", "Object catalog rows in the release", ucd="meta.number"),
    ),
    published=True,
)

RELEASE_PRODUCTS = TableSpec(
    "release_products",
    "Products frozen in a data release (romanarchive.releases): live products stay 'live' and are listed here; "
    "a frozen product replaced by later processing keeps its row, re-tagged with its newest release.",
    (
        C("release", "varchar(64)", "Release tag", ucd="meta.version", primary_key=True,
          foreign_key="releases.release"),
        C("product_id", "bigint", "Product in the release", ucd="meta.id", primary_key=True,
          foreign_key="products.product_id"),
    ),
    published=True,
)

#: The newest frozen release's object rows, as the view ``objects_latest`` (created by migration 0004).
OBJECTS_LATEST_VIEW = "objects_latest"

OBJECT_CORE: tuple[ColumnSpec, ...] = (
    C("source_id", "bigint", "Stable object identifier; source_id >> 35 is the nested HEALPix order-12 index of "
      "its position (as Gaia DR3's)", ucd="meta.id;meta.main", primary_key=True, principal=True),
    C("release", "varchar(64)", "Data release the row belongs to ('live' until frozen)", ucd="meta.version",
      primary_key=True, principal=True),
    C("ra", "double", "Right ascension (ICRS)", unit="deg", ucd="pos.eq.ra;meta.main", nullable=False,
      principal=True),
    C("dec", "double", "Declination (ICRS)", unit="deg", ucd="pos.eq.dec;meta.main", nullable=False, principal=True),
    C("pos", "spoint", "Position as a pgsphere point (indexed)", unit="deg", ucd="pos.eq", nullable=False,
      indexed=True),
    C("hpx", "bigint", "HEALPix nested index, order 29, of the position", ucd="pos.healpix", nullable=False,
      indexed=True),
    C("skycell", "varchar(32)", "Sky tessellation cell the object was measured in", ucd="meta.id;obs.field",
      indexed=True),
    C("point_like", "boolean", "Classified as point-like (star) from its shape", ucd="src.class.starGalaxy",
      principal=True),
)

#: Roman WFI imaging filters, in wavelength order; every one has its own photometry columns (NULL when absent).
CATALOG_BANDS: tuple[str, ...] = ("F062", "F087", "F106", "F129", "F146", "F158", "F184", "F213")


def _band_columns(band: str) -> tuple[ColumnSpec, ...]:
    b = band.lower()
    return (
        C(f"{b}_flux_ap", "double", f"{band} flux in the catalog's circular aperture at the native PSF, local "
          "background subtracted", unit="nJy", ucd="phot.flux;em.IR"),
        C(f"{b}_flux_ap_err", "double", f"{band} uncertainty of {b}_flux_ap from the noise model (err array)",
          unit="nJy", ucd="stat.error;phot.flux"),
        C(f"{b}_flux_psfm", "double", f"{band} flux in the same aperture after matching the PSF to the catalog's "
          "reference (broadest) PSF; use for colours", unit="nJy", ucd="phot.flux;em.IR"),
        C(f"{b}_flux_psfm_err", "double", f"{band} uncertainty of {b}_flux_psfm", unit="nJy",
          ucd="stat.error;phot.flux"),
        C(f"{b}_flux_kron", "double", f"{band} flux in the Kron ellipse (2.5 Kron radii) of the detection image, an "
          "estimate of the total flux", unit="nJy", ucd="phot.flux;em.IR"),
        C(f"{b}_flux_kron_err", "double", f"{band} uncertainty of {b}_flux_kron", unit="nJy",
          ucd="stat.error;phot.flux"),
        C(f"{b}_mag_ap", "double", f"{band} AB magnitude of {b}_flux_ap", unit="mag", ucd="phot.mag;em.IR"),
        C(f"{b}_mag_ap_err", "double", f"{band} uncertainty of {b}_mag_ap", unit="mag", ucd="stat.error;phot.mag"),
        C(f"{b}_bkg_local", "double", f"{band} local background per pixel in an annulus around the object",
          unit="MJy/sr", ucd="phot.flux.sb;instr.background"),
    )


#: Everything the catalog step measures (romanarchive.catalog.measure), appended to the core columns.
OBJECT_MEASUREMENTS: tuple[ColumnSpec, ...] = (
    C("ra_err", "double", "Uncertainty of ra (times cos dec), from size over detection S/N", unit="mas",
      ucd="stat.error;pos.eq.ra"),
    C("dec_err", "double", "Uncertainty of dec, from size over detection S/N", unit="mas", ucd="stat.error;pos.eq.dec"),
    C("x_det", "double", "Centroid column in the skycell pixel grid (0-based)", unit="pix", ucd="pos.cartesian.x"),
    C("y_det", "double", "Centroid row in the skycell pixel grid (0-based)", unit="pix", ucd="pos.cartesian.y"),
    C("segment_id", "integer", "Label of the object in the segmentation map (L4 wfi_l4_segm product)",
      ucd="meta.id.part"),
    C("det_snr", "double", "Signal-to-noise ratio of the segment in the combined detection image", ucd="stat.snr"),
    C("area", "double", "Area of the segment", unit="arcsec2", ucd="phys.area"),
    C("semimajor_sigma", "double", "Semi-major axis: RMS along the major axis from second moments", unit="arcsec",
      ucd="phys.size.smajAxis"),
    C("semiminor_sigma", "double", "Semi-minor axis: RMS along the minor axis from second moments", unit="arcsec",
      ucd="phys.size.sminAxis"),
    C("ellipticity", "double", "1 - semiminor/semimajor", ucd="src.ellipticity"),
    C("position_angle", "double", "Position angle of the major axis, east of north", unit="deg", ucd="pos.posAng"),
    C("r_half", "double", "Half-light radius in the detection image (PSF-convolved)", unit="arcsec",
      ucd="phys.angSize;src"),
    C("concentration", "double", "Flux ratio of apertures of 1.5 and 4 pixel radius in the detection image; "
      "compared with the PSF's for point_like", ucd="src.morph.param"),
    C("flags", "integer", "Bit flags: 1 deblended from a parent, 2 segment touches the image edge or masked "
      "pixels, 4 fewer than all bands measured", ucd="meta.code.qual"),
    C("photoz", "double", "Photometric redshift from template fitting of the Roman bands (CWW templates)",
      ucd="src.redshift.phot"),
    C("photoz_err", "double", "Half-width of the redshift range with chi2 < min + 1",
      ucd="stat.error;src.redshift.phot"),
    C("photoz_chi2", "double", "Chi-square of the best template fit", ucd="stat.fit.chi2"),
    C("photoz_template", "smallint", "Best template: 0 E, 1 Sbc, 2 Scd, 3 Im (CWW, galsim share/SEDs)",
      ucd="meta.code;src.spType"),
    C("n_bands", "smallint", "Bands with a measurement", ucd="meta.number"),
    *(c for band in CATALOG_BANDS for c in _band_columns(band)),
)

OBJECTS = TableSpec(
    "objects",
    "Static-sky multiband object catalog built from the L3 mosaics: one row per object per release.",
    OBJECT_CORE + OBJECT_MEASUREMENTS,
    published=True,
    spoint_column="pos",
    spoint_of=("ra", "dec"),
)

INJECTION_RUNS = TableSpec(
    "injection_runs",
    "Source-injection runs: artificial sources drawn into a copy of an image and catalogued with the same step.",
    (
        C("run_id", "bigint", "Injection run identifier", ucd="meta.id;meta.main", primary_key=True),
        C("skycell", "varchar(32)", "Skycell injected into, or 'product:ID' for one image", ucd="meta.id;obs.field"),
        C("product_ids", "jsonb", "Products whose images were injected into (never archived with the sources)",
          ucd="meta.id", nullable=False),
        C("parameters", "jsonb", "Injection grid and catalog configuration", ucd="meta.note", nullable=False),
        C("created_at", "timestamptz", "When the run was made", ucd="time.creation", nullable=False,
          server_default="now()"),
    ),
    published=True,
)

INJECTED_SOURCES = TableSpec(
    "injected_sources",
    "Artificial sources of an injection run: injected parameters and what the catalog step recovered.",
    (
        C("run_id", "bigint", "Injection run", ucd="meta.id", primary_key=True,
          foreign_key="injection_runs.run_id"),
        C("inj_id", "integer", "Source number within the run", ucd="meta.id", primary_key=True),
        C("filter", "varchar(20)", "Filter the magnitude refers to", ucd="instr.filter"),
        C("kind", "varchar(8)", "point or sersic", ucd="src.class"),
        C("ra", "double", "Injected right ascension", unit="deg", ucd="pos.eq.ra"),
        C("dec", "double", "Injected declination", unit="deg", ucd="pos.eq.dec"),
        C("mag_in", "double", "Injected AB magnitude", unit="mag", ucd="phot.mag"),
        C("sersic_n", "double", "Injected Sersic index (NULL for point sources)", ucd="src.morph.param"),
        C("r_half_in", "double", "Injected half-light radius (NULL for point sources)", unit="arcsec",
          ucd="phys.angSize;src"),
        C("ellipticity_in", "double", "Injected ellipticity 1 - b/a", ucd="src.ellipticity"),
        C("recovered", "boolean", "Matched to a detection within the match radius", ucd="meta.code",
          nullable=False),
        C("mag_out", "double", "Recovered aperture AB magnitude", unit="mag", ucd="phot.mag"),
        C("flux_in", "double", "Injected total flux", unit="nJy", ucd="phot.flux"),
        C("flux_out", "double", "Recovered Kron flux (estimate of the total flux)",
          unit="nJy", ucd="phot.flux"),
        C("sep", "double", "Distance from injected to recovered position", unit="mas", ucd="pos.angDistance"),
        C("point_like_out", "boolean", "Recovered star/galaxy class", ucd="src.class.starGalaxy"),
    ),
    published=True,
)

INJECTION_COMPLETENESS = TableSpec(
    "injection_completeness",
    "Completeness and flux bias from source injection, per run, filter, source kind and magnitude bin.",
    (
        C("run_id", "bigint", "Injection run", ucd="meta.id", primary_key=True,
          foreign_key="injection_runs.run_id"),
        C("filter", "varchar(20)", "Filter", ucd="instr.filter", primary_key=True, principal=True),
        C("kind", "varchar(8)", "point or sersic", ucd="src.class", primary_key=True, principal=True),
        C("mag_lo", "double", "Bright edge of the magnitude bin", unit="mag", ucd="phot.mag;stat.min",
          primary_key=True, principal=True),
        C("mag_hi", "double", "Faint edge of the magnitude bin", unit="mag", ucd="phot.mag;stat.max"),
        C("skycell", "varchar(32)", "Skycell injected into, or 'product:ID' for one image", ucd="meta.id;obs.field",
          principal=True),
        C("n_injected", "integer", "Sources injected in the bin", ucd="meta.number"),
        C("n_recovered", "integer", "Sources recovered", ucd="meta.number"),
        C("completeness", "double", "n_recovered / n_injected", ucd="stat.fit.param", principal=True),
        C("flux_bias", "double", "Median of flux_out / flux_in - 1 of recovered sources", ucd="stat.median",
          principal=True),
        C("flux_scatter", "double", "Robust (1.4826 MAD) scatter of flux_out / flux_in", ucd="stat.stdev"),
        C("astrometric_scatter", "double", "RMS injected-recovered separation", unit="mas", ucd="stat.stdev;pos"),
    ),
    published=True,
)

TABLES: tuple[TableSpec, ...] = (
    RELEASES, RELEASE_PRODUCTS, OBJECTS, INJECTION_RUNS, INJECTED_SOURCES, INJECTION_COMPLETENESS,
)
