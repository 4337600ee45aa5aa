"""L4 catalogs: every new L3 queues the ``catalog`` job of its skycell; the object catalog and injection tables."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from romanarchive.catalog.job import KIND, run_catalog
from romanarchive.db import product_types
from romanarchive.db.tables_catalog import (
    INJECTED_SOURCES,
    INJECTION_COMPLETENESS,
    INJECTION_RUNS,
    OBJECTS,
    RELEASE_PRODUCTS,
    RELEASES,
)
from romanarchive.jobs import queue
from romanarchive.jobs.wiring import Domain, JobKind, NewProduct, Rule, register
from romanarchive.releases import OBJECTS_LATEST


def queue_for_l3(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """Queue the catalog of each skycell that has a new L3 (its ``obs_id`` is the skycell name)."""
    for cell in sorted({p.obs_id for p in new if p.obs_id}):
        queue.enqueue_target(conn, KIND, cell, {"skycell": cell})


DOMAIN = register(Domain(
    "catalog", "L4 multiband static-sky catalogs of skycells, data releases, source-injection completeness.",
    jobs=(JobKind(KIND, run_catalog, "catalogue one skycell from its live L3 mosaics"),),
    rules=(Rule("L3 -> catalog", queue_for_l3, level=3, product_types=(product_types.L3,)),),
    tables=(RELEASES, RELEASE_PRODUCTS, OBJECTS_LATEST, OBJECTS, INJECTION_RUNS, INJECTED_SOURCES,
            INJECTION_COMPLETENESS),
))
