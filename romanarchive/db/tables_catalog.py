"""Level 3/4 static-sky tables: data releases and the multiband object catalog.

The object catalog holds one row per object per release. ``source_id`` encodes the object's HEALPix cell as
Gaia's does (``source_id >> 35`` is its nested order-12 index), so ids are stable across releases and sort by sky
position; ``hpx`` (order 29) and ``pos`` (pgsphere point) give index-backed spatial queries. Photometry, shape and
classification columns are added by the catalog step's specification below.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

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
    C("ra", "double", "Right ascension (ICRS), best estimate: the PSF fit of the highest-S/N band for point sources, "
      "the windowed centroid otherwise", unit="deg", ucd="pos.eq.ra;meta.main", nullable=False, principal=True),
    C("dec", "double", "Declination (ICRS), best estimate", unit="deg", ucd="pos.eq.dec;meta.main", nullable=False,
      principal=True),
    C("pos", "spoint", "Position as a pgsphere point (indexed)", unit="deg", ucd="pos.eq", nullable=False,
      indexed=True),
    C("hpx", "bigint", "HEALPix nested index, order 29, of the position", ucd="pos.healpix", nullable=False,
      indexed=True),
    C("skycell", "varchar(32)", "Home skycell of the object: the one whose core contains it (each object is "
      "measured once, in its home skycell)", ucd="meta.id;obs.field", indexed=True),
    C("is_extended", "boolean", "Extended (galaxy) rather than point-like (star): rad's is_extended_<band> of the "
      "band with the highest PSF-flux S/N", ucd="src.class.starGalaxy", principal=True),
)

#: Roman WFI imaging filters, in wavelength order; every one has its own photometry columns (NULL when absent).
CATALOG_BANDS: tuple[str, ...] = ("F062", "F087", "F106", "F129", "F146", "F158", "F184", "F213")

#: Archive bit flags of an object (the ``flags`` column).
FLAG_NEAR_BRIGHT_STAR, FLAG_SATURATED, FLAG_MISSING_BAND, FLAG_EDGE = 1, 2, 4, 8

#: rad ``source_catalog_columns`` the table keeps, in order (``{b}`` = lower-case band, ``{r}`` = aperture radius).
RAD_COLUMNS: tuple[str, ...] = (
    "label", "x_centroid", "y_centroid", "x_centroid_err", "y_centroid_err", "x_centroid_win", "y_centroid_win",
    "ra_centroid", "dec_centroid", "ra_centroid_err", "dec_centroid_err", "ra_centroid_win", "dec_centroid_win",
    "ra_centroid_win_err", "dec_centroid_win_err", "segment_area", "semimajor", "semiminor", "ellipticity",
    "orientation_sky", "kron_radius", "fwhm", "nn_distance", "warning_flags", "image_flags", "flagged_spatial_id",
    "photoz", "photoz_low68", "photoz_high68", "photoz_gof", "photoz_sed",
)
RAD_BAND_COLUMNS: tuple[str, ...] = (
    "psf_{b}_flux", "psf_{b}_flux_err", "psf_flags_{b}", "psf_gof_{b}", "ra_psf_{b}", "dec_psf_{b}",
    "ra_psf_{b}_err", "dec_psf_{b}_err", "kron_{b}_flux", "kron_{b}_flux_err", "kron_{b}_abmag",
    "kron_{b}_abmag_err", "segment_{b}_flux", "segment_{b}_flux_err", "aper02_{b}_flux", "aper02_{b}_flux_err",
    "aper04_{b}_flux", "aper04_{b}_flux_err", "aper_bkg_{b}_flux", "aper_bkg_{b}_flux_err", "is_extended_{b}",
    "sharpness_{b}", "roundness1_{b}", "fluxfrac_radius_50_{b}",
)

_RAD_TYPES = {"float32": "real", "float64": "double", "int64": "bigint", "int32": "integer", "uint32": "bigint",
              "int16": "smallint", "bool": "boolean", "bool8": "boolean"}
# rad writes units as astropy strings; TAP/VOTable want VOUnits.
_VOUNIT = {"none": "", "arcsec^2": "arcsec**2", "nJy arcsec-2": "nJy.arcsec**-2", "mag(AB)": "mag",
           "1/arcsec2": "arcsec**-2"}
_UCD = (  # first matching prefix/suffix rule wins
    ("ra_", "_err", "stat.error;pos.eq.ra"), ("dec_", "_err", "stat.error;pos.eq.dec"),
    ("x_", "_err", "stat.error;pos.cartesian.x"), ("y_", "_err", "stat.error;pos.cartesian.y"),
    ("ra_", "", "pos.eq.ra"), ("dec_", "", "pos.eq.dec"), ("x_", "", "pos.cartesian.x"),
    ("y_", "", "pos.cartesian.y"), ("aper_bkg_", "_err", "stat.error;phot.flux.sb"),
    ("aper_bkg_", "", "phot.flux.sb;instr.background"), ("", "_flux_err", "stat.error;phot.flux"),
    ("", "_flux", "phot.flux;em.IR"), ("", "_abmag_err", "stat.error;phot.mag"), ("", "_abmag", "phot.mag;em.IR"),
    ("is_extended", "", "src.class.starGalaxy"), ("photoz_low", "", "src.redshift.phot;stat.min"),
    ("photoz_high", "", "src.redshift.phot;stat.max"), ("photoz_gof", "", "stat.fit.goodness"),
    ("photoz_sed", "", "src.spType"), ("photoz", "", "src.redshift.phot"), ("psf_gof", "", "stat.fit.goodness"),
    ("", "flags", "meta.code.qual"), ("psf_flags", "", "meta.code.qual"), ("label", "", "meta.id.part"),
    ("segment_area", "", "phys.area"), ("semimajor", "", "phys.size.smajAxis"),
    ("semiminor", "", "phys.size.sminAxis"), ("ellipticity", "", "src.ellipticity"),
    ("orientation", "", "pos.posAng"), ("kron_radius", "", "phys.angSize;src"), ("fwhm", "", "phys.angSize;src"),
    ("fluxfrac_radius", "", "phys.angSize;src"), ("nn_distance", "", "pos.angDistance"),
    ("flagged_spatial_id", "", "meta.id;pos.healpix"), ("sharpness", "", "src.morph.param"),
    ("roundness", "", "src.morph.param"),
)


def _ucd(name: str) -> str:
    return next((u for pre, suf, u in _UCD if name.startswith(pre) and name.endswith(suf)), "")


@lru_cache(maxsize=1)
def rad_column_definitions() -> dict[str, dict[str, str]]:
    """rad's ``source_catalog_columns`` 2.0.0 definitions: template name -> description, unit, datatype."""
    import yaml

    text = (resources.files("rad") / "resources" / "schemas" / "tables" / "source_catalog_columns-2.0.0.yaml"
            ).read_text()
    out = {}
    for name, d in yaml.safe_load(text)["definitions"].items():
        dtype = d.get("properties", {}).get("data", {}).get("properties", {}).get("datatype", {}).get("enum", [""])
        out[name] = {"description": d.get("description", ""), "unit": str(d.get("unit", "none")),
                     "datatype": str(dtype[0])}
    return out


def _rad_spec(template: str, band: str = "") -> ColumnSpec:
    """The column of one rad template (``aper04_{b}_flux`` is rad's ``aper~radius~_~band~_flux``)."""
    import re

    rad_name = re.sub(r"^aper\d\d_", "aper~radius~_", template).replace("{b}", "~band~")
    d = rad_column_definitions()[rad_name]
    name = template.format(b=band.lower())
    desc = d["description"].rstrip(".")
    if band:
        desc = f"{band}: {desc}"
    if name == "flagged_spatial_id":
        desc += (" (archive layout, as romancal's but with 16 region bits: bit 60 outside the home core, 44-59 "
                 "projection region, 38-43 cell row, 32-37 cell column, 16-31 / 0-15 y / x in 0.05-arcsec pixels)")
    radius = re.match(r"^aper(\d\d)_", template)
    if radius:
        desc += f" (radius {int(radius.group(1)) / 10:g} arcsec, not aperture-corrected)"
    return C(name, _RAD_TYPES[d["datatype"]], f"{desc} [rad source_catalog_columns]", unit=_VOUNIT.get(d["unit"],
             d["unit"]), ucd=_ucd(name), principal=name in _PRINCIPAL)


def rad_image_column(name: str, description: str = "") -> ColumnSpec:
    """The column of a single-band (L2 ``ImageSourceCatalogModel``) catalog: romancal names it as rad's template
    without the band (``psf_flux`` is rad's ``psf_~band~_flux``, ``aper04_flux`` its ``aper~radius~_~band~_flux``).

    Parameters
    ----------
    name
        romancal's column name.
    description
        Replaces rad's description (rad's is kept as a suffix).

    Raises
    ------
    KeyError
        When no rad template matches ``name``.
    """
    import re

    defs = rad_column_definitions()
    bare = re.sub(r"^aper\d\d_", "aper~radius~_", name)
    template = next((t for t in defs if "m~band~" not in t
                     and t.replace("_~band~", "").replace("~band~_", "") == bare), None)
    if template is None:
        raise KeyError(f"{name!r} matches no rad source_catalog_columns template")
    d = defs[template]
    desc = d["description"].rstrip(".")
    radius = re.match(r"^aper(\d\d)_", name)
    if radius:
        desc += f" (radius {int(radius.group(1)) / 10:g} arcsec, not aperture-corrected)"
    desc = f"{description} ({desc})" if description else desc
    return C(name, _RAD_TYPES[d["datatype"]], f"{desc} [rad source_catalog_columns]",
             unit=_VOUNIT.get(d["unit"], d["unit"]), ucd=_ucd(name))


_PRINCIPAL = {"psf_f158_flux", "psf_f158_flux_err", "kron_f158_abmag", "psf_f087_flux", "psf_f087_flux_err"}

#: Everything the catalog step writes besides the core: rad's columns, then the archive's own.
OBJECT_MEASUREMENTS: tuple[ColumnSpec, ...] = (
    *(_rad_spec(t) for t in RAD_COLUMNS),
    C("ra_err", "real", "Uncertainty of ra (times cos dec): the PSF fit's or the windowed centroid's, as for ra",
      unit="arcsec", ucd="stat.error;pos.eq.ra"),
    C("dec_err", "real", "Uncertainty of dec: the PSF fit's or the windowed centroid's, as for dec", unit="arcsec",
      ucd="stat.error;pos.eq.dec"),
    C("n_bands", "smallint", "Bands with a PSF-flux measurement", ucd="meta.number"),
    C("flags", "integer", "Archive bit flags: 1 within the halo/spike mask of a bright star, 2 saturated core "
      "(the bright star itself), 4 fewer than all bands of the skycell measured, 8 segment touches the data's edge",
      ucd="meta.code.qual"),
    *(_rad_spec(t, band) for band in CATALOG_BANDS for t in RAD_BAND_COLUMNS),
)

OBJECTS = TableSpec(
    "objects",
    "Static-sky multiband object catalog built from the L3 mosaics by romancal's MultibandCatalogStep (rad "
    "source_catalog_columns, fluxes in nJy): one row per object per release.",
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
        C("point_like_out", "boolean", "Recovered as point-like (is_extended false)", ucd="src.class.starGalaxy"),
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
