"""Durable jobs: lease expiry after SIGKILL, clean-up of dead attempts, failure and retry, Dask executor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.tables import jobs, products, reference_files
from romanarchive.ingest.service import ingest_file, ingest_paths
from romanarchive.jobs import queue
from romanarchive.jobs.worker import drain, run_dask
from tests.conftest import archive_counts, l1_files, unreferenced_objects

pytestmark = [pytest.mark.db, pytest.mark.slow]

CALIBRATE = ("calibrate",)  # L2 registration also queues co-adds; these tests count calibrations


def _load(archive: Archive, survey: Path, n_l1: int = 1) -> None:
    list(ingest_paths(archive, [survey / "refs"]))
    for f in l1_files(survey)[:n_l1]:
        ingest_file(archive, f)


def _job(archive: Archive) -> dict[str, object]:
    with archive.engine.connect() as conn:
        return dict(conn.execute(sa.select(jobs).order_by(jobs.c.job_id)).mappings().first() or {})


def _env(archive: Archive) -> dict[str, str]:
    return {**os.environ, "ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
            "ROMANARCHIVE_STORE": archive.settings.store_url,
            "ROMANARCHIVE_LEASE_SECONDS": str(archive.settings.lease_seconds)}


def test_worker_killed_mid_job_leaves_nothing_and_job_is_redone(archive: Archive, tiny_survey: Path) -> None:
    _load(archive, tiny_survey)
    proc = subprocess.Popen([sys.executable, "-m", "romanarchive.cli", "worker"], env=_env(archive),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _job(archive)["state"] != "running":
            assert proc.poll() is None, "worker exited before claiming the job"
            assert time.monotonic() < deadline, "worker never claimed the job"
            time.sleep(0.1)
        time.sleep(2.0)  # inside romancal by now
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    job = _job(archive)
    assert job["state"] == "running" and job["attempts"] == 1  # the dead worker still "holds" it
    counts = archive_counts(archive)
    assert counts["provenance"] == 0 and counts["products"] == 1  # no half-registered L2
    assert queue.claim(archive.engine, ("calibrate",), 5) is None  # lease not expired yet: nobody may take it
    time.sleep(archive.settings.lease_seconds + 0.5)
    assert drain(archive.settings, kinds=CALIBRATE) == 1
    job = _job(archive)
    assert job["state"] == "done" and job["attempts"] == 2
    with archive.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(products.c.level == 2)).scalar_one() == 1
    assert unreferenced_objects(archive) == []
    assert not any((archive.settings.scratch).glob("job-*"))


def test_next_attempt_removes_what_a_dead_attempt_stored(archive: Archive, tiny_survey: Path, tmp_path: Path) -> None:
    _load(archive, tiny_survey)
    stray_src = tmp_path / "half_cal.asdf"
    stray_src.write_bytes(b"#ASDF partial output of a killed worker")
    stray = archive.store.put_file(stray_src, "l2")
    with archive.engine.begin() as conn:  # a dead attempt: uploaded, recorded, never committed
        conn.execute(jobs.update().values(state="running", attempts=1, output_key=stray.key,
                                          lease_until=sa.func.now() - sa.text("interval '1 minute'")))
    assert unreferenced_objects(archive) == [stray.key]
    assert drain(archive.settings, kinds=CALIBRATE) == 1
    assert _job(archive)["state"] == "done"
    assert unreferenced_objects(archive) == []


def test_failure_keeps_error_and_retry_requeues(archive: Archive, tiny_survey: Path) -> None:
    _load(archive, tiny_survey)
    with archive.engine.begin() as conn:
        conn.execute(sa.delete(reference_files).where(reference_files.c.reftype == "dark"))
    assert drain(archive.settings, kinds=CALIBRATE) == 1
    job = _job(archive)
    assert job["state"] == "failed" and "no dark reference file for WFI01/F158" in str(job["error"])
    assert archive_counts(archive)["provenance"] == 0 and unreferenced_objects(archive) == []

    from click.testing import CliRunner

    from romanarchive.cli import main

    env = _env(archive)
    listing = CliRunner().invoke(main, ["jobs", "list", "--state", "failed"], env=env)
    assert "MissingReference" in listing.output or "no dark reference" in listing.output
    list(ingest_paths(archive, [tiny_survey / "refs"]))  # put the dark back
    result = CliRunner().invoke(main, ["jobs", "retry"], env=env)
    assert result.exit_code == 0 and "re-queued 1 job" in result.output
    assert _job(archive)["state"] == "queued"
    assert drain(archive.settings, kinds=CALIBRATE) == 1
    assert _job(archive)["state"] == "done"


def test_dask_local_cluster_runs_the_same_jobs(archive: Archive, tiny_survey: Path) -> None:
    _load(archive, tiny_survey, n_l1=2)
    assert run_dask(archive.settings, "local", n_workers=2, kinds=CALIBRATE) == 2
    with archive.engine.connect() as conn:
        states = conn.execute(sa.select(jobs.c.state, jobs.c.worker).where(jobs.c.kind == "calibrate")).all()
    assert [s for s, _ in states] == ["done", "done"]
    assert archive_counts(archive)["provenance"] == 2


@pytest.mark.db
def test_enqueue_target_keeps_one_waiting_job_per_target(archive: Archive) -> None:
    """A second request for a target that still has a queued job is absorbed; once claimed, a new one queues."""
    from romanarchive.jobs import queue

    with archive.engine.begin() as conn:
        first = queue.enqueue_target(conn, "mosaic", "cell F158", {"skycell": "cell", "filter": "F158"})
        assert first is not None
        assert queue.enqueue_target(conn, "mosaic", "cell F158") is None
        assert queue.enqueue_target(conn, "mosaic", "cell F087") is not None
    job = queue.claim(archive.engine, ("mosaic",), 30)
    assert job is not None and job.job_id == first and job.target == "cell F158"
    assert job.params == {"skycell": "cell", "filter": "F158"} and job.product_id is None
    with archive.engine.begin() as conn:
        assert queue.enqueue_target(conn, "mosaic", "cell F158") is not None  # the running one may be stale


@pytest.mark.db
def test_requeue_reopens_finished_jobs_only(archive: Archive, tiny_survey: Path) -> None:
    """Inputs changed: done and failed jobs are queued again; queued and running ones are left alone."""
    _load(archive, tiny_survey, n_l1=2)
    with archive.engine.begin() as conn:
        pids = conn.execute(sa.select(products.c.product_id).where(products.c.level == 1)
                            .order_by(products.c.product_id)).scalars().all()
        conn.execute(jobs.update().where(jobs.c.product_id == pids[0]).values(state="done", attempts=1))
        conn.execute(jobs.update().where(jobs.c.product_id == pids[1]).values(state="running", attempts=1))
        assert queue.requeue(conn, "calibrate", list(pids)) == 1
        states = dict(conn.execute(sa.select(jobs.c.product_id, jobs.c.state)
                                   .where(jobs.c.kind == "calibrate")).all())
        attempts = conn.execute(sa.select(jobs.c.attempts).where(jobs.c.product_id == pids[0])).scalar_one()
    assert states == {pids[0]: "queued", pids[1]: "running"} and attempts == 0
