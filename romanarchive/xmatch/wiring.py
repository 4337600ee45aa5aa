"""Cross-match: reference catalogs, the match-table registry, astrometric checks and the match tables it writes.

xmatch runs no durable jobs and reacts to no registration: its commands (``romanarchive xmatch``, ``refcat``,
``astrometry``) write tables directly. It declares its tables (published as the specs say) and its run-time match
tables, ``xmatch.<name>``, read from ``xmatch_tables``.
"""

from __future__ import annotations

from romanarchive.db.tables_xmatch import TABLES
from romanarchive.jobs.wiring import Domain, register
from romanarchive.xmatch.publish import match_tables

DOMAIN = register(Domain(
    "xmatch", "Positional cross-matches (HEALPix sort-merge), reference catalogs, astrometric checks.",
    tables=TABLES,
    dynamic_tables=(match_tables,),
))
