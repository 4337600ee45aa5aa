"""TAP: asynchronous queries run as ``tap_query`` jobs; TAP_SCHEMA follows the run-time tables other domains make."""

from __future__ import annotations

import sqlalchemy as sa

from romanarchive.jobs.wiring import Domain, JobKind, register
from romanarchive.tap import schema
from romanarchive.tap.uws import KIND, run_tap_job


def publication_changed(conn: sa.Connection) -> None:
    """Run-time tables were created or dropped: tell every process and rewrite TAP_SCHEMA (in that transaction)."""
    schema.bump_generation(conn)
    schema.refresh_tap_schema(conn)


DOMAIN = register(Domain(
    "tap", "TAP 1.1 / ADQL 2.1: asynchronous (UWS) queries.",
    jobs=(JobKind(KIND, run_tap_job, "run one asynchronous TAP query into the store"),),
    on_tables_changed=(publication_changed,),
))
