"""The forced-photometry step: catalog objects x L2 images -> ``forced_phot`` rows -> ``variability`` indices.

Work is organised per L2 image (what one job or one ingest adds):

1. the live, point-like ``objects`` inside the image's footprint — one spatial query, ``objects.pos @ s_region``
   (GiST on ``pos``) — kept only where the object lies in the *core* of the skycell that catalogued it
   (:func:`in_home_core`): skycells overlap by a margin, so an object near a border can be catalogued by two cells,
   and each physical object must be measured once;
2. their pixel positions from the image's gWCS (one vectorised inverse transform);
3. :func:`romanarchive.timeseries.photometry.forced_photometry` on all of them at once;
4. corrections to physical units: DN/s -> nJy with the image's ``meta.photometry`` (conversion_megajanskys x
   pixel area x 1e15; images already in MJy/sr use the pixel area only). PSF fluxes are total fluxes (the PSF is
   normalised to its total); aperture fluxes carry the PSF's aperture correction. Centroid shifts become sky
   offsets (mas) through the same gWCS;
5. replace the image's rows (binary COPY through a staging table) and recompute the indices of *those sources
   only* — the sources measured now and those whose old rows of this image went away (objects that left the live
   catalog when a skycell's catalog was rebuilt: :func:`queue_for_skycell` re-opens the jobs of the L2s over the
   cell, and index recomputation keeps live objects only, so vanished sources lose their rows and indices).

Each run writes a ``timeseries_runs`` row (:mod:`romanarchive.timeseries.runs`) in the transaction of its rows,
whose ``run_id`` every ``forced_phot`` and ``variability`` row carries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import sqlalchemy as sa

from romanarchive.db.bulk import copy_arrays
from romanarchive.db.tables_catalog import LIVE
from romanarchive.timeseries.indices import IndexParams, variability_indices
from romanarchive.timeseries.photometry import ForcedParams, ForcedResult, forced_photometry
from romanarchive.timeseries.psf import psf_grid
from romanarchive.timeseries.runs import STEP_FORCED, STEP_INDICES, RunRecorder

log = logging.getLogger(__name__)

KIND = "forced_phot"
NJY_PER_MJY = 1e15


class ForcedPhotConfig(pydantic.BaseModel):
    """Configuration of the forced-photometry step."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    release: str = LIVE
    point_like_only: bool = True
    home_core_only: bool = pydantic.Field(
        default=True, description="Measure only objects inside the core of the skycell that catalogued them")
    stamp_size: int = pydantic.Field(default=11, ge=5, le=31, description="PSF-fit stamp side, pixels (odd)")
    n_phase: int = pydantic.Field(default=8, ge=1, le=32, description="Tabulated sub-pixel PSF phases per axis")
    ap_radius: float = pydantic.Field(default=2.5, gt=0, description="Aperture radius, pixels")
    shift_snr: float = pydantic.Field(default=5.0, gt=0)
    centroid_min_snr: float = pydantic.Field(default=5.0, gt=0)
    shift_floor_pix: float = pydantic.Field(default=0.03, ge=0)
    moving_dchi2: float = pydantic.Field(default=25.0, gt=0)

    def params(self) -> ForcedParams:
        """Parameters of the pure photometry function."""
        return ForcedParams(shift_snr=self.shift_snr, centroid_min_snr=self.centroid_min_snr,
                            shift_floor_pix=self.shift_floor_pix)


@dataclass
class ImageArrays:
    """What forced photometry needs from one L2 image."""

    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray | None
    wcs: Any
    filter: str
    to_njy: float
    sca: int = 1


@dataclass
class ForcedOutcome:
    """Work done by one run (what the incremental test counts)."""

    products: list[int] = field(default_factory=list)
    rows_written: int = 0
    sources_recomputed: int = 0
    wall_time_s: float = 0.0


def read_l2(path: str | Path | Any) -> ImageArrays:
    """Read an L2 ``ImageModel`` (path or open model) into arrays and its DN/s (or MJy/sr) -> nJy factor."""
    import roman_datamodels.datamodels as rdm

    model = rdm.open(path) if isinstance(path, (str, Path)) else path
    meta = model.meta
    area = float(meta.photometry.pixel_area)
    in_mjy = str(getattr(meta.cal_step, "flux", "")) == "COMPLETE"
    conv = 1.0 if in_mjy else float(meta.photometry.conversion_megajanskys)
    det = str(meta.instrument.detector)
    sca = int(det[3:]) if det.upper().startswith("WFI") and det[3:].isdigit() else 1
    return ImageArrays(np.asarray(model.data, dtype=np.float32), np.asarray(model.err, dtype=np.float32),
                       np.asarray(model.dq) if "dq" in model else None, meta.wcs,
                       str(meta.instrument.optical_element).upper(), conv * area * NJY_PER_MJY, sca)


def measure_image(img: ImageArrays, ra: np.ndarray, dec: np.ndarray,
                  config: ForcedPhotConfig | None = None) -> tuple[np.ndarray, ForcedResult, dict[str, np.ndarray]]:
    """Forced photometry of sky positions on one image, in nJy and mas.

    Returns
    -------
    inside, result, extra
        Mask of the positions that fall on the image; the photometry of those (fluxes in nJy; ``offset`` is the
        catalog-to-image registration shift in pixels); ``x``, ``y`` (catalog positions) and the centroid shifts
        ``dra``, ``ddec``, ``shift_err`` (mas, from the registered position) of those.
    """
    cfg = config or ForcedPhotConfig()
    x, y = img.wcs.invert(np.asarray(ra, float), np.asarray(dec, float), with_bounding_box=False)
    x, y = np.asarray(x, float), np.asarray(y, float)
    ny, nx = img.data.shape
    inside = np.isfinite(x) & np.isfinite(y) & (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)
    x, y = x[inside], y[inside]
    grid = psf_grid(img.filter, cfg.n_phase, cfg.stamp_size, cfg.ap_radius, img.sca)
    res = forced_photometry(img.data, img.err, img.dq, x, y, grid, cfg.params())
    for name in ("flux", "flux_err", "flux_ap", "flux_ap_err", "flux_shifted", "flux_shifted_err"):
        setattr(res, name, getattr(res, name) * img.to_njy)
    dra = np.full(len(x), np.nan)
    ddec = np.full(len(x), np.nan)
    shift_err = np.full(len(x), np.nan)
    k = np.flatnonzero(np.isfinite(res.dx))
    if len(k):
        # Shifts are relative to the registered position (catalog position + the image's common offset).
        xr, yr = x[k] + res.offset[0], y[k] + res.offset[1]
        ra1, dec1 = (np.asarray(v) for v in img.wcs(xr, yr, with_bounding_box=False))
        ra2, dec2 = (np.asarray(v) for v in img.wcs(xr + res.dx[k], yr + res.dy[k], with_bounding_box=False))
        dra[k] = ((ra2 - ra1 + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec1)) * 3.6e6
        ddec[k] = (dec2 - dec1) * 3.6e6
        # Local pixel scale (mas/pix) from the shift itself, or the nominal one for tiny shifts.
        shift = np.hypot(res.dx[k], res.dy[k])
        scale = np.where(shift > 1e-3, np.hypot(dra[k], ddec[k]) / np.maximum(shift, 1e-12), 110.0)
        shift_err[k] = res.shift_err[k] * scale
    return inside, res, {"x": x, "y": y, "dra": dra, "ddec": ddec, "shift_err": shift_err}


# ----------------------------------------------------------------------------------------------- archive wiring

_OBJECTS_IN = sa.text(
    """
    SELECT o.source_id, o.ra, o.dec, o.skycell FROM objects o JOIN products p ON o.pos @ p.s_region
    WHERE p.product_id = :pid AND o.release = :release AND (o.point_like OR NOT :pl)
    ORDER BY o.source_id
    """
)
_PRODUCT = sa.text(
    """
    SELECT p.product_id, p.filter, p.t_min, p.t_max, p.level, p.product_type, f.uri, f.filename
    FROM products p JOIN files f ON f.file_id = p.file_id WHERE p.product_id = :pid
    """
)
_STAGE_COLS = ("source_id", "product_id", "mjd", "flux", "flux_err", "flux_ap", "flux_ap_err", "x", "y", "dra",
               "ddec", "shift_err", "shift_snr", "flux_shifted", "flux_shifted_err", "flags")
_NULLABLE = {"flux", "flux_err", "flux_ap", "flux_ap_err", "dra", "ddec", "shift_err", "shift_snr", "flux_shifted",
             "flux_shifted_err"}


def l2_products(conn: sa.Connection) -> list[int]:
    """Live L2 products that cover at least one live catalog object."""
    return list(conn.execute(sa.text(
        "SELECT DISTINCT p.product_id FROM products p JOIN objects o ON o.pos @ p.s_region "
        "WHERE p.level = 2 AND p.product_type = 'wfi_l2' AND p.release = 'live' AND o.release = 'live' "
        "ORDER BY p.product_id")).scalars())


def in_home_core(ra: np.ndarray, dec: np.ndarray, cells: Any) -> np.ndarray:
    """Whether each object's skycell is the home skycell of its position (the cell whose core contains it).

    Vectorised form of :func:`romanarchive.sky.skycells.home_skycells` (same projection, per HEALPix region).
    Objects whose ``cells`` entry is not a skycell name (NULL, ``product:<id>``) are kept.
    """
    import astropy.units as u
    import cdshealpix.nested as hp

    from romanarchive.sky import skycells as sc

    ra_a = np.atleast_1d(np.asarray(ra, float)) % 360.0
    dec_a = np.atleast_1d(np.asarray(dec, float))
    names = np.asarray(cells, dtype=object)
    keep = np.ones(len(ra_a), bool)
    if not len(ra_a):
        return keep
    parsed = {n: sc._NAME.match(n.strip()) if isinstance(n, str) else None for n in set(names.tolist())}
    region = np.asarray(hp.lonlat_to_healpix(ra_a * u.deg, dec_a * u.deg, sc.REGION_ORDER), np.int64)
    hi = np.zeros(len(ra_a), np.int64)
    hj = np.zeros(len(ra_a), np.int64)
    for r in np.unique(region):
        sel = region == r
        x, y, _ = sc._project(*sc._region_centre(int(r)), ra_a[sel], dec_a[sel])
        hi[sel] = np.floor((x + 0.5) / sc.CORE)
        hj[sel] = np.floor((y + 0.5) / sc.CORE)
    for name, m in parsed.items():
        if m is None:
            continue
        r, i, j = (int(g) for g in m.groups())
        sel = names == name
        keep[sel] = (region[sel] == r) & (hi[sel] == i) & (hj[sel] == j)
    return keep


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
        f"SELECT {', '.join(_STAGE_COLS)} FROM forced_phot WITH NO DATA"))
    conn.execute(sa.text("TRUNCATE _fp_stage"))
    copy_arrays(conn.connection.driver_connection, "_fp_stage",  # type: ignore[arg-type]
                {c: columns[c] for c in _STAGE_COLS})
    sel = ", ".join(f"NULLIF({c}, 'NaN')" if c in _NULLABLE else c for c in _STAGE_COLS)
    conn.execute(sa.text(f"INSERT INTO forced_phot ({', '.join(_STAGE_COLS)}, filter, run_id) SELECT {sel}, :f, "
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
    rows = conn.execute(sa.text(
        "SELECT f.source_id, f.filter, f.mjd, f.flux, f.flux_err, f.flags, f.dra, f.ddec, f.shift_err "
        "FROM forced_phot f WHERE f.source_id = ANY(:ids) AND EXISTS (SELECT 1 FROM objects o "
        "WHERE o.source_id = f.source_id AND o.release = :release)"),
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


def _local_file(archive: Any, uri: str, filename: str, folder: Path) -> Path:
    local = archive.store.local_path(uri)
    return local if local is not None else archive.store.get_file(uri, folder / filename)


def _measure_product(archive: Any, prod: Any, objs: list[Any],
                     cfg: ForcedPhotConfig) -> tuple[dict[str, np.ndarray], str]:
    """Rows (staging columns) of one L2 product's objects and the image's filter."""
    import tempfile

    product_id = int(prod["product_id"])
    if not objs:
        return {c: np.empty(0) for c in _STAGE_COLS}, str(prod["filter"] or "")
    sid = np.array([r[0] for r in objs], np.int64)
    ra = np.array([r[1] for r in objs], float)
    dec = np.array([r[2] for r in objs], float)
    with tempfile.TemporaryDirectory(prefix="forced-") as tmp:
        img = read_l2(_local_file(archive, prod["uri"], prod["filename"], Path(tmp)))
    inside, res, extra = measure_image(img, ra, dec, cfg)
    n = int(inside.sum())
    mjd = 0.5 * (float(prod["t_min"]) + float(prod["t_max"] if prod["t_max"] is not None else prod["t_min"]))
    cols = {
        "source_id": sid[inside], "product_id": np.full(n, product_id, np.int64), "mjd": np.full(n, mjd),
        "flux": res.flux, "flux_err": res.flux_err, "flux_ap": res.flux_ap, "flux_ap_err": res.flux_ap_err,
        "x": extra["x"].astype(np.float32), "y": extra["y"].astype(np.float32),
        "dra": extra["dra"].astype(np.float32), "ddec": extra["ddec"].astype(np.float32),
        "shift_err": extra["shift_err"].astype(np.float32), "shift_snr": res.shift_snr.astype(np.float32),
        "flux_shifted": res.flux_shifted, "flux_shifted_err": res.flux_shifted_err,
        "flags": res.flags.astype(np.int16),
    }
    return cols, img.filter


def run_product(archive: Any, product_id: int, config: ForcedPhotConfig | None = None,
                job_id: int | None = None, recompute: bool = True) -> ForcedOutcome:
    """Measure one L2 image's catalog objects, write its rows and (``recompute``) those sources' indices.

    Raises
    ------
    ValueError
        The product does not exist or is not an L2 image.
    """
    from romanarchive.jobs import queue

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
    outcome = ForcedOutcome(products=[product_id])
    if objs and cfg.home_core_only:
        home = in_home_core(np.array([r[1] for r in objs], float), np.array([r[2] for r in objs], float),
                            [r[3] for r in objs])
        objs = [r for r, k in zip(objs, home, strict=True) if k]
    with RunRecorder(STEP_FORCED, f"product:{product_id}", cfg.model_dump(), job_id) as rec:
        rec.inputs = {"products": [{"product_id": product_id, "filename": prod["filename"]}],
                      "catalog_release": cfg.release, "n_objects": len(objs)}
        cols, filter_name = _measure_product(archive, prod, objs, cfg)
        with archive.engine.begin() as conn:
            # Serialise index updates of overlapping images (two jobs must not interleave delete/insert per source).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('variability'))"))
            run_id = rec.record(conn, len(cols["source_id"]))
            outcome.rows_written, removed = replace_rows(conn, product_id, filter_name, cols, run_id)
            if recompute:
                outcome.sources_recomputed = recompute_indices(
                    conn, np.concatenate([np.asarray(cols["source_id"], np.int64), removed]), cfg, run_id)
            if job_id is not None:
                queue.mark_done(conn, job_id, None)
    outcome.wall_time_s = time.perf_counter() - t0
    log.info("forced photometry of product %s: %d rows, %d sources recomputed in %.2f s", product_id,
             outcome.rows_written, outcome.sources_recomputed, outcome.wall_time_s)
    return outcome


def run_forced_phot(archive: Any, job: Any) -> int:
    """Job handler (kind ``forced_phot``): one L2 product; returns the rows written.

    ``job.params`` may override :class:`ForcedPhotConfig` fields (e.g. ``{"point_like_only": false}``).
    """
    config = ForcedPhotConfig(**(job.params or {}))
    return run_product(archive, int(job.product_id), config, job_id=job.job_id).rows_written


def queue_new_l2(conn: sa.Connection, product_ids: list[int]) -> None:
    """Registration hook for new L2 images (inside the registering transaction).

    Queues a ``forced_phot`` job for each image that covers live catalog objects, and a ``dia`` job for each
    skycell + filter it touches when earlier-epoch images of that filter overlap it (a new epoch to difference).
    """
    from romanarchive.jobs import queue
    from romanarchive.timeseries.dia_step import queue_dia

    if not product_ids:
        return
    covering = conn.execute(sa.text(
        "SELECT p.product_id FROM products p WHERE p.product_id = ANY(:ids) AND EXISTS ("
        "SELECT 1 FROM objects o WHERE o.release = 'live' AND o.pos @ p.s_region)"), {"ids": product_ids}).scalars()
    queue.enqueue(conn, KIND, sorted(covering))
    earlier = conn.execute(sa.text(
        "SELECT p.product_id FROM products p WHERE p.product_id = ANY(:ids) AND EXISTS ("
        "SELECT 1 FROM products q WHERE q.level = 2 AND q.release = 'live' AND q.filter = p.filter "
        "AND q.t_max < p.t_min - 0.5 AND q.s_region && p.s_region)"), {"ids": product_ids}).scalars()
    for pid in sorted(earlier):
        queue_dia(conn, pid)


def queue_for_skycell(conn: sa.Connection, cell: str) -> int:
    """Catalog hook: (re-)queue forced photometry of every live L2 that overlaps the skycell.

    Runs in the catalog's transaction, so light curves start (or are re-measured against the new catalog) as soon
    as a skycell's catalog changes. Every L2 over the cell is re-opened, not only those that cover its new objects:
    an L2 whose objects all left the catalog must still run to drop their rows. Returns the number of jobs queued
    or re-opened.
    """
    from romanarchive.jobs import queue
    from romanarchive.sky.footprint import spoly_literal
    from romanarchive.sky.skycells import skycell

    pids = conn.execute(sa.text(
        "SELECT p.product_id FROM products p WHERE p.level = 2 AND p.release = 'live' "
        "AND p.s_region && CAST(:poly AS spoly) ORDER BY p.product_id"),
        {"poly": spoly_literal(skycell(cell).corners())}).scalars().all()
    return queue.requeue(conn, KIND, list(pids))


def run_all(archive: Any, config: ForcedPhotConfig | None = None, progress: bool = False) -> ForcedOutcome:
    """Measure every live L2 image that covers catalog objects (a full recompute)."""
    from tqdm import tqdm

    with archive.engine.connect() as conn:
        pids = l2_products(conn)
    total = ForcedOutcome()
    t0 = time.perf_counter()
    for pid in tqdm(pids, desc="forced photometry", unit="image", disable=not progress):
        out = run_product(archive, pid, config, recompute=False)
        total.products.append(pid)
        total.rows_written += out.rows_written
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
