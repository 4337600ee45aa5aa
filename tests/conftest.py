"""Shared fixtures: a real PostgreSQL (embedded cluster, or ROMANARCHIVE_TEST_DATABASE_URL) and archives on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def catalogue_one_skycell(archive: Archive, l2: list[Path], cell_of: Any = None) -> str:
    """Ingest ``l2``, co-add and catalogue one skycell (``cell_of(archive)``, default :func:`main_skycell`) by hand.

    The jobs registration queues are dropped before and after: the tests run the steps with their own settings
    (co-adds without outlier rejection, so variables and the moving object stay in the deep image).
    """
    import sqlalchemy as sa

    from romanarchive.catalog.job import catalog_skycell
    from romanarchive.ingest.service import ingest_paths
    from romanarchive.mosaic.job import build_and_register
    from romanarchive.mosaic.step import MosaicConfig

    # The catalog step reads each band's apcorr and ePSF reference files from the archive.
    refs = sorted({p for f in l2 for t in ("apcorr", "epsf")
                   for p in (f.parent.parent / "refs").rglob(f"*_{t}_*.asdf")})
    results = list(ingest_paths(archive, [*refs, *l2]))
    assert all(hasattr(r, "product_id") or hasattr(r, "ref_id") for r in results), results
    with archive.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM jobs"))
        filters = conn.execute(sa.text("SELECT DISTINCT filter FROM products WHERE level = 2")).scalars().all()
    cell = (cell_of or home_skycell)(archive)
    for f in sorted(filters):
        build_and_register(archive, cell, f, config=MosaicConfig(outlier_detection=False))
    catalog_skycell(archive, cell)
    with archive.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM jobs"))
    return cell


def home_skycell(archive: Archive) -> str:
    """The skycell that is home to most of the L2 footprints (what a catalog of one skycell covers best)."""
    return main_skycell(archive, home=True)


def main_skycell(archive: Archive, home: bool = False) -> str:
    """The skycell that covers most of the L2 footprints, or (``home``) that is home to most of them (the field
    straddles several; the others are left out to keep the tests short, so a catalog of that cell, which keeps the
    objects of its home core only, misses the objects there)."""
    import numpy as np
    import sqlalchemy as sa

    from romanarchive.sky.skycells import in_home, parse_spoly, skycells_for_footprint

    with archive.engine.connect() as conn:
        regions = conn.execute(sa.text("SELECT s_region::text FROM products WHERE level = 2")).scalars().all()
    pts = np.array([c for r in regions for c in parse_spoly(r)])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    ra, dec = (v.ravel() for v in np.meshgrid(np.linspace(lo[0], hi[0], 20), np.linspace(lo[1], hi[1], 20)))

    def covered(cell: Any) -> int:
        if home:
            return int(np.sum(in_home(ra, dec, cell.name)))
        x, y = cell.wcs.world_to_pixel_values(ra, dec)
        return int(np.sum((x > 0) & (y > 0) & (x < cell.shape[1]) & (y < cell.shape[0])))

    cells = {c.name: c for r in regions for c in skycells_for_footprint(r)}
    return max(sorted(cells), key=lambda n: covered(cells[n]))
