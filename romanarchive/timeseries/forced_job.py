"""Forced-photometry jobs: catalog objects x L2 images -> ``forced_phot`` rows -> ``variability`` indices.

Work is organised per L2 image (what one job or one ingest adds):

1. the live ``objects`` inside the image's footprint (all of them by default: an AGN or a supernova host is
   extended, and a misclassified star must still get a light curve) — one spatial query, ``objects.pos @ s_region``
   (GiST on ``pos``) — kept only where the object lies in the *core* of the skycell that catalogued it
   (:func:`romanarchive.sky.skycells.in_home`): skycells overlap by a margin, so an object near a border can be
   catalogued by two cells, and each physical object must be measured once;
2. the step (:func:`romanarchive.timeseries.forced_step.measure_image`): pixel positions, forced photometry,
   nJy and mas; PSF fluxes are kept for point-like objects only (a PSF fit is not the flux of a galaxy), aperture
   fluxes for all, and each object's variability indices use the one it has;
3. replace the image's rows (binary COPY through a staging table) and recompute the indices of *those sources
   only* — the sources measured now and those whose old rows of this image went away (objects that left the live
   catalog when a skycell's catalog was rebuilt: :func:`queue_for_skycell` re-opens the jobs of the L2s over the
   cell, and index recomputation keeps live objects only, so vanished sources lose their rows and indices).

The same job measures the image's forced-photometry targets (:mod:`romanarchive.timeseries.targets`: positions an
operator or a Level 5 catalog asked for, as point sources, with the objects' registration) and replaces its
``target_phot`` rows in the transaction of its ``forced_phot`` rows.

Each run writes a ``timeseries_runs`` row (:mod:`romanarchive.timeseries.runs`) in the transaction of its rows,
whose ``run_id`` every ``forced_phot``, ``target_phot`` and ``variability`` row carries.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.bulk import copy_arrays
from romanarchive.ingest import epsf_library
from romanarchive.ingest.query import newest_reference
from romanarchive.jobs import queue
from romanarchive.sky.footprint import spoly_literal
from romanarchive.sky.skycells import in_home, skycell
from romanarchive.timeseries import targets
from romanarchive.timeseries.dia_job import queue_dia
from romanarchive.timeseries.forced_step import Epsf, ForcedPhotConfig, image_psf, measure_image, read_epsf, read_l2
from romanarchive.timeseries.indices import IndexParams, variability_indices
from romanarchive.timeseries.runs import STEP_FORCED, STEP_INDICES, RunRecorder

log = logging.getLogger(__name__)

KIND = "forced_phot"


@dataclass
class ForcedOutcome:
    """Work done by one run (what the incremental test counts)."""

    products: list[int] = field(default_factory=list)
    rows_written: int = 0
    target_rows: int = 0
    sources_recomputed: int = 0
    wall_time_s: float = 0.0


_OBJECTS_IN = sa.text(
    """
    SELECT o.source_id, o.ra, o.dec, o.skycell, o.is_extended IS TRUE FROM objects o
    JOIN products p ON o.pos @ p.s_region
    WHERE p.product_id = :pid AND o.release = :release AND (o.is_extended IS FALSE OR NOT :pl)
    ORDER BY o.source_id
    """
)
_PRODUCT = sa.text(
    """
    SELECT p.product_id, p.filter, p.detector, p.t_min, p.t_max, p.level, p.product_type, f.uri, f.filename
    FROM products p JOIN files f ON f.file_id = p.file_id WHERE p.product_id = :pid
    """
)
#: ``forced_phot`` columns of one image's measurements (the staging table's and :func:`replace_rows`'s ``columns``).
STAGE_COLUMNS = ("source_id", "product_id", "mjd", "flux", "flux_err", "flux_ap", "flux_ap_err", "x", "y", "dra",
                 "ddec", "shift_err", "shift_snr", "flux_shifted", "flux_shifted_err", "flags")
_NULLABLE = {"flux", "flux_err", "flux_ap", "flux_ap_err", "dra", "ddec", "shift_err", "shift_snr", "flux_shifted",
             "flux_shifted_err"}


def l2_products(conn: sa.Connection) -> list[int]:
    """Live L2 products that cover at least one live catalog object or forced-photometry target."""
    return list(conn.execute(sa.text(
        "SELECT p.product_id FROM products p WHERE p.level = 2 AND p.product_type = 'wfi_l2' AND p.release = 'live' "
        "AND (EXISTS (SELECT 1 FROM objects o WHERE o.release = 'live' AND o.pos @ p.s_region) "
        f"OR {targets.COVERS_TARGET}) ORDER BY p.product_id")).scalars())


def write_rows(conn: sa.Connection, product_id: int, filter_name: str, columns: dict[str, np.ndarray],
               run_id: int = 0) -> int:
    """Replace one image's rows with ``columns``; returns the rows written (see :func:`replace_rows`)."""
    return replace_rows(conn, product_id, filter_name, columns, run_id)[0]


def replace_rows(conn: sa.Connection, product_id: int, filter_name: str, columns: dict[str, np.ndarray],
                 run_id: int = 0) -> tuple[int, np.ndarray]:
    """Replace one image's rows with ``columns`` (binary COPY into a staging table, then one INSERT ... SELECT).

    Returns
    -------
    n, removed
        Rows written; source ids whose old rows of this image were deleted and not written again (objects that
        left the live catalog, or that the image no longer measures).
    """
    old = np.asarray(conn.execute(sa.text("DELETE FROM forced_phot WHERE product_id = :p RETURNING source_id"),
                                  {"p": product_id}).scalars().all(), np.int64)
    n = len(columns["source_id"])
    removed = np.setdiff1d(old, np.asarray(columns["source_id"], np.int64))
    if n == 0:
        return 0, removed
    conn.execute(sa.text(
        "CREATE TEMP TABLE IF NOT EXISTS _fp_stage ON COMMIT DROP AS "
        f"SELECT {', '.join(STAGE_COLUMNS)} FROM forced_phot WITH NO DATA"))
    conn.execute(sa.text("TRUNCATE _fp_stage"))
    copy_arrays(conn.connection.driver_connection, "_fp_stage",  # type: ignore[arg-type]
                {c: columns[c] for c in STAGE_COLUMNS})
    sel = ", ".join(f"NULLIF({c}, 'NaN')" if c in _NULLABLE else c for c in STAGE_COLUMNS)
    conn.execute(sa.text(f"INSERT INTO forced_phot ({', '.join(STAGE_COLUMNS)}, filter, run_id) SELECT {sel}, :f, "
                         ":r FROM _fp_stage ORDER BY source_id"), {"f": filter_name, "r": run_id})
    return n, removed


def recompute_indices(conn: sa.Connection, source_ids: np.ndarray, config: ForcedPhotConfig | None = None,
                      run_id: int = 0) -> int:
    """Recompute the ``variability`` rows of these sources (all filters) from their time series; returns sources.

    Only objects still in the configured catalog release get indices: the rows of sources that left it are
    dropped (their remaining ``forced_phot`` rows go when the jobs of the images that hold them run again).
    """
    cfg = config or ForcedPhotConfig()
    ids = np.unique(np.asarray(source_ids, np.int64))
    if len(ids) == 0:
        return 0
    # Point-like objects: the PSF flux; extended ones (no PSF flux): the aperture flux.
    rows = conn.execute(sa.text(
        "SELECT f.source_id, f.filter, f.mjd, CASE WHEN o.is_extended THEN f.flux_ap ELSE f.flux END, "
        "CASE WHEN o.is_extended THEN f.flux_ap_err ELSE f.flux_err END, f.flags, f.dra, f.ddec, f.shift_err "
        "FROM forced_phot f JOIN objects o ON o.source_id = f.source_id AND o.release = :release "
        "WHERE f.source_id = ANY(:ids)"),
        {"ids": ids.tolist(), "release": cfg.release}).all()
    conn.execute(sa.text("DELETE FROM variability WHERE source_id = ANY(:ids)"), {"ids": ids.tolist()})
    if not rows:
        return len(ids)
    cols = list(zip(*rows, strict=True))

    def arr(i: int) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in cols[i]], dtype=float)

    out = variability_indices(np.asarray(cols[0], np.int64), np.asarray(cols[1]), arr(2), arr(3), arr(4),
                              np.asarray(cols[5], np.int64), arr(6), arr(7), arr(8),
                              IndexParams(moving_dchi2=cfg.moving_dchi2))
    names = [k for k in out if k != "filter"] + ["filter", "run_id"]
    recs = []
    for i in range(len(out["source_id"])):
        rec: dict[str, Any] = {"run_id": run_id}
        for k in names[:-1]:
            v = out[k][i]
            rec[k] = None if isinstance(v, float) and not np.isfinite(v) else (v.item() if hasattr(v, "item") else v)
        recs.append(rec)
    conn.execute(sa.text(f"INSERT INTO variability ({', '.join(names)}) VALUES "
                         f"({', '.join(':' + k for k in names)})"), recs)
    return len(ids)


_EPSF: dict[str, Epsf] = {}


def image_epsf(archive: Archive, filter_name: str, detector: str | None, centre: tuple[float, float] | None = None,
               mjd: float | None = None, use_library: bool = True, library_min_stars: int = 0) -> Epsf | None:
    """The ePSF forced photometry fits on an image: the library's, else the ``epsf`` reference file's.

    With ``use_library``, a ``centre`` and a detector: the empirical PSF library's ePSF of the detector and filter at
    that detector pixel (bilinear between its grid points) in the time window nearest ``mjd``
    (:func:`romanarchive.ingest.epsf_library.select`), among library products built from at least
    ``library_min_stars`` star images per ePSF; its ``filename`` starts with ``library:``. Otherwise the
    newest ``epsf`` reference file of the image's filter (its detector's first), read once per process.
    """
    if use_library and centre is not None and detector:
        sel = epsf_library.select(archive, detector, filter_name, centre[0], centre[1], mjd,
                                  min_stars=library_min_stars)
        if sel is not None:
            return Epsf(sel.stamp[None], np.array([sel.x]), np.array([sel.y]), sel.oversample,
                        f"library:{sel.label}")
    with archive.engine.connect() as conn:
        found = newest_reference(conn, "epsf", filter_name, [detector] if detector else [])
    if found is None:
        return None
    uri, filename = found
    if uri not in _EPSF:
        with tempfile.TemporaryDirectory(prefix="epsf-") as tmp:
            _EPSF[uri] = read_epsf(archive.store.local_file(uri, Path(tmp) / filename))
    return _EPSF[uri]


@dataclass
class _Measured:
    """One L2 product's rows: ``forced_phot`` (staging columns) and ``target_phot``, with the image's filter and the
    ePSF file fitted."""

    objects: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    filter: str
    epsf_file: str | None


def _measure_product(archive: Archive, prod: sa.RowMapping, objs: Sequence[sa.Row], tgts: targets.TargetsIn,
                     cfg: ForcedPhotConfig) -> _Measured:
    """Measure one L2 product's objects, then its targets with the objects' registration (one read of the image)."""
    product_id = int(prod["product_id"])
    no_objects = {c: np.empty(0) for c in STAGE_COLUMNS}
    if not objs and not len(tgts):
        return _Measured(no_objects, targets.empty_columns(), str(prod["filter"] or ""), None)
    mjd = 0.5 * (float(prod["t_min"]) + float(prod["t_max"] if prod["t_max"] is not None else prod["t_min"]))
    with tempfile.TemporaryDirectory(prefix="forced-") as tmp:
        img = read_l2(archive.store.local_file(prod["uri"], Path(tmp) / prod["filename"]))
    ny, nx = img.data.shape
    epsf = image_epsf(archive, img.filter, prod["detector"], ((nx - 1) / 2, (ny - 1) / 2), mjd,
                      cfg.use_library, cfg.library_min_stars) if cfg.use_epsf else None
    grid = image_psf(img, cfg, epsf)
    epsf_file = epsf.filename if epsf is not None else None
    if not objs:  # no catalog to register the image to: targets at their given positions
        return _Measured(no_objects, targets.measure_targets(img, grid, tgts, cfg, (0.0, 0.0), mjd), img.filter,
                         epsf_file)
    sid = np.array([r[0] for r in objs], np.int64)
    ra = np.array([r[1] for r in objs], float)
    dec = np.array([r[2] for r in objs], float)
    inside, res, extra = measure_image(img, ra, dec, cfg, grid)
    n = int(inside.sum())
    extended = np.array([bool(r[4]) for r in objs], bool)[inside]
    for name in ("flux", "flux_err", "flux_shifted", "flux_shifted_err"):
        getattr(res, name)[extended] = np.nan  # stored NULL: a PSF fit is not a galaxy's flux
    cols = {
        "source_id": sid[inside], "product_id": np.full(n, product_id, np.int64), "mjd": np.full(n, mjd),
        "flux": res.flux, "flux_err": res.flux_err, "flux_ap": res.flux_ap, "flux_ap_err": res.flux_ap_err,
        "x": extra["x"].astype(np.float32), "y": extra["y"].astype(np.float32),
        "dra": extra["dra"].astype(np.float32), "ddec": extra["ddec"].astype(np.float32),
        "shift_err": extra["shift_err"].astype(np.float32), "shift_snr": res.shift_snr.astype(np.float32),
        "flux_shifted": res.flux_shifted, "flux_shifted_err": res.flux_shifted_err,
        "flags": res.flags.astype(np.int16),
    }
    return _Measured(cols, targets.measure_targets(img, grid, tgts, cfg, res.offset, mjd), img.filter, epsf_file)


def run_product(archive: Archive, product_id: int, config: ForcedPhotConfig | None = None,
                job_id: int | None = None, recompute: bool = True) -> ForcedOutcome:
    """Measure one L2 image's catalog objects and targets, write its rows and (``recompute``) the sources' indices.

    Raises
    ------
    ValueError
        The product does not exist or is not an L2 image.
    """
    cfg = config or ForcedPhotConfig()
    t0 = time.perf_counter()
    with archive.engine.connect() as conn:
        prod = conn.execute(_PRODUCT, {"pid": product_id}).mappings().first()
        if prod is None:
            raise ValueError(f"product {product_id} does not exist")
        if prod["level"] != 2:
            raise ValueError(f"product {product_id} is a level-{prod['level']} {prod['product_type']}, not an L2 image")
        objs = conn.execute(_OBJECTS_IN, {"pid": product_id, "release": cfg.release,
                                          "pl": cfg.point_like_only}).all()
        tgts = targets.targets_in(conn, product_id)
    outcome = ForcedOutcome(products=[product_id])
    if objs and cfg.home_core_only:
        home = in_home(np.array([r[1] for r in objs], float), np.array([r[2] for r in objs], float),
                       [r[3] for r in objs])
        objs = [r for r, k in zip(objs, home, strict=True) if k]
    with RunRecorder(STEP_FORCED, f"product:{product_id}", cfg.model_dump(), job_id) as rec:
        rec.inputs = {"products": [{"product_id": product_id, "filename": prod["filename"]}],
                      "catalog_release": cfg.release, "n_objects": len(objs), "n_targets": len(tgts)}
        m = _measure_product(archive, prod, objs, tgts, cfg)
        cols = m.objects
        rec.inputs["epsf"] = m.epsf_file
        rec.inputs["epsf_source"] = ("model" if m.epsf_file is None else
                                     "library" if m.epsf_file.startswith("library:") else "reference")
        with archive.engine.begin() as conn:
            # Serialise index updates of overlapping images (two jobs must not interleave delete/insert per source).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('variability'))"))
            run_id = rec.record(conn, len(cols["source_id"]) + len(m.targets["target_id"]))
            outcome.rows_written, removed = replace_rows(conn, product_id, m.filter, cols, run_id)
            outcome.target_rows = targets.replace_target_rows(conn, product_id, m.filter, m.targets, run_id)
            if recompute:
                outcome.sources_recomputed = recompute_indices(
                    conn, np.concatenate([np.asarray(cols["source_id"], np.int64), removed]), cfg, run_id)
            if job_id is not None:
                queue.mark_done(conn, job_id, None)
    outcome.wall_time_s = time.perf_counter() - t0
    log.info("forced photometry of product %s: %d rows, %d target rows, %d sources recomputed in %.2f s", product_id,
             outcome.rows_written, outcome.target_rows, outcome.sources_recomputed, outcome.wall_time_s)
    return outcome


def run_forced_phot(archive: Archive, job: queue.Job) -> int:
    """Job handler (kind ``forced_phot``): one L2 product; returns the rows written.

    ``job.params`` may override :class:`ForcedPhotConfig` fields (e.g. ``{"point_like_only": false}``).
    """
    config = ForcedPhotConfig(**(job.params or {}))
    return run_product(archive, int(job.product_id), config, job_id=job.job_id).rows_written


def queue_new_l2(conn: sa.Connection, product_ids: list[int]) -> None:
    """Registration hook for new L2 images (inside the registering transaction).

    Queues a ``forced_phot`` job for each image that covers live catalog objects or forced-photometry targets, and a
    ``dia`` job for each skycell + filter it touches when earlier-epoch images of that filter overlap it (a new epoch
    to difference).
    """
    if not product_ids:
        return
    covering = conn.execute(sa.text(
        "SELECT p.product_id FROM products p WHERE p.product_id = ANY(:ids) AND (EXISTS ("
        f"SELECT 1 FROM objects o WHERE o.release = 'live' AND o.pos @ p.s_region) OR {targets.COVERS_TARGET})"),
        {"ids": product_ids}).scalars()
    queue.enqueue(conn, KIND, sorted(covering))
    earlier = conn.execute(sa.text(
        "SELECT p.product_id FROM products p WHERE p.product_id = ANY(:ids) AND EXISTS ("
        "SELECT 1 FROM products q WHERE q.level = 2 AND q.release = 'live' AND q.filter = p.filter "
        "AND q.t_max < p.t_min - 0.5 AND q.s_region && p.s_region)"), {"ids": product_ids}).scalars()
    for pid in sorted(earlier):
        queue_dia(conn, pid)


def requeue_forced(conn: sa.Connection, product_ids: list[int]) -> int:
    """(Re-)queue forced photometry of these L2s that cover live catalog objects or targets; returns the jobs."""
    if not product_ids:
        return 0
    covering = conn.execute(sa.text(
        "SELECT p.product_id FROM products p WHERE p.product_id = ANY(:ids) AND (EXISTS ("
        f"SELECT 1 FROM objects o WHERE o.release = 'live' AND o.pos @ p.s_region) OR {targets.COVERS_TARGET}) "
        "ORDER BY p.product_id"), {"ids": product_ids}).scalars().all()
    return queue.requeue(conn, KIND, list(covering))


def queue_for_skycell(conn: sa.Connection, cell: str) -> int:
    """Catalog hook: (re-)queue forced photometry of every live L2 that overlaps the skycell.

    Runs in the catalog's transaction, so light curves start (or are re-measured against the new catalog) as soon
    as a skycell's catalog changes. Every L2 over the cell is re-opened, not only those that cover its new objects:
    an L2 whose objects all left the catalog must still run to drop their rows. Returns the number of jobs queued
    or re-opened.
    """
    pids = conn.execute(sa.text(
        "SELECT p.product_id FROM products p WHERE p.level = 2 AND p.release = 'live' "
        "AND p.s_region && CAST(:poly AS spoly) ORDER BY p.product_id"),
        {"poly": spoly_literal(skycell(cell).corners())}).scalars().all()
    return queue.requeue(conn, KIND, list(pids))


def run_all(archive: Archive, config: ForcedPhotConfig | None = None, progress: bool = False) -> ForcedOutcome:
    """Measure every live L2 image that covers catalog objects or targets (a full recompute)."""
    from tqdm import tqdm

    with archive.engine.connect() as conn:
        pids = l2_products(conn)
    total = ForcedOutcome()
    t0 = time.perf_counter()
    for pid in tqdm(pids, desc="forced photometry", unit="image", disable=not progress):
        out = run_product(archive, pid, config, recompute=False)
        total.products.append(pid)
        total.rows_written += out.rows_written
        total.target_rows += out.target_rows
    # Indices once per source at the end, not once per image.
    cfg = config or ForcedPhotConfig()
    with RunRecorder(STEP_INDICES, "all", cfg.model_dump()) as rec, archive.engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('variability'))"))
        # Indices of objects that left the catalog go (recompute_indices only rewrites the sources it is given).
        conn.execute(sa.text("DELETE FROM variability v WHERE NOT EXISTS (SELECT 1 FROM objects o "
                             "WHERE o.source_id = v.source_id AND o.release = :r)"), {"r": cfg.release})
        ids = np.asarray(conn.execute(sa.text("SELECT DISTINCT source_id FROM forced_phot")).scalars().all(),
                         np.int64)
        rec.inputs = {"products": sorted(total.products), "catalog_release": cfg.release, "n_sources": len(ids)}
        run_id = rec.record(conn, len(ids))
        total.sources_recomputed = recompute_indices(conn, ids, cfg, run_id)
    total.wall_time_s = time.perf_counter() - t0
    return total
