"""Difference imaging against the simulation truth: transients appear in the DIA catalog.

The static catalog is built with the real pipeline (mosaic + catalog) from the first epoch; the later epochs are then
ingested and differenced against templates of the earlier ones. Run with ``-s`` to see completeness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.table import Table

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database
from romanarchive.ingest.service import ingest_paths
from romanarchive.jobs import worker
from romanarchive.timeseries.dia import DIA_NEGATIVE, DIA_NEW
from romanarchive.timeseries.dia_step import run_cell
from tests.test_timeseries import _l2, main_skycell

pytestmark = pytest.mark.db

MATCH_ARCSEC = 0.3


@pytest.fixture(scope="module")
def differenced(pg_server: str, science_survey: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from romanarchive.catalog.job import catalog_skycell
    from romanarchive.mosaic.job import build_and_register

    tmp = tmp_path_factory.mktemp("dia")
    url = create_database(pg_server, "ra_dia")
    upgrade(url)
    (tmp / "home").mkdir()
    archive = Archive(Settings(home=tmp / "home", database_url=url, store=str(tmp / "store"), lease_seconds=60))
    list(ingest_paths(archive, _l2(science_survey, {0})))
    cell = main_skycell(archive)
    with archive.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM jobs"))
    for f in ("F087", "F158"):
        build_and_register(archive, cell, f)
    catalog_skycell(archive, cell)
    with archive.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM jobs"))
    list(ingest_paths(archive, _l2(science_survey, {1, 2, 3})))
    # The new L2s' forced_phot jobs queue the dia jobs of the skycells they touch.
    while worker.run_one(archive, kinds=("forced_phot",)) is not None:
        pass
    with archive.engine.connect() as conn:
        queued = conn.execute(sa.text("SELECT target FROM jobs WHERE kind = 'dia' AND state = 'queued'"))
        targets = set(queued.scalars())
    outcomes = [run_cell(archive, cell, f) for f in ("F087", "F158")]
    truth = Table.read(science_survey / "truth" / "truth.ecsv")
    yield archive, cell, outcomes, targets, truth
    archive.engine.dispose()
    drop_database(pg_server, url)


def _rows(archive: Archive) -> list[dict[str, Any]]:
    with archive.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM dia_sources")).mappings()]


def test_transients_are_found(differenced: Any) -> None:
    archive, cell, outcomes, targets, truth = differenced
    assert {f"{cell} F087", f"{cell} F158"} <= targets
    rows = _rows(archive)
    for out in outcomes:
        print(f"\n[dia] {out.skycell} {out.filter}: {len(out.epochs)} epochs, {out.n_sources} sources, "
              f"{out.wall_time_s:.1f} s; " + "; ".join(
                  f"mjd {e['mjd']:.1f}: {e['n_science']} vs {e['n_template']} L2, {e['n_sources']} src, noise x"
                  f"{e['noise_scale']:.2f}, psf {e['psf_matched']}" for e in out.epochs), end="")
        assert len(out.epochs) == 3
    ra = np.array([r["ra"] for r in rows])
    dec = np.array([r["dec"] for r in rows])
    expected = found = first = first_found = 0
    for tr in truth[truth["kind"] == "transient"]:
        for out in outcomes:
            for i, e in enumerate(out.epochs):
                if e["mjd"] < tr["t0"]:
                    continue
                expected += 1
                is_first = i == 0 or out.epochs[i - 1]["mjd"] < tr["t0"]
                first += is_first
                d = np.hypot((ra - tr["ra"]) * np.cos(np.radians(tr["dec"])), dec - tr["dec"]) * 3600.0
                hit = [r for r, dd in zip(rows, d, strict=True) if dd < MATCH_ARCSEC and r["filter"] == out.filter
                       and abs(r["mjd"] - e["mjd"]) < 0.1 and not r["flags"] & DIA_NEGATIVE]
                found += bool(hit)
                first_found += bool(hit) and is_first
    print(f"\n[dia] transient completeness: {found}/{expected} (epoch, filter) detections; at first appearance "
          f"{first_found}/{first}")
    assert first and first_found / first >= 0.8
    assert found / expected >= 0.6


def test_dia_catalog_links_and_flags(differenced: Any) -> None:
    archive, _, _, _, truth = differenced
    rows = _rows(archive)
    assert rows
    known = truth[np.isin(truth["kind"], ["variable", "transient", "moving"])]
    new = [r for r in rows if r["flags"] & DIA_NEW]
    linked = [r for r in rows if r["nearest_source_id"] is not None and r["nearest_sep"] < MATCH_ARCSEC]
    # Detections that are neither near a varying truth source nor a catalogued object: artefacts.
    ra, dec = np.array([r["ra"] for r in rows]), np.array([r["dec"] for r in rows])
    near_truth = np.array([np.min(np.hypot((known["ra"] - a) * np.cos(np.radians(b)), known["dec"] - b)) * 3600
                           < 1.0 for a, b in zip(ra, dec, strict=True)])
    print(f"\n[dia] {len(rows)} detections: {len(new)} without a static counterpart, {len(linked)} linked to an "
          f"object; {int(near_truth.sum())} within 1\" of a simulated variable/transient/moving object")
    assert all(isinstance(r["science_ids"], list) and r["template_ids"] for r in rows)
    assert near_truth.mean() >= 0.5
