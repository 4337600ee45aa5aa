"""Throughput of calibration jobs with 1 vs 2 worker processes on four detectors.

Same archive contents, same jobs, same run: first drained by one worker process, then (after resetting the jobs
and removing the L2 products) by two. Peer: the 1-worker run. Goal: >= 1.8x throughput with 2 workers.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_archive  # noqa: E402
from bench_calibration import simulate  # noqa: E402

from romanarchive.ingest.service import ingest_paths  # noqa: E402
from romanarchive.jobs.worker import run_workers  # noqa: E402


def reset(archive) -> None:  # type: ignore[no-untyped-def]
    """Back to 'L1 ingested, jobs queued': drop L2 rows and their files, re-queue the jobs."""
    with archive.engine.begin() as conn:
        keys = conn.execute(sa.text(
            "DELETE FROM files WHERE file_id IN (SELECT file_id FROM products WHERE level = 2) RETURNING uri"
        )).scalars().all()
        conn.execute(sa.text("UPDATE jobs SET state = 'queued', attempts = 0, worker = NULL, output_key = NULL"))
    for k in keys:
        archive.store.delete(k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=4088)
    ap.add_argument("--detectors", type=int, default=4)
    args = ap.parse_args()
    logging.disable(logging.INFO)
    t = time.perf_counter()
    survey = simulate(args.size, args.detectors)
    print(f"simulated {args.detectors} {args.size}² detectors + references in {time.perf_counter() - t:.0f} s")
    with scratch_archive() as archive:
        bad = [r for r in ingest_paths(archive, [survey / "refs", survey / "l1"]) if isinstance(r, Exception)]
        assert not bad, bad
        times = {}
        for n in (1, 2):
            reset(archive)
            t0 = time.perf_counter()
            assert run_workers(archive.settings, n) == args.detectors
            times[n] = time.perf_counter() - t0
            with archive.engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM jobs WHERE state = 'done'")).scalar_one() \
                    == args.detectors
    print(f"{args.detectors} calibration jobs ({args.size}² detectors):")
    for n, s in times.items():
        print(f"  {n} worker{'s' if n > 1 else ' '}: {s:7.1f} s  {3600 * args.detectors / s:7.1f} exposures/hour")
    print(f"  speed-up 2 vs 1 workers: {times[1] / times[2]:.2f}x  (goal >= 1.8x)")


if __name__ == "__main__":
    main()
