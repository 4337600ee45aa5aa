"""Unmodified astroquery.mast (MastMissions and Observations) against a live server holding the science survey."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from support.mast import survey_archive
from support.server import live_server

from romanarchive.archive import Archive
from romanarchive.mast import missions, portal
from romanarchive.mast.common import MastError
from romanarchive.sim.calibrated import calibrated_survey, science_config

pytestmark = [pytest.mark.db, pytest.mark.slow]

RA, DEC = 271.81, 66.72

# Run in a subprocess: astroquery reads its configuration (the server URL) when it is first imported.
SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astroquery.exceptions import InvalidQueryError, RemoteServiceError
    from astroquery.mast import Mast, MastMissions, Observations, conf

    out = {"server": conf.server}
    dl = sys.argv[1]
    c = SkyCoord(%(ra)r, %(dec)r, unit="deg")
    m = MastMissions(mission="roman")
    out["columns"] = list(m.get_column_list()["name"])
    t = m.query_region(c, radius=3 * u.arcmin)
    out["region"] = sorted(int(x) for x in t["product_id"])
    out["region_sets"] = sorted(set(t["fileSetName"]))
    out["region_all"] = len(m.query_region(c, radius=2 * u.deg, limit=1000))
    t2 = m.query_criteria(coordinates=c, radius=3 * u.arcmin, optical_element="F158", level=2,
                          select_cols=["product_id", "optical_element", "level"], sort_by=["product_id"])
    out["criteria"] = [[int(r["product_id"]), str(r["optical_element"]), int(r["level"])] for r in t2]
    page = m.query_criteria(level=[1, 2], limit=3, offset=2, sort_by="product_id")
    out["page"] = [int(x) for x in page["product_id"]]
    p = m.get_product_list(t2[:2])
    out["products"] = sorted([str(r["dataset"]), str(r["filename"]), str(r["uri"])] for r in p)
    man = m.download_products(p[p["level"] == 2], download_dir=dl + "/missions")
    out["mission_downloads"] = [[str(r["Local Path"]), str(r["Status"])] for r in man]

    o = Observations.query_region(c, radius=0.05 * u.deg)
    out["obs_region"] = sorted(int(x) for x in o["obsid"])
    o2 = Observations.query_criteria(coordinates=c, radius=0.05 * u.deg, filters="F087", calib_level=2)
    out["obs_criteria"] = sorted([int(r["obsid"]), str(r["filters"]), int(r["calib_level"])] for r in o2)
    out["obs_filtered"] = len(Observations.query_criteria(filters=["F158"], t_min=[0, 1e6]))
    out["obs_paged"] = len(Observations.query_region(c, radius=0.05 * u.deg, pagesize=5, page=2))
    pl = Observations.get_product_list(o2[:2])
    out["obs_products"] = sorted([str(r["obsID"]), str(r["productFilename"]), str(r["dataURI"])] for r in pl)
    man = Observations.download_products(pl, download_dir=dl + "/portal")
    out["obs_downloads"] = [[str(r["Local Path"]), str(r["Status"])] for r in man]

    def err(fn):
        try:
            fn()
        except Exception as exc:
            return [type(exc).__name__, str(exc)]
        return None

    out["errors"] = {
        "unknown_mission": err(lambda: MastMissions(mission="nosuch").query_region(c)),
        "mission_radius": err(lambda: m.query_region(c, radius=45 * u.deg)),
        "portal_radius": err(lambda: Observations.query_region(c, radius=45 * u.deg)),
        "portal_position": err(lambda: Mast.mast_query("Mast.Caom.Cone", ra="abc", dec=66.7, radius=0.1)),
        "portal_filtered_position": err(lambda: Mast.mast_query("Mast.Caom.Filtered.Position", position="271.8, 66.7",
                                                                 filters=["F158"])),
        "portal_product": err(lambda: Observations.get_product_list("999999")),
        "mission_product": err(lambda: m.get_product_list("no_such_dataset")),
    }
    out["mission_file"] = list(m.download_file("999999/none.asdf", local_path=dl + "/none.asdf"))
    out["portal_file"] = list(Observations.download_file("mast:ROMAN/product/999999/none.asdf",
                                                         local_path=dl + "/none2.asdf"))
    print("RESULT" + json.dumps(out))
""") % {"ra": RA, "dec": DEC}


@pytest.fixture(scope="module")
def served(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Archive, str, Path]]:
    """(archive, base URL, survey folder): the science survey's L1 and L2 ingested, served on loopback."""
    survey = calibrated_survey(science_config(), out_dir=tmp_path_factory.mktemp("science"))
    with survey_archive(pg_server, tmp_path_factory.mktemp("mast"), survey) as archive, \
            live_server(archive, workers=0) as base:
        yield archive, base, survey


@pytest.fixture(scope="module")
def astroquery_run(served: tuple[Archive, str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Output of the astroquery script run against the server with a temporary astroquery configuration."""
    _, base, _ = served
    tmp = tmp_path_factory.mktemp("astroquery")
    (tmp / "xdg" / "astropy").mkdir(parents=True)
    (tmp / "xdg" / "astropy" / "astroquery.cfg").write_text(f"[mast]\nserver = {base}\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "xdg"), "XDG_CACHE_HOME": str(tmp / "cache")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp / "dl")], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT")]
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(line[-1][6:])


def _ids(archive: Archive, sql: str, **params: object) -> list[int]:
    with archive.engine.connect() as conn:
        return sorted(int(r[0]) for r in conn.execute(sa.text(sql), params))


def _cone(radius_deg: float) -> str:
    return ("SELECT product_id FROM products WHERE s_region && "
            f"scircle(spoint(radians({RA}), radians({DEC})), radians({radius_deg}))")


def test_mission_search_matches_tables(served: tuple[Archive, str, Path], astroquery_run: dict) -> None:
    archive, base, _ = served
    out = astroquery_run
    assert out["server"] == base
    assert {"fileSetName", "product_id", "optical_element", "level"} <= set(out["columns"])
    expected = _ids(archive, _cone(3 / 60))
    assert out["region"] == expected and len(expected) >= 16
    with archive.engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM products")).scalar_one()
        sets = sorted(r[0] for r in conn.execute(sa.text(f"SELECT DISTINCT obs_id FROM products WHERE product_id IN "
                                                         f"({','.join(map(str, expected))})")))  # fmt: skip
    assert out["region_all"] == total == 32
    assert out["region_sets"] == sets
    f158 = _ids(archive, _cone(3 / 60) + " AND filter = 'F158' AND level = 2")
    assert [r[0] for r in out["criteria"]] == f158 and len(f158) == 8
    assert all(r[1:] == ["F158", 2] for r in out["criteria"])
    assert out["page"] == _ids(archive, "SELECT product_id FROM products WHERE level IN (1, 2) ORDER BY product_id "
                                        "LIMIT 3 OFFSET 2")  # fmt: skip


def test_mission_products_and_downloads(served: tuple[Archive, str, Path], astroquery_run: dict) -> None:
    archive, _, survey = served
    out = astroquery_run
    datasets = sorted({p[0] for p in out["products"]})
    assert len(datasets) == 2
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT p.obs_id, f.filename, f.sha256, p.product_id FROM products p JOIN files f "
                                    "USING (file_id) WHERE p.obs_id = ANY(:ids)"), {"ids": datasets}).all()
    assert sorted([r[0], r[1], f"{r[3]}/{r[1]}"] for r in rows) == out["products"]  # L1 and L2 of each dataset
    sha = {r[1]: r[2] for r in rows}
    assert len(out["mission_downloads"]) == 2
    for path, status in out["mission_downloads"]:
        assert status == "COMPLETE"
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert digest == sha[Path(path).name]
        assert digest == hashlib.sha256((survey / "l2" / Path(path).name).read_bytes()).hexdigest()


def test_portal_matches_tables(served: tuple[Archive, str, Path], astroquery_run: dict) -> None:
    archive, _, _ = served
    out = astroquery_run
    assert out["obs_region"] == _ids(archive, _cone(0.05))
    f087 = _ids(archive, _cone(0.05) + " AND filter = 'F087' AND level = 2")
    assert [r[0] for r in out["obs_criteria"]] == f087 and len(f087) == 8
    assert out["obs_filtered"] == len(_ids(archive, "SELECT product_id FROM products WHERE filter = 'F158'"))
    assert out["obs_paged"] == 5  # page 2 of 5-row pages
    with archive.engine.connect() as conn:
        sha = dict(conn.execute(sa.text("SELECT filename, sha256 FROM files")).all())
    assert [int(p[0]) for p in out["obs_products"]] == f087[:2]
    assert all(p[2] == f"mast:ROMAN/product/{p[0]}/{p[1]}" for p in out["obs_products"])
    assert len(out["obs_downloads"]) == 2
    for path, status in out["obs_downloads"]:
        assert status == "COMPLETE" and "mastDownload/ROMAN/" in path
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha[Path(path).name]


def test_errors_reach_astroquery(served: tuple[Archive, str, Path], astroquery_run: dict) -> None:
    _, base, _ = served
    e = astroquery_run["errors"]
    # MastMissions: astroquery raises its usual exceptions; it replaces the text of 400 answers with its own, so the
    # server's message is checked in the body of the same request.
    assert e["unknown_mission"][0] == "ConnectionError" and "404" in e["unknown_mission"][1]
    assert requests.get(f"{base}/search/util/api/v0.1/column_list", params={"mission": "nosuch"}).json()["detail"] \
        == "unknown mission 'nosuch': this archive serves only 'roman'"
    assert e["mission_radius"][0] == "InvalidQueryError"
    body = {"target": [f"{RA} {DEC}"], "radius": 45 * 3600, "radius_units": "arcseconds"}
    r = requests.post(f"{base}/search/roman/api/v0.1/search", json=body)
    assert r.status_code == 400 and r.json()["detail"].startswith("radius out of range: 45.0 deg")
    r = requests.post(f"{base}/search/roman/api/v0.1/search", json={"target": ["12h 66"], "radius": 3})
    assert r.status_code == 400 and r.json()["detail"].startswith("malformed position '12h 66'")
    assert e["mission_product"][0] == "HTTPError" and "404" in e["mission_product"][1]
    # Portal: RemoteServiceError carrying the server's message.
    assert e["portal_radius"] == ["RemoteServiceError", "radius out of range: 45.0 deg (must be > 0 and <= 30.0 deg)"]
    assert e["portal_position"][0] == "RemoteServiceError" and e["portal_position"][1].startswith("malformed position")
    assert e["portal_filtered_position"] == ["RemoteServiceError", "malformed position '271.8, 66.7': expected "
                                             "'ra, dec, radius' in degrees"]  # fmt: skip
    assert e["portal_product"] == ["RemoteServiceError", "unknown obsid '999999': no such product in this archive"]
    for status, msg, _url in (astroquery_run["mission_file"], astroquery_run["portal_file"]):
        assert status == "ERROR" and "404" in msg
    assert requests.head(f"{base}/api/v0.1/Download/file", params={"uri": "mast:ROMAN/product/1/wrong.asdf"}) \
        .status_code == 404


def test_compile_search_offline() -> None:
    q = missions.compile_search({"conditions": [{"optical_element": "F158,F087"}, {"level": ">=2"},
                                                {"exposure_time": "100..200"}, {"obs_id": "!abc*"}],
                                 "select_cols": ["level", None], "sort_by": ["level"], "sort_desc": [True]})
    assert q.names == ["fileSetName", "level"]
    assert "p.filter = :p0 OR p.filter = :p1" in q.sql and "p.level >= :p2" in q.sql
    assert "BETWEEN :p3 AND :p3b" in q.sql and "NOT (p.obs_id ILIKE :p5)" in q.sql and 'ORDER BY "level" DESC' in q.sql
    assert q.params == {"p0": "F158", "p1": "F087", "p2": 2, "p3": 100.0, "p3b": 200.0, "p5": "abc%"}
    for bad, msg in (({"select_cols": ["nope"]}, "unknown column in select_cols 'nope'"),
                     ({"conditions": [{"level": "two"}]}, "bad value 'two' for integer column 'level'"),
                     ({"target": ["1 2"], "radius": -1}, "radius out of range"),
                     ({"limit": -5}, "limit must lie in")):  # fmt: skip
        with pytest.raises(MastError, match=msg):
            missions.compile_search(bad)
    assert portal.invoke(None, {"service": "Mast.Nope"})["status"] == "ERROR"  # type: ignore[arg-type]
