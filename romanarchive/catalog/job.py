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
from typing import Any

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.catalog.config import CatalogConfig
from romanarchive.catalog.load import replace_skycell
from romanarchive.catalog.select import CatalogInputError
from romanarchive.catalog.step import STEP_NAME, CatalogStep, LoadedImage, StepResult, bright_stars_of_l2, load_image
from romanarchive.crds_offline import configure_offline
from romanarchive.db import product_types
from romanarchive.db.tables import files, products
from romanarchive.db.tables_catalog import LIVE, OBJECTS
from romanarchive.db.types import numpy_dtype
from romanarchive.ingest.query import live_l2, newest_reference
from romanarchive.ingest.register import Provenance, Registration, discard_unregistered, retire_products
from romanarchive.jobs import queue
from romanarchive.sky.footprint import centre_and_fov, healpix29, spoly_literal, wcs_corners
from romanarchive.sky.skycells import skycell as skycell_of

KIND = "catalog"
OBJECTS_COLUMNS = {c.name: c for c in OBJECTS.columns}
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
        configure_offline(archive.settings.crds_path)  # before romancal is imported
        inputs = [load_image(archive.store.local_file(r.uri, scratch / r.filename), r.product_id) for r in rows]
        refs = catalog_references(archive, [im.band for im in inputs], scratch)
        bright = bright_stars_of_l2(_l2_under(archive, cell, [im.band for im in inputs], scratch))
        result = CatalogStep(config, refs).run(inputs, cell, bright)
        return _register(archive, job, cell, result, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _l2_under(archive: Archive, cell: str, bands: list[str], folder: Path) -> list[Path]:
    """Local paths of the live L2s of ``bands`` over the skycell (their DQ marks saturated stars)."""
    corners = skycell_of(cell).corners()
    with archive.engine.connect() as conn:
        rows = [r for band in bands for r in live_l2(conn, corners, band)]
    return [archive.store.local_file(r.uri, folder / "l2" / r.filename) for r in rows]


def catalog_references(archive: Archive, bands: list[str], folder: Path) -> dict[str, dict[str, Path]]:
    """Each band's newest ``apcorr`` and ``epsf`` reference files from the archive, as local paths.

    Raises
    ------
    CatalogInputError
        When a band has no such reference file (nothing can be measured without its PSF).
    """
    out: dict[str, dict[str, Path]] = {}
    with archive.engine.connect() as conn:
        for band in bands:
            for reftype in ("apcorr", "epsf"):
                found = newest_reference(conn, reftype, band)
                if found is None:
                    raise CatalogInputError(f"no {reftype} reference file for {band}: ingest a reference set "
                                            "(romanarchive simulate writes one under refs/)")
                out.setdefault(band, {})[reftype] = archive.store.local_file(found[0], folder / "refs" / found[1])
    return out


def _file_table(romancal_rows: Any, n: int) -> Any:
    """romancal's full table for the kept objects, padded to ``n`` rows (the saturated stars the archive adds have
    no romancal measurement: NaN, 0 or False) — rad's catalog schema requires every column romancal writes."""
    from astropy.table import Table

    out = Table(meta=dict(romancal_rows.meta))
    k = len(romancal_rows)
    for name in romancal_rows.colnames:
        col = romancal_rows[name]
        arr = np.ma.filled(np.ma.asarray(getattr(col, "value", col)),
                           np.nan if np.asarray(col).dtype.kind == "f" else 0)
        pad = np.full(n - k, np.nan if arr.dtype.kind == "f" else 0, dtype=arr.dtype)
        out[name] = np.concatenate([np.asarray(arr), pad]).astype(arr.dtype)
        if getattr(col, "unit", None) is not None:
            out[name].unit = col.unit
    return out


def _write_files(result: StepResult, ids: np.ndarray, cell: str, folder: Path) -> tuple[Path, Path]:
    """The L4 files as romancal writes them: a MultibandSourceCatalogModel (parquet-free ASDF) holding the object
    rows (rad columns, plus the archive's ``source_id`` and summary columns) and a MultibandSegmentationMapModel
    on the skycell grid, with the ``label`` -> ``source_id`` map of the objects."""

    cat = result.catalog
    table = _file_table(cat.table, len(ids))
    table["source_id"] = np.asarray(ids, np.int64)
    for name, values in cat.columns.items():  # the archive's values, in rad's dtypes and units (one type system)
        spec = OBJECTS_COLUMNS.get(name)
        if spec is None:
            continue
        arr = np.asarray(values)
        if spec.type == "boolean":
            arr = np.nan_to_num(arr.astype(float), nan=0.0) != 0
        elif spec.type in ("smallint", "integer", "bigint"):
            if arr.dtype.kind == "f":  # integer columns come as floats where NaN marked missing
                arr = np.nan_to_num(arr, nan=0.0)
            arr = arr.astype(numpy_dtype(spec.type, big_endian=False))
        else:
            arr = arr.astype(numpy_dtype(spec.type, big_endian=False))
        unit = table[name].unit if name in table.colnames else None
        table[name] = arr
        if unit is not None:
            table[name].unit = unit
        elif spec.unit:
            table[name].unit = spec.unit.replace("**", "").replace(".", " ")
    model = result.catalog_model
    model.source_catalog = table
    model.meta.filename = f"{cell}_cat.asdf"
    cat_path = folder / model.meta.filename
    model.save(cat_path)
    segm = result.segmentation_model
    segm.data = cat.segmentation.astype(np.uint32)
    labels = np.asarray(cat.columns["label"], dtype=np.int64)
    lut = np.zeros(int(max(labels.max(initial=0), segm.data.max(initial=0))) + 1, dtype=np.int64)
    lut[labels[labels > 0]] = ids[labels > 0]
    segm["label_source_id"] = lut
    segm.meta.filename = f"{cell}_segm.asdf"
    segm_path = folder / segm.meta.filename
    segm.save(segm_path, all_array_compression="lz4")
    return cat_path, segm_path


def _register(archive: Archive, job: queue.Job | None, cell: str, result: StepResult,
              folder: Path) -> CatalogOutcome:
    first = result.inputs[0]
    corners = wcs_corners(first.wcs, first.data.shape)
    ra, dec, fov = centre_and_fov(corners)
    product = dict(obs_id=cell, filter="+".join(result.catalog.bands)[:20], s_fov=fov,
                   s_xel1=first.data.shape[1], s_xel2=first.data.shape[0],
                   s_region=spoly_literal(corners), s_ra=ra, s_dec=dec, hpx=int(healpix29(ra, dec)[0]))
    # Light curves follow the catalog: the wiring's rule for new L4 catalogs (re-)queues forced photometry of the
    # skycell's live L2s in this same transaction.
    with Registration.open(archive, job) as reg:
        ids = replace_skycell(reg.conn, cell, result.catalog.columns)
        paths = _write_files(result, ids, cell, folder)
        prov = Provenance(
            STEP_NAME, result.software,
            {**result.parameters, "skycell": cell, "n_objects": len(ids),
             "reference_band": result.catalog.reference_band, "selection": result.catalog.stats},
            [{"product_id": x.product_id, "filename": x.filename} for x in result.inputs],
            wall_time_s=result.wall_time_s, peak_rss_mb=result.peak_rss_mb)
        pids = tuple(reg.add(path, level=4, product_type=ptype, prefix="l4", product=product, provenance=prov)
                     for path, ptype in zip(paths, (CAT_TYPE, SEGM_TYPE), strict=True))
        freed = _retire(reg.conn, cell, keep=pids)
    _discard(archive, freed)
    return CatalogOutcome(cell, len(ids), pids, result.catalog.bands, result.wall_time_s)


def _retire(conn: sa.Connection, cell: str, keep: tuple[int, ...]) -> list[str]:
    """Take the skycell's earlier live L4s out of the live set; returns store keys no row uses any more."""
    old = conn.execute(
        sa.select(products.c.product_id)
        .where(products.c.product_type.in_((CAT_TYPE, SEGM_TYPE)), products.c.obs_id == cell,
               products.c.release == LIVE, products.c.product_id.not_in(keep or (-1,)))
    ).scalars().all()
    return retire_products(conn, old)


def _discard(archive: Archive, keys: list[str]) -> None:
    for key in keys:
        discard_unregistered(archive, key)


__all__ = ["KIND", "CatalogInputError", "CatalogOutcome", "catalog_skycell", "run_catalog", "LoadedImage"]
