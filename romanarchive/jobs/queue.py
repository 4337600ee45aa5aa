"""Durable job queue in PostgreSQL.

Jobs are rows. A worker claims one with ``FOR UPDATE SKIP LOCKED`` (so concurrent workers never take the same job)
and holds it under a lease that it renews while working. A worker that dies stops renewing; once the lease has
expired another worker claims the job again, cleans up what the dead attempt left, and redoes it.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from romanarchive.db.tables import jobs

STATES = ("queued", "running", "done", "failed")


@dataclass(frozen=True)
class Job:
    """A claimed job."""

    job_id: int
    kind: str
    product_id: int
    attempts: int
    output_key: str | None
    target: str | None = None
    params: dict[str, Any] | None = None


def worker_name() -> str:
    """Identity written on claimed jobs: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(conn: sa.Connection, kind: str, product_ids: list[int]) -> dict[int, int]:
    """Queue one job per product unless the same (kind, product) is already known.

    Returns
    -------
    dict
        product id -> id of the job queued now (products that already had one are absent).
    """
    if not product_ids:
        return {}
    stmt = (
        sa.dialects.postgresql.insert(jobs)
        .on_conflict_do_nothing(index_elements=["kind", "product_id"])
        .returning(jobs.c.product_id, jobs.c.job_id)
    )
    rows = conn.execute(stmt, [{"kind": kind, "product_id": pid} for pid in product_ids]).all()
    return {pid: jid for pid, jid in rows}


def requeue(conn: sa.Connection, kind: str, product_ids: list[int]) -> int:
    """Queue one job per product, re-opening finished (done or failed) ones: their input changed.

    A job still queued or running is left as it is. Returns the number of jobs queued or re-opened.
    """
    if not product_ids:
        return 0
    insert = sa.dialects.postgresql.insert(jobs).values([{"kind": kind, "product_id": pid} for pid in product_ids])
    stmt = insert.on_conflict_do_update(
        index_elements=["kind", "product_id"],
        set_={"state": "queued", "attempts": 0, "error": None, "finished_at": None, "worker": None,
              "lease_until": None},
        where=jobs.c.state.in_(("done", "failed")),
    ).returning(jobs.c.job_id)
    return len(conn.execute(stmt).all())


def enqueue_target(conn: sa.Connection, kind: str, target: str, params: dict[str, Any] | None = None) -> int | None:
    """Queue a job on a target (e.g. a skycell and filter) unless one for it is still waiting to be claimed.

    A job that is already running does not count: it may have read its inputs before the change that queues this
    one, so the target is processed again afterwards.

    Returns
    -------
    int or None
        The new job's id, or ``None`` when a queued one already covers the target.
    """
    # Serialise enqueuers of the same target; the lock ends with the transaction.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{kind}:{target}"})
    waiting = conn.execute(
        sa.select(jobs.c.job_id).where(jobs.c.kind == kind, jobs.c.target == target, jobs.c.state == "queued")
    ).first()
    if waiting is not None:
        return None
    return int(conn.execute(
        sa.insert(jobs).values(kind=kind, target=target, params=params or {}).returning(jobs.c.job_id)
    ).scalar_one())


_CLAIM = sa.text(
    """
    UPDATE jobs SET state = 'running', attempts = attempts + 1, worker = :worker,
           lease_until = now() + make_interval(secs => :lease), started_at = now(), error = NULL
    WHERE job_id = (
        SELECT job_id FROM jobs
        WHERE kind = ANY(:kinds)
          AND (state = 'queued' OR (state = 'running' AND lease_until < now()))
          AND attempts < max_attempts
        ORDER BY job_id
        FOR UPDATE SKIP LOCKED
        LIMIT 1)
    RETURNING job_id, kind, product_id, attempts, output_key, target, params
    """
)

# Jobs whose lease ran out on their last allowed attempt will never be claimed again: fail them with a reason.
_EXHAUST = sa.text(
    """
    UPDATE jobs SET state = 'failed', finished_at = now(),
           error = COALESCE(error, '') || 'lease expired on attempt ' || attempts || ' (worker died?)'
    WHERE state = 'running' AND lease_until < now() AND attempts >= max_attempts
    """
)


def claim(engine: sa.Engine, kinds: tuple[str, ...], lease_seconds: int, worker: str | None = None) -> Job | None:
    """Claim the oldest runnable job of the given kinds, or return ``None``."""
    with engine.begin() as conn:
        conn.execute(_EXHAUST)
        row = conn.execute(
            _CLAIM, {"worker": worker or worker_name(), "lease": lease_seconds, "kinds": list(kinds)}
        ).first()
    return Job(*row) if row else None


def renew(engine: sa.Engine, job_id: int, lease_seconds: int, worker: str) -> bool:
    """Extend the lease; False if the job is no longer ours."""
    with engine.begin() as conn:
        res = conn.execute(
            sa.text("UPDATE jobs SET lease_until = now() + make_interval(secs => :lease) "
                    "WHERE job_id = :id AND worker = :worker AND state = 'running'"),
            {"lease": lease_seconds, "id": job_id, "worker": worker},
        )
    return res.rowcount == 1


def set_output_key(engine: sa.Engine, job_id: int, key: str) -> None:
    """Record, before writing it, the object an attempt is about to store (so a dead attempt can be cleaned)."""
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(output_key=key))


def mark_done(conn: sa.Connection, job_id: int, output_product_id: int | None) -> None:
    """Finish a job inside the caller's transaction (together with the rows it produced)."""
    conn.execute(
        jobs.update().where(jobs.c.job_id == job_id)
        .values(state="done", finished_at=sa.func.now(), output_product_id=output_product_id, lease_until=None)
    )


def mark_failed(engine: sa.Engine, job_id: int, error: str) -> None:
    """Fail a job, keeping the error text."""
    with engine.begin() as conn:
        conn.execute(
            jobs.update().where(jobs.c.job_id == job_id)
            .values(state="failed", finished_at=sa.func.now(), error=error[-8000:], lease_until=None)
        )


def retry(engine: sa.Engine, job_ids: list[int] | None = None) -> int:
    """Re-queue failed jobs (all, or the given ids); returns how many."""
    stmt = jobs.update().where(jobs.c.state == "failed")
    if job_ids:
        stmt = stmt.where(jobs.c.job_id.in_(job_ids))
    with engine.begin() as conn:
        return conn.execute(stmt.values(state="queued", attempts=0, worker=None, finished_at=None)).rowcount


def counts(conn: sa.Connection) -> dict[str, int]:
    """Jobs by state."""
    rows = conn.execute(sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)).all()
    return {state: n for state, n in rows}


def list_jobs(conn: sa.Connection, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Recent jobs, newest first."""
    stmt = sa.select(jobs).order_by(jobs.c.job_id.desc()).limit(limit)
    if state:
        stmt = stmt.where(jobs.c.state == state)
    return [dict(r._mapping) for r in conn.execute(stmt)]


class LeaseKeeper:
    """Renew a job's lease in a background thread while the work runs."""

    def __init__(self, engine: sa.Engine, job_id: int, lease_seconds: int, worker: str) -> None:
        self._args = (engine, job_id, lease_seconds, worker)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        interval = max(1.0, self._args[2] / 3)
        while not self._stop.wait(interval):
            renew(*self._args)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
