"""The ``mosaic`` job: rebuild one skycell + filter from all its live L2 images and register the L3.

Queued by :func:`queue_mosaics` whenever an L2 is registered (ingest or calibration), in the registration's
transaction, once per skycell the L2 touches. The new L3 replaces the previous live L3 of its skycell and filter:

* a previous L3 that no data release froze is deleted (product, provenance, and its file when nothing else uses it);
* a previous L3 that a release froze keeps its row and file and is re-tagged from ``live`` to its newest release,
  so frozen releases stay complete while only the new L3 is live.

As with calibration, the L3 is written in a per-job scratch folder, its store key is recorded on the job before the
upload, and its rows, the retirement of the old L3, the job's completion and the follow-up ``catalog`` job commit in
one transaction.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db import product_types
from romanarchive.db.tables import products
from romanarchive.imaging.l2 import load_l2
from romanarchive.ingest.inspect import bandpass_limits
from romanarchive.ingest.query import LiveProduct, live_l2
from romanarchive.ingest.register import Provenance, Registration, discard_unregistered, retire_products
from romanarchive.jobs import queue
from romanarchive.mosaic.step import MosaicConfig, MosaicResult, MosaicStep
from romanarchive.sky.footprint import centre_and_fov, healpix29, spoly_literal
from romanarchive.sky.skycells import Skycell, parse_spoly, skycell, skycells_for_footprint

KIND = "mosaic"
L3_TYPE = product_types.L3
L2_TYPE = product_types.L2


def target_of(cell: str, filter_name: str) -> str:
    """Job target of a skycell and filter."""
    return f"{cell} {filter_name}"


def queue_mosaics(conn: sa.Connection, footprints: Iterable[tuple[str | None, str | None]]) -> list[int]:
    """Queue a ``mosaic`` job for every skycell + filter that new L2 footprints touch.

    Parameters
    ----------
    conn
        The registration's connection (inside its transaction).
    footprints
        (s_region pgsphere literal, filter) of each new L2; items without either are skipped.

    Returns
    -------
    list of int
        Ids of the jobs queued now (targets that already had a waiting job are not queued again).
    """
    targets: dict[str, dict[str, str]] = {}
    for region, filter_name in footprints:
        if not region or not filter_name:
            continue
        for cell in skycells_for_footprint(region):
            targets[target_of(cell.name, filter_name)] = {"skycell": cell.name, "filter": filter_name}
    out = []
    for target, params in sorted(targets.items()):
        jid = queue.enqueue_target(conn, KIND, target, params)
        if jid is not None:
            out.append(jid)
    return out


def live_inputs(conn: sa.Connection, cell: Skycell, filter_name: str) -> list[LiveProduct]:
    """Live L2 products of a filter whose footprint overlaps the skycell."""
    return live_l2(conn, cell.corners(), filter_name)


def build_and_register(archive: Archive, cell_name: str, filter_name: str, job: queue.Job | None = None,
                       config: MosaicConfig | None = None) -> int | None:
    """Co-add the live L2s of a skycell + filter and register the L3; returns its product id.

    Parameters
    ----------
    archive
        The archive.
    cell_name, filter_name
        What to build.
    job
        The claimed job (marked done in the registration's transaction), or ``None`` when run by hand.
    config
        A :class:`~romanarchive.mosaic.step.MosaicConfig` (default settings when ``None``).

    Returns
    -------
    int or None
        The new L3's product id, or ``None`` when no live L2 overlaps the cell (any live L3 of it is retired).
    """
    cell = skycell(cell_name)
    scratch = archive.settings.scratch / f"mosaic-{job.job_id if job else 'cli'}-{cell.name}-{filter_name}"
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)
    if job is not None and job.output_key:
        discard_unregistered(archive, job.output_key)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with archive.engine.connect() as conn:
            rows = live_inputs(conn, cell, filter_name)
        if not rows:
            with archive.engine.begin() as conn:
                freed = _retire(conn, cell.name, filter_name, keep=None)
                if job is not None:
                    queue.mark_done(conn, job.job_id, None)
            _discard(archive, freed)
            return None
        paths = [archive.store.local_file(r.uri, scratch / "in" / r.filename) for r in rows]
        result = MosaicStep(config).run([load_l2(p, r.product_id) for p, r in zip(paths, rows, strict=True)],
                                        cell)
        out_name = f"{cell.name}_{filter_name.lower()}_i2d.asdf"
        result.write(scratch / out_name)
        return _register_l3(archive, job, result, scratch / out_name, cell, filter_name, rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _register_l3(archive: Archive, job: queue.Job | None, result: MosaicResult, path: Path, cell: Skycell,
                 filter_name: str, rows: list[LiveProduct]) -> int:
    used_ids = {x.product_id for x in result.inputs}
    used = [r for r in rows if r.product_id in used_ids]
    corners = cell.corners()
    ra, dec, fov = centre_and_fov(corners)
    em_min, em_max = bandpass_limits(filter_name)
    t_min = [r.t_min for r in used if r.t_min is not None]
    t_max = [r.t_max for r in used if r.t_max is not None]
    prov = Provenance(
        "romanarchive.MosaicStep", result.software,
        {**result.parameters, "skycell": cell.name, "filter": filter_name, "sky": result.coadd.sky,
         "n_outliers": result.coadd.n_outliers},
        [{"product_id": r.product_id, "filename": r.filename} for r in used],
        wall_time_s=result.wall_time_s, peak_rss_mb=result.peak_rss_mb)
    # The wiring's rules queue the skycell's catalog in the same transaction.
    with Registration.open(archive, job) as reg:
        reg.conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"l3:{cell.name} {filter_name}"})
        pid = reg.add(path, level=3, product_type=L3_TYPE, prefix="l3", provenance=prov, product=dict(
            obs_id=cell.name, filter=filter_name, t_min=min(t_min) if t_min else None,
            t_max=max(t_max) if t_max else None, t_exptime=float(sum(x.exptime for x in result.inputs)),
            em_min=em_min, em_max=em_max, s_fov=fov, s_xel1=cell.shape[1], s_xel2=cell.shape[0],
            s_region=spoly_literal(corners), s_ra=ra, s_dec=dec, hpx=int(healpix29(ra, dec)[0])))
        freed = _retire(reg.conn, cell.name, filter_name, keep=pid)
    _discard(archive, freed)
    return pid


def _discard(archive: Archive, keys: list[str]) -> None:
    for key in keys:
        discard_unregistered(archive, key)


def _retire(conn: sa.Connection, cell_name: str, filter_name: str, keep: int | None) -> list[str]:
    """Take earlier live L3s of a skycell + filter out of the live set (see the module docstring).

    Returns the store keys of files no row uses any more; the caller removes them after the commit (removing
    first could lose an object that a failed transaction still references).
    """
    # Serialise registrations of one skycell + filter, so two concurrent jobs cannot both stay live.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"l3:{cell_name} {filter_name}"})
    old = conn.execute(
        sa.select(products.c.product_id)
        .where(products.c.product_type == L3_TYPE, products.c.obs_id == cell_name,
               products.c.filter == filter_name, products.c.release == "live",
               products.c.product_id != (keep if keep is not None else -1))
    ).scalars().all()
    return retire_products(conn, old)


def run_mosaic(archive: Archive, job: queue.Job) -> int:
    """Job handler: rebuild the job's skycell + filter; returns the new L3 product id (0 when none)."""
    params = job.params or {}
    cell_name, filter_name = params.get("skycell"), params.get("filter")
    if not cell_name or not filter_name:
        raise ValueError(f"mosaic job {job.job_id} lacks skycell/filter parameters ({params})")
    pid = build_and_register(archive, str(cell_name), str(filter_name), job)
    return pid or 0


def footprints_of(conn: sa.Connection, product_ids: list[int]) -> list[tuple[str | None, str | None]]:
    """(s_region in degrees, filter) of products, for :func:`queue_mosaics`."""
    rows = conn.execute(
        sa.select(sa.func.cast(products.c.s_region, sa.Text), products.c.filter)
        .where(products.c.product_id.in_(product_ids))
    ).all()
    return [(r[0], r[1]) for r in rows]


__all__ = ["KIND", "build_and_register", "footprints_of", "live_inputs", "parse_spoly", "queue_mosaics",
           "run_mosaic", "target_of"]
