"""Time series: forced photometry of new L2 images and of re-catalogued skycells (catalog objects and forced-photometry
targets), difference imaging of new epochs."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from romanarchive.db import product_types
from romanarchive.db.tables_timeseries import (
    DIA_OBJECTS,
    DIA_SOURCES,
    DIA_TRACKS,
    FORCED_PHOT,
    FORCED_TARGETS,
    TARGET_PHOT,
    TIMESERIES_RUNS,
    VARIABILITY,
)
from romanarchive.jobs.wiring import Domain, JobKind, NewProduct, Rule, register
from romanarchive.sky.footprint import spoly_literal
from romanarchive.sky.skycells import skycell
from romanarchive.timeseries.dia_job import KIND as DIA_KIND
from romanarchive.timeseries.dia_job import run_dia
from romanarchive.timeseries.dia_objects import refresh_counterparts
from romanarchive.timeseries.forced_job import KIND as FORCED_KIND
from romanarchive.timeseries.forced_job import queue_for_skycell, queue_new_l2, requeue_forced, run_forced_phot
from romanarchive.timeseries.forced_step import ForcedPhotConfig


def queue_for_l2(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """Forced photometry of the objects a new L2 covers, and DIA of the new epoch it may be."""
    queue_new_l2(conn, [p.product_id for p in new])


def queue_for_catalog(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """(Re-)measure every live L2 over a skycell whose catalog changed, and re-link its DIA objects to the new
    catalog."""
    for cell in sorted({p.obs_id for p in new if p.obs_id}):
        queue_for_skycell(conn, cell)
        refresh_counterparts(conn, spoly_literal(skycell(cell).corners()))


def queue_for_epsf(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """Re-measure the live L2s a new empirical PSF library product applies to (its detector, filter and window), when
    forced photometry would take its ePSF (built from at least ``library_min_stars`` star images)."""
    pids = conn.execute(sa.text(
        "SELECT DISTINCT p.product_id FROM products p JOIN epsf e ON e.product_id = ANY(:ids) "
        "WHERE p.level = 2 AND p.product_type = :l2 AND p.release = 'live' AND p.detector = e.detector "
        "AND p.filter = e.filter AND (p.t_min + COALESCE(p.t_max, p.t_min)) / 2 BETWEEN e.t_min AND e.t_max "
        "AND NOT EXISTS (SELECT 1 FROM epsf w WHERE w.product_id = e.product_id AND w.n_stars < :min_stars) "
        "ORDER BY p.product_id"), {"ids": [p.product_id for p in new], "l2": product_types.L2,
                                   "min_stars": ForcedPhotConfig().library_min_stars}).scalars().all()
    requeue_forced(conn, list(pids))


DOMAIN = register(Domain(
    "timeseries", "Forced-photometry light curves, variability indices and difference-imaging sources.",
    jobs=(JobKind(FORCED_KIND, run_forced_phot, "forced photometry of one L2 image's catalog objects and targets"),
          JobKind(DIA_KIND, run_dia, "difference imaging of the new epochs of one skycell + filter")),
    rules=(Rule("L2 -> forced photometry, DIA", queue_for_l2, level=2, product_types=(product_types.L2,)),
           Rule("ePSF library -> forced photometry", queue_for_epsf, level=2, product_types=(product_types.EPSF,)),
           Rule("L4 catalog -> forced photometry", queue_for_catalog, level=4,
                product_types=(product_types.L4_CATALOG,))),
    tables=(FORCED_PHOT, VARIABILITY, DIA_SOURCES, DIA_OBJECTS, DIA_TRACKS, FORCED_TARGETS, TARGET_PHOT,
            TIMESERIES_RUNS),
))
