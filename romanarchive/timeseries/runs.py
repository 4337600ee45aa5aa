"""Provenance of the time-series tables: one ``timeseries_runs`` row per run of a step.

Forced photometry, index recomputation and difference imaging write table rows rather than products, so the
per-product ``provenance`` table cannot describe them. A :class:`RunRecorder` times a run and samples its peak
memory (the conventions of ``provenance``: ``software`` lists the calibration's packages
(:data:`romanarchive.software.CALIBRATION_PACKAGES`) plus the packages these steps use, the step's pydantic
configuration as ``parameters``, ``inputs`` as product ids and file names); :meth:`RunRecorder.record` inserts the
row inside the transaction that writes the run's rows and returns the ``run_id`` those rows carry.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import psutil
import sqlalchemy as sa

from romanarchive.db.tables import metadata
from romanarchive.software import CALIBRATION_PACKAGES, package_versions

#: Packages that determine the time-series numbers, on top of the calibration's list.
_EXTRA_SOFTWARE = ("romanarchive", "numpy", "scipy", "astropy", "gwcs", "roman_datamodels", "photutils")

STEP_FORCED = "romanarchive.ForcedPhotStep"
STEP_INDICES = "romanarchive.VariabilityIndicesStep"
STEP_DIA = "romanarchive.DiaStep"


def software() -> dict[str, str]:
    """Versions of the packages behind the time-series tables."""
    # Same keys and order as the calibration's versions followed by these (duplicates keep their first place).
    return package_versions((*CALIBRATION_PACKAGES, *_EXTRA_SOFTWARE), missing="not installed")


class RunRecorder:
    """Wall time and peak RSS of one run, sampled from creation until :meth:`record` (or :meth:`close`).

    Parameters
    ----------
    step
        Step name (``STEP_*``).
    target
        What the run works on (``product:<id>``, ``<skycell> <filter>``, ``all``).
    parameters
        The step's configuration (a JSON-serialisable dict, e.g. ``config.model_dump()``).
    job_id
        The job running it, if any.
    interval
        RSS sampling period, seconds.
    """

    def __init__(self, step: str, target: str, parameters: dict[str, Any], job_id: int | None = None,
                 interval: float = 0.05) -> None:
        self.step, self.target, self.parameters, self.job_id = step, target, parameters, job_id
        self.inputs: dict[str, Any] = {}
        self._t0 = time.perf_counter()
        self._proc = psutil.Process()
        self.peak_mb = self._proc.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True, name="run-rss")
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)

    def close(self) -> None:
        """Stop sampling (idempotent)."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, conn: sa.Connection, n_rows: int | None = None) -> int:
        """Insert the run's ``timeseries_runs`` row (in the caller's transaction) and return its ``run_id``."""
        self.close()
        runs = metadata.tables["timeseries_runs"]
        return int(conn.execute(runs.insert().values(
            step=self.step, target=self.target, software=software(), parameters=self.parameters,
            inputs=self.inputs, n_rows=n_rows, wall_time_s=time.perf_counter() - self._t0,
            peak_rss_mb=self.peak_mb, host=socket.gethostname(), job_id=self.job_id,
        ).returning(runs.c.run_id)).scalar_one())
