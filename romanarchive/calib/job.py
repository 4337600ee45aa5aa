"""The ``calibrate`` job: L1 product -> romancal ExposurePipeline -> L2 product with provenance.

Order of effects keeps a killed worker harmless: the L2 is made in a per-job scratch folder; its object-store key
is recorded on the job *before* the upload; the L2's rows and the job's completion commit in one transaction. A
later attempt of the same job first removes a recorded object that no row references and the old scratch folder.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.tables import exposures, files, products, provenance
from romanarchive.ingest.inspect import describe
from romanarchive.ingest.register import discard_unregistered, register
from romanarchive.jobs import queue
from romanarchive.store.objectstore import content_key, sha256_file

KIND = "calibrate"


def _cleanup_previous(archive: Archive, job: queue.Job, scratch: Path) -> None:
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)
    if job.output_key:
        discard_unregistered(archive, job.output_key)


def _materialise(archive: Archive, key: str, name: str, folder: Path) -> Path:
    local = archive.store.local_path(key)
    return local if local is not None else archive.store.get_file(key, folder / name)


def run_calibrate(archive: Archive, job: queue.Job) -> int:
    """Run one calibration job to completion; returns the new L2 product id.

    Parameters
    ----------
    archive
        The archive.
    job
        A claimed ``calibrate`` job whose product is an L1.
    """
    from romanarchive.calib.crds_offline import configure_offline

    configure_offline(archive.settings.crds_path)
    from romanarchive.calib.pipeline import CalibConfig, calibrate
    from romanarchive.calib.references import REFTYPES
    from romanarchive.calib.selection import select_references

    scratch = archive.settings.scratch / f"job-{job.job_id}"
    _cleanup_previous(archive, job, scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with archive.engine.connect() as conn:
            row = conn.execute(
                sa.select(products.c.level, products.c.exposure_id, files.c.uri, files.c.filename,
                          exposures.c.detector, exposures.c.optical_element, exposures.c.exposure_start_time)
                .join(files, files.c.file_id == products.c.file_id)
                .join(exposures, exposures.c.exposure_id == products.c.exposure_id)
                .where(products.c.product_id == job.product_id)
            ).one()
            if row.level != 1:
                raise ValueError(f"product {job.product_id} is level {row.level}, calibration needs an L1")
            chosen = select_references(conn, REFTYPES, row.detector, row.optical_element, row.exposure_start_time)
        l1 = _materialise(archive, row.uri, row.filename, scratch)
        refs = {t: _materialise(archive, key, name, scratch / "refs") for t, (key, name) in chosen.items()}
        stem = Path(row.filename).stem.removesuffix("_uncal")
        out_name = f"{stem}_cal.asdf"
        result = calibrate(l1, refs, scratch / out_name, CalibConfig(crds_path=archive.settings.crds_path))
        return _register_l2(archive, job, result, out_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _register_l2(archive: Archive, job: queue.Job, result: object, out_name: str) -> int:
    path = Path(result.out_path)  # type: ignore[attr-defined]
    desc = describe(path)
    sha = sha256_file(path)
    queue.set_output_key(archive.engine, job.job_id, content_key("l2", sha, out_name))
    stored = archive.store.put_file(path, "l2", filename=out_name, sha256=sha)
    try:
        with archive.engine.begin() as conn:
            # A re-run replaces an earlier L2 of the same exposure (e.g. after `jobs retry`).
            conn.execute(sa.delete(products).where(products.c.product_type == "wfi_l2",
                                                   products.c.exposure_id == sa.select(products.c.exposure_id)
                                                   .where(products.c.product_id == job.product_id)
                                                   .scalar_subquery()))
            reg = register(conn, [(desc, stored, out_name)], queue_calibration=False)[0]
            l1_name = conn.execute(sa.select(files.c.filename).join(products).where(
                products.c.product_id == job.product_id)).scalar_one()
            conn.execute(provenance.insert().values(
                product_id=reg.product_id, step="romancal.ExposurePipeline",
                software=result.software, parameters=result.parameters,  # type: ignore[attr-defined]
                inputs=[{"product_id": job.product_id, "filename": l1_name}],
                reference_files=result.reference_files,  # type: ignore[attr-defined]
                wall_time_s=result.wall_time_s, peak_rss_mb=result.peak_rss_mb,  # type: ignore[attr-defined]
                host=socket.gethostname(), job_id=job.job_id,
            ))
            queue.mark_done(conn, job.job_id, reg.product_id)
    except BaseException:
        discard_unregistered(archive, stored.key)
        raise
    assert reg.product_id is not None
    return reg.product_id
