"""ePSF library jobs: the live L2s of one detector, filter and time window -> one ``wfi_epsf`` product + its rows.

Incremental by window: a new L2 only queues the window it falls in, and only once ``min_new_images`` live L2s of
that window are not yet inputs of its library product (:func:`queue_new_l2`). A rebuild uses every live L2 of the
window and replaces the window's earlier product (its ``epsf`` rows go with it) in the registering transaction.

Star selection uses the archive's own catalog where it has one: live catalog objects flagged extended are passed
to the selection as known galaxies (pixel positions through each image's WCS).

Bad input (no images, too few stars, all saturated) raises :class:`~romanarchive.epsf.build.EpsfBuildError` before
anything is stored: a job fails with that message and nothing is registered.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db import product_types
from romanarchive.db.tables import metadata, products
from romanarchive.epsf.build import EpsfBuildError
from romanarchive.epsf.config import EpsfConfig
from romanarchive.epsf.step import STEP, EpsfInput, EpsfResult, EpsfStep, read_input
from romanarchive.imaging.psf import galsim_band
from romanarchive.ingest.inspect import bandpass_limits
from romanarchive.ingest.register import Provenance, Registration, discard_unregistered, retire_products
from romanarchive.jobs import queue

log = logging.getLogger(__name__)

KIND = "epsf"
_EPSF_ROWS = metadata.tables["epsf"]

_MID = "(p.t_min + COALESCE(p.t_max, p.t_min)) / 2"
_WINDOW_L2 = sa.text(
    f"""
    SELECT p.product_id, f.uri, f.filename FROM products p JOIN files f ON f.file_id = p.file_id
    WHERE p.level = 2 AND p.product_type = :l2 AND p.release = 'live' AND p.detector = :det AND p.filter = :filt
      AND {_MID} >= :t0 AND {_MID} < :t1
    ORDER BY p.product_id
    """
)
_EXTENDED = sa.text(
    "SELECT o.ra, o.dec FROM objects o JOIN products p ON o.pos @ p.s_region "
    "WHERE p.product_id = :pid AND o.release = 'live' AND o.is_extended IS TRUE"
)
# Live L2s of a window that the window's live library product did not use.
_NOT_USED = sa.text(
    f"""
    SELECT count(*) FROM products p
    WHERE p.level = 2 AND p.product_type = :l2 AND p.release = 'live' AND p.detector = :det AND p.filter = :filt
      AND {_MID} >= :t0 AND {_MID} < :t1
      AND NOT EXISTS (
        SELECT 1 FROM products e JOIN provenance v ON v.product_id = e.product_id,
             jsonb_array_elements(v.inputs) i
        WHERE e.product_type = :epsf AND e.release = 'live' AND e.detector = :det AND e.filter = :filt
          AND EXISTS (SELECT 1 FROM epsf x WHERE x.product_id = e.product_id AND x.t_min = :t0)
          AND (i->>'product_id')::bigint = p.product_id)
    """
)


def target_of(detector: str, filter_name: str, t_min: float) -> str:
    """The job target of a detector, filter and window start, e.g. ``WFI01/F158/61020``."""
    return f"{detector.upper()}/{filter_name.upper()}/{t_min:g}"


def window_inputs(conn: sa.Connection, detector: str, filter_name: str, window: tuple[float, float]
                  ) -> list[sa.Row[tuple[int, str, str]]]:
    """(product_id, uri, filename) of the live L2s of a detector and filter whose mid-time lies in ``window``."""
    return list(conn.execute(_WINDOW_L2, {"l2": product_types.L2, "det": detector.upper(),
                                          "filt": filter_name.upper(), "t0": window[0], "t1": window[1]}).all())


def _extended_xy(conn: sa.Connection, image: EpsfInput) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixel positions on ``image`` of the live catalog's extended objects over it (None without a catalog)."""
    if image.product_id is None or not sa.inspect(conn).has_table("objects"):
        return None
    rows = conn.execute(_EXTENDED, {"pid": image.product_id}).all()
    if not rows:
        return None
    x, y = image.wcs.invert(np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float),
                            with_bounding_box=False)
    return np.asarray(x, float), np.asarray(y, float)


def build_window(archive: Archive, detector: str, filter_name: str, mjd: float, config: EpsfConfig | None = None,
                 job: queue.Job | None = None, progress: bool = False) -> int:
    """Build and register the ePSFs of the window holding ``mjd``; returns the new library product's id.

    Raises
    ------
    EpsfBuildError
        No live L2 in the window, or the stars cannot make an ePSF (nothing is registered).
    """
    from tqdm import tqdm

    cfg = config or EpsfConfig()
    galsim_band(filter_name)  # an unknown filter is a clear error before any file is read
    window = cfg.window(mjd)
    with archive.engine.connect() as conn:
        rows = window_inputs(conn, detector, filter_name, window)
    if not rows:
        raise EpsfBuildError(f"no live L2 images of {detector.upper()} {filter_name.upper()} with mid-times in "
                             f"MJD {window[0]:g}-{window[1]:g}")
    tag = target_of(detector, filter_name, window[0]).replace("/", "_")
    scratch = archive.settings.scratch / f"epsf-{job.job_id if job else 'cli'}-{tag}"
    shutil.rmtree(scratch, ignore_errors=True)
    if job is not None and job.output_key:
        discard_unregistered(archive, job.output_key)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        images = []
        with archive.engine.connect() as conn:
            for pid, uri, name in tqdm(rows, desc="reading L2", unit="image", disable=not progress):
                im = read_input(archive.store.local_file(uri, scratch / name), int(pid))
                im.extended_xy = _extended_xy(conn, im)
                images.append(im)
        result = EpsfStep(cfg).run(images, window)
        out = scratch / f"epsf_{detector.lower()}_{filter_name.lower()}_{window[0]:g}.asdf"
        result.write(out)
        return register_result(archive, job, result, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def register_result(archive: Archive, job: queue.Job | None, result: EpsfResult, path: Path) -> int:
    """Register the library product and its ``epsf`` rows; retire the window's earlier product."""
    prov = Provenance(STEP, result.software, {**result.parameters, "rejected": result.rejected},
                      result.inputs, wall_time_s=result.wall_time_s)
    em_min, em_max = bandpass_limits(result.filter)
    freed: list[str] = []
    with Registration.open(archive, job) as reg:
        conn = reg.conn
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                     {"k": f"epsf:{target_of(result.detector, result.filter, result.t_min)}"})
        # No t_min/t_max on the product row: queries of "level-2 images by time" must not take it for an exposure;
        # the window is on its epsf rows.
        pid = reg.add(path, level=2, product_type=product_types.EPSF, prefix="epsf", provenance=prov, product=dict(
            obs_id=f"epsf_{result.detector.lower()}_{result.filter.lower()}_{result.t_min:g}",
            filter=result.filter, detector=result.detector, em_min=em_min, em_max=em_max))
        conn.execute(sa.text(
            "INSERT INTO epsf (product_id, position, detector, filter, x, y, v2, v3, t_min, t_max, oversample, "
            "stamp_size, n_images, n_stars, n_rejected, snr, fwhm, residual_rms, norm_fraction) VALUES (:pid, :k, "
            ":det, :filt, :x, :y, :v2, :v3, :t0, :t1, :o, :size, :ni, :ns, :nr, :snr, :fwhm, :res, :norm)"),
            [{"pid": pid, "k": k, "det": result.detector, "filt": result.filter, "x": f.x, "y": f.y, "v2": v2,
              "v3": v3, "t0": result.t_min, "t1": result.t_max, "o": f.oversample, "size": f.stamp.shape[0],
              "ni": f.n_images, "ns": f.n_stars, "nr": f.n_rejected, "snr": f.snr, "fwhm": f.fwhm,
              "res": f.residual_rms, "norm": f.norm_fraction}
             for k, (f, (v2, v3)) in enumerate(zip(result.fits, result.v2v3, strict=True))])
        freed = _retire(conn, result, keep=pid)
    for key in freed:
        archive.store.delete(key)
    log.info("ePSF library %s %s MJD %g-%g: product %d, %d position(s), %d stars", result.detector, result.filter,
             result.t_min, result.t_max, pid, len(result.fits), sum(f.n_stars for f in result.fits))
    return pid


def _retire(conn: sa.Connection, result: EpsfResult, keep: int) -> list[str]:
    """Delete the window's earlier library products (rows cascade); returns store keys no file row uses now."""
    old = conn.execute(
        sa.select(products.c.product_id)
        .where(products.c.product_type == product_types.EPSF, products.c.detector == result.detector,
               products.c.filter == result.filter, products.c.release == "live", products.c.product_id != keep,
               products.c.product_id.in_(sa.select(_EPSF_ROWS.c.product_id)
                                         .where(_EPSF_ROWS.c.t_min == result.t_min)))).scalars().all()
    return retire_products(conn, old, keep_released=False)


def run_epsf(archive: Archive, job: queue.Job) -> int:
    """Job handler (kind ``epsf``): params ``detector``, ``filter``, ``t_min`` (and EpsfConfig overrides)."""
    params = dict(job.params or {})
    try:
        detector, filter_name, t_min = params.pop("detector"), params.pop("filter"), float(params.pop("t_min"))
    except KeyError as exc:
        raise ValueError(f"epsf job {job.job_id} lacks parameter {exc}") from None
    params.pop("t_max", None)
    cfg = EpsfConfig(**params)
    return build_window(archive, str(detector), str(filter_name), t_min + 1e-6, cfg, job)


def queue_new_l2(conn: sa.Connection, product_ids: Sequence[int], config: EpsfConfig | None = None) -> list[int]:
    """Registration hook: queue the ``epsf`` job of each window with ``min_new_images`` L2s its product lacks."""
    cfg = config or EpsfConfig()
    if not product_ids:
        return []
    rows = conn.execute(sa.text(
        f"SELECT DISTINCT p.detector, p.filter, {_MID} FROM products p WHERE p.product_id = ANY(:ids) "
        "AND p.detector IS NOT NULL AND p.filter IS NOT NULL AND p.t_min IS NOT NULL"),
        {"ids": list(product_ids)}).all()
    windows = sorted({(str(d).upper(), str(f).upper(), cfg.window(float(m))) for d, f, m in rows})
    queued = []
    for det, filt, (t0, t1) in windows:
        missing = conn.execute(_NOT_USED, {"l2": product_types.L2, "epsf": product_types.EPSF, "det": det,
                                           "filt": filt, "t0": t0, "t1": t1}).scalar_one()
        if missing >= cfg.min_new_images:
            jid = queue.enqueue_target(conn, KIND, target_of(det, filt, t0),
                                       {"detector": det, "filter": filt, "t_min": t0, "t_max": t1})
            if jid is not None:
                queued.append(jid)
    return queued
