"""Workers: claim jobs from PostgreSQL and run them, in processes or on a Dask cluster.

What a job kind does is declared by its domain (:mod:`romanarchive.jobs.wiring`); the worker imports no domain.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
import traceback

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.jobs import queue, wiring

log = logging.getLogger(__name__)


def run_one(archive: Archive, kinds: tuple[str, ...] | None = None) -> int | None:
    """Claim and run one job; returns its id, or ``None`` when there was nothing to do.

    ``kinds`` are the job kinds it may claim: ``None`` for every kind with a handler, an empty tuple for none.
    """
    handlers = wiring.job_kinds()
    kinds = tuple(handlers) if kinds is None else kinds
    if not kinds:
        return None
    worker = queue.worker_name()
    job = queue.claim(archive.engine, kinds, archive.settings.lease_seconds, worker)
    if job is None:
        return None
    log.info("job %s (%s of product %s), attempt %s", job.job_id, job.kind, job.product_id, job.attempts)
    try:
        with queue.LeaseKeeper(archive.engine, job.job_id, archive.settings.lease_seconds, worker):
            handlers[job.kind].handler(archive, job)
    except Exception as exc:
        queue.mark_failed(archive.engine, job.job_id, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        log.error("job %s failed: %s", job.job_id, exc)
    return job.job_id


def drain(settings: Settings, max_jobs: int | None = None, wait: bool = False, poll: float = 2.0,
          kinds: tuple[str, ...] | None = None) -> int:
    """Run jobs until none is left (or ``max_jobs``); with ``wait``, keep polling for new ones.

    ``kinds`` limits the worker to some job kinds (default: every kind that has a handler).

    Returns
    -------
    int
        Jobs run.
    """
    archive = Archive(settings)
    done = 0
    while max_jobs is None or done < max_jobs:
        if run_one(archive, kinds) is None:
            if not wait:
                break
            time.sleep(poll)
            continue
        done += 1
    return done


def run_workers(settings: Settings, n: int = 1, wait: bool = False, kinds: tuple[str, ...] | None = None) -> int:
    """Drain the queue with ``n`` worker processes; returns jobs run."""
    if n <= 1:
        return drain(settings, wait=wait, kinds=kinds)
    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no inherited DB connections or locks
    with ctx.Pool(n) as pool:
        return sum(pool.starmap(drain, [(settings, None, wait, 2.0, kinds)] * n))


def run_dask(settings: Settings, address: str, n_workers: int = 2, kinds: tuple[str, ...] | None = None) -> int:
    """Drain the queue with tasks on a Dask cluster: ``local`` starts a LocalCluster, else a scheduler address.

    Each task runs the same claim loop as a process worker, so the queue's leases and SKIP LOCKED claims keep
    Dask tasks, process workers and retries from ever running a job twice at once.
    """
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True) if address == "local" else None
    try:
        with Client(cluster if cluster is not None else address) as client:
            n_tasks = n_workers if cluster is not None else max(1, len(client.scheduler_info()["workers"]))
            futures = [client.submit(drain, settings, kinds=kinds, pure=False) for _ in range(n_tasks)]
            return sum(client.gather(futures))
    finally:
        if cluster is not None:
            cluster.close()
