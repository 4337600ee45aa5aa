"""Reference catalogs (Gaia DR3 bright stars, Hipparcos 2) and the registry of published cross-match tables."""

from __future__ import annotations

from romanarchive.db.registry import TableSpec

TABLES: tuple[TableSpec, ...] = ()
