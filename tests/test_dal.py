"""SIA 2.0, DataLink, SODA cutouts and PNG previews against a live server holding the science survey (pyvo, STILTS,
roman_datamodels and astropy as clients)."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import pyvo
import requests
import roman_datamodels as rdm
import sqlalchemy as sa
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS
from support.mast import survey_archive
from support.server import live_server

from romanarchive.archive import Archive
from romanarchive.dal import sia, soda
from romanarchive.dal.products import DalError
from romanarchive.sim.calibrated import calibrated_survey, science_config

pytestmark = [pytest.mark.db, pytest.mark.slow]
RA, DEC = 271.81, 66.72


@pytest.fixture(scope="module")
def served(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Archive, str, Path]]:
    """(archive, base URL, survey folder): the science survey's L1 and L2 ingested, served on loopback."""
    survey = calibrated_survey(science_config(), out_dir=tmp_path_factory.mktemp("science"))
    with survey_archive(pg_server, tmp_path_factory.mktemp("dal"), survey) as archive, \
            live_server(archive, workers=0) as base:
        yield archive, base, survey


def _ids(archive: Archive, where: str) -> list[int]:
    with archive.engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(sa.text(f"SELECT product_id FROM ivoa.obscore WHERE {where}")))


def test_capabilities_declare_services(served: tuple[Archive, str, Path]) -> None:
    _, base, _ = served
    caps = {c.standardid for c in pyvo.dal.TAPService(base + "/tap").capabilities}
    assert {"ivo://ivoa.net/std/SIA#query-2.0", "ivo://ivoa.net/std/DataLink#links-1.1",
            "ivo://ivoa.net/std/SODA#sync-1.0"} <= caps  # fmt: skip


def test_sia2_parameters(served: tuple[Archive, str, Path]) -> None:
    archive, base, _ = served
    svc = pyvo.dal.SIA2Service(base + "/tap")
    assert svc.query_ep == base + "/sia2/query"
    cone = "s_region && scircle(spoint(radians(271.81), radians(66.72)), radians(0.05))"
    pos = (RA * u.deg, DEC * u.deg, 0.05 * u.deg)
    r = svc.search(pos=pos, band=(1.4e-6, 1.6e-6), calib_level=2)
    assert sorted(r["product_id"]) == _ids(archive, f"{cone} AND em_min <= 1.6e-6 AND em_max >= 1.4e-6 "
                                                    "AND calib_level = 2")  # fmt: skip
    assert len(r) == 8 and set(r["filter"]) == {"F158"}
    with archive.engine.connect() as conn:
        t0 = conn.execute(sa.text("SELECT min(t_min) FROM products")).scalar_one()
    r = svc.search(pos=pos, time=(Time(t0 - 0.01, format="mjd"), Time(t0 + 0.5, format="mjd")))
    assert sorted(r["product_id"]) == _ids(archive, f"{cone} AND t_min <= {t0 + 0.5} AND t_max >= {t0 - 0.01}")
    assert 0 < len(r) < 32
    r = svc.search(pos=pos, collection="ROMAN", facility="Roman", instrument="WFI", data_type="image",
                   exptime=(1, 1e4), field_of_view=(0.001, 1), res_format="application/asdf", maxrec=5)
    assert len(r) == 5 and set(r["calib_level"]) == {2}
    polygon = (RA - 0.02, DEC - 0.01, RA + 0.02, DEC - 0.01, RA, DEC + 0.01)
    assert len(svc.search(pos=polygon)) == len(_ids(archive, cone))  # every exposure covers this small triangle
    assert len(svc.search(pos=(0.0, 10.0, 0.0, 10.0))) == 0  # RANGE far away
    one = svc.search(id="ivo://romanarchive/product?3")
    assert list(one["product_id"]) == [3]
    assert len(svc.search(pos=pos, pol="I")) == 0 and len(svc.search(target_name="nothing")) == 0
    bad = pyvo.dal.SIA2Query(base + "/sia2/query")
    bad["POS"] = "CIRCLE 271 66 500"  # pyvo itself would refuse this radius; the server must too
    with pytest.raises(pyvo.dal.DALQueryError, match="POS CIRCLE must be"):
        bad.execute()


def test_datalink_from_sia2(served: tuple[Archive, str, Path]) -> None:
    archive, base, survey = served
    r = pyvo.dal.SIA2Service(base + "/sia2").search(pos=(RA * u.deg, DEC * u.deg, 0.05 * u.deg), calib_level=2,
                                                    maxrec=2)  # fmt: skip
    with archive.engine.connect() as conn:
        info = {row[0]: row[1:] for row in conn.execute(sa.text(
            "SELECT p.product_id, f.sha256, f.filename, p.exposure_id FROM products p JOIN files f USING (file_id)"))}
    seen = 0
    for rec, links in zip(r, r.iter_datalinks(), strict=True):
        pid = int(rec["product_id"])
        t = links.to_table()
        assert set(t["semantics"]) == {"#this", "#progenitor", "#preview", "#cutout"}
        this = next(links.bysemantics("#this", include_narrower=False))
        data = requests.get(this.access_url).content
        assert hashlib.sha256(data).hexdigest() == info[pid][0]
        prog = int(next(links.bysemantics("#progenitor", include_narrower=False)).access_url.rsplit("/", 1)[1])
        assert info[prog][2] == info[pid][2] and info[prog][1].endswith("_uncal.asdf")  # same exposure, L1
        seen += 1
    assert seen == 2
    # TAP results holding obs_publisher_did carry the same DataLink descriptor
    tap = pyvo.dal.TAPService(base + "/tap").run_sync("SELECT TOP 1 obs_publisher_did, product_id FROM ivoa.obscore "
                                                     "WHERE calib_level = 1 ORDER BY product_id")  # fmt: skip
    links = next(tap.iter_datalinks())
    assert int(next(links.bysemantics("#this", include_narrower=False)).access_url.rsplit("/", 1)[1]) == \
        tap["product_id"][0]
    assert {r.semantics for r in links} == {"#this", "#derivation"}  # an L1: its L2 was made from it
    bad = requests.get(base + "/datalink/links", params={"ID": "ivo://romanarchive/product?999999"})
    row = Table.read(io.BytesIO(bad.content), format="votable")[0]
    assert str(row["error_message"]).startswith("NotFoundFault")


def test_datalink_from_async_tap_result(served: tuple[Archive, str, Path]) -> None:
    """Async results are written by a worker, outside any request: they carry the descriptor too."""
    from romanarchive.jobs.worker import drain

    archive, base, _ = served
    job = pyvo.dal.TAPService(base + "/tap").submit_job(
        "SELECT TOP 2 obs_publisher_did, product_id FROM ivoa.obscore WHERE calib_level = 2 ORDER BY product_id")
    job.run()
    assert drain(archive.settings, kinds=("tap_query",)) >= 1  # the server runs no workers here: run it as one
    job.wait(phases=["COMPLETED", "ERROR"], timeout=60)
    assert job.phase == "COMPLETED"
    result = job.fetch_result()
    seen = 0
    for rec, links in zip(result, result.iter_datalinks(), strict=True):
        this = next(links.bysemantics("#this", include_narrower=False))
        assert this.access_url == f"{base}/files/{int(rec['product_id'])}"
        assert "#cutout" in {r.semantics for r in links}
        seen += 1
    assert seen == 2
    job.delete()


@pytest.mark.skipif(shutil.which("stilts") is None, reason="stilts is not installed")
def test_datalinklint(served: tuple[Archive, str, Path]) -> None:
    archive, base, _ = served
    pid = _ids(archive, "calib_level = 2")[0]
    out = subprocess.run(["stilts", "datalinklint", f"votable={base}/datalink/links?ID=ivo://romanarchive/product?{pid}"],
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+)", out)
    assert totals, out
    assert totals.group(1) == "0", out
    assert "Datalink table rows checked: 4" in out


def _centroid(data: np.ndarray, x: float, y: float, half: int = 4) -> tuple[float, float]:
    """First-moment centroid in a box around the brightest pixel near (x, y), background from the box edge."""
    ix, iy = int(round(x)), int(round(y))
    box = data[iy - 6:iy + 7, ix - 6:ix + 7].astype(float)
    py, px = np.unravel_index(np.nanargmax(box), box.shape)
    ix, iy = ix - 6 + px, iy - 6 + py
    box = data[iy - half:iy + half + 1, ix - half:ix + half + 1].astype(float)
    edge = np.concatenate([box[0], box[-1], box[1:-1, 0], box[1:-1, -1]])
    w = np.clip(box - np.median(edge), 0, None)
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    return ix + float((w * xx).sum() / w.sum()), iy + float((w * yy).sum() / w.sum())


def test_soda_cutout_wcs_maps_star(served: tuple[Archive, str, Path]) -> None:
    archive, base, survey = served
    with archive.engine.connect() as conn:
        pid, name = conn.execute(sa.text("SELECT product_id, filename FROM products p JOIN files f USING (file_id) "
                                         "WHERE level = 2 AND filter = 'F158' ORDER BY product_id LIMIT 1")).one()
    parent = rdm.open(survey / "l2" / name)
    truth = Table.read(survey / "truth" / "truth.ecsv")
    stars = truth[(truth["kind"] == "star") & (truth["mag_F158"] > 18) & (truth["mag_F158"] < 20.5)]
    px, py = parent.meta.wcs.invert(np.asarray(stars["ra"]), np.asarray(stars["dec"]))
    inside = (px > 120) & (px < 390) & (py > 120) & (py < 390)
    assert inside.any()
    star = stars[inside][np.argmin(stars[inside]["mag_F158"])]
    xp, yp = _centroid(parent.data, *parent.meta.wcs.invert(star["ra"], star["dec"]))
    ra_c, dec_c = parent.meta.wcs(xp, yp)  # the centroid's sky position in the parent
    # 200x200 pixels around the star (0.11"/pixel): a circle of radius 100 pixels.
    scale = 0.11 / 3600
    for fmt, media in (("asdf", "application/x-asdf"), ("fits", "application/fits")):
        resp = requests.get(base + "/soda/sync", params={"ID": f"ivo://romanarchive/product?{pid}",
                                                         "CIRCLE": f"{star['ra']} {star['dec']} {100 * scale}",
                                                         "RESPONSEFORMAT": media})  # fmt: skip
        assert resp.status_code == 200, resp.text
        if fmt == "asdf":
            cut = rdm.open(io.BytesIO(resp.content))
            assert isinstance(cut, rdm.datamodels.ImageModel)
            data = cut.data
            assert 190 <= data.shape[0] <= 215 and 190 <= data.shape[1] <= 215
            x, y = cut.meta.wcs.invert(ra_c, dec_c)
        else:
            with fits.open(io.BytesIO(resp.content)) as hdul:
                data = hdul["SCI"].data.copy()
                wcs = WCS(hdul["SCI"].header)
            x, y = wcs.world_to_pixel_values(ra_c, dec_c)
        xc, yc = _centroid(np.asarray(data), float(x), float(y))
        # the WCS puts the parent's centroid where the star is in the cutout's own pixels
        assert abs(float(x) - xc) < 0.1 and abs(float(y) - yc) < 0.1, (fmt, x, y, xc, yc)


def test_soda_polygon_band_and_errors(served: tuple[Archive, str, Path]) -> None:
    archive, base, _ = served
    with archive.engine.connect() as conn:
        l1, l2 = conn.execute(sa.text(
            "SELECT min(product_id) FILTER (WHERE level = 1), "
            "min(product_id) FILTER (WHERE level = 2 AND filter = 'F087') FROM products")).one()
    did = f"ivo://romanarchive/product?{l2}"
    poly = f"{RA - 0.002} {DEC - 0.001} {RA + 0.002} {DEC - 0.001} {RA} {DEC + 0.001}"
    resp = requests.post(base + "/soda/sync", data={"ID": did, "POLYGON": poly, "BAND": "0.8e-6 0.9e-6"})
    assert resp.status_code == 200, resp.text
    cut = rdm.open(io.BytesIO(resp.content))
    corners = SkyCoord(*cut.meta.wcs(np.array([0, cut.data.shape[1] - 1]), np.array([0, cut.data.shape[0] - 1])),
                       unit="deg")
    assert corners[0].separation(corners[1]).deg < 0.01  # small: the polygon's bounding box only
    for params, fault in (({"ID": did, "BAND": "1.4e-6 1.6e-6"}, "UsageFault: BAND"),
                          ({"ID": f"ivo://romanarchive/product?{l1}", "CIRCLE": f"{RA} {DEC} 0.01"},
                           "is not a calibrated"),
                          ({"ID": did, "CIRCLE": "10 10 0.01"}, "does not overlap"),
                          ({"ID": did, "CIRCLE": "10 95 0.01"}, "CIRCLE must be"),
                          ({"ID": "ivo://romanarchive/product?999999"}, "NotFoundFault")):  # fmt: skip
        r = requests.get(base + "/soda/sync", params=params)
        assert r.status_code >= 400 and fault in r.text, r.text


def test_preview(served: tuple[Archive, str, Path]) -> None:
    from PIL import Image

    archive, base, _ = served
    pid = _ids(archive, "calib_level = 2")[0]
    r = requests.get(f"{base}/preview/{pid}.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (512, 512) and img.mode == "L"
    pixels = np.asarray(img)
    assert pixels.max() == 255 and np.median(pixels) < 128  # stars bright on a dark sky
    assert (archive.settings.home / "cache" / "previews" / f"{pid}_1024.png").exists()
    assert requests.get(f"{base}/preview/{_ids(archive, 'calib_level = 1')[0]}.png").status_code == 404


def test_sia_and_soda_parsing_offline() -> None:
    q = sia.adql({"pos": ["CIRCLE 10 20 0.5", "RANGE 0 1 -Inf +Inf"], "band": ["1e-6"], "calib": ["2"],
                  "collection": ["O'Brien"], "exptime": ["-Inf 100"]})
    assert "INTERSECTS(s_region, CIRCLE('ICRS', 10.0, 20.0, 0.5))" in q and "(s_ra >= 0.0 AND s_ra <= 1.0" in q
    assert "em_max >= 1e-06 AND em_min <= 1e-06" in q and "calib_level = 2" in q and "'O''Brien'" in q
    assert "t_exptime <= 100.0" in q and " OR " in q
    for bad in ({"pos": ["BOX 1 2 3 4"]}, {"band": ["2 1"]}, {"calib": ["x"]}, {"time": ["a b"]}):
        with pytest.raises(DalError):
            sia.adql(bad)
    reg = soda.circle("10 89.9 0.5")
    sep = SkyCoord(reg.ra, reg.dec, unit="deg").separation(SkyCoord(10, 89.9, unit="deg")).deg
    assert np.allclose(sep, 0.5)
    assert soda.band("1e-6") == (1e-6, 1e-6)
    with pytest.raises(DalError, match="POLYGON"):
        soda.polygon("1 2 3 4")


def test_l3_mosaic_links_cutout_preview(served: tuple[Archive, str, Path]) -> None:
    """Any level works: an L3 mosaic built from the ingested L2s (runs last: it adds a product)."""
    from romanarchive.mosaic.job import build_and_register
    from romanarchive.sky.skycells import skycells_containing

    archive, base, _ = served
    pid = build_and_register(archive, skycells_containing(RA, DEC)[0].name, "F158")
    assert pid is not None
    found = pyvo.dal.SIA2Service(base + "/tap").search(pos=(RA, DEC, 0.01), calib_level=3)
    assert list(found["product_id"]) == [pid]
    links = next(found.iter_datalinks())
    inputs = sorted(int(r.access_url.rsplit("/", 1)[1]) for r in links if r.semantics == "#progenitor")
    assert inputs == _ids(archive, "calib_level = 2 AND filter = 'F158'")  # from its provenance
    did = f"ivo://romanarchive/product?{pid}"
    resp = requests.get(base + "/soda/sync", params={"ID": did, "CIRCLE": f"{RA} {DEC} 0.002"})
    assert resp.status_code == 200, resp.text
    cut = rdm.open(io.BytesIO(resp.content))
    assert isinstance(cut, rdm.datamodels.MosaicModel) and min(cut.data.shape) > 50
    x, y = cut.meta.wcs.invert(RA, DEC)
    assert 0 <= x < cut.data.shape[1] and 0 <= y < cut.data.shape[0]
    assert requests.get(f"{base}/preview/{pid}.png").headers["content-type"] == "image/png"
