"""Shared helpers for benchmarks: a throw-away archive on a private embedded cluster or a given server."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database, temporary_cluster


@contextmanager
def scratch_archive(lease_seconds: int = 600) -> Iterator[Archive]:
    """A migrated empty archive; server from ROMANARCHIVE_BENCH_DATABASE_URL, else a private embedded cluster."""
    work = Path(tempfile.mkdtemp(prefix="romanarchive-bench-"))
    with temporary_cluster(os.environ.get("ROMANARCHIVE_BENCH_DATABASE_URL")) as admin:
        url = create_database(admin, "ra_bench")
        upgrade(url)
        try:
            yield Archive(Settings(home=work / "home", database_url=url, store=str(work / "store"),
                                   lease_seconds=lease_seconds))
        finally:
            drop_database(admin, url)
            shutil.rmtree(work, ignore_errors=True)
