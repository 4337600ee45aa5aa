"""Forced-photometry time series, variability indices and difference-imaging sources."""

from __future__ import annotations

from romanarchive.db.registry import TableSpec

TABLES: tuple[TableSpec, ...] = ()
