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
    assert c.cone((RA, DEC), 30 * u.arcsec, get_query_payload=True) == {"RA": RA, "DEC": DEC, "SR": 30 / 3600,
                                                                         "VERB": 2}  # fmt: skip
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
    from romanarchive.mast.testing import survey_archive
    from romanarchive.server.testing import live_server
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

    cone = c.cone((RA, DEC), 1 * u.arcmin)
    assert hasattr(cone, "colnames")  # SCS answers (over the archive's configured cone-search table)

    # /lightcurve (time-series service): this archive holds no catalogued sources, so the server's refusal is what
    # comes back, with its message
    with pytest.raises(LookupError, match=r"light curve of 123456789: HTTP 4\d\d: \S"):
        c.lightcurve(123456789)
    monkeypatch.delenv("ROMANARCHIVE_LEVEL5_TOKEN", raising=False)
    report = c.submit_level5(next((survey / "l2").glob("*_cal.asdf")), token=None)
    assert report["http_status"] in (401, 403) and report.get("valid") is not True  # no token: refused
