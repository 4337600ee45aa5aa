"""Shared helpers for benchmarks: a throw-away archive on the embedded cluster or a given server."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.embedded import EmbeddedCluster, ensure_database
from romanarchive.db.engine import get_engine, libpq_url, normalise_url, upgrade


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_archive(lease_seconds: int = 600) -> Iterator[Archive]:
    """A migrated empty archive; server from ROMANARCHIVE_BENCH_DATABASE_URL, else a private embedded cluster."""
    home = Path(tempfile.mkdtemp(prefix="romanarchive-bench-"))
    os.chmod(home, 0o755)
    external = os.environ.get("ROMANARCHIVE_BENCH_DATABASE_URL")
    cluster = None
    if external:
        admin = libpq_url(normalise_url(external))
    else:
        cluster = EmbeddedCluster(home / "pgdata", _free_port())
        cluster.start()
        admin = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    name = f"ra_bench_{uuid.uuid4().hex[:8]}"
    ensure_database(admin, name)
    url = normalise_url(admin.rsplit("/", 1)[0] + f"/{name}")
    upgrade(url)
    try:
        yield Archive(Settings(home=home / "home", database_url=url, store=str(home / "store"),
                               lease_seconds=lease_seconds))
    finally:
        get_engine(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if cluster:
            cluster.stop()
        shutil.rmtree(home, ignore_errors=True)
