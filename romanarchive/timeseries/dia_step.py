"""The difference-imaging step on a skycell + filter: per-epoch co-adds minus templates of earlier images.

The live L2s of the skycell and filter are grouped into epochs (gaps longer than ``epoch_gap_days``). For every
epoch after the first, the epoch's L2s are co-added onto the skycell grid (the mosaic step's
:func:`romanarchive.mosaic.coadd.coadd`) as the science image and all *earlier* L2s as the template (outlier
rejection on when it has enough inputs); :func:`romanarchive.timeseries.dia.difference_image` subtracts and detects;
detections are converted to nJy (the L2's photometric conversion; co-adds keep DN/s summed over an aperture),
placed on the sky with the skycell WCS, linked to the nearest live static object and written to ``dia_sources``
(the skycell + filter's earlier rows are replaced). ``dia`` jobs are queued per skycell + filter by the forced
photometry of every new L2.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import sqlalchemy as sa

from romanarchive.timeseries.dia import DIA_NEW, DiaParams, DiaResult, difference_image

log = logging.getLogger(__name__)

KIND = "dia"


class DiaConfig(pydantic.BaseModel):
    """Configuration of the difference-imaging step."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    threshold: float = pydantic.Field(default=5.0, gt=0, description="Detection S/N on the difference image")
    match_tolerance: float = pydantic.Field(default=0.05, ge=0, description="PSF-width mismatch that triggers matching")
    epoch_gap_days: float = pydantic.Field(default=0.5, gt=0, description="Gap between L2s that starts a new epoch")
    link_radius_arcsec: float = pydantic.Field(default=0.3, gt=0, description="Static-object match radius for 'new'")
    psf_size: int = pydantic.Field(default=41, ge=9, description="PSF image side on the skycell grid (odd)")

    def params(self) -> DiaParams:
        """Parameters of the pure function."""
        return DiaParams(threshold=self.threshold, match_tolerance=self.match_tolerance)


@dataclass
class DiaOutcome:
    """What one run did."""

    skycell: str
    filter: str
    epochs: list[dict[str, Any]] = field(default_factory=list)
    n_sources: int = 0
    wall_time_s: float = 0.0


def target_of(cell: str, filter_name: str) -> str:
    """Job target of a skycell and filter."""
    return f"{cell} {filter_name}"


def group_epochs(t_min: np.ndarray, gap_days: float) -> list[np.ndarray]:
    """Indices of L2s per epoch: sorted by start time, split where consecutive starts are ``gap_days`` apart."""
    order = np.argsort(t_min, kind="stable")
    cuts = np.flatnonzero(np.diff(np.asarray(t_min)[order]) > gap_days) + 1
    return [g for g in np.split(order, cuts) if len(g)]


def queue_dia(conn: sa.Connection, product_id: int) -> list[int]:
    """Queue a ``dia`` job for every skycell + filter an L2 product's footprint touches."""
    from romanarchive.jobs import queue
    from romanarchive.sky.skycells import skycells_for_footprint

    row = conn.execute(sa.text("SELECT s_region::text, filter FROM products WHERE product_id = :p"),
                       {"p": product_id}).first()
    if row is None or not row[0] or not row[1]:
        return []
    out = []
    for cell in skycells_for_footprint(row[0]):
        jid = queue.enqueue_target(conn, KIND, target_of(cell.name, row[1]), {"skycell": cell.name,
                                                                                 "filter": row[1]})
        if jid is not None:
            out.append(jid)
    return out


def _to_njy(path: Path) -> float:
    import roman_datamodels.datamodels as rdm

    with rdm.open(path) as m:
        conv = 1.0 if str(getattr(m.meta.cal_step, "flux", "")) == "COMPLETE" else float(
            m.meta.photometry.conversion_megajanskys)
        return conv * float(m.meta.photometry.pixel_area) * 1e15


def _bbox(*imgs: np.ndarray) -> tuple[slice, slice] | None:
    ok = np.logical_and.reduce([np.isfinite(i) for i in imgs])
    ys, xs = np.nonzero(ok)
    if not len(ys):
        return None
    return slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)


def _nearest(conn: sa.Connection, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest live static object (source_id, arcsec) of each position; -1 / NaN when none within 10 arcsec."""
    ids = np.full(len(ra), -1, np.int64)
    sep = np.full(len(ra), np.nan)
    if not len(ra):
        return ids, sep
    pad = 10.0 / 3600.0
    rows = conn.execute(sa.text(
        "SELECT source_id, ra, dec FROM objects WHERE release = 'live' AND dec BETWEEN :d0 AND :d1 "
        "AND ra BETWEEN :r0 AND :r1"),
        {"d0": float(dec.min()) - pad, "d1": float(dec.max()) + pad,
         "r0": float(ra.min()) - pad / np.cos(np.radians(dec.mean())),
         "r1": float(ra.max()) + pad / np.cos(np.radians(dec.mean()))}).all()
    if not rows:
        return ids, sep
    sid = np.array([r[0] for r in rows], np.int64)
    ora = np.array([r[1] for r in rows])
    odec = np.array([r[2] for r in rows])
    for i in range(len(ra)):
        d = np.hypot((ora - ra[i]) * np.cos(np.radians(dec[i])), odec - dec[i]) * 3600.0
        j = int(np.argmin(d))
        if d[j] < 10.0:
            ids[i], sep[i] = sid[j], d[j]
    return ids, sep


def run_cell(archive: Any, cell_name: str, filter_name: str, config: DiaConfig | None = None,
             job_id: int | None = None) -> DiaOutcome:
    """Difference-image every epoch after the first of a skycell + filter and replace its ``dia_sources`` rows."""
    from romanarchive.catalog.psf import psf_image
    from romanarchive.jobs import queue
    from romanarchive.mosaic.coadd import CoaddParams, coadd
    from romanarchive.mosaic.job import live_inputs
    from romanarchive.mosaic.step import load_l2
    from romanarchive.sky.skycells import skycell

    cfg = config or DiaConfig()
    t0 = time.perf_counter()
    cell = skycell(cell_name)
    out = DiaOutcome(cell.name, filter_name)
    with archive.engine.connect() as conn:
        rows = live_inputs(conn, cell, filter_name)
    groups = group_epochs(np.array([r.t_min or 0.0 for r in rows]), cfg.epoch_gap_days) if rows else []
    records: list[dict[str, Any]] = []
    if len(groups) >= 2:
        with tempfile.TemporaryDirectory(prefix="dia-") as tmp:
            paths = []
            for r in rows:
                local = archive.store.local_path(r.uri)
                paths.append(Path(local) if local is not None else Path(archive.store.get_file(r.uri,
                                                                                               Path(tmp) / r.filename)))
            inputs = [load_l2(p, r.product_id) for p, r in zip(paths, rows, strict=True)]
            to_njy = _to_njy(paths[0])
        psf = psf_image(filter_name, cell.pixel_scale, size=cfg.psf_size)
        for e in range(1, len(groups)):
            sci_idx, tmpl_idx = groups[e], np.concatenate(groups[:e])
            sci = coadd([inputs[i].arrays for i in sci_idx], cell.wcs, cell.shape, CoaddParams())
            tmpl = coadd([inputs[i].arrays for i in tmpl_idx], cell.wcs, cell.shape, CoaddParams())
            box = _bbox(sci.data, tmpl.data)
            mjd = float(np.mean([0.5 * ((rows[i].t_min or 0.0) + (rows[i].t_max or rows[i].t_min or 0.0))
                                 for i in sci_idx]))
            if box is None:
                continue
            res: DiaResult = difference_image(sci.data[box], sci.err[box], tmpl.data[box], tmpl.err[box], psf,
                                              cfg.params())
            x, y = res.x + box[1].start, res.y + box[0].start
            ra, dec = (np.asarray(v, float) for v in cell.wcs.pixel_to_world_values(x, y))
            ra = np.mod(ra, 360.0)
            with archive.engine.connect() as conn:
                near, sep = _nearest(conn, ra, dec)
            flags = res.flags | np.where(~(sep < cfg.link_radius_arcsec), DIA_NEW, 0).astype(np.int16)
            sci_ids = [rows[i].product_id for i in sci_idx]
            tmpl_ids = [rows[i].product_id for i in tmpl_idx]
            for k in range(len(x)):
                records.append({
                    "skycell": cell.name, "filter": filter_name, "mjd": mjd, "science_ids": json.dumps(sci_ids),
                    "template_ids": json.dumps(tmpl_ids), "ra": float(ra[k]), "dec": float(dec[k]),
                    "x": float(x[k]), "y": float(y[k]), "flux": float(res.flux[k] * to_njy),
                    "flux_err": float(res.flux_err[k] * to_njy), "snr": float(res.snr[k]),
                    "flux_template": float(res.flux_template[k] * to_njy),
                    "nearest_source_id": int(near[k]) if near[k] >= 0 else None,
                    "nearest_sep": float(sep[k]) if np.isfinite(sep[k]) else None, "flags": int(flags[k]),
                })
            out.epochs.append({"mjd": mjd, "n_science": len(sci_idx), "n_template": len(tmpl_idx),
                               "n_sources": len(x), "noise_scale": res.noise_scale, "psf_matched": res.convolved,
                               "psf_widths": res.widths})
    with archive.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM dia_sources WHERE skycell = :c AND filter = :f"),
                     {"c": cell.name, "f": filter_name})
        if records:
            conn.execute(sa.text(
                "INSERT INTO dia_sources (skycell, filter, mjd, science_ids, template_ids, ra, dec, pos, x, y, flux, "
                "flux_err, snr, flux_template, nearest_source_id, nearest_sep, flags) VALUES (:skycell, :filter, "
                ":mjd, CAST(:science_ids AS jsonb), CAST(:template_ids AS jsonb), :ra, :dec, "
                "spoint(radians(:ra), radians(:dec)), :x, :y, :flux, :flux_err, :snr, :flux_template, "
                ":nearest_source_id, :nearest_sep, :flags)"), records)
        if job_id is not None:
            queue.mark_done(conn, job_id, None)
    out.n_sources = len(records)
    out.wall_time_s = time.perf_counter() - t0
    log.info("dia %s %s: %d epochs, %d sources in %.1f s", cell.name, filter_name, len(out.epochs), out.n_sources,
             out.wall_time_s)
    return out


def run_dia(archive: Any, job: Any) -> int:
    """Job handler (kind ``dia``): one skycell + filter from ``job.params``; returns the sources written."""
    params = job.params or {}
    cell, filt = params.get("skycell"), params.get("filter")
    if not cell or not filt:
        raise ValueError(f"dia job {job.job_id} lacks skycell/filter parameters ({params})")
    return run_cell(archive, str(cell), str(filt), job_id=job.job_id).n_sources


def dia_targets(conn: sa.Connection) -> list[tuple[str, str]]:
    """(skycell, filter) pairs that have a live L3 (what ``diff --all`` processes)."""
    rows = conn.execute(sa.text(
        "SELECT DISTINCT obs_id, filter FROM products WHERE level = 3 AND release = 'live' AND obs_id IS NOT NULL "
        "AND filter IS NOT NULL ORDER BY 1, 2")).all()
    return [(str(r[0]), str(r[1])) for r in rows]
