"""Forced-photometry time series, variability indices and difference-imaging sources.

``forced_phot`` is partitioned by HASH on ``source_id`` (``N_PARTITIONS`` partitions, created in migration 0005):
a light curve lives in one partition, and the per-source index recomputation touches only the partitions of the
sources it recomputes. Fluxes are in nJy (AB: m = 31.4 - 2.5 log10 f).

Provenance: these steps write table rows, not products, so the ``provenance`` table (one row per output product)
cannot describe them. Every run of a step instead writes one ``timeseries_runs`` row (step, software versions,
configuration, inputs, cost, job, host) in the transaction that writes its rows, and every ``forced_phot``,
``variability`` and ``dia_sources`` row carries the ``run_id`` of the run that wrote it. Runs are never deleted
(there is no foreign key, so that bulk loads stay fast): a run whose rows were all replaced is simply history.
"""

from __future__ import annotations

from romanarchive.db.registry import ColumnSpec, TableSpec

C = ColumnSpec

#: Hash partitions of ``forced_phot`` (names ``forced_phot_p<k>``).
N_PARTITIONS = 8

#: Measurement flag bits of ``forced_phot.flags``.
FLAG_EDGE = 1  # stamp reaches past the image edge
FLAG_BAD_PIXELS = 2  # DQ-flagged (DO_NOT_USE/SATURATED) or invalid pixels inside the stamp
FLAG_SHIFTED = 4  # the centroid moved from the catalog position beyond the noise
FLAG_LOW_SNR = 8  # centroid not measurable (S/N below the centroid threshold)
FLAG_SATURATED = 16  # saturated pixels inside the PSF core

# Columns that several tables declare alike (one declaration: their DDL comments and TAP metadata agree).
_PRODUCT_ID = C("product_id", "bigint", "L2 product measured (products.product_id)", ucd="meta.id",
                primary_key=True, principal=True)
_FILTER = C("filter", "varchar(20)", "Filter of the image", ucd="instr.filter", nullable=False, principal=True)
_MJD = C("mjd", "double", "Mid-exposure time (MJD, UTC)", unit="d", ucd="time.epoch;obs.exposure", nullable=False,
         principal=True, indexed=True)
_FLUX_ERR = C("flux_err", "double", "1-sigma uncertainty of flux from the image's err array", unit="nJy",
              ucd="stat.error;phot.flux", principal=True)
_FLUX_AP = C("flux_ap", "double", "Aperture flux (r = 2.5 pix, sky from the PSF fit), corrected to total with the "
             "PSF's aperture correction", unit="nJy", ucd="phot.flux;em.IR")
_FLUX_AP_ERR = C("flux_ap_err", "double", "1-sigma uncertainty of flux_ap", unit="nJy", ucd="stat.error;phot.flux")
_SHIFT_ERR = C("shift_err", "real", "1-sigma uncertainty of dra and ddec (each), systematic floor included",
               unit="mas", ucd="stat.error;pos")
_PHOT_FLAGS = C("flags", "smallint", "Bits: 1 stamp off the edge, 2 bad pixels in the stamp, 4 centroid shifted "
                "beyond the noise, 8 centroid not measurable, 16 saturated core", ucd="meta.code.qual",
                nullable=False, principal=True)
_MEASURED_RUN = C("run_id", "bigint", "Run that measured the row (timeseries_runs.run_id)",
                  ucd="meta.id;meta.dataset", nullable=False)
_RA = C("ra", "double", "Right ascension (ICRS)", unit="deg", ucd="pos.eq.ra;meta.main", nullable=False,
        principal=True)
_DEC = C("dec", "double", "Declination (ICRS)", unit="deg", ucd="pos.eq.dec;meta.main", nullable=False,
         principal=True)
_POS = C("pos", "spoint", "Position as a pgsphere point (indexed)", unit="deg", ucd="pos.eq", nullable=False,
         indexed=True)

FORCED_PHOT = TableSpec(
    "forced_phot",
    "Forced photometry of point-like catalog objects on every L2 image that covers them: one row per object and "
    "image (partitioned by HASH on source_id).",
    (
        C("source_id", "bigint", "Object (objects.source_id)", ucd="meta.id;meta.main", primary_key=True,
          principal=True),
        _PRODUCT_ID,
        _FILTER,
        _MJD,
        C("flux", "double", "Total flux from a linear PSF fit (flux and local sky) at the fixed catalog position; "
          "NULL for extended objects (use flux_ap)",
          unit="nJy", ucd="phot.flux;em.IR", principal=True),
        _FLUX_ERR,
        _FLUX_AP,
        _FLUX_AP_ERR,
        C("x", "real", "Column of the catalog position in the image (0-based)", unit="pix", ucd="pos.cartesian.x"),
        C("y", "real", "Row of the catalog position in the image (0-based)", unit="pix", ucd="pos.cartesian.y"),
        C("dra", "real", "Centroid minus catalog position, east (dRA cos Dec); NaN when not measurable", unit="mas",
          ucd="pos.eq.ra;arith.diff"),
        C("ddec", "real", "Centroid minus catalog position, north; NaN when not measurable", unit="mas",
          ucd="pos.eq.dec;arith.diff"),
        _SHIFT_ERR,
        C("shift_snr", "real", "Centroid shift over its uncertainty", ucd="stat.snr;pos"),
        C("flux_shifted", "double", "PSF flux at the centroid, for measurements flagged as shifted (else NULL)",
          unit="nJy", ucd="phot.flux;em.IR"),
        C("flux_shifted_err", "double", "1-sigma uncertainty of flux_shifted", unit="nJy", ucd="stat.error;phot.flux"),
        _PHOT_FLAGS,
        _MEASURED_RUN,
    ),
    published=True,
    # Unique (product_id, source_id): the index behind per-image lookups and deletes (re-measuring an image).
    unique=(("product_id", "source_id"),),
)

#: Source-level flag bits of ``variability.flags``.
VFLAG_MOVING = 1  # the centroids drift with time beyond the noise
VFLAG_FLAGGED_POINTS = 2  # some measurements carry quality flags (left out of the indices)
VFLAG_FEW_EPOCHS = 4  # fewer than 3 usable measurements
VFLAG_OUTLIER = 8  # one measurement dominates chi2 (> 50 %): single-epoch event or artefact

VARIABILITY = TableSpec(
    "variability",
    "Variability indices of the forced-photometry light curves, per object and filter.",
    (
        C("source_id", "bigint", "Object (objects.source_id)", ucd="meta.id;meta.main", primary_key=True,
          principal=True),
        C("filter", "varchar(20)", "Filter", ucd="instr.filter", primary_key=True, principal=True),
        C("n_epochs", "integer", "Measurements used (unflagged)", ucd="meta.number", nullable=False, principal=True),
        C("n_flagged", "integer", "Measurements with quality flags (not used)", ucd="meta.number", nullable=False),
        C("mjd_min", "double", "First measurement", unit="d", ucd="time.start"),
        C("mjd_max", "double", "Last measurement", unit="d", ucd="time.end"),
        C("mean_flux", "double", "Inverse-variance weighted mean flux", unit="nJy", ucd="phot.flux;stat.mean",
          principal=True),
        C("chi2_red", "double", "Reduced chi-square of the light curve about the weighted mean", ucd="stat.fit.chi2",
          principal=True),
        C("stetson_j", "double", "Stetson (1996) J index, consecutive-pair form", ucd="stat.param;src.var",
          principal=True),
        C("stetson_k", "double", "Stetson K kurtosis index (sqrt(2/pi) ~ 0.80 for Gaussian noise)",
          ucd="stat.param;src.var"),
        C("eta", "double", "von Neumann ratio: mean squared successive difference over variance", ucd="stat.param"),
        C("amplitude", "double", "Half of max - min of the flux", unit="nJy", ucd="src.var.amplitude"),
        C("mad", "double", "Median absolute deviation of the flux from its median", unit="nJy",
          ucd="stat.stdev;phot.flux"),
        C("flags", "integer", "Bits: 1 moving (centroid drift), 2 flagged measurements left out, 4 fewer than 3 "
          "epochs, 8 one measurement dominates chi2", ucd="meta.code.qual", nullable=False, principal=True),
        C("run_id", "bigint", "Run that computed the indices (timeseries_runs.run_id)", ucd="meta.id;meta.dataset",
          nullable=False),
        C("updated_at", "timestamptz", "When the indices were computed", ucd="time.processing", nullable=False,
          server_default="now()"),
    ),
    published=True,
)

DIA_SOURCES = TableSpec(
    "dia_sources",
    "Difference-imaging detections: sources on an epoch co-add of a skycell and filter minus a template co-added "
    "from earlier images.",
    (
        C("dia_id", "bigint", "Detection identifier", ucd="meta.id;meta.main", primary_key=True, principal=True),
        C("skycell", "varchar(32)", "Skycell of the images", ucd="meta.id;obs.field", nullable=False, indexed=True,
          principal=True),
        C("filter", "varchar(20)", "Filter", ucd="instr.filter", nullable=False, principal=True),
        C("mjd", "double", "Mean mid-exposure time of the epoch image", unit="d", ucd="time.epoch", nullable=False,
          indexed=True, principal=True),
        C("science_ids", "jsonb", "L2 products co-added into the epoch image", ucd="meta.id", nullable=False),
        C("template_ids", "jsonb", "Earlier L2 products co-added into the template", ucd="meta.id", nullable=False),
        _RA,
        _DEC,
        _POS,
        C("x", "real", "Column in the skycell grid (0-based)", unit="pix", ucd="pos.cartesian.x"),
        C("y", "real", "Row in the skycell grid (0-based)", unit="pix", ucd="pos.cartesian.y"),
        C("flux", "double", "Difference flux from a PSF fit (negative: fainter than the template)", unit="nJy",
          ucd="phot.flux;arith.diff", principal=True),
        C("flux_err", "double", "1-sigma uncertainty of flux from the propagated noise", unit="nJy",
          ucd="stat.error;phot.flux"),
        C("snr", "double", "Matched-filter signal-to-noise ratio of the detection", ucd="stat.snr", principal=True),
        C("flux_template", "double", "Template flux at the position (PSF fit)", unit="nJy", ucd="phot.flux"),
        C("nearest_source_id", "bigint", "Nearest static object (objects.source_id, live release) or NULL",
          ucd="meta.id.cross"),
        C("nearest_sep", "double", "Distance to that object", unit="arcsec", ucd="pos.angDistance"),
        C("dia_object_id", "bigint", "DIA object the detection belongs to (dia_objects.dia_object_id)",
          ucd="meta.id.parent", indexed=True, principal=True),
        C("flags", "smallint", "Bits: 1 negative (fainter than template), 2 near the coverage edge, 4 PSF matched "
          "(template or image convolved), 8 new (no static object within 0.3 arcsec), 16 moving (centroid drift "
          "across the epoch's exposures)", ucd="meta.code.qual", nullable=False, principal=True),
        C("rate_ra", "double", "Motion in RA (times cos dec) across the epoch's exposures (brightenings)",
          unit="arcsec/h", ucd="pos.pm;pos.eq.ra"),
        C("rate_dec", "double", "Motion in Dec across the epoch's exposures (brightenings)", unit="arcsec/h",
          ucd="pos.pm;pos.eq.dec"),
        C("rate_err", "double", "1-sigma uncertainty of rate_ra and rate_dec", unit="arcsec/h",
          ucd="stat.error;pos.pm"),
        C("track_id", "bigint", "Track of a moving detection (dia_tracks.track_id): the same object at other epochs",
          ucd="meta.id.parent", indexed=True),
        C("run_id", "bigint", "Run that wrote the row (timeseries_runs.run_id)", ucd="meta.id;meta.dataset",
          nullable=False),
        C("created_at", "timestamptz", "When the row was written", ucd="time.creation", nullable=False,
          server_default="now()"),
    ),
    published=True,
    spoint_column="pos",
    spoint_of=("ra", "dec"),
)

DIA_TRACKS = TableSpec(
    "dia_tracks",
    "Moving objects: DIA detections that move within their epoch, linked across epochs by their motion.",
    (
        C("track_id", "bigint", "Track identifier", ucd="meta.id;meta.main", primary_key=True, principal=True),
        C("n_detections", "integer", "Detections linked", ucd="meta.number", nullable=False, principal=True),
        C("n_epochs", "integer", "Distinct epochs (mjd) with a detection", ucd="meta.number", nullable=False,
          principal=True),
        C("first_mjd", "double", "First detection", unit="d", ucd="time.start", nullable=False, principal=True),
        C("last_mjd", "double", "Last detection", unit="d", ucd="time.end", nullable=False, principal=True),
        C("ra", "double", "Right ascension at first_mjd (ICRS)", unit="deg", ucd="pos.eq.ra", nullable=False,
          principal=True),
        C("dec", "double", "Declination at first_mjd (ICRS)", unit="deg", ucd="pos.eq.dec", nullable=False,
          principal=True),
        C("rate_ra", "double", "Mean motion in RA (times cos dec), weighted by the detections' rate errors",
          unit="arcsec/h", ucd="pos.pm;pos.eq.ra", principal=True),
        C("rate_dec", "double", "Mean motion in Dec", unit="arcsec/h", ucd="pos.pm;pos.eq.dec", principal=True),
        C("updated_at", "timestamptz", "When the track was last linked", ucd="time.processing", nullable=False,
          server_default="now()"),
    ),
    published=True,
)

DIA_OBJECTS = TableSpec(
    "dia_objects",
    "Difference-imaging objects: the DIA detections of one sky position associated across epochs and filters "
    "(within 0.3 arcsec), each linked to its static-catalog counterpart (the variable star itself, or the host "
    "galaxy of a transient with its offset) where one exists. Light curve: dia_sources with this dia_object_id.",
    (
        C("dia_object_id", "bigint", "DIA object identifier", ucd="meta.id;meta.main", primary_key=True,
          principal=True),
        C("ra", "double", "Right ascension: S/N-weighted mean of the detections (ICRS)", unit="deg",
          ucd="pos.eq.ra;meta.main", nullable=False, principal=True),
        C("dec", "double", "Declination: S/N-weighted mean of the detections (ICRS)", unit="deg",
          ucd="pos.eq.dec;meta.main", nullable=False, principal=True),
        _POS,
        C("n_detections", "integer", "DIA detections associated", ucd="meta.number", nullable=False, principal=True),
        C("n_epochs", "integer", "Distinct epochs (filter, mjd) with a detection", ucd="meta.number", nullable=False),
        C("filters", "varchar(64)", "Filters with a detection, comma-separated", ucd="instr.filter"),
        C("first_mjd", "double", "First detection", unit="d", ucd="time.start", principal=True),
        C("last_mjd", "double", "Last detection", unit="d", ucd="time.end"),
        C("max_abs_snr", "double", "Largest |S/N| of its detections", ucd="stat.snr;stat.max", principal=True),
        C("max_flux", "double", "Largest difference flux (brightest epoch against its template)", unit="nJy",
          ucd="phot.flux;arith.diff;stat.max"),
        C("min_flux", "double", "Smallest difference flux (faintest epoch against its template)", unit="nJy",
          ucd="phot.flux;arith.diff;stat.min"),
        C("counterpart_id", "bigint", "Static counterpart (objects.source_id, live release): the nearest object "
          "within 0.3 arcsec, else the nearest extended object within 2 arcsec (a host), else NULL",
          ucd="meta.id.cross", principal=True),
        C("counterpart_sep", "double", "Offset from the counterpart (a transient's host offset)", unit="arcsec",
          ucd="pos.angDistance", principal=True),
        C("counterpart_extended", "boolean", "Counterpart is extended (a galaxy: the host of a transient or AGN)",
          ucd="src.class.starGalaxy"),
        C("updated_at", "timestamptz", "When the object was last updated", ucd="time.processing", nullable=False,
          server_default="now()"),
    ),
    published=True,
    spoint_column="pos",
    spoint_of=("ra", "dec"),
)

FORCED_TARGETS = TableSpec(
    "forced_targets",
    "Forced-photometry targets: sky positions an operator or a Level 5 catalog asked to be measured on every L2 "
    "image that covers them (as point sources), whether or not the static catalog has an object there. "
    "Measurements: target_phot.",
    (
        C("target_id", "bigint", "Target identifier", ucd="meta.id;meta.main", primary_key=True, principal=True),
        C("name", "text", "Name given by the origin (unique within it)", ucd="meta.id", nullable=False,
          principal=True),
        _RA,
        _DEC,
        _POS,
        C("origin", "text", "Who asked: 'operator', or 'level5:<product>' for the rows of a Level 5 catalog",
          ucd="meta.note", nullable=False, principal=True),
        C("added", "timestamptz", "When the target was added or last moved", ucd="time.creation", nullable=False,
          server_default="now()"),
    ),
    published=True,
    unique=(("origin", "name"),),
    spoint_column="pos",
    spoint_of=("ra", "dec"),
)

TARGET_PHOT = TableSpec(
    "target_phot",
    "Forced photometry of the forced_targets positions on every L2 image that covers them: one row per target and "
    "image, measured with the PSF and aperture of forced_phot (same columns, units and flags).",
    (
        C("target_id", "bigint", "Target (forced_targets.target_id)", ucd="meta.id;meta.main", primary_key=True,
          principal=True, foreign_key="forced_targets.target_id"),
        _PRODUCT_ID,
        _FILTER,
        _MJD,
        C("flux", "double", "Total flux from a linear PSF fit (flux and local sky) at the fixed target position",
          unit="nJy", ucd="phot.flux;em.IR", principal=True),
        _FLUX_ERR,
        _FLUX_AP,
        _FLUX_AP_ERR,
        C("dra", "real", "Centroid minus target position, east (dRA cos Dec); NULL when not measurable", unit="mas",
          ucd="pos.eq.ra;arith.diff"),
        C("ddec", "real", "Centroid minus target position, north; NULL when not measurable", unit="mas",
          ucd="pos.eq.dec;arith.diff"),
        _SHIFT_ERR,
        _PHOT_FLAGS,
        _MEASURED_RUN,
    ),
    published=True,
    # Unique (product_id, target_id): the index behind per-image deletes (re-measuring an image).
    unique=(("product_id", "target_id"),),
)

TIMESERIES_RUNS = TableSpec(
    "timeseries_runs",
    "Provenance of the time-series tables: one row per run of a step (forced photometry of an L2 image, index "
    "recomputation, difference imaging of a skycell and filter); forced_phot, target_phot, variability and "
    "dia_sources rows point here through run_id.",
    (
        C("run_id", "bigint", "Run identifier", ucd="meta.id;meta.dataset", primary_key=True, principal=True),
        C("step", "varchar(64)", "Processing step, e.g. romanarchive.ForcedPhotStep", ucd="meta.code", nullable=False,
          principal=True),
        C("target", "varchar(128)", "What the run worked on: 'product:<id>', a skycell and filter, or 'all'",
          ucd="meta.id", nullable=False, principal=True),
        C("software", "jsonb", "Package versions used", ucd="meta.software", nullable=False),
        C("parameters", "jsonb", "Step configuration", ucd="meta.note", nullable=False),
        C("inputs", "jsonb", "Input products (ids and file names) and the catalog release measured", ucd="meta.id",
          nullable=False),
        C("n_rows", "bigint", "Rows the run wrote", ucd="meta.number"),
        C("wall_time_s", "double", "Wall time of the run", unit="s", ucd="time.duration"),
        C("peak_rss_mb", "double", "Peak resident memory of the process during the run", unit="Mbyte",
          ucd="phys.size"),
        C("host", "text", "Worker that ran it", ucd="meta.id"),
        C("job_id", "bigint", "Job that ran it (NULL when run by hand)", ucd="meta.id"),
        C("created_at", "timestamptz", "When the run was recorded", ucd="time.creation", nullable=False,
          server_default="now()", principal=True),
    ),
    published=True,
)

TABLES: tuple[TableSpec, ...] = (FORCED_PHOT, VARIABILITY, DIA_SOURCES, DIA_OBJECTS, DIA_TRACKS, FORCED_TARGETS,
                                 TARGET_PHOT, TIMESERIES_RUNS)
