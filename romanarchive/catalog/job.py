"""The ``catalog`` job: all live L3s of a skycell -> catalog rows in ``objects`` + L4 products with provenance.

Queued when an L3 is registered (the rule in :mod:`romanarchive.catalog.wiring`). Order of
effects: the catalog is measured first (bad inputs fail here and write nothing); then, in one registration
(:class:`~romanarchive.ingest.register.Registration`, one transaction), the
skycell's live rows are replaced (:func:`~romanarchive.catalog.load.replace_skycell`), the catalog file
(``wfi_l4_cat``) and segmentation map (``wfi_l4_segm``) are registered as level-4 products whose provenance lists
the input L3s, and earlier live L4s of the skycell are retired (deleted, or re-tagged to their newest release when a
release froze them). Files are uploaded before that transaction and removed again if it fails.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.catalog.config import CatalogConfig
from romanarchive.catalog.load import replace_skycell
from romanarchive.catalog.measure import CatalogInputError
from romanarchive.catalog.step import STEP_NAME, CatalogStep, LoadedImage, StepResult, load_image
from romanarchive.db import product_types
from romanarchive.db.tables import files, metadata, products
from romanarchive.db.tables_catalog import LIVE
from romanarchive.ingest.register import Provenance, Registration, discard_unregistered
from romanarchive.jobs import queue
from romanarchive.sky.footprint import centre_and_fov, healpix29, spoly_literal, wcs_corners

KIND = "catalog"
L3_TYPE = product_types.L3
CAT_TYPE = product_types.L4_CATALOG
SEGM_TYPE = product_types.L4_SEGMENTATION


@dataclass(frozen=True)
class LiveL3:
    """A live L3 of a skycell and its stored file."""

    product_id: int
    filter: str
    uri: str
    filename: str


@dataclass(frozen=True)
class CatalogOutcome:
    """What one skycell's catalog run produced."""

    skycell: str
    n_objects: int
    product_ids: tuple[int, ...]
    bands: tuple[str, ...]
    wall_time_s: float


def live_l3(conn: sa.Connection, cell: str) -> list[LiveL3]:
    """Live L3 products of a skycell: product id, filter, store key and file name."""
    return [LiveL3(*r) for r in conn.execute(
        sa.select(products.c.product_id, products.c.filter, files.c.uri, files.c.filename)
        .join(files, files.c.file_id == products.c.file_id)
        .where(products.c.level == 3, products.c.product_type == L3_TYPE, products.c.obs_id == cell,
               products.c.release == LIVE)
        .order_by(products.c.filter)
    ).all()]


def catalog_skycells(conn: sa.Connection) -> list[str]:
    """Skycells that have a live L3."""
    return list(conn.execute(
        sa.select(products.c.obs_id).where(products.c.product_type == L3_TYPE, products.c.release == LIVE)
        .distinct().order_by(products.c.obs_id)).scalars())


def run_catalog(archive: Archive, job: queue.Job) -> int:
    """Job handler: catalogue the job's skycell; returns the catalog product id (0 when nothing was made)."""
    cell = (job.params or {}).get("skycell") or job.target
    if not cell:
        raise ValueError(f"catalog job {job.job_id} names no skycell")
    out = catalog_skycell(archive, str(cell), job)
    return out.product_ids[0] if out.product_ids else 0


def catalog_skycell(archive: Archive, cell: str, job: queue.Job | None = None,
                    config: CatalogConfig | None = None) -> CatalogOutcome:
    """Build, load and register the catalog of one skycell from all its live L3s (every filter).

    Raises
    ------
    CatalogInputError
        When an L3 cannot be catalogued (no WCS, empty, all NaN); nothing is written then.
    """
    scratch = archive.settings.scratch / f"catalog-{job.job_id if job else 'cli'}-{cell}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with archive.engine.connect() as conn:
            rows = live_l3(conn, cell)
        if not rows:  # every L3 was retired: the skycell's live catalog goes too
            with archive.engine.begin() as conn:
                replace_skycell(conn, cell, {"ra": np.empty(0), "dec": np.empty(0)})
                freed = _retire(conn, cell, keep=())
                if job is not None:
                    queue.mark_done(conn, job.job_id, None)
            _discard(archive, freed)
            return CatalogOutcome(cell, 0, (), (), 0.0)
        inputs = []
        for r in rows:
            local = archive.store.local_path(r.uri)
            path = Path(local) if local is not None else Path(archive.store.get_file(r.uri, scratch / r.filename))
            inputs.append(load_image(path, r.product_id))
        result = CatalogStep(config).run(inputs)
        return _register(archive, job, cell, result, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_files(result: StepResult, ids: np.ndarray, cell: str, folder: Path) -> tuple[Path, Path]:
    import asdf
    from astropy.table import Table

    cat = result.catalog
    table = Table({"source_id": ids, **cat.columns})
    meta = {"skycell": cell, "bands": list(cat.bands), "reference_band": cat.reference_band,
            "pixel_scale_arcsec": cat.pixel_scale_arcsec, "inputs": [x.filename for x in result.inputs]}
    cat_path = folder / f"{cell}_cat.asdf"
    asdf.AsdfFile({"roman_catalog": {**meta, "catalog": table}}).write_to(cat_path)
    segm_path = folder / f"{cell}_segm.asdf"
    label_to_id = np.zeros(int(cat.segmentation.max()) + 1, dtype=np.int64)
    label_to_id[np.asarray(cat.columns["segment_id"], dtype=np.int64)] = ids
    asdf.AsdfFile({"roman_segmentation": {**meta, "segmentation": cat.segmentation, "label_source_id": label_to_id,
                                          "wcs": result.inputs[0].wcs}}).write_to(segm_path)
    return cat_path, segm_path


def _register(archive: Archive, job: queue.Job | None, cell: str, result: StepResult,
              folder: Path) -> CatalogOutcome:
    first = result.inputs[0]
    corners = wcs_corners(first.wcs, first.image.data.shape)
    ra, dec, fov = centre_and_fov(corners)
    product = dict(obs_id=cell, filter="+".join(result.catalog.bands)[:20], s_fov=fov,
                   s_xel1=first.image.data.shape[1], s_xel2=first.image.data.shape[0],
                   s_region=spoly_literal(corners), s_ra=ra, s_dec=dec, hpx=int(healpix29(ra, dec)[0]))
    # Light curves follow the catalog: the wiring's rule for new L4 catalogs (re-)queues forced photometry of the
    # skycell's live L2s in this same transaction.
    with Registration.open(archive, job) as reg:
        ids = replace_skycell(reg.conn, cell, result.catalog.columns)
        paths = _write_files(result, ids, cell, folder)
        prov = Provenance(
            STEP_NAME, result.software,
            {**result.parameters, "skycell": cell, "n_objects": len(ids),
             "reference_band": result.catalog.reference_band},
            [{"product_id": x.product_id, "filename": x.filename} for x in result.inputs],
            wall_time_s=result.wall_time_s, peak_rss_mb=result.peak_rss_mb)
        pids = tuple(reg.add(path, level=4, product_type=ptype, prefix="l4", product=product, provenance=prov)
                     for path, ptype in zip(paths, (CAT_TYPE, SEGM_TYPE), strict=True))
        freed = _retire(reg.conn, cell, keep=pids)
    _discard(archive, freed)
    return CatalogOutcome(cell, len(ids), pids, result.catalog.bands, result.wall_time_s)


def _retire(conn: sa.Connection, cell: str, keep: tuple[int, ...]) -> list[str]:
    """Take the skycell's earlier live L4s out of the live set; returns store keys no row uses any more."""
    rp = metadata.tables.get("release_products")
    old = conn.execute(
        sa.select(products.c.product_id, products.c.file_id)
        .where(products.c.product_type.in_((CAT_TYPE, SEGM_TYPE)), products.c.obs_id == cell,
               products.c.release == LIVE, products.c.product_id.not_in(keep or (-1,)))
    ).all()
    freed: list[str] = []
    for pid, file_id in old:
        newest = None
        if rp is not None:
            rel = metadata.tables["releases"]
            newest = conn.execute(
                sa.select(rp.c.release).join(rel, rel.c.release == rp.c.release).where(rp.c.product_id == pid)
                .order_by(rel.c.created_at.desc()).limit(1)).scalar()
        if newest is not None:
            conn.execute(products.update().where(products.c.product_id == pid).values(release=newest))
            continue
        conn.execute(products.delete().where(products.c.product_id == pid))
        if conn.execute(sa.select(products.c.product_id).where(products.c.file_id == file_id)).first() is None:
            key = conn.execute(files.delete().where(files.c.file_id == file_id).returning(files.c.uri)).scalar()
            if key:
                freed.append(str(key))
    return freed


def _discard(archive: Archive, keys: list[str]) -> None:
    for key in keys:
        discard_unregistered(archive, key)


__all__ = ["KIND", "CatalogInputError", "CatalogOutcome", "catalog_skycell", "run_catalog", "LoadedImage"]
