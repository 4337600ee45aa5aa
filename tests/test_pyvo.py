"""pyvo and STILTS, unmodified, against a live server on a calibrated tiny survey."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvo
from astropy.table import Table
from support.server import live_server, populated_archive

from romanarchive.tap import scs as cone_search

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(pg_server: str, tiny_survey: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a server over the tiny survey, ingested and calibrated (2 L1 + 2 L2 products)."""
    with populated_archive(pg_server, tmp_path_factory.mktemp("pyvo"), tiny_survey) as archive, \
            live_server(archive) as base:
        yield base


@pytest.fixture(scope="module")
def tap(server: str) -> pyvo.dal.TAPService:
    """pyvo's TAP client."""
    return pyvo.dal.TAPService(server + "/tap")


QUERY = "SELECT obs_id, calib_level, s_ra, s_dec, s_region, t_min FROM ivoa.obscore ORDER BY calib_level, obs_id"


def test_sync(tap: pyvo.dal.TAPService) -> None:
    t = tap.run_sync(QUERY).to_table()
    assert len(t) == 4 and sorted(set(t["calib_level"])) == [1, 2]
    region = str(t["s_region"][0]).split()  # ObsCore s_region: STC-S
    assert region[:2] == ["Polygon", "ICRS"] and len(region) >= 8 and abs(float(region[2]) - t["s_ra"][0]) < 0.2
    with pytest.raises(pyvo.dal.DALQueryError, match="not published"):
        tap.run_sync("SELECT * FROM files")
    with pytest.raises(pyvo.dal.DALQueryError, match="syntax error"):
        tap.run_sync("SELEKT 1")


def test_async_run_wait_fetch_delete(tap: pyvo.dal.TAPService) -> None:
    job = tap.submit_job(QUERY, maxrec=3)
    assert job.phase == "PENDING"
    job.run()
    job.wait(timeout=120)
    job.raise_if_error()
    assert job.phase == "COMPLETED"
    t = job.fetch_result().to_table()
    assert len(t) == 3
    url = job.url
    job.delete()
    with pytest.raises(pyvo.dal.DALServiceError):
        pyvo.dal.AsyncTAPJob(url).phase  # noqa: B018 - the job is gone
    assert len(tap.run_async(QUERY).to_table()) == 4


def test_upload_join(tap: pyvo.dal.TAPService) -> None:
    l2 = tap.run_sync("SELECT obs_id, s_ra, s_dec FROM ivoa.obscore WHERE calib_level = 2").to_table()
    mine = Table({"tag": ["hit", "miss"], "ra": [float(l2["s_ra"][0]), 0.0], "dec": [float(l2["s_dec"][0]), 0.0]})
    res = tap.run_sync(
        "SELECT m.tag, o.obs_id, o.calib_level FROM TAP_UPLOAD.mine AS m JOIN ivoa.obscore AS o "
        "ON 1 = CONTAINS(POINT(m.ra, m.dec), o.s_region) ORDER BY o.calib_level",
        uploads={"mine": mine},
    ).to_table()
    assert set(res["tag"]) == {"hit"} and str(l2["obs_id"][0]) in set(res["obs_id"])


def test_cone_search(server: str, tap: pyvo.dal.TAPService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cone_search, "_CONE", cone_search.OBSCORE)  # /scs defaults to roman.objects, empty here
    l2 = tap.run_sync("SELECT s_ra, s_dec FROM ivoa.obscore WHERE calib_level = 2").to_table()
    scs = pyvo.dal.SCSService(server + "/scs")
    res = scs.search(pos=(float(l2["s_ra"][0]), float(l2["s_dec"][0])), radius=0.01)
    assert len(res) >= 1
    assert len(scs.search(pos=(0.0, -89.0), radius=0.01)) == 0


def test_tables_metadata(tap: pyvo.dal.TAPService) -> None:
    names = set(tap.tables.keys())
    assert {"ivoa.obscore", "roman.exposures", "roman.products", "TAP_SCHEMA.columns"} <= names
    cols = {c.name: c for c in tap.tables["ivoa.obscore"].columns}
    assert cols["s_region"].datatype.content == "unicodeChar" and cols["s_ra"].unit == "deg"
    assert tap.maxrec > 0 and tap.hardlimit >= tap.maxrec and tap.upload_methods


def _stilts(*args: str) -> None:
    subprocess.run(["stilts", *args], check=True, capture_output=True, timeout=300)


@pytest.mark.skipif(shutil.which("stilts") is None and not os.environ.get("CI"),
                    reason="stilts is not installed (scripts/install-system-deps.sh)")
def test_stilts_tapquery_sync_and_async_match_pyvo(server: str, tap: pyvo.dal.TAPService, tmp_path: Path) -> None:
    query = "SELECT obs_id, calib_level, s_ra, s_dec, t_min FROM ivoa.obscore ORDER BY calib_level, obs_id"
    expected = tap.run_sync(query).to_table()
    for sync in ("true", "false"):
        out = tmp_path / f"stilts_{sync}.vot"
        _stilts("tapquery", f"tapurl={server}/tap", f"adql={query}", f"sync={sync}", f"out={out}", "ofmt=votable")
        got = Table.read(out, format="votable")
        assert len(got) == len(expected)
        for name in expected.colnames:
            if expected[name].dtype.kind == "f":
                np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(expected[name]))
            else:
                assert [str(v) for v in got[name]] == [str(v) for v in expected[name]]
