"""Level 5 community products: teams, tokens, submissions and their published versions.

Level 5 runs no durable jobs (publication happens in the submitting request) and reacts to no registration. It
declares its tables and its run-time catalog tables, ``level5.<name>_v<version>``, read from the column registry.
"""

from __future__ import annotations

from romanarchive.db.tables_level5 import TABLES
from romanarchive.jobs.wiring import Domain, register
from romanarchive.level5.publish import catalog_tables

DOMAIN = register(Domain(
    "level5", "Level 5 community products: validated submissions published as ObsCore products and TAP tables.",
    tables=TABLES,
    dynamic_tables=(catalog_tables,),
))
