"""Astrometry check per L2 and L3 image: Gaia DR3 against the L4 object catalog and against the image's own WCS.

A thin step (:func:`check_astrometry`, configured by :class:`AstrometryConfig`) over pure functions of arrays
(:func:`residual_stats`, :func:`centroids`). For every live image (``products`` of level 2 or 3) the Gaia stars
in its footprint are

* **matched to the L4 catalog**: the release's objects in the footprint (of an L3, those of its skycell), nearest
  within the radius — ``n_matched`` and ``catalog_sep_median`` say how well the catalog recovers the stars;
* **centroided on the image itself** (catalog positions are not per exposure, and the catalog may not recover a
  saturated star as one object): each star's Gaia position is mapped to pixels by the image's gWCS, centroided
  (:func:`centroids`; saturated cores, NaN or DO_NOT_USE, count as the stamp's brightest pixels) and mapped back;
  the residuals (measured minus Gaia) give the statistics.

Residuals are in mas, RA times cos(dec). One ``astrometry_checks`` row per (product, release) is replaced, carrying
the run's provenance (software versions, parameters, input tables with their write counters, the image's sha256,
wall time, host). Reference positions are at the catalog epoch (the bundled Gaia table has no proper motions).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, Field

from romanarchive.archive import Archive
from romanarchive.db import product_types
from romanarchive.db.tables import metadata
from romanarchive.imaging.stamps import cut_stamps
from romanarchive.xmatch import provenance
from romanarchive.xmatch.match import crossmatch
from romanarchive.xmatch.sources import track_writes

MAS_PER_DEG = 3_600_000.0
STEP = "romanarchive.xmatch.astrometry"
_STATS = ("dra_median", "ddec_median", "dra_scatter", "ddec_scatter", "sep_median", "sep_p90")
_REFERENCES = {"refcat.gaia_dr3_bright": "refcat.gaia_dr3_bright"}


class AstrometryConfig(BaseModel):
    """Parameters of the astrometry check."""

    radius_arcsec: float = Field(default=0.5, gt=0, le=3600, description="Match radius")
    reference: str = Field(default="refcat.gaia_dr3_bright", description="Published reference catalog")
    release: str = Field(default="live", description="Release of the object catalog rows to check")
    point_like_only: bool = Field(default=False, description="Match only objects classified point-like (saturated "
                                  "Gaia stars are often not)")
    stamp_arcsec: float = Field(default=2.5, gt=0, le=30, description="Centroid stamp side on the sky")


def paired_stats(ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray) -> dict[str, float | None]:
    """Median, robust scatter (1.4826 MAD) of RA (times cos dec) and Dec residuals, median and 90th percentile
    separation (mas) of paired positions (None where there are none)."""
    ok = np.isfinite(ra) & np.isfinite(dec)
    ra, dec, ref_ra, ref_dec = ra[ok], dec[ok], ref_ra[ok], ref_dec[ok]
    if not len(ra):
        return dict.fromkeys(_STATS)
    dra = ((ra - ref_ra + 180.0) % 360.0 - 180.0) * np.cos(np.radians(ref_dec)) * MAS_PER_DEG
    ddec = (dec - ref_dec) * MAS_PER_DEG
    sep = np.hypot(dra, ddec)

    def mad(x: np.ndarray) -> float:
        return float(1.4826 * np.median(np.abs(x - np.median(x))))

    return {"dra_median": float(np.median(dra)), "ddec_median": float(np.median(ddec)), "dra_scatter": mad(dra),
            "ddec_scatter": mad(ddec), "sep_median": float(np.median(sep)), "sep_p90": float(np.percentile(sep, 90))}


def residual_stats(ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray,
                   radius_deg: float) -> dict[str, float | int | None]:
    """Residual statistics of positions against their nearest reference position within the radius.

    Returns
    -------
    dict
        ``n_objects``, ``n_matched`` and the statistics of :func:`paired_stats`.
    """
    out: dict[str, float | int | None] = {"n_objects": len(ra), "n_matched": 0, **dict.fromkeys(_STATS)}
    if len(ra) == 0 or len(ref_ra) == 0:
        return out
    pairs = crossmatch(ra, dec, ref_ra, ref_dec, radius_deg, nearest=True)
    out["n_matched"] = len(pairs)
    out.update(paired_stats(ra[pairs.left], dec[pairs.left], ref_ra[pairs.right], ref_dec[pairs.right]))
    return out


def centroids(data: np.ndarray, dq: np.ndarray | None, x: np.ndarray, y: np.ndarray, size: int = 15,
              iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Flux-weighted centroids in circular windows around (x, y), vectorised; saturated pixels weigh the most.

    The sky (median of the stamp's border) is subtracted and negative pixels weigh zero; NaN and DO_NOT_USE pixels
    on the image get the stamp's largest weight (they are the saturated core of a bright star). The window is
    re-centred ``iterations`` times. Positions whose window leaves the image give NaN.
    """
    x, y = np.asarray(x, float).copy(), np.asarray(y, float).copy()
    if not len(x):
        return x, y
    half = size // 2
    grid = np.arange(size) - half
    bad_img = ~np.isfinite(data) if dq is None else (~np.isfinite(data)) | ((dq & 1) != 0)
    ones = np.ones(data.shape, np.float32)
    lost = np.zeros(len(x), bool)
    for _ in range(iterations):
        ix, iy = np.rint(np.where(lost, 0, x)).astype(np.int64), np.rint(np.where(lost, 0, y)).astype(np.int64)
        d = cut_stamps(data, ix, iy, size)
        on = cut_stamps(ones, ix, iy, size, fill=0.0) > 0
        bad = cut_stamps(bad_img.astype(np.float32), ix, iy, size, fill=0.0) > 0
        border = np.concatenate([d[:, 0, :], d[:, -1, :], d[:, 1:-1, 0], d[:, 1:-1, -1]], axis=1)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN borders (saturated or off-data stamps)
            sky = np.nanmedian(border, axis=1)
            w = np.clip(np.nan_to_num(d - np.nan_to_num(sky)[:, None, None], nan=0.0), 0.0, None)
            w = np.where(bad, w.max(axis=(1, 2), keepdims=True), w)
        gx = ix[:, None, None] + grid[None, None, :]
        gy = iy[:, None, None] + grid[None, :, None]
        w = np.where(np.hypot(gx - x[:, None, None], gy - y[:, None, None]) <= half, w, 0.0)
        total = w.sum(axis=(1, 2))
        lost |= ~on.all(axis=(1, 2)) | ~(total > 0)
        with np.errstate(all="ignore"):
            x = np.where(lost, np.nan, (w * gx).sum(axis=(1, 2)) / total)
            y = np.where(lost, np.nan, (w * gy).sum(axis=(1, 2)) / total)
    return x, y


_IMAGES = sa.text(
    """
    SELECT p.product_id, p.level, p.obs_id, p.filter, f.uri, f.filename, f.sha256
    FROM products p JOIN files f ON f.file_id = p.file_id
    WHERE p.level IN (2, 3) AND p.product_type IN (:l2, :l3) AND p.release = 'live'
    ORDER BY p.level, p.product_id
    """
)


def _in_footprint(conn: sa.Connection, pid: int, table: str, where: str, params: dict[str, Any]) -> np.ndarray:
    rows = conn.execute(sa.text(f"SELECT t.ra, t.dec FROM {table} t JOIN products p ON t.pos @ p.s_region "
                                f"WHERE p.product_id = :pid {where}"), {"pid": pid, **params}).all()
    return np.array(rows, np.float64).reshape(-1, 2)


def _stamp_pixels(wcs: Any, x: np.ndarray, y: np.ndarray, side_arcsec: float) -> int:
    """Odd stamp side in pixels covering ``side_arcsec`` at the image's local pixel scale (L2 and L3 differ)."""
    x0, y0 = float(np.nanmedian(x)), float(np.nanmedian(y))
    (r0, r1), (d0, d1) = (np.asarray(v, float) for v in wcs([x0, x0 + 1.0], [y0, y0], with_bounding_box=False))
    scale = np.hypot((r1 - r0) * np.cos(np.radians(d0)), d1 - d0) * 3600.0
    return int(2 * round(side_arcsec / scale / 2) + 1) if np.isfinite(scale) and scale > 0 else 15


def _measure(archive: Archive, image: sa.Row[Any], ra: np.ndarray, dec: np.ndarray,
             cfg: AstrometryConfig) -> tuple[np.ndarray, np.ndarray]:
    """Centroids on an L2 or L3 image, started at (ra, dec) through its gWCS; back on the sky (NaN where lost)."""
    import roman_datamodels.datamodels as rdm

    path = archive.store.local_file(image.uri,
                                    archive.settings.scratch / f"astrometry-{image.product_id}-{image.filename}")
    with rdm.open(path) as model:
        data = np.asarray(model.data, np.float32)
        dq = np.asarray(model.dq) if "dq" in model else None
        wcs = model.meta.wcs
        x, y = (np.asarray(v, float) for v in wcs.invert(ra, dec, with_bounding_box=False))
        size = _stamp_pixels(wcs, x, y, cfg.stamp_arcsec)
        xc, yc = centroids(data, dq, x, y, size)
        ok = np.isfinite(xc)
        mra, mdec = np.full(len(ra), np.nan), np.full(len(ra), np.nan)
        if ok.any():
            r, d = wcs(xc[ok], yc[ok], with_bounding_box=False)
            mra[ok], mdec[ok] = np.asarray(r, float) % 360.0, np.asarray(d, float)
    return mra, mdec


def check_image(archive: Archive, image: sa.Row[Any], cfg: AstrometryConfig,
                inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``astrometry_checks`` row of one L2 or L3 image (see the module docstring)."""
    t0 = time.perf_counter()
    pl = " AND t.is_extended IS FALSE" if cfg.point_like_only else ""
    with archive.engine.connect() as conn:
        ref = _in_footprint(conn, image.product_id, _REFERENCES[cfg.reference], "", {})
        cell = " AND t.skycell = :cell" if image.level == 3 else ""
        obj = _in_footprint(conn, image.product_id, "objects", f"AND t.release = :r{pl}{cell}",
                            {"r": cfg.release, "cell": image.obs_id})
    row: dict[str, Any] = {"product_id": image.product_id, "release": cfg.release, "level": image.level,
                           "skycell": image.obs_id if image.level == 3 else None, "filter": image.filter,
                           "reference": cfg.reference, "radius_arcsec": cfg.radius_arcsec, "n_reference": len(ref),
                           "n_objects": len(obj), "n_matched": 0, "catalog_sep_median": None, "n_measured": 0,
                           **dict.fromkeys(_STATS)}
    if len(ref) and len(obj):
        # Nearest object per star: a star shattered into fragments still counts once.
        pairs = crossmatch(ref[:, 0], ref[:, 1], obj[:, 0], obj[:, 1], cfg.radius_arcsec / 3600, nearest=True)
        row["n_matched"] = len(pairs)
        if len(pairs):
            row["catalog_sep_median"] = float(np.median(pairs.sep_arcsec) * 1000.0)
    if len(ref):
        ra, dec = _measure(archive, image, ref[:, 0], ref[:, 1], cfg)
        row["n_measured"] = int(np.isfinite(ra).sum())
        row.update(paired_stats(ra, dec, ref[:, 0], ref[:, 1]))
    row.update({"step": STEP, "software": provenance.software_versions(), "parameters": cfg.model_dump(),
                "inputs": [*inputs, {"product_id": image.product_id, "filename": image.filename,
                                     "sha256": image.sha256}],
                "wall_time_s": time.perf_counter() - t0, "host": provenance.host()})
    return row


def check_astrometry(archive: Archive, config: AstrometryConfig | None = None) -> list[dict[str, Any]]:
    """Check every live L2 and L3 image against the reference; replace their rows of ``astrometry_checks``.

    Returns
    -------
    list of dict
        The rows written, one per image.
    """
    cfg = config or AstrometryConfig()
    if cfg.reference not in _REFERENCES:
        raise ValueError(f"unknown reference {cfg.reference!r}; known: {', '.join(_REFERENCES)}")
    with archive.engine.begin() as conn:
        for rel in ("public.objects", cfg.reference):
            track_writes(conn, rel)
        inputs = [provenance.table_input(conn, cfg.reference), provenance.table_input(conn, "public.objects")]
        images = conn.execute(_IMAGES, {"l2": product_types.L2, "l3": product_types.L3}).all()
    rows = [check_image(archive, im, cfg, inputs) for im in images]
    table = metadata.tables["astrometry_checks"]
    with archive.engine.begin() as conn:
        conn.execute(table.delete().where(table.c.release == cfg.release))
        if rows:
            conn.execute(table.insert(), rows)
    return rows
