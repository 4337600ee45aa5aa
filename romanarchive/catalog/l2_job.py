"""The ``l2_catalog`` job: one live L2 image -> its source catalog rows in ``l2_sources`` + a ``wfi_l2_cat`` product.

Queued when an L2 is registered (the rule in :mod:`romanarchive.catalog.wiring`). Order of effects, as the L4
catalog's: the catalog is measured first (bad inputs fail here and write nothing); then, in one registration
(one transaction), the image's earlier rows are deleted and the new ones loaded with one binary COPY, the
catalog file (romancal's ``ImageSourceCatalogModel``, ASDF) is registered as a level-2 ``wfi_l2_cat`` product of the
image's exposure with provenance (input L2, reference files, step parameters, software), and the exposure's earlier
catalog product is retired (deleted, or re-tagged to its newest release when a release froze it).

Rows are tied to the L2's ``product_id`` (deleted with it: a re-calibrated exposure's new L2 queues its own
catalog, which replaces the exposure's catalog product). The catalog product has no footprint or time range on its
``products`` row, as the ePSF library's: the rules and queries that take "level-2 products over a region or time"
for images must not take it for one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.catalog.l2_step import REFTYPES, STEP_NAME, L2CatalogConfig, L2CatalogStep, L2StepResult
from romanarchive.catalog.load import spoint_wire
from romanarchive.catalog.select import CatalogInputError
from romanarchive.catalog.step import load_image
from romanarchive.crds_offline import configure_offline
from romanarchive.db import product_types
from romanarchive.db.bulk import copy_arrays
from romanarchive.db.tables import files, products
from romanarchive.db.tables_l2cat import L2_SOURCES
from romanarchive.db.types import numpy_dtype
from romanarchive.ingest.query import newest_reference
from romanarchive.ingest.register import Provenance, Registration, discard_unregistered, retire_products
from romanarchive.jobs import queue

KIND = "l2_catalog"
CAT_TYPE = product_types.L2_CATALOG
_CONSTANT = {"product_id", "filter", "detector", "mjd"}  # one value per image, not from romancal's table


@dataclass(frozen=True)
class L2Image:
    """A live L2 product and what its catalog rows carry from it."""

    product_id: int
    exposure_id: int | None
    obs_id: str | None
    filter: str
    detector: str | None
    mjd: float | None
    em_min: float | None
    em_max: float | None
    uri: str
    filename: str


@dataclass(frozen=True)
class L2CatalogOutcome:
    """What one image's catalog run produced."""

    product_id: int
    n_sources: int
    catalog_product_id: int | None
    wall_time_s: float


def live_l2_images(conn: sa.Connection, product_ids: list[int] | None = None) -> list[L2Image]:
    """Live L2 images (all, or those of ``product_ids``), in product order."""
    p = products
    stmt = (sa.select(p.c.product_id, p.c.exposure_id, p.c.obs_id, p.c.filter, p.c.detector,
                      (p.c.t_min + sa.func.coalesce(p.c.t_max, p.c.t_min)) / 2, p.c.em_min, p.c.em_max, files.c.uri,
                      files.c.filename)
            .join(files, files.c.file_id == p.c.file_id)
            .where(p.c.level == 2, p.c.product_type == product_types.L2, p.c.release == "live")
            .order_by(p.c.product_id))
    if product_ids is not None:
        stmt = stmt.where(p.c.product_id.in_(product_ids))
    return [L2Image(*r) for r in conn.execute(stmt).all()]


def l2_references(archive: Archive, image: L2Image, band: str, folder: Path) -> dict[str, Path]:
    """The newest ``apcorr`` and ``epsf`` reference files of the image's filter (its detector's first), as local
    paths.

    Raises
    ------
    CatalogInputError
        When one is missing (nothing can be measured without its PSF).
    """
    out: dict[str, Path] = {}
    with archive.engine.connect() as conn:
        for reftype in REFTYPES:
            found = newest_reference(conn, reftype, band, [image.detector] if image.detector else ())
            if found is None:
                raise CatalogInputError(f"no {reftype} reference file for {band}: ingest a reference set "
                                        "(romanarchive simulate writes one under refs/)")
            out[reftype] = archive.store.local_file(found[0], folder / "refs" / found[1])
    return out


def run_l2_catalog(archive: Archive, job: queue.Job) -> int:
    """Job handler: catalogue the job's L2 image; returns the catalog product id (0 when the image is gone)."""
    if job.product_id is None:
        raise ValueError(f"l2_catalog job {job.job_id} names no product")
    out = catalog_l2(archive, int(job.product_id), job)
    return out.catalog_product_id or 0


def catalog_l2(archive: Archive, product_id: int, job: queue.Job | None = None,
               config: L2CatalogConfig | None = None) -> L2CatalogOutcome:
    """Build, load and register the source catalog of one live L2 image.

    An image that is no longer live (re-calibrated since the job was queued) is skipped: its rows went with it.

    Raises
    ------
    CatalogInputError
        When the image cannot be catalogued (no WCS, not an imaging filter, a reference file missing); nothing is
        written then.
    """
    with archive.engine.connect() as conn:
        found = live_l2_images(conn, [product_id])
    if not found:
        if job is not None:
            with archive.engine.begin() as conn:
                queue.mark_done(conn, job.job_id, None)
        return L2CatalogOutcome(product_id, 0, None, 0.0)
    image = found[0]
    scratch = archive.settings.scratch / f"l2cat-{job.job_id if job else 'cli'}-{product_id}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        configure_offline(archive.settings.crds_path)  # before romancal is imported
        loaded = load_image(archive.store.local_file(image.uri, scratch / image.filename), product_id)
        refs = l2_references(archive, image, loaded.band, scratch)
        result = L2CatalogStep(config, refs).run(loaded)
        return _register(archive, job, image, result, refs, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def wire_columns(table: Any, image: L2Image) -> dict[str, np.ndarray]:
    """romancal's table as ``l2_sources`` wire arrays, in table order (NaN -> NULL, ``pos`` from ra/dec)."""
    n = len(table)
    consts: dict[str, np.ndarray] = {
        "product_id": np.full(n, image.product_id, np.int64),
        "filter": np.full(n, image.filter.encode(), dtype=f"S{max(1, len(image.filter))}"),
    }
    if image.detector:
        consts["detector"] = np.full(n, image.detector.encode(), dtype=f"S{len(image.detector)}")
    if image.mjd is not None:
        consts["mjd"] = np.full(n, float(image.mjd))
    out: dict[str, np.ndarray] = {}
    for c in L2_SOURCES.columns:
        if c.name in consts:
            out[c.name] = consts[c.name]
            continue
        if c.name == "pos":
            out["pos"] = spoint_wire(np.asarray(table["ra"], float), np.asarray(table["dec"], float))
            continue
        if c.name in _CONSTANT or c.name not in table.colnames:
            continue
        col = table[c.name]
        raw = np.ma.asarray(getattr(col, "value", col))
        if c.type == "boolean":
            out[c.name] = np.ma.filled(raw, False).astype(np.bool_)
            continue
        dtype = numpy_dtype(c.type, big_endian=False)
        if dtype.kind == "f":
            arr = np.ascontiguousarray(np.ma.filled(raw.astype(dtype), np.nan))
            nan = np.isnan(arr)
            out[c.name] = np.ma.MaskedArray(arr, mask=nan) if nan.any() and c.nullable else arr
        else:
            mask = np.ma.getmaskarray(raw)
            arr = np.ascontiguousarray(np.ma.filled(raw, 0).astype(dtype))
            out[c.name] = np.ma.MaskedArray(arr, mask=mask) if mask.any() else arr
    return out


def replace_rows(conn: sa.Connection, image: L2Image, table: Any) -> int:
    """Replace the image's ``l2_sources`` rows with ``table`` (inside the caller's transaction); returns the rows."""
    conn.execute(sa.text("DELETE FROM l2_sources WHERE product_id = :p"), {"p": image.product_id})
    if not len(table):
        return 0
    conn.execute(sa.text("SET LOCAL synchronous_commit = off"))  # a lost last commit is rebuilt by re-running
    return copy_arrays(conn.connection.driver_connection, "l2_sources",  # type: ignore[arg-type]
                       wire_columns(table, image))


def _register(archive: Archive, job: queue.Job | None, image: L2Image, result: L2StepResult,
              refs: dict[str, Path], folder: Path) -> L2CatalogOutcome:
    model = result.catalog_model
    stem = Path(image.filename).stem.removesuffix("_cal")
    model.meta.filename = f"{stem}_cat.asdf"
    path = folder / model.meta.filename
    model.save(path)
    prov = Provenance(
        STEP_NAME, result.software,
        {**result.parameters, "n_sources": len(result.table), "n_without_position": result.n_without_position},
        [{"product_id": image.product_id, "filename": image.filename}],
        {t: p.name for t, p in refs.items()}, result.wall_time_s, result.peak_rss_mb)
    product = dict(exposure_id=image.exposure_id, obs_id=image.obs_id, filter=image.filter,
                   detector=image.detector, em_min=image.em_min, em_max=image.em_max)
    with Registration.open(archive, job) as reg:
        # Runs of one image take turns until commit (a retried job racing a stale worker).
        reg.conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"l2cat:{image.product_id}"})
        n = replace_rows(reg.conn, image, result.table)
        freed = _retire(reg.conn, image)
        pid = reg.add(path, level=2, product_type=CAT_TYPE, prefix="l2cat", product=product, provenance=prov)
    for key in freed:
        discard_unregistered(archive, key)
    return L2CatalogOutcome(image.product_id, n, pid, result.wall_time_s)


def _retire(conn: sa.Connection, image: L2Image) -> list[str]:
    """Take the exposure's earlier catalog products out of the live set; returns store keys no row uses any more.

    One frozen by a release keeps its row, re-tagged with that release and detached from the exposure (one live
    catalog product per exposure)."""
    same = (products.c.exposure_id == image.exposure_id if image.exposure_id is not None
            else products.c.obs_id == image.obs_id)
    old = conn.execute(sa.select(products.c.product_id)
                       .where(products.c.product_type == CAT_TYPE, products.c.release == "live", same)).scalars().all()
    return retire_products(conn, old, detach_exposure=True)


def queue_l2(conn: sa.Connection, product_ids: list[int]) -> dict[int, int]:
    """Queue the catalog of each of these L2 images (inside the registering transaction)."""
    return queue.enqueue(conn, KIND, sorted(product_ids))


def run_all(archive: Archive, product_ids: list[int] | None = None, config: L2CatalogConfig | None = None,
            progress: bool = False) -> tuple[list[L2CatalogOutcome], list[tuple[int, str]]]:
    """Catalogue live L2 images (all, or ``product_ids``) one after the other; returns outcomes and errors."""
    from tqdm import tqdm

    with archive.engine.connect() as conn:
        pids = [im.product_id for im in live_l2_images(conn, product_ids)]
    done: list[L2CatalogOutcome] = []
    errors: list[tuple[int, str]] = []
    for pid in tqdm(pids, unit="image", desc="l2-catalog", disable=not progress or len(pids) < 2):
        try:
            done.append(catalog_l2(archive, pid, config=config))
        except CatalogInputError as exc:
            errors.append((pid, str(exc)))
    return done, errors


__all__ = ["KIND", "L2CatalogOutcome", "catalog_l2", "live_l2_images", "queue_l2", "run_all", "run_l2_catalog"]
