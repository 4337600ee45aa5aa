"""Shared fixtures: a real PostgreSQL (embedded cluster, or ROMANARCHIVE_TEST_DATABASE_URL) and archives on it."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.embedded import EmbeddedCluster, ensure_database
from romanarchive.db.engine import get_engine, libpq_url, normalise_url, upgrade


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """libpq URL of an admin database on a real server; an embedded cluster unless the env names one."""
    external = os.environ.get("ROMANARCHIVE_TEST_DATABASE_URL")
    if external:
        yield libpq_url(normalise_url(external))
        return
    # Not under pytest's tmp root: that is private to root, and the server runs as the postgres user.
    home = Path(tempfile.mkdtemp(prefix="romanarchive-test-pg-"))
    os.chmod(home, 0o755)
    cluster = EmbeddedCluster(home / "pgdata", _free_port())
    cluster.start()
    try:
        yield f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


def _new_database(admin: str) -> str:
    name = f"ra_test_{uuid.uuid4().hex[:10]}"
    ensure_database(admin, name)
    return normalise_url(admin.rsplit("/", 1)[0] + f"/{name}")


def _drop_database(admin: str, url: str) -> None:
    get_engine(url).dispose()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_db(pg_server: str) -> Iterator[str]:
    """URL of a fresh database with no schema."""
    url = _new_database(pg_server)
    yield url
    _drop_database(pg_server, url)


@pytest.fixture
def archive(pg_server: str, tmp_path: Path) -> Iterator[Archive]:
    """A migrated, empty archive with a local store under tmp_path."""
    url = _new_database(pg_server)
    upgrade(url)
    home = tmp_path / "home"
    home.mkdir()
    yield Archive(Settings(home=home, database_url=url, store=str(tmp_path / "store"), lease_seconds=5))
    _drop_database(pg_server, url)


@pytest.fixture(scope="session")
def tiny_survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-exposure 512² survey simulated once per test session with romanisim."""
    from romanarchive.sim.survey import SurveyConfig, simulate_survey

    out = tmp_path_factory.mktemp("tiny_survey")
    simulate_survey(SurveyConfig.tiny(), out, progress=False)
    return out


def l1_files(survey: Path) -> list[Path]:
    """L1 files of a simulated survey, in order."""
    return sorted((survey / "l1").glob("*.asdf"))


def archive_counts(archive: Archive) -> dict[str, int]:
    """Row counts of every registry table."""
    import sqlalchemy as sa

    from romanarchive.db.tables import ALL_TABLES

    with archive.engine.connect() as conn:
        return {t.name: conn.execute(sa.text(f"SELECT count(*) FROM {t.name}")).scalar_one()
                for t in ALL_TABLES if t.name != "archive_settings"}


def unreferenced_objects(archive: Archive) -> list[str]:
    """Store keys no files row points at (must always be empty)."""
    import sqlalchemy as sa

    from romanarchive.db.tables import files

    with archive.engine.connect() as conn:
        known = set(conn.execute(sa.select(files.c.uri)).scalars())
    return [k for k in archive.store.list_keys() if k not in known]
