"""Difference-imaging jobs: the new epochs of a skycell + filter -> ``dia_sources`` rows.

A ``dia`` job (one per skycell + filter, queued by the forced photometry of every new L2 that has earlier-epoch
images under it: :func:`romanarchive.timeseries.forced_job.queue_new_l2` -> :func:`queue_dia`) reads the live L2s of
its skycell and filter, runs the step (:func:`romanarchive.timeseries.dia_step.difference_epochs`) on the epochs
not differenced before, converts detections to nJy (the co-adds are MJy/sr on the skycell grid: flux = sum x the
grid pixel's area in sr x 1e15), links each to the nearest live static object (farther than
``link_radius_arcsec``: flagged new), writes them to ``dia_sources``, associates them into ``dia_objects``
(:mod:`romanarchive.timeseries.dia_objects`) and links the moving ones into ``dia_tracks``
(:mod:`romanarchive.timeseries.dia_tracks`).

Incremental: each run records in ``timeseries_runs`` (the provenance of its rows, whose ``run_id`` they carry) the
(science, template) L2 sets of the epochs it leaves in ``dia_sources``; the next run keeps the rows of epochs whose
sets are unchanged and co-adds and differences only the new (or changed) ones.
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
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.imaging.l2 import L2Input, grid_njy_factor, load_l2
from romanarchive.ingest.query import LiveProduct, live_l2
from romanarchive.jobs import queue
from romanarchive.sky.skycells import Skycell, skycell, skycells_for_footprint
from romanarchive.timeseries.dia import DIA_NEW
from romanarchive.timeseries.dia_objects import associate
from romanarchive.timeseries.dia_step import DiaConfig, EpochDifference, difference_epochs, epoch_inputs, group_epochs
from romanarchive.timeseries.dia_tracks import relink
from romanarchive.timeseries.runs import STEP_DIA, RunRecorder

log = logging.getLogger(__name__)

KIND = "dia"


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
    association: dict[str, int] = field(default_factory=dict)  # dia_objects.associate's counts
    tracks: dict[str, int] = field(default_factory=dict)  # dia_tracks.relink's counts


def target_of(cell: str, filter_name: str) -> str:
    """Job target of a skycell and filter."""
    return f"{cell} {filter_name}"


def queue_dia(conn: sa.Connection, product_id: int) -> list[int]:
    """Queue a ``dia`` job for every skycell + filter an L2 product's footprint touches."""
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
    inputs = conn.execute(sa.text("SELECT inputs FROM timeseries_runs WHERE step = :s AND target = :t "
                                  "ORDER BY run_id DESC LIMIT 1"), {"s": STEP_DIA, "t": target}).scalar()
    return {(tuple(e["science_ids"]), tuple(e["template_ids"])) for e in (inputs or {}).get("epochs", [])}


def run_cell(archive: Archive, cell_name: str, filter_name: str, config: DiaConfig | None = None,
             job_id: int | None = None) -> DiaOutcome:
    """Difference-image the new epochs of a skycell + filter and update its ``dia_sources`` rows.

    Incremental: an epoch whose science and template L2s are those the previous run of the target used keeps its
    rows and is not co-added again; only new (or changed) epochs are differenced, against a template of all their
    earlier L2s; rows of epochs that no longer exist (inputs gone from the live release) are deleted.
    ``config.incremental = False`` recomputes every epoch.
    """
    cfg = config or DiaConfig()
    t0 = time.perf_counter()
    cell = skycell(cell_name)
    target = target_of(cell.name, filter_name)
    out = DiaOutcome(cell.name, filter_name)
    with RunRecorder(STEP_DIA, target, cfg.model_dump(), job_id) as rec:
        with archive.engine.connect() as conn:
            rows = live_l2(conn, cell.corners(), filter_name)
            done = _previous_epochs(conn, target) if cfg.incremental else set()
        groups = group_epochs(np.array([r.t_min or 0.0 for r in rows]), cfg.epoch_gap_days) if rows else []
        keys = epoch_inputs([r.product_id for r in rows], groups)
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
                    "flux, flux_err, snr, flux_template, nearest_source_id, nearest_sep, flags, rate_ra, rate_dec, "
                    "rate_err, run_id) VALUES "
                    "(:skycell, :filter, :mjd, CAST(:science_ids AS jsonb), CAST(:template_ids AS jsonb), :ra, :dec, "
                    "spoint(radians(:ra), radians(:dec)), :x, :y, :flux, :flux_err, :snr, :flux_template, "
                    ":nearest_source_id, :nearest_sep, :flags, :rate_ra, :rate_dec, :rate_err, :run_id)"),
                    [{**r, "run_id": run_id} for r in records])
            out.association = associate(conn, cfg.link_radius_arcsec)
            out.tracks = relink(conn)
            if job_id is not None:
                queue.mark_done(conn, job_id, None)
    out.n_sources = len(records)
    out.wall_time_s = time.perf_counter() - t0
    log.info("dia %s %s: %d epochs differenced (%d kept), %d sources in %.1f s", cell.name, filter_name,
             len(out.epochs), out.reused, out.n_sources, out.wall_time_s)
    return out


def _read_inputs(archive: Archive, rows: list[LiveProduct], need: list[int]) -> dict[int, L2Input]:
    """The L2s ``need`` (indices into ``rows``) read into arrays (MJy/sr)."""
    with tempfile.TemporaryDirectory(prefix="dia-") as tmp:
        return {i: load_l2(archive.store.local_file(rows[i].uri, Path(tmp) / rows[i].filename), rows[i].product_id)
                for i in need}


def _difference(archive: Archive, cell: Skycell, filter_name: str, rows: list[LiveProduct],
                groups: list[np.ndarray], todo: list[int], cfg: DiaConfig, out: DiaOutcome) -> list[dict[str, Any]]:
    """Difference epochs ``todo`` (indices into ``groups``, >= 1); returns ``dia_sources`` records."""
    records: list[dict[str, Any]] = []
    if not todo:
        return records
    # Only the L2s the new epochs need: their own and every earlier one (the template).
    need = sorted({int(i) for e in todo for i in np.concatenate(groups[:e + 1])})
    inputs = _read_inputs(archive, rows, need)
    to_njy = grid_njy_factor(cell.pixel_scale)  # the differences are measured on the skycell grid
    epochs, out.n_coadds = difference_epochs(inputs, [(r.t_min, r.t_max) for r in rows], groups, todo,
                                             cell, filter_name, cfg)
    for ep in epochs:
        with archive.engine.connect() as conn:
            near, sep = _nearest(conn, ep.ra, ep.dec)
        records.extend(_records(ep, rows, cell.name, filter_name, near, sep, to_njy, cfg))
        res = ep.result
        out.epochs.append({"mjd": ep.mjd, "n_science": len(ep.science), "n_template": len(ep.template),
                           "n_sources": len(ep.x), "noise_scale": res.noise_scale, "psf_matched": res.convolved,
                           "threshold": res.threshold, "residual_frac": res.residual_frac, "rejected": res.rejected,
                           "psf_widths": res.widths})
    return records


def _records(ep: EpochDifference, rows: list[LiveProduct], cell_name: str, filter_name: str, near: np.ndarray,
             sep: np.ndarray, to_njy: float, cfg: DiaConfig) -> list[dict[str, Any]]:
    """``dia_sources`` rows of one epoch's detections (fluxes in nJy, linked to the nearest static object)."""
    res = ep.result
    flags = res.flags | np.where(~(sep < cfg.link_radius_arcsec), DIA_NEW, 0).astype(np.int16)
    sci_ids = json.dumps([rows[i].product_id for i in ep.science])
    tmpl_ids = json.dumps(sorted(rows[i].product_id for i in ep.template))
    return [{
        "skycell": cell_name, "filter": filter_name, "mjd": ep.mjd, "science_ids": sci_ids,
        "template_ids": tmpl_ids, "ra": float(ep.ra[k]), "dec": float(ep.dec[k]),
        "x": float(ep.x[k]), "y": float(ep.y[k]), "flux": float(res.flux[k] * to_njy),
        "flux_err": float(res.flux_err[k] * to_njy), "snr": float(res.snr[k]),
        "flux_template": float(res.flux_template[k] * to_njy),
        "nearest_source_id": int(near[k]) if near[k] >= 0 else None,
        "nearest_sep": float(sep[k]) if np.isfinite(sep[k]) else None, "flags": int(flags[k]),
        **{name: (float(v[k]) if np.isfinite(v[k]) else None)
           for name, v in (("rate_ra", ep.rates.ra), ("rate_dec", ep.rates.dec), ("rate_err", ep.rates.err))},
    } for k in range(len(ep.x))]


def run_dia(archive: Archive, job: queue.Job) -> int:
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
