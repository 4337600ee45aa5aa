"""romanarchive.client: payload builders offline, then every call against a live server holding the science survey."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import astropy.units as u
import pytest
import roman_datamodels as rdm
import sqlalchemy as sa
from astropy.coordinates import SkyCoord
from support.server import live_server

from romanarchive.archive import Archive
from romanarchive.client import RomanArchive, conf

RA, DEC = 271.81, 66.72


def test_payloads_offline() -> None:
    c = RomanArchive("http://archive.invalid:1")  # never contacted
    p = c.query_region(SkyCoord(RA, DEC, unit="deg"), radius=2 * u.arcmin, filter="F158", maxrec=10,
                       get_query_payload=True)  # fmt: skip
    assert p["LANG"] == "ADQL" and p["MAXREC"] == 10
    assert f"CIRCLE('ICRS', {RA!r}, {DEC!r}, {2 / 60!r})" in p["QUERY"] and "filter = 'F158'" in p["QUERY"]
    p = c.query_criteria(level=[1, 2], t_min=(61000, 61002), obs_id="a'b", get_query_payload=True)
    assert '"level" IN (1, 2)' in p["QUERY"] and "t_min BETWEEN 61000.0 AND 61002.0" in p["QUERY"]
    assert "obs_id = 'a''b'" in p["QUERY"]
    with pytest.raises(ValueError):
        c.query_criteria(get_query_payload=True)
    assert c.cone((RA, DEC), 30 * u.arcsec, table=None, get_query_payload=True) == {
        "RA": RA, "DEC": DEC, "SR": 30 / 3600, "VERB": 2}  # fmt: skip
    q = c.cone((RA, DEC), 30 * u.arcsec, maxrec=5, get_query_payload=True)
    assert "FROM roman.objects WHERE" in q["QUERY"] and "release = 'live'" in q["QUERY"] and q["MAXREC"] == 5
    assert f"CIRCLE('ICRS', {RA!r}, {DEC!r}, {30 / 3600!r})" in q["QUERY"] and q["QUERY"].endswith("ORDER BY dist")
    q = c.cone((RA, DEC), table="roman.gaia_dr3_bright", release="DR1", get_query_payload=True)["QUERY"]
    assert "FROM roman.gaia_dr3_bright" in q and "release" not in q
    with pytest.raises(ValueError, match="bad table"):
        c.cone((RA, DEC), table="x; DROP", get_query_payload=True)
    assert c.get_product_list([3, "ivo://romanarchive/product?4"], get_query_payload=True) == \
        {"ID": ["ivo://romanarchive/product?3", "ivo://romanarchive/product?4"]}
    assert c.download_products(7, get_query_payload=True) == {"urls": ["http://archive.invalid:1/files/7"]}
    assert c.cutout(5, circle=(RA, DEC, 0.01), band=(1e-6, 2e-6), fmt="fits", get_query_payload=True) == {
        "ID": "ivo://romanarchive/product?5", "RESPONSEFORMAT": "application/fits", "CIRCLE": f"{RA!r} {DEC!r} 0.01",
        "BAND": "1e-06 2e-06"}  # fmt: skip
    assert c.lightcurve(123, format="csv", get_query_payload=True) == {"source_id": "123", "format": "csv"}
    assert c.submit_level5("x.fits", token="t", get_query_payload=True) == {
        "paths": ["x.fits"], "server": "http://archive.invalid:1", "token": "***"}
    with pytest.raises(ValueError, match="not a product id"):
        c.get_product_list("ivo://elsewhere/1", get_query_payload=True)


def test_server_from_astropy_config(tmp_path: Path) -> None:
    (tmp_path / "astropy").mkdir()
    (tmp_path / "astropy" / "romanarchive.cfg").write_text("[client]\nserver = http://configured.invalid:8123\n")
    code = "from romanarchive.client import RomanArchive; print(RomanArchive().server)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.stdout.strip() == "http://configured.invalid:8123", out.stderr
    with conf.set_temp("server", "http://temp.invalid:9"):
        assert RomanArchive().server == "http://temp.invalid:9"


@pytest.fixture(scope="module")
def served(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Archive, str, Path]]:
    """(archive, base URL, survey folder): the science survey's L1 and L2 ingested, served on loopback."""
    from support.mast import survey_archive

    from romanarchive.sim.calibrated import calibrated_survey, science_config

    survey = calibrated_survey(science_config(), out_dir=tmp_path_factory.mktemp("science"))
    with survey_archive(pg_server, tmp_path_factory.mktemp("client"), survey) as archive, \
            live_server(archive, workers=0) as base:
        yield archive, base, survey


@pytest.mark.db
@pytest.mark.slow
def test_client_live(served: tuple[Archive, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive, base, survey = served
    c = RomanArchive(base)
    t = c.query_region((RA, DEC), radius=0.05 * u.deg, calib_level=2, filter="F087")
    with archive.engine.connect() as conn:
        expected = sorted(r[0] for r in conn.execute(sa.text(
            "SELECT product_id FROM products WHERE level = 2 AND filter = 'F087' AND s_region && "
            f"scircle(spoint(radians({RA}), radians({DEC})), radians(0.05))")))
        sha = dict(conn.execute(sa.text("SELECT p.product_id, f.sha256 FROM products p JOIN files f USING (file_id)"))
                   .all())  # fmt: skip
    assert sorted(t["product_id"]) == expected and len(expected) == 8
    assert len(c.query_criteria(level=1, maxrec=3)) == 3

    links = c.get_product_list(t[:2])
    assert list(links["semantics"]).count("#this") == 2 and "#cutout" in set(links["semantics"])
    with pytest.raises(LookupError, match="NotFoundFault"):
        c.get_product_list(999999)

    manifest = c.download_products(list(t["product_id"][:2]) + [999999], tmp_path / "dl")
    assert list(manifest["Status"]) == ["COMPLETE", "COMPLETE", "ERROR"] and "404" in manifest["Message"][2]
    for row in manifest[:2]:
        data = Path(row["Local Path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"] == sha[int(row["product_id"])]
        assert Path(row["Local Path"]).name.endswith("_cal.asdf")

    path = c.cutout(int(t["product_id"][0]), circle=(RA, DEC, 0.003), download_dir=tmp_path / "cut")
    cut = rdm.open(path)
    assert isinstance(cut, rdm.datamodels.ImageModel) and 180 <= cut.data.shape[0] <= 215  # 0.003 deg ~ 98 px
    assert path.name == cut.meta.filename

    cone = c.cone((RA, DEC), 1 * u.arcmin, table=None)
    assert hasattr(cone, "colnames")  # SCS answers (over the archive's configured cone-search table)

    # /lightcurve (time-series service): this archive holds no catalogued sources, so the server's refusal is what
    # comes back, with its message
    with pytest.raises(LookupError, match=r"light curve of 123456789: HTTP 4\d\d: \S"):
        c.lightcurve(123456789)
    monkeypatch.delenv("ROMANARCHIVE_LEVEL5_TOKEN", raising=False)
    report = c.submit_level5(next((survey / "l2").glob("*_cal.asdf")), token=None)
    assert report["http_status"] in (401, 403) and report.get("valid") is not True  # no token: refused


@pytest.fixture(scope="module")
def catalogued(pg_server: str, science_survey: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """The first two epochs' L2s ingested, then one skycell mosaicked, catalogued and force-photometered (the
    cheapest archive with an object catalog and light curves)."""
    from romanarchive.config import Settings
    from romanarchive.db.engine import upgrade
    from romanarchive.db.scratch import create_database, drop_database
    from romanarchive.timeseries import forced_job as forced
    from tests.conftest import catalogue_one_skycell

    tmp = tmp_path_factory.mktemp("client_cat")
    url = create_database(pg_server, "ra_client_cat")
    upgrade(url)
    (tmp / "home").mkdir()
    archive = Archive(Settings(home=tmp / "home", database_url=url, store=str(tmp / "store"), lease_seconds=30))
    # File names r0000101<pass>001001001_...: the pass (3 digits) is epoch + 1.
    l2 = sorted(p for p in (science_survey / "l2").glob("*_cal.asdf") if int(p.name[8:11]) <= 2)
    assert len(l2) == 8
    catalogue_one_skycell(archive, l2)
    forced.run_all(archive, forced.ForcedPhotConfig(point_like_only=False))
    yield archive
    archive.engine.dispose()
    drop_database(pg_server, url)


@pytest.mark.db
@pytest.mark.slow
def test_client_catalog_lightcurve_level5(catalogued: Archive, tmp_path: Path) -> None:
    import numpy as np

    from romanarchive.level5 import service

    sys.path.insert(0, str(Path(__file__).parent / "level5_corpus"))
    import make_corpus as mc

    archive = catalogued
    with archive.engine.connect() as conn:
        objs = conn.execute(sa.text("SELECT source_id, ra, dec FROM objects WHERE release = 'live'")).all()
        lc_counts = dict(conn.execute(sa.text("SELECT source_id, count(*) FROM forced_phot GROUP BY source_id")).all())
    assert objs and lc_counts
    ra = np.array([o[1] for o in objs])
    dec = np.array([o[2] for o in objs])
    ra0, dec0, r = float(np.median(ra)), float(np.median(dec)), 0.005
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).deg
    expected = {int(o[0]) for o, d in zip(objs, sep, strict=True) if d <= r}
    assert expected
    token = service.create_token(archive, "client")
    with live_server(archive, workers=0) as base:
        c = RomanArchive(base)
        cone = c.cone((ra0, dec0), r * u.deg)
        assert set(np.asarray(cone["source_id"]).tolist()) == expected
        assert set(cone["release"]) == {"live"} and str(cone["psf_f158_flux"].unit) == "nJy"
        assert np.all(np.diff(np.asarray(cone["dist"])) >= 0) and float(cone["dist"].max()) <= r + 1e-9
        scs = c.cone((ra0, dec0), r * u.deg, table=None, verbosity=1)  # /scs serves the same catalog by default
        assert set(np.asarray(scs["source_id"]).tolist()) == expected

        sid = max(lc_counts, key=lambda s: (lc_counts[s], s))
        lc = c.lightcurve(sid)
        with archive.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT filter, mjd, flux FROM forced_phot WHERE source_id = :s "
                                        "ORDER BY filter, mjd"), {"s": sid}).all()
        assert len(lc) == len(rows) == lc_counts[sid] and np.all(lc["source_id"] == sid)
        assert [str(f) for f in lc["filter"]] == [r_[0] for r_ in rows]
        np.testing.assert_allclose(np.asarray(lc["mjd"], float), [r_[1] for r_ in rows], rtol=0, atol=1e-9)
        # An extended object's PSF flux is NULL (a masked value here, NaN once filled).
        got = np.ma.filled(np.ma.asarray(lc["flux"]).astype(float), np.nan)
        np.testing.assert_allclose(got, [np.nan if r_[2] is None else r_[2] for r_ in rows], rtol=1e-6)
        assert len(c.lightcurve(sid, format="json")["data"]) == len(rows)

        files = mc.catalog(tmp_path / "l5", mc.declaration("client_photoz"), mc.columns())
        report = c.submit_level5(files[0], token=token)
        assert report["http_status"] == 201 and report["state"] == "published", report
        found = c.tap.run_sync("SELECT object_id, ra FROM level5.client_photoz_v1 ORDER BY object_id").to_table()
        assert list(found["object_id"]) == list(range(1, mc.N + 1))
        assert str(found["ra"].unit) == "deg"
        assert list(c.query_criteria(level=5)["obs_id"]) == ["client_photoz/v1"]  # ObsCore lists the new product
