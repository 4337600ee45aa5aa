"""The difference-imaging step on a skycell + filter: per-epoch co-adds minus templates of earlier images.

The live L2s of the skycell and filter are grouped into epochs (gaps longer than ``epoch_gap_days``). For every
epoch after the first, the epoch's L2s are co-added onto the skycell grid (the mosaic step's
:func:`romanarchive.mosaic.coadd.coadd`) as the science image and all *earlier* L2s as the template (outlier
rejection on when it has enough inputs); :func:`romanarchive.timeseries.dia.difference_image` subtracts and detects;
detections are converted to nJy (the L2's photometric conversion; co-adds keep DN/s summed over an aperture),
placed on the sky with the skycell WCS, linked to the nearest live static object and written to ``dia_sources``.

Incremental: each run records in ``timeseries_runs`` (the provenance of its rows, whose ``run_id`` they carry) the
(science, template) L2 sets of the epochs it leaves in ``dia_sources``; the next run keeps the rows of epochs whose
sets are unchanged and co-adds and differences only the new (or changed) ones. ``dia`` jobs are queued per
skycell + filter by the forced photometry of every new L2.
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
    incremental: bool = pydantic.Field(default=True, description="Difference only epochs not differenced before")

    def params(self) -> DiaParams:
        """Parameters of the pure function."""
        return DiaParams(threshold=self.threshold, match_tolerance=self.match_tolerance)


@dataclass
class DiaOutcome:
    """What one run did."""

    skycell: str
    filter: str
    epochs: list[dict[str, Any]] = field(default_factory=list)  # the epochs differenced by this run
    reused: int = 0  # epochs whose rows were kept from earlier runs (inputs unchanged)
    n_coadds: int = 0  # co-adds built (2 per epoch differenced): the work the incremental test counts
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


def _previous_epochs(conn: sa.Connection, target: str) -> set[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(science ids, template ids) of the epochs the last run of a target left in ``dia_sources``."""
    from romanarchive.timeseries.runs import STEP_DIA

    inputs = conn.execute(sa.text("SELECT inputs FROM timeseries_runs WHERE step = :s AND target = :t "
                                  "ORDER BY run_id DESC LIMIT 1"), {"s": STEP_DIA, "t": target}).scalar()
    return {(tuple(e["science_ids"]), tuple(e["template_ids"])) for e in (inputs or {}).get("epochs", [])}


def run_cell(archive: Any, cell_name: str, filter_name: str, config: DiaConfig | None = None,
             job_id: int | None = None) -> DiaOutcome:
    """Difference-image the new epochs of a skycell + filter and update its ``dia_sources`` rows.

    Incremental: an epoch whose science and template L2s are those the previous run of the target used keeps its
    rows and is not co-added again; only new (or changed) epochs are differenced, against a template of all their
    earlier L2s; rows of epochs that no longer exist (inputs gone from the live release) are deleted.
    ``config.incremental = False`` recomputes every epoch.
    """
    from romanarchive.jobs import queue
    from romanarchive.mosaic.job import live_inputs
    from romanarchive.sky.skycells import skycell
    from romanarchive.timeseries.runs import STEP_DIA, RunRecorder

    cfg = config or DiaConfig()
    t0 = time.perf_counter()
    cell = skycell(cell_name)
    target = target_of(cell.name, filter_name)
    out = DiaOutcome(cell.name, filter_name)
    with RunRecorder(STEP_DIA, target, cfg.model_dump(), job_id) as rec:
        with archive.engine.connect() as conn:
            rows = live_inputs(conn, cell, filter_name)
            done = _previous_epochs(conn, target) if cfg.incremental else set()
        groups = group_epochs(np.array([r.t_min or 0.0 for r in rows]), cfg.epoch_gap_days) if rows else []
        epochs = [([rows[i].product_id for i in groups[e]],
                   sorted(rows[i].product_id for i in np.concatenate(groups[:e]))) for e in range(1, len(groups))]
        keys = [(tuple(s), tuple(t)) for s, t in epochs]
        todo = [e for e, k in enumerate(keys) if k not in done]
        out.reused = len(keys) - len(todo)
        records = _difference(archive, cell, filter_name, rows, groups, [e + 1 for e in todo], cfg, out)
        rec.inputs = {"products": [{"product_id": r.product_id, "filename": r.filename} for r in rows],
                      "epochs": [{"science_ids": list(s), "template_ids": list(t)} for s, t in keys],
                      "differenced": [list(keys[e][0]) for e in todo]}
        with archive.engine.begin() as conn:
            run_id = rec.record(conn, len(records))
            # Keep the rows of unchanged epochs; drop the rest (recomputed now, or gone).
            keep = {k for k in keys if k in done}
            old = conn.execute(sa.text("SELECT dia_id, science_ids, template_ids FROM dia_sources "
                                       "WHERE skycell = :c AND filter = :f"), {"c": cell.name, "f": filter_name}).all()
            stale = [r[0] for r in old if (tuple(r[1]), tuple(sorted(r[2]))) not in keep]
            if stale:
                conn.execute(sa.text("DELETE FROM dia_sources WHERE dia_id = ANY(:ids)"), {"ids": stale})
            if records:
                conn.execute(sa.text(
                    "INSERT INTO dia_sources (skycell, filter, mjd, science_ids, template_ids, ra, dec, pos, x, y, "
                    "flux, flux_err, snr, flux_template, nearest_source_id, nearest_sep, flags, run_id) VALUES "
                    "(:skycell, :filter, :mjd, CAST(:science_ids AS jsonb), CAST(:template_ids AS jsonb), :ra, :dec, "
                    "spoint(radians(:ra), radians(:dec)), :x, :y, :flux, :flux_err, :snr, :flux_template, "
                    ":nearest_source_id, :nearest_sep, :flags, :run_id)"), [{**r, "run_id": run_id} for r in records])
            if job_id is not None:
                queue.mark_done(conn, job_id, None)
    out.n_sources = len(records)
    out.wall_time_s = time.perf_counter() - t0
    log.info("dia %s %s: %d epochs differenced (%d kept), %d sources in %.1f s", cell.name, filter_name,
             len(out.epochs), out.reused, out.n_sources, out.wall_time_s)
    return out


def _difference(archive: Any, cell: Any, filter_name: str, rows: list[Any], groups: list[np.ndarray],
                todo: list[int], cfg: DiaConfig, out: DiaOutcome) -> list[dict[str, Any]]:
    """Difference epochs ``todo`` (indices into ``groups``, >= 1); returns ``dia_sources`` records."""
    from romanarchive.catalog.psf import psf_image
    from romanarchive.mosaic.coadd import CoaddParams, coadd
    from romanarchive.mosaic.step import load_l2

    records: list[dict[str, Any]] = []
    if not todo:
        return records
    # Only the L2s the new epochs need: their own and every earlier one (the template).
    need = sorted({int(i) for e in todo for i in np.concatenate(groups[:e + 1])})
    with tempfile.TemporaryDirectory(prefix="dia-") as tmp:
        paths: dict[int, Path] = {}
        for i in need:
            r = rows[i]
            local = archive.store.local_path(r.uri)
            paths[i] = Path(local) if local is not None else Path(archive.store.get_file(r.uri,
                                                                                         Path(tmp) / r.filename))
        inputs = {i: load_l2(paths[i], rows[i].product_id) for i in need}
        to_njy = _to_njy(paths[need[0]])
    psf = psf_image(filter_name, cell.pixel_scale, size=cfg.psf_size)
    for e in todo:
        sci_idx, tmpl_idx = groups[e], np.concatenate(groups[:e])
        sci = coadd([inputs[int(i)].arrays for i in sci_idx], cell.wcs, cell.shape, CoaddParams())
        tmpl = coadd([inputs[int(i)].arrays for i in tmpl_idx], cell.wcs, cell.shape, CoaddParams())
        out.n_coadds += 2
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
        tmpl_ids = sorted(rows[i].product_id for i in tmpl_idx)
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
    return records


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
