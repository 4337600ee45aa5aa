"""Level 5 community products: teams, tokens, submissions, published versions and their audit log."""

from __future__ import annotations

from romanarchive.db.registry import TableSpec

TABLES: tuple[TableSpec, ...] = ()
