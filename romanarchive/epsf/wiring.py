"""The ePSF library: new L2 images queue the ``epsf`` job of their detector, filter and time window; the ``epsf``
table."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from romanarchive.db import product_types
from romanarchive.db.tables_epsf import EPSF
from romanarchive.epsf.job import KIND, queue_new_l2, run_epsf
from romanarchive.jobs.wiring import Domain, JobKind, NewProduct, Rule, register


def queue_for_l2(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """Queue the windows that now have enough L2s their library product has not used."""
    queue_new_l2(conn, [p.product_id for p in new])


DOMAIN = register(Domain(
    "epsf", "Empirical PSF library: ePSFs of each detector, filter and time window from dithered L2 stars.",
    jobs=(JobKind(KIND, run_epsf, "build the ePSFs of one detector + filter + time window from its live L2s"),),
    rules=(Rule("L2 -> ePSF library", queue_for_l2, level=2, product_types=(product_types.L2,)),),
    tables=(EPSF,),
))
