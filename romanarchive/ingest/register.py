"""Write described, stored files into the registry, in bulk and inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from romanarchive.archive import Archive
from romanarchive.db.tables import EXPOSURE_IDENTITY, exposures, files, products, reference_files
from romanarchive.ingest.inspect import MEDIA_TYPE, Description
from romanarchive.jobs.queue import enqueue
from romanarchive.mosaic.job import queue_mosaics
from romanarchive.store.objectstore import StoredObject
from romanarchive.timeseries.forced import queue_new_l2

CALIBRATE = "calibrate"


def discard_unregistered(archive: Archive, key: str) -> None:
    """Remove a stored object unless a ``files`` row points at it.

    Used after a failed registration: the object may have been written by a concurrent ingest of the same content
    that did commit, and that one must keep it.
    """
    with archive.engine.connect() as conn:
        referenced = conn.execute(sa.select(files.c.file_id).where(files.c.uri == key)).first()
    if referenced is None:
        archive.store.delete(key)


@dataclass(frozen=True)
class Registered:
    """Ids written for one item."""

    file_id: int
    product_id: int | None = None
    exposure_id: int | None = None
    ref_id: int | None = None
    job_id: int | None = None


def _upsert_files(conn: sa.Connection, items: list[tuple[StoredObject, str]]) -> list[int]:
    rows = [{"uri": s.key, "filename": name, "size": s.size, "sha256": s.sha256, "media_type": MEDIA_TYPE}
            for s, name in items]
    stmt = insert(files)
    # Same content is one file: a conflict returns the existing row (the no-op update makes RETURNING see it).
    stmt = stmt.on_conflict_do_update(index_elements=["sha256"], set_={"sha256": stmt.excluded.sha256})
    # executemany with RETURNING: SQLAlchemy batches it ("insertmanyvalues") and keeps the parameter order.
    return list(conn.execute(stmt.returning(files.c.file_id, sort_by_parameter_order=True), rows).scalars())


def _upsert_exposures(conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
    stmt = insert(exposures)
    updatable = {k: stmt.excluded[k] for k in rows[0] if k not in EXPOSURE_IDENTITY}
    stmt = stmt.on_conflict_do_update(index_elements=list(EXPOSURE_IDENTITY), set_=updatable)
    return list(conn.execute(stmt.returning(exposures.c.exposure_id, sort_by_parameter_order=True), rows).scalars())


def register(conn: sa.Connection, items: list[tuple[Description, StoredObject, str]],
             queue_calibration: bool = True, queue_mosaic: bool = True) -> list[Registered]:
    """Register stored files: file rows, exposures, products or reference files, and calibration jobs for L1.

    Parameters
    ----------
    conn
        Connection inside a transaction; nothing is committed here.
    items
        (description, stored object, original file name) for each file.
    queue_calibration
        Queue a calibration job for every new L1 product.
    queue_mosaic
        Queue a ``mosaic`` job for every skycell + filter a new L2 product touches.

    Returns
    -------
    list of Registered
        Ids per item, in order.
    """
    if not items:
        return []
    file_ids = _upsert_files(conn, [(s, name) for _, s, name in items])
    out: list[Registered] = [Registered(fid) for fid in file_ids]
    prod_idx = [i for i, (d, _, _) in enumerate(items) if d.kind == "product"]
    if prod_idx:
        exp_ids = _upsert_exposures(conn, [items[i][0].exposure for i in prod_idx])
        rows = [
            {"level": items[i][0].level, "product_type": items[i][0].product_type, "exposure_id": eid,
             "file_id": file_ids[i], **items[i][0].product}
            for i, eid in zip(prod_idx, exp_ids, strict=True)
        ]
        pids = conn.execute(
            insert(products).returning(products.c.product_id, sort_by_parameter_order=True), rows
        ).scalars().all()
        l1 = [pid for i, pid in zip(prod_idx, pids, strict=True) if items[i][0].level == 1]
        queued = enqueue(conn, CALIBRATE, l1) if queue_calibration else {}
        if queue_mosaic:
            queue_mosaics(conn, [(r.get("s_region"), r.get("filter")) for r in rows if r["level"] == 2])
        queue_new_l2(conn, [p for p, r in zip(pids, rows, strict=True) if r["level"] == 2])  # light curves, DIA
        for i, eid, pid in zip(prod_idx, exp_ids, pids, strict=True):
            out[i] = Registered(file_ids[i], product_id=pid, exposure_id=eid, job_id=queued.get(pid))
    ref_idx = [i for i, (d, _, _) in enumerate(items) if d.kind == "reference"]
    if ref_idx:
        rids = conn.execute(
            insert(reference_files).returning(reference_files.c.ref_id, sort_by_parameter_order=True),
            [{"file_id": file_ids[i], **items[i][0].reference} for i in ref_idx],
        ).scalars().all()
        for i, rid in zip(ref_idx, rids, strict=True):
            out[i] = Registered(file_ids[i], ref_id=rid)
    return out
