"""Throw-away PostgreSQL clusters and databases, for tests and benchmarks."""

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

from romanarchive.db.embedded import EmbeddedCluster, ensure_database
from romanarchive.db.engine import get_engine, libpq_url, normalise_url


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def temporary_cluster(external_url: str | None = None) -> Iterator[str]:
    """Yield the libpq URL of an admin database: ``external_url``'s server, or a private embedded cluster.

    The private cluster lives in a fresh folder outside any root-only temp tree (the server runs as ``postgres``)
    and is stopped and removed afterwards.
    """
    if external_url:
        yield libpq_url(normalise_url(external_url))
        return
    home = Path(tempfile.mkdtemp(prefix="romanarchive-pg-"))
    os.chmod(home, 0o755)
    cluster = EmbeddedCluster(home / "pgdata", free_port())
    try:
        cluster.start()
        yield f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


def create_database(admin_url: str, prefix: str = "ra_scratch") -> str:
    """Create a uniquely named database next to ``admin_url``; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    ensure_database(admin_url, name)
    return normalise_url(admin_url.rsplit("/", 1)[0] + f"/{name}")


def drop_database(admin_url: str, url: str) -> None:
    """Drop a database made by :func:`create_database`, closing our pooled connections first."""
    get_engine(url).dispose()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
