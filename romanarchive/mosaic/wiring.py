"""L3 co-adds: every registered L2 queues a ``mosaic`` job for each skycell + filter its footprint touches."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from romanarchive.jobs.wiring import Domain, JobKind, NewProduct, Rule, register
from romanarchive.mosaic.job import KIND, queue_mosaics, run_mosaic


def queue_for_l2(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """Queue the co-adds of the skycells + filters the new L2 images touch."""
    queue_mosaics(conn, [(p.s_region, p.filter) for p in new])


DOMAIN = register(Domain(
    "mosaic", "L3 skycell mosaics co-added from live L2 images.",
    jobs=(JobKind(KIND, run_mosaic, "rebuild one skycell + filter from its live L2 images"),),
    rules=(Rule("L2 -> mosaic", queue_for_l2, level=2),),
))
