"""Shared fixtures: a real PostgreSQL (embedded cluster, or ROMANARCHIVE_TEST_DATABASE_URL) and archives on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database, temporary_cluster


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """libpq URL of an admin database on a real server; an embedded cluster unless the env names one."""
    with temporary_cluster(os.environ.get("ROMANARCHIVE_TEST_DATABASE_URL")) as admin:
        yield admin


@pytest.fixture
def empty_db(pg_server: str) -> Iterator[str]:
    """URL of a fresh database with no schema."""
    url = create_database(pg_server, "ra_test")
    yield url
    drop_database(pg_server, url)


@pytest.fixture
def archive(pg_server: str, tmp_path: Path) -> Iterator[Archive]:
    """A migrated, empty archive with a local store under tmp_path."""
    url = create_database(pg_server, "ra_test")
    upgrade(url)
    home = tmp_path / "home"
    home.mkdir()
    yield Archive(Settings(home=home, database_url=url, store=str(tmp_path / "store"), lease_seconds=5))
    drop_database(pg_server, url)


@pytest.fixture(scope="session")
def tiny_survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-exposure 512² survey simulated once per test session with romanisim."""
    from romanarchive.sim.survey import SurveyConfig, simulate_survey

    out = tmp_path_factory.mktemp("tiny_survey")
    simulate_survey(SurveyConfig.tiny(), out, progress=False)
    return out


@pytest.fixture(scope="session")
def science_survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The calibrated science survey (16 L2 of 512², 2 filters, 4 epochs), built once or taken from the cache."""
    from romanarchive.sim.calibrated import calibrated_survey, science_config

    return calibrated_survey(science_config(), out_dir=tmp_path_factory.mktemp("science"), progress=False)


def l1_files(survey: Path) -> list[Path]:
    """L1 files of a simulated survey, in order."""
    return sorted((survey / "l1").glob("*.asdf"))


def archive_counts(archive: Archive) -> dict[str, int]:
    """Row counts of every registry table."""
    import sqlalchemy as sa

    from romanarchive.db.tables import ALL_TABLES

    with archive.engine.connect() as conn:
        return {t.name: conn.execute(sa.text(f"SELECT count(*) FROM {t.qualified_name}")).scalar_one()
                for t in ALL_TABLES if t.name != "archive_settings"}


def unreferenced_objects(archive: Archive) -> list[str]:
    """Store keys no files row points at (must always be empty)."""
    import sqlalchemy as sa

    from romanarchive.db.tables import files

    with archive.engine.connect() as conn:
        known = set(conn.execute(sa.select(files.c.uri)).scalars())
    return [k for k in archive.store.list_keys() if k not in known]
