"""HATS export for LSDB, and the acceptance test: three cross-match routes give the same pairs.

Routes: an ADQL join with a TAP upload through the live service (q3c_join), ``romanarchive xmatch --into`` (read back
through TAP), and LSDB on a Dask LocalCluster over two exported HATS catalogs.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from astropy.io.votable import parse_single_table
from click.testing import CliRunner
from support.server import live_server

from romanarchive.archive import Archive
from romanarchive.cli import main
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database
from romanarchive.xmatch.refcat import load_refcat, read_hipparcos2
from tests.test_xmatch import RADIUS, brute_force, make_left

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def served(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hats")
    url = create_database(pg_server, "ra_hats")
    upgrade(url)
    (tmp / "home").mkdir()
    archive = Archive(Settings(home=tmp / "home", database_url=url, store=str(tmp / "store")))
    load_refcat(archive.engine, "hipparcos2")
    left = make_left(seed=11)
    path = tmp / "sources.vot"
    left.write(path, format="votable")
    hip = read_hipparcos2()
    with live_server(archive) as base:
        yield {"archive": archive, "tmp": tmp, "left": left, "path": path, "base": base,
               "truth": brute_force(left, hip["ra"], hip["dec"], hip["hip"], RADIUS),
               "cli": {"ROMANARCHIVE_HOME": str(tmp / "home"), "ROMANARCHIVE_DATABASE_URL": url}}
    drop_database(pg_server, url)


def _tap(base: str, query: str, upload: bytes | None = None) -> Any:
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "MAXREC": "100000"}
    files = None
    if upload is not None:
        data["UPLOAD"] = "src,param:src"
        files = {"src": ("src.vot", upload, "application/x-votable+xml")}
    resp = requests.post(base + "/tap/sync", data=data, files=files, timeout=120)
    assert resp.status_code == 200, resp.text[:2000]
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def _export(served: dict[str, Any], table: str, margin: str = "5arcsec") -> Path:
    # Small partitions, so that many matches cross partition edges and need the margin cache.
    res = CliRunner().invoke(main, ["export", "hats", table, str(served["tmp"] / "hats"), "--margin", margin,
                                    "--rows-per-partition", "20000"], env=served["cli"])
    assert res.exit_code == 0, res.output
    return Path(res.output.split("wrote ", 1)[1].strip())


def test_three_routes_give_identical_pairs(served: dict[str, Any]) -> None:
    import lsdb
    from dask.distributed import Client, LocalCluster

    truth = served["truth"]
    assert len(truth) > 1000
    # 1. ADQL join of an upload with the catalog, through TAP.
    buf = io.BytesIO()
    served["left"].write(buf, format="votable")
    adql = _tap(served["base"], "SELECT s.id, h.hip FROM TAP_UPLOAD.src AS s JOIN refcat.hipparcos2 AS h "
                                f"ON DISTANCE(POINT(s.ra, s.dec), POINT(h.ra, h.dec)) < {RADIUS!r}", buf.getvalue())
    route_adql = {(int(a), int(b)) for a, b in zip(adql["id"], adql["hip"], strict=True)}
    # 2. romanarchive xmatch into a published match table, read back through TAP.
    res = CliRunner().invoke(main, ["xmatch", str(served["path"]), "refcat.hipparcos2", "--radius", "1arcsec",
                                    "--into", "routes"], env=served["cli"])
    assert res.exit_code == 0, res.output
    # The service notices tables published by another process within a second (its publication counter).
    time.sleep(1.2)
    bulk = _tap(served["base"], "SELECT left_id, right_id, sep_arcsec FROM xmatch.routes")
    route_bulk = {(int(a), int(b)) for a, b in zip(bulk["left_id"], bulk["right_id"], strict=True)}
    # 3. LSDB over two HATS exports (with margin caches) on a two-worker Dask cluster.
    hip_dir, src_dir = _export(served, "refcat.hipparcos2"), _export(served, str(served["path"]))
    assert (hip_dir / "collection.properties").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
                Client(cluster):
            hip, src = lsdb.open_catalog(hip_dir), lsdb.open_catalog(src_dir)
            assert hip.margin is not None and len(hip.get_healpix_pixels()) > 1
            matched = src.crossmatch(hip, radius_arcsec=RADIUS * 3600, n_neighbors=20,
                                     suffixes=("_src", "_hip")).compute()
    route_lsdb = {(int(a), int(b)) for a, b in zip(matched["id_src"], matched["hip_hip"], strict=True)}
    assert route_adql == route_bulk == route_lsdb == truth
    assert np.allclose(np.sort(np.asarray(bulk["sep_arcsec"])), np.sort(matched["_dist_arcsec"].to_numpy()),
                       atol=1e-6)


def test_export_rejects_unknown_tables(served: dict[str, Any]) -> None:
    res = CliRunner().invoke(main, ["export", "hats", "roman.nowhere", str(served["tmp"] / "x")], env=served["cli"])
    assert res.exit_code != 0 and "unknown table 'roman.nowhere'" in res.output
    res = CliRunner().invoke(main, ["export", "hats", "refcat.hipparcos2", str(served["tmp"] / "x"), "--margin",
                                    "0arcsec"], env=served["cli"])
    assert res.exit_code != 0 and "radius must be positive" in res.output
