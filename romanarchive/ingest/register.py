"""Product registration: the one way a file becomes an archived product.

Every producer — ingest, calibration, co-adds, catalogs, time series, cross-match, Level 5 — registers its output
the same way, through :class:`Registration` (or :func:`register_product` for a single file):

1. the file's object-store key is recorded on the job *before* the upload (a dead attempt can be cleaned);
2. the file is stored (content-addressed, verified);
3. in **one transaction**: the ``files`` row, the exposure (L1/L2), the ``products`` row with its footprint, the
   ``provenance`` row, whatever else the producer writes on :attr:`Registration.conn`, the job marked done, and the
   jobs the pipeline wiring's rules queue for the new products (:func:`romanarchive.jobs.wiring.fire`);
4. if anything fails, the transaction rolls back and every object stored for it that no row references is removed.

So a kill -9 at any point leaves either nothing or everything. Bulk ingest of many files uses
:func:`register_files`, which writes the same rows with one statement per table and fires the same rules.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from romanarchive.archive import Archive
from romanarchive.db.tables import (
    EXPOSURE_IDENTITY,
    exposures,
    files,
    jobs,
    metadata,
    products,
    provenance,
    reference_files,
)
from romanarchive.ingest.inspect import MEDIA_TYPE, Description
from romanarchive.jobs import queue, wiring
from romanarchive.store.objectstore import StoredObject, content_key, sha256_file


def discard_unregistered(archive: Archive, key: str) -> None:
    """Remove a stored object unless a ``files`` row points at it.

    Used after a failed registration: the object may have been written by a concurrent ingest of the same content
    that did commit, and that one must keep it.
    """
    with archive.engine.connect() as conn:
        referenced = conn.execute(sa.select(files.c.file_id).where(files.c.uri == key)).first()
    if referenced is None:
        archive.store.delete(key)


def retire_products(conn: sa.Connection, product_ids: Sequence[int], keep_released: bool = True,
                    detach_exposure: bool = False) -> list[str]:
    """Take products out of the live set, inside the transaction that registers their replacement.

    A product a data release holds (``keep_released``) keeps its row, re-tagged with the newest such release (and,
    with ``detach_exposure``, no longer tied to its exposure); any other is deleted (its provenance rows cascade),
    with its ``files`` row when no product uses that file any more.

    Returns
    -------
    list of str
        Store keys no ``files`` row uses now: the caller removes them after the commit (removing first could lose
        an object that a failed transaction still references).
    """
    rp, rel = metadata.tables.get("release_products"), metadata.tables.get("releases")
    freed: list[str] = []
    for pid in product_ids:
        if keep_released and rp is not None and rel is not None:
            newest = conn.execute(
                sa.select(rp.c.release).join(rel, rel.c.release == rp.c.release).where(rp.c.product_id == pid)
                .order_by(rel.c.created_at.desc()).limit(1)).scalar()
            if newest is not None:
                values: dict[str, Any] = {"release": newest}
                if detach_exposure:
                    values["exposure_id"] = None
                conn.execute(products.update().where(products.c.product_id == pid).values(**values))
                continue
        file_id = conn.execute(products.delete().where(products.c.product_id == pid)
                               .returning(products.c.file_id)).scalar()
        if file_id is None:
            continue
        if conn.execute(sa.select(products.c.product_id).where(products.c.file_id == file_id)).first() is None:
            key = conn.execute(files.delete().where(files.c.file_id == file_id).returning(files.c.uri)).scalar()
            if key:
                freed.append(str(key))
    return freed


@dataclass(frozen=True)
class Provenance:
    """How a product was made (one ``provenance`` row; host and job are filled in by the registration).

    Attributes
    ----------
    step
        Processing step, e.g. ``romancal.ExposurePipeline``.
    software
        Package versions used.
    parameters
        Step configuration.
    inputs
        Input products, ``[{"product_id": ..., "filename": ...}]``.
    reference_files
        Reference files by type.
    wall_time_s, peak_rss_mb
        Cost of the step.
    """

    step: str
    software: Mapping[str, str]
    parameters: Mapping[str, Any]
    inputs: Sequence[Mapping[str, Any]] = ()
    reference_files: Mapping[str, Any] = field(default_factory=dict)
    wall_time_s: float | None = None
    peak_rss_mb: float | None = None


@dataclass(frozen=True)
class Registered:
    """Ids written for one item of :func:`register_files`."""

    file_id: int
    product_id: int | None = None
    exposure_id: int | None = None
    ref_id: int | None = None
    job_id: int | None = None


def upsert_files(conn: sa.Connection, items: Sequence[tuple[StoredObject, str]],
                 media_type: str = MEDIA_TYPE) -> list[int]:
    """``files`` rows for stored objects (same content is one file); returns their ids in order."""
    rows = [{"uri": s.key, "filename": name, "size": s.size, "sha256": s.sha256, "media_type": media_type}
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


def _new_product(pid: int, row: Mapping[str, Any]) -> wiring.NewProduct:
    return wiring.NewProduct(pid, int(row["level"]), str(row["product_type"]), row.get("obs_id"), row.get("filter"),
                             None if row.get("s_region") is None else str(row["s_region"]))


def register_files(conn: sa.Connection, items: list[tuple[Description, StoredObject, str]]) -> list[Registered]:
    """Register stored files in bulk: file rows, exposures, products or reference files, and what the rules queue.

    Parameters
    ----------
    conn
        Connection inside a transaction; nothing is committed here.
    items
        (description, stored object, original file name) for each file.

    Returns
    -------
    list of Registered
        Ids per item, in order (``job_id``: a job the rules queued on that very product, e.g. its calibration).
    """
    if not items:
        return []
    file_ids = upsert_files(conn, [(s, name) for _, s, name in items])
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
        wiring.fire(conn, [_new_product(pid, r) for pid, r in zip(pids, rows, strict=True)])
        on_product = _jobs_on(conn, list(pids))
        for i, eid, pid in zip(prod_idx, exp_ids, pids, strict=True):
            out[i] = Registered(file_ids[i], product_id=pid, exposure_id=eid, job_id=on_product.get(pid))
    ref_idx = [i for i, (d, _, _) in enumerate(items) if d.kind == "reference"]
    if ref_idx:
        rids = conn.execute(
            insert(reference_files).returning(reference_files.c.ref_id, sort_by_parameter_order=True),
            [{"file_id": file_ids[i], **items[i][0].reference} for i in ref_idx],
        ).scalars().all()
        for i, rid in zip(ref_idx, rids, strict=True):
            out[i] = Registered(file_ids[i], ref_id=rid)
    return out


def _jobs_on(conn: sa.Connection, product_ids: list[int]) -> dict[int, int]:
    """Waiting jobs on each product (what the rules just queued on it)."""
    rows = conn.execute(sa.select(jobs.c.product_id, sa.func.min(jobs.c.job_id))
                        .where(jobs.c.product_id.in_(product_ids), jobs.c.state == "queued")
                        .group_by(jobs.c.product_id)).all()  # fmt: skip
    return {int(p): int(j) for p, j in rows}


class Registration:
    """Register one or more products and finish their job in one transaction (see the module docstring).

    Use through :meth:`open`::

        with Registration.open(archive, job) as reg:
            pid = reg.add(path, level=3, product_type="wfi_l3", prefix="l3", product={...}, provenance=prov)
            reg.conn.execute(...)          # anything else that must commit with it
            reg.done(pid)                  # the job's output (default: the first product added)
    """

    def __init__(self, archive: Archive, conn: sa.Connection, job: queue.Job | None,
                 stored: list[StoredObject] | None = None) -> None:
        self.archive = archive
        self.conn = conn
        self.job = job
        self.stored: list[StoredObject] = [] if stored is None else stored
        self.new: list[wiring.NewProduct] = []
        self._output: int | None = None
        self._done = False

    @classmethod
    @contextmanager
    def open(cls, archive: Archive, job: queue.Job | None = None) -> Iterator[Registration]:
        """A registration in a new transaction; commits on exit, or rolls back and removes stored objects."""
        stored: list[StoredObject] = []  # outlives the transaction: what to remove when it fails
        try:
            with archive.engine.begin() as conn:
                reg = cls(archive, conn, job, stored)
                yield reg
                reg._finish()
        except BaseException:
            for obj in stored:
                discard_unregistered(archive, obj.key)
            raise

    def store(self, path: Path, prefix: str, filename: str | None = None) -> StoredObject:
        """Store a local file (its key recorded on the job first); it is removed again if the registration fails."""
        name = filename or path.name
        sha = sha256_file(path)
        if self.job is not None and not self.stored:  # the job's one output_key: its first (main) file
            queue.set_output_key(self.archive.engine, self.job.job_id, content_key(prefix, sha, name))
        obj = self.archive.store.put_file(path, prefix, filename=name, sha256=sha)
        self.stored.append(obj)
        return obj

    def add(self, path: Path, *, level: int, product_type: str, prefix: str, product: Mapping[str, Any],
            provenance: Provenance | None = None, exposure: Mapping[str, Any] | None = None,
            filename: str | None = None, media_type: str = MEDIA_TYPE) -> int:
        """Store ``path`` and write its files, (exposure,) product and provenance rows; returns the product id.

        Parameters
        ----------
        path
            The local file.
        level, product_type
            Roman data level and product type.
        prefix
            Object-store prefix (``l2``, ``l3``, ...).
        product
            Other ``products`` columns (obs_id, filter, footprint, times, ...).
        provenance
            How it was made.
        exposure
            ``exposures`` values (L1/L2): the exposure is created or updated and linked.
        filename
            Name to store it under (default: the file's own).
        media_type
            IANA media type of the file.
        """
        name = filename or path.name
        obj = self.store(path, prefix, name)
        file_id = upsert_files(self.conn, [(obj, name)], media_type)[0]
        return self.add_product(file_id, level=level, product_type=product_type, product=product,
                                provenance=provenance, exposure=exposure)

    def add_product(self, file_id: int, *, level: int, product_type: str, product: Mapping[str, Any],
                    provenance: Provenance | None = None, exposure: Mapping[str, Any] | None = None) -> int:
        """Write the (exposure,) product and provenance rows of a file that has its ``files`` row; returns its id.

        For producers that store their files themselves (Level 5 hashes and stores them while the database loads
        its table; see :func:`upsert_files`). Parameters as :meth:`add`.
        """
        row: dict[str, Any] = {"level": level, "product_type": product_type, "file_id": file_id, **product}
        if exposure:
            row["exposure_id"] = _upsert_exposures(self.conn, [dict(exposure)])[0]
        pid = int(self.conn.execute(products.insert().values(**row).returning(products.c.product_id)).scalar_one())
        if provenance is not None:
            self.conn.execute(provenance_insert(pid, provenance, self.job))
        self.new.append(_new_product(pid, row))
        return pid

    def done(self, output_product_id: int | None) -> None:
        """The job's output product (``None``: it made none); default is the first product added."""
        self._output = output_product_id
        self._done = True

    def _finish(self) -> None:
        wiring.fire(self.conn, self.new)
        if self.job is not None:
            output = self._output if self._done else (self.new[0].product_id if self.new else None)
            queue.mark_done(self.conn, self.job.job_id, output)


def provenance_insert(product_id: int, prov: Provenance, job: queue.Job | None) -> sa.Insert:
    """The ``provenance`` row of a product."""
    return provenance.insert().values(
        product_id=product_id, step=prov.step, software=dict(prov.software), parameters=dict(prov.parameters),
        inputs=[dict(i) for i in prov.inputs], reference_files=dict(prov.reference_files),
        wall_time_s=prov.wall_time_s, peak_rss_mb=prov.peak_rss_mb, host=socket.gethostname(),
        job_id=job.job_id if job is not None else None,
    )


def register_product(archive: Archive, path: Path, *, level: int, product_type: str, prefix: str,
                     product: Mapping[str, Any], provenance: Provenance | None = None,
                     exposure: Mapping[str, Any] | None = None, job: queue.Job | None = None,
                     filename: str | None = None) -> int:
    """Store and register one product file, finish its job and queue what follows, in one transaction.

    The single-file form of :class:`Registration`; parameters as :meth:`Registration.add`. Returns the product id.
    """
    with Registration.open(archive, job) as reg:
        return reg.add(path, level=level, product_type=product_type, prefix=prefix, product=product,
                       provenance=provenance, exposure=exposure, filename=filename)
