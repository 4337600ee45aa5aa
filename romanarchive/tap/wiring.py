"""TAP: asynchronous queries run as ``tap_query`` jobs."""

from __future__ import annotations

from romanarchive.jobs.wiring import Domain, JobKind, register
from romanarchive.tap.uws import KIND, run_tap_job

DOMAIN = register(Domain(
    "tap", "TAP 1.1 / ADQL 2.1: asynchronous (UWS) queries.",
    jobs=(JobKind(KIND, run_tap_job, "run one asynchronous TAP query into the store"),),
))
