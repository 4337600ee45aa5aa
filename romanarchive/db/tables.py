"""The archive's tables, described once in the column registry.

Data flows one way: a file is stored (``files``), registered as a product (``products``, with its exposure in
``exposures`` for L1/L2), processed by durable ``jobs`` whose outputs carry ``provenance``. Calibration reference
files are stored files indexed by type, detector, filter and date in ``reference_files``.
"""

from __future__ import annotations

import sqlalchemy as sa

from romanarchive.db import (
    tables_catalog,
    tables_epsf,
    tables_l2cat,
    tables_level5,
    tables_timeseries,
    tables_xmatch,
)
from romanarchive.db.rad_columns import RAD_EXPOSURE_COLUMNS
from romanarchive.db.registry import ColumnSpec, TableSpec, build_metadata

C = ColumnSpec

_CREATED = C("created_at", "timestamptz", "When the row was written", ucd="time.creation", nullable=False,
             server_default="now()")


def _footprint(prefix: str) -> tuple[ColumnSpec, ...]:
    return (
        C("s_region", "spoly", f"Sky footprint of the {prefix} (pgsphere polygon, ICRS)", unit="deg",
          ucd="pos.outline;obs.field", indexed=True, principal=True),
        C("s_ra", "double", f"Right ascension of the {prefix} centre (ICRS)", unit="deg", ucd="pos.eq.ra;meta.main",
          principal=True),
        C("s_dec", "double", f"Declination of the {prefix} centre (ICRS)", unit="deg", ucd="pos.eq.dec;meta.main",
          principal=True),
        C("hpx", "bigint", f"HEALPix nested index, order 29, of the {prefix} centre", ucd="pos.healpix",
          indexed=True),
    )


FILES = TableSpec(
    "files",
    "One stored object in the object store, addressed by content (sha256).",
    (
        C("file_id", "bigint", "File identifier", ucd="meta.id", primary_key=True),
        C("uri", "text", "Key of the object inside the archive's object store", ucd="meta.ref.uri", nullable=False),
        C("filename", "text", "Original file name", ucd="meta.id;meta.file", nullable=False),
        C("size", "bigint", "Size of the object", unit="byte", ucd="phys.size;meta.file", nullable=False),
        C("sha256", "char(64)", "SHA-256 of the content, hex", ucd="meta.checksum", nullable=False),
        C("media_type", "varchar(64)", "IANA media type", ucd="meta.code.mime", nullable=False),
        _CREATED,
    ),
    unique=(("sha256",), ("uri",)),
)

_EXPOSURE_IDENTITY = (
    "program", "execution_plan", "pass", "segment", "observation", "visit", "visit_file_group",
    "visit_file_sequence", "visit_file_activity", "observation_exposure", "detector",
)

EXPOSURES = TableSpec(
    "exposures",
    "One WFI detector exposure (seeded from rad's WFIExposure archive_catalog annotations).",
    (
        C("exposure_id", "bigint", "Archive exposure identifier", ucd="meta.id;meta.main", primary_key=True),
        *(
            C(**c, nullable=c["name"] not in _EXPOSURE_IDENTITY,  # type: ignore[arg-type]
              principal=c["name"] in ("observation_id", "detector", "optical_element", "exposure_start_time"))
            for c in RAD_EXPOSURE_COLUMNS
        ),
        C("mjd_start", "double", "Exposure start (MJD, UTC)", unit="d", ucd="time.start;obs.exposure", indexed=True,
          principal=True),
        C("mjd_end", "double", "Exposure end (MJD, UTC)", unit="d", ucd="time.end;obs.exposure"),
        *_footprint("exposure"),
        _CREATED,
    ),
    unique=(_EXPOSURE_IDENTITY,),
    published=True,
)

PRODUCTS = TableSpec(
    "products",
    "One archived data product of any level (0-5): raw ramps, calibrated images, mosaics, catalogs and "
    "community products.",
    (
        C("product_id", "bigint", "Product identifier", ucd="meta.id;meta.main", primary_key=True),
        C("level", "smallint", "Roman data level 0-5", ucd="meta.code.class", nullable=False, indexed=True,
          principal=True),
        C("product_type", "varchar(32)", "Kind of product, e.g. wfi_l1, wfi_l2, reference", ucd="meta.code.class",
          nullable=False, principal=True),
        C("release", "varchar(64)", "Data release tag; 'live' until frozen", ucd="meta.version", nullable=False,
          server_default="'live'"),
        C("exposure_id", "bigint", "Exposure this product belongs to (L1/L2)", ucd="meta.id",
          foreign_key="exposures.exposure_id", indexed=True),
        C("file_id", "bigint", "Stored file", ucd="meta.id", foreign_key="files.file_id", nullable=False),
        C("obs_id", "text", "Observation identifier shared by all levels of one exposure", ucd="meta.id",
          principal=True),
        C("filter", "varchar(20)", "Optical element", ucd="instr.filter", principal=True),
        C("detector", "varchar(10)", "WFI detector", ucd="instr.det"),
        C("t_min", "double", "Start time (MJD)", unit="d", ucd="time.start;obs.exposure"),
        C("t_max", "double", "Stop time (MJD)", unit="d", ucd="time.end;obs.exposure"),
        C("t_exptime", "double", "Exposure time", unit="s", ucd="time.duration;obs.exposure"),
        C("em_min", "double", "Bandpass short-wavelength limit", unit="m", ucd="em.wl;stat.min"),
        C("em_max", "double", "Bandpass long-wavelength limit", unit="m", ucd="em.wl;stat.max"),
        C("s_fov", "double", "Diameter of the smallest circle containing the footprint", unit="deg",
          ucd="phys.angSize;instr.fov"),
        C("s_xel1", "bigint", "Pixels along the first axis", ucd="meta.number"),
        C("s_xel2", "bigint", "Pixels along the second axis", ucd="meta.number"),
        *_footprint("product"),
        _CREATED,
    ),
    unique=(("product_type", "exposure_id"),),
    published=True,
)

REFERENCE_FILES = TableSpec(
    "reference_files",
    "Calibration reference files, selected by type, detector, optical element and use-after date.",
    (
        C("ref_id", "bigint", "Reference file identifier", ucd="meta.id", primary_key=True),
        C("file_id", "bigint", "Stored reference file", ucd="meta.id", foreign_key="files.file_id", nullable=False),
        C("reftype", "varchar(32)", "Reference type (dark, flat, gain, ...)", ucd="meta.code", nullable=False,
          indexed=True),
        C("detector", "varchar(10)", "WFI detector", ucd="instr.det", nullable=False),
        C("optical_element", "varchar(20)", "Optical element, or ANY when it does not depend on it",
          ucd="instr.filter", nullable=False),
        C("useafter", "timestamp", "Valid for exposures starting at or after this time (UTC)", ucd="time.start",
          nullable=False),
        C("description", "text", "Description from the file's metadata", ucd="meta.note"),
        _CREATED,
    ),
    unique=(("reftype", "detector", "optical_element", "useafter"),),
)

PROVENANCE = TableSpec(
    "provenance",
    "How a product was made: step, software versions, parameters, inputs, reference files and cost.",
    (
        C("prov_id", "bigint", "Provenance record identifier", ucd="meta.id", primary_key=True),
        C("product_id", "bigint", "Output product", ucd="meta.id", foreign_key="products.product_id",
          nullable=False, indexed=True),
        C("step", "varchar(64)", "Processing step", ucd="meta.code", nullable=False),
        C("software", "jsonb", "Package versions used", ucd="meta.software", nullable=False),
        C("parameters", "jsonb", "Step configuration", ucd="meta.note", nullable=False),
        C("inputs", "jsonb", "Input products (ids and file names)", ucd="meta.id", nullable=False),
        C("reference_files", "jsonb", "Reference files by type", ucd="meta.ref", nullable=False),
        C("wall_time_s", "double", "Wall time of the step", unit="s", ucd="time.duration"),
        C("peak_rss_mb", "double", "Peak resident memory of the step", unit="Mbyte", ucd="phys.size"),
        C("host", "text", "Worker that ran it", ucd="meta.id"),
        C("job_id", "bigint", "Job that ran it", ucd="meta.id"),
        _CREATED,
    ),
)

JOBS = TableSpec(
    "jobs",
    "Durable processing jobs, claimed by workers with FOR UPDATE SKIP LOCKED and a lease.",
    (
        C("job_id", "bigint", "Job identifier", ucd="meta.id", primary_key=True),
        C("kind", "varchar(32)", "What the job does, e.g. calibrate", ucd="meta.code", nullable=False),
        C("product_id", "bigint", "Input product (NULL for jobs on no product, e.g. TAP queries)", ucd="meta.id",
          foreign_key="products.product_id"),
        C("target", "varchar(128)", "What a job on no single product works on, e.g. a skycell and filter",
          ucd="meta.id", indexed=True),
        C("params", "jsonb", "Job parameters", ucd="meta.note", nullable=False, server_default="'{}'::jsonb"),
        C("state", "varchar(16)", "queued, running, done or failed", ucd="meta.code.status", nullable=False,
          server_default="'queued'", indexed=True),
        C("attempts", "integer", "Times a worker has claimed it", ucd="meta.number", nullable=False,
          server_default="0"),
        C("max_attempts", "integer", "Claims allowed before the job fails for good", ucd="meta.number",
          nullable=False, server_default="3"),
        C("worker", "text", "Worker holding the lease", ucd="meta.id"),
        C("lease_until", "timestamptz", "Lease expiry; a running job past it may be claimed again", ucd="time.end"),
        C("error", "text", "Last error text", ucd="meta.note"),
        C("output_product_id", "bigint", "Product the job made", ucd="meta.id"),
        C("output_key", "text", "Object-store key the current attempt writes; removed if the attempt dies",
          ucd="meta.ref.uri"),
        C("created_at", "timestamptz", "When the job was queued", ucd="time.creation", nullable=False,
          server_default="now()"),
        C("started_at", "timestamptz", "When the current attempt started", ucd="time.start"),
        C("finished_at", "timestamptz", "When it finished", ucd="time.end"),
    ),
    unique=(("kind", "product_id"),),
)

SETTINGS = TableSpec(
    "archive_settings",
    "Key/value settings the database needs (e.g. the public base URL used by ObsCore access_url).",
    (
        C("key", "varchar(64)", "Setting name", ucd="meta.id", primary_key=True),
        C("value", "text", "Setting value", ucd="meta.note", nullable=False),
    ),
)

UWS_JOBS = TableSpec(
    "uws_jobs",
    "Asynchronous TAP queries (UWS 1.1 jobs); a queued one is run through a 'tap_query' row of jobs.",
    (
        C("job_id", "varchar(32)", "UWS job identifier (random, URL-safe)", ucd="meta.id", primary_key=True),
        C("run_id", "text", "Client-supplied RUNID", ucd="meta.id"),
        C("owner", "text", "Owner of the job (none: the service is anonymous)", ucd="meta.id"),
        C("phase", "varchar(16)", "UWS phase: PENDING, QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED",
          ucd="meta.code.status", nullable=False, server_default="'PENDING'", indexed=True),
        C("parameters", "jsonb", "TAP parameters (lower-case names)", ucd="meta.note", nullable=False),
        C("uploads", "jsonb", "TAP_UPLOAD table name -> object-store key of the uploaded VOTable", ucd="meta.ref",
          nullable=False, server_default="'{}'::jsonb"),
        C("creation_time", "timestamptz", "When the job was created", ucd="time.creation", nullable=False,
          server_default="now()", indexed=True),
        C("start_time", "timestamptz", "When execution started", ucd="time.start"),
        C("end_time", "timestamptz", "When execution ended", ucd="time.end"),
        C("execution_duration", "integer", "Execution time allowed (0: unlimited)", unit="s", ucd="time.duration",
          nullable=False),
        C("destruction", "timestamptz", "When the job and its results are destroyed", ucd="time.end",
          nullable=False, indexed=True),
        C("error_summary", "text", "Why the job failed", ucd="meta.note"),
        C("result_key", "text", "Object-store key of the result", ucd="meta.ref.uri"),
        C("result_media_type", "varchar(64)", "Media type of the result", ucd="meta.code.mime"),
        C("result_rows", "bigint", "Rows in the result", ucd="meta.number"),
        C("overflow", "boolean", "Whether the result was truncated at MAXREC", ucd="meta.code"),
        C("queue_job_id", "bigint", "The jobs row that runs it", ucd="meta.id", indexed=True),
        C("backend_pid", "integer", "PostgreSQL backend running the query (to cancel it on ABORT)", ucd="meta.id"),
    ),
)

CORE_TABLES: tuple[TableSpec, ...] = (
    FILES, EXPOSURES, PRODUCTS, REFERENCE_FILES, PROVENANCE, JOBS, SETTINGS, UWS_JOBS,
)

# Each domain describes its tables in its own module of this package; all of them form one MetaData (Alembic's
# target), so foreign keys may cross modules.
ALL_TABLES: tuple[TableSpec, ...] = (
    CORE_TABLES + tables_catalog.TABLES + tables_timeseries.TABLES + tables_xmatch.TABLES + tables_level5.TABLES
    + tables_epsf.TABLES + tables_l2cat.TABLES
)

metadata: sa.MetaData = build_metadata(ALL_TABLES)
files = metadata.tables["files"]
exposures = metadata.tables["exposures"]
products = metadata.tables["products"]
reference_files = metadata.tables["reference_files"]
provenance = metadata.tables["provenance"]
jobs = metadata.tables["jobs"]
archive_settings = metadata.tables["archive_settings"]
uws_jobs = metadata.tables["uws_jobs"]

EXPOSURE_IDENTITY = _EXPOSURE_IDENTITY
