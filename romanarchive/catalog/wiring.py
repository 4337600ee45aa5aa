"""L4 catalogs: every new L3 queues the ``catalog`` job of its skycell; every new L2 queues the ``l2_catalog`` job
of that image; the object catalog, per-image source and injection tables."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from romanarchive.catalog.job import KIND, run_catalog
from romanarchive.catalog.l2_job import KIND as L2_KIND
from romanarchive.catalog.l2_job import queue_l2, run_l2_catalog
from romanarchive.db import product_types
from romanarchive.db.tables_catalog import (
    INJECTED_SOURCES,
    INJECTION_COMPLETENESS,
    INJECTION_RUNS,
    OBJECTS,
    RELEASE_PRODUCTS,
    RELEASES,
)
from romanarchive.db.tables_l2cat import L2_SOURCES
from romanarchive.jobs import queue
from romanarchive.jobs.wiring import Domain, JobKind, NewProduct, Rule, register
from romanarchive.releases import OBJECTS_LATEST


def queue_for_l3(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """Queue the catalog of each skycell that has a new L3 (its ``obs_id`` is the skycell name)."""
    for cell in sorted({p.obs_id for p in new if p.obs_id}):
        queue.enqueue_target(conn, KIND, cell, {"skycell": cell})


def queue_for_l2(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """Queue the per-image source catalog of each new L2."""
    queue_l2(conn, [p.product_id for p in new])


DOMAIN = register(Domain(
    "catalog", "L4 multiband static-sky catalogs of skycells, per-image L2 source catalogs, data releases, "
    "source-injection completeness.",
    jobs=(JobKind(KIND, run_catalog, "catalogue one skycell from its live L3 mosaics"),
          JobKind(L2_KIND, run_l2_catalog, "source catalog of one L2 image (romancal SourceCatalogStep)")),
    rules=(Rule("L3 -> catalog", queue_for_l3, level=3, product_types=(product_types.L3,)),
           Rule("L2 -> L2 catalog", queue_for_l2, level=2, product_types=(product_types.L2,))),
    tables=(RELEASES, RELEASE_PRODUCTS, OBJECTS_LATEST, OBJECTS, L2_SOURCES, INJECTION_RUNS, INJECTED_SOURCES,
            INJECTION_COMPLETENESS),
))
