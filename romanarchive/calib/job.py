"""The ``calibrate`` job: L1 product -> romancal ExposurePipeline -> L2 product with provenance.

Order of effects keeps a killed worker harmless: the L2 is made in a per-job scratch folder and registered with
:class:`~romanarchive.ingest.register.Registration` (store key recorded on the job before the upload; rows, provenance,
the job's completion and the follow-up jobs of the wiring's rules in one transaction). A later attempt of the same job
first removes a recorded object that no row references and the old scratch folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.calib.pipeline import CalibConfig, CalibResult, calibrate
from romanarchive.calib.selection import REFTYPES, select_references
from romanarchive.crds_offline import configure_offline
from romanarchive.db import product_types
from romanarchive.db.tables import exposures, files, products
from romanarchive.ingest.inspect import describe
from romanarchive.ingest.register import Provenance, Registration, discard_unregistered
from romanarchive.jobs import queue

KIND = "calibrate"


def _cleanup_previous(archive: Archive, job: queue.Job, scratch: Path) -> None:
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)
    if job.output_key:
        discard_unregistered(archive, job.output_key)


def run_calibrate(archive: Archive, job: queue.Job) -> int:
    """Run one calibration job to completion; returns the new L2 product id.

    Parameters
    ----------
    archive
        The archive.
    job
        A claimed ``calibrate`` job whose product is an L1.
    """
    configure_offline(archive.settings.crds_path)  # before romancal is imported (inside calibrate)
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
        l1 = archive.store.local_file(row.uri, scratch / row.filename)
        refs = {t: archive.store.local_file(key, scratch / "refs" / name) for t, (key, name) in chosen.items()}
        stem = Path(row.filename).stem.removesuffix("_uncal")
        out_name = f"{stem}_cal.asdf"
        result = calibrate(l1, refs, scratch / out_name, CalibConfig(crds_path=archive.settings.crds_path))
        return _register_l2(archive, job, result, out_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _register_l2(archive: Archive, job: queue.Job, result: CalibResult, out_name: str) -> int:
    path = Path(result.out_path)
    desc = describe(path)
    with Registration.open(archive, job) as reg:
        # A re-run replaces an earlier L2 of the same exposure (e.g. after `jobs retry`).
        reg.conn.execute(sa.delete(products).where(products.c.product_type == product_types.L2,
                                                   products.c.exposure_id == sa.select(products.c.exposure_id)
                                                   .where(products.c.product_id == job.product_id)
                                                   .scalar_subquery()))
        l1_name = reg.conn.execute(sa.select(files.c.filename).join(products).where(
            products.c.product_id == job.product_id)).scalar_one()
        prov = Provenance("romancal.ExposurePipeline", result.software, result.parameters,
                          [{"product_id": job.product_id, "filename": l1_name}], result.reference_files,
                          result.wall_time_s, result.peak_rss_mb)
        assert desc.level is not None and desc.product_type is not None
        return reg.add(path, level=desc.level, product_type=desc.product_type, prefix="l2", product=desc.product,
                       provenance=prov, exposure=desc.exposure, filename=out_name)
