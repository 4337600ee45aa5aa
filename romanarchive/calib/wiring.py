"""Calibration on ingest: every registered L1 exposure queues its ``calibrate`` job (L1 -> romancal -> L2)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from romanarchive.calib.job import KIND, run_calibrate
from romanarchive.jobs import queue
from romanarchive.jobs.wiring import Domain, JobKind, NewProduct, Rule, register


def queue_calibration(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """One ``calibrate`` job per new L1 product (none when one is already known for it)."""
    queue.enqueue(conn, KIND, [p.product_id for p in new])


DOMAIN = register(Domain(
    "calib", "Calibration of L1 ramps to L2 images with romancal's ExposurePipeline.",
    jobs=(JobKind(KIND, run_calibrate, "L1 product -> romancal ExposurePipeline -> L2 product"),),
    rules=(Rule("L1 -> calibrate", queue_calibration, level=1),),
))
