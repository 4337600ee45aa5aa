"""Astrometry check on real pipeline output: calibrated L2s ingested, L3s co-added, L4 catalog built, Gaia loaded.

The science survey's field holds two real Gaia DR3 stars (G = 9.0 and 9.7, simulated without proper motion), both
saturated in every exposure: too few for meaningful scatter, so the test asserts what is measurable — every L2 and
L3 gets a row, both stars are centroided on every L2 (one per L3: the other lies in the neighbouring skycell) with
residuals within a bound (a fraction of a 110 mas pixel), and the catalog's recovery of them is recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from romanarchive.archive import Archive
from romanarchive.cli import main
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database
from romanarchive.tap.schema import find
from romanarchive.xmatch.astrometry import MAS_PER_DEG, centroids, residual_stats
from romanarchive.xmatch.refcat import load_refcat
from tests.conftest import catalogue_one_skycell

RESIDUAL_BOUND_MAS = 60.0


def _shifted(ra: np.ndarray, dec: np.ndarray, dra_mas: float, ddec_mas: float, noise_mas: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    d = dec + (ddec_mas + rng.normal(0, noise_mas, len(dec))) / MAS_PER_DEG
    r = ra + (dra_mas + rng.normal(0, noise_mas, len(ra))) / MAS_PER_DEG / np.cos(np.radians(dec))
    return r % 360.0, d


def test_residual_stats_recover_an_offset() -> None:
    rng = np.random.default_rng(1)
    ref_ra, ref_dec = rng.uniform(10, 11, 400), rng.uniform(-1, 0, 400)
    ra, dec = _shifted(ref_ra, ref_dec, 25.0, -40.0, 5.0, rng)
    ra, dec = np.concatenate([ra, [200.0]]), np.concatenate([dec, [5.0]])  # one object far from any star
    s = residual_stats(ra, dec, ref_ra, ref_dec, 0.5 / 3600)
    assert s["n_objects"] == 401 and s["n_matched"] == 400
    assert s["dra_median"] == pytest.approx(25.0, abs=1.5) and s["ddec_median"] == pytest.approx(-40.0, abs=1.5)
    assert s["dra_scatter"] == pytest.approx(5.0, rel=0.2) and s["sep_median"] == pytest.approx(47.2, abs=3)
    assert residual_stats(ra[:0], dec[:0], ref_ra, ref_dec, 1e-4)["dra_median"] is None


def test_centroids_of_faint_and_saturated_stars() -> None:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:200, 0:200].astype(float)
    truth = np.array([[50.3, 60.7, 2e3], [120.6, 130.2, 1e6], [196.0, 100.0, 1e3]])  # last one at the edge
    img = rng.normal(10.0, 1.0, (200, 200))
    for x0, y0, f in truth:
        img += f / (2 * np.pi * 1.5**2) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.5**2))
    dq = np.zeros(img.shape, np.uint32)
    sat = img > 5e3  # the bright star's core saturates: NaN and DO_NOT_USE, as in a calibrated L2
    img[sat], dq[sat] = np.nan, 1 | 2
    assert sat.sum() > 20
    start_x, start_y = truth[:, 0] + [0.8, -0.9, 0.0], truth[:, 1] + [-0.7, 0.6, 0.0]
    xc, yc = centroids(img.astype(np.float32), dq, start_x, start_y, size=15)
    assert np.hypot(xc[:2] - truth[:2, 0], yc[:2] - truth[:2, 1]).max() < 0.05
    assert np.isnan(xc[2]) and np.isnan(yc[2])


def _cell_of_gaia(archive: Archive) -> str:
    """The skycell whose core holds the field's Gaia stars (the field straddles several; one is catalogued)."""
    from romanarchive.sky.skycells import home_skycells

    with archive.engine.connect() as conn:
        stars = conn.execute(sa.text("SELECT g.ra, g.dec FROM refcat.gaia_dr3_bright g JOIN products p "
                                     "ON g.pos @ p.s_region WHERE p.level = 2")).all()
    names = [c.name for c in home_skycells(np.array([s[0] for s in stars]), np.array([s[1] for s in stars]))]
    return max(sorted(set(names)), key=names.count)


@pytest.fixture(scope="module")
def pipeline(pg_server: str, science_survey: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two epochs (8 L2) ingested, co-added per filter on the Gaia stars' skycell, catalogued; Gaia loaded."""
    tmp = tmp_path_factory.mktemp("astrometry")
    url = create_database(pg_server, "ra_astrometry")
    upgrade(url)
    (tmp / "home").mkdir()
    archive = Archive(Settings(home=tmp / "home", database_url=url, store=str(tmp / "store"), lease_seconds=30))
    l2 = sorted(p for p in (science_survey / "l2").glob("*_cal.asdf") if int(p.name[8:11]) <= 2)
    load_refcat(archive.engine, "gaia-dr3-bright")
    cell = catalogue_one_skycell(archive, l2, _cell_of_gaia)
    yield archive, cell, len(l2)
    archive.engine.dispose()
    drop_database(pg_server, url)


@pytest.mark.db
def test_check_per_l2_and_l3_on_pipeline_output(pipeline: Any) -> None:
    archive, cell, n_l2 = pipeline
    env = {"ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
           "ROMANARCHIVE_STORE": archive.settings.store}
    res = CliRunner().invoke(main, ["astrometry", "check", "--radius", "0.5arcsec"], env=env)
    assert res.exit_code == 0, res.output
    print(res.output)
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM astrometry_checks ORDER BY level, product_id")).mappings().all()
        n_gaia = conn.execute(sa.text("SELECT count(*) FROM refcat.gaia_dr3_bright g JOIN products p ON g.pos @ "
                                      "p.s_region WHERE p.level = 3")).scalar_one()
        gaia_version = conn.execute(sa.text("SELECT version FROM xmatch_versions WHERE relation = "
                                            "'refcat.gaia_dr3_bright'")).scalar_one()
        shas = dict(conn.execute(sa.text("SELECT p.product_id, f.sha256 FROM products p JOIN files f USING (file_id)"
                                         )).all())
    l2 = [r for r in rows if r["level"] == 2]
    l3 = [r for r in rows if r["level"] == 3]
    assert len(l2) == n_l2 and len(l3) == 2 and {r["skycell"] for r in l3} == {cell}
    assert n_gaia >= 2  # one G ~ 9 star per L3 (the other lies in a neighbouring skycell)
    for r in l2:
        assert r["n_reference"] == 2 and r["n_measured"] == 2, dict(r)
    for r in l3:
        assert r["n_reference"] >= 1 and r["n_measured"] == r["n_reference"], dict(r)
    for r in rows:
        # Saturated stars are catalogued as one row each (flag 2) at their saturated core's centroid, nothing else
        # around them: at most one match per reference star.
        assert r["n_objects"] > 0 and r["n_matched"] <= r["n_reference"], dict(r)
        assert abs(r["dra_median"]) < RESIDUAL_BOUND_MAS and abs(r["ddec_median"]) < RESIDUAL_BOUND_MAS, dict(r)
        assert r["sep_p90"] < RESIDUAL_BOUND_MAS * 1.5, dict(r)
        # Provenance of the run in the row.
        assert r["step"] == "romanarchive.xmatch.astrometry" and r["host"] and r["wall_time_s"] >= 0
        assert "numpy" in r["software"] and r["parameters"]["radius_arcsec"] == pytest.approx(0.5)
        tables = {i["table"]: i["version"] for i in r["inputs"] if "table" in i}
        assert tables["refcat.gaia_dr3_bright"] == gaia_version and tables["public.objects"] is not None
        assert {"product_id": r["product_id"], "sha256": shas[r["product_id"]]}.items() <= next(
            i for i in r["inputs"] if "product_id" in i).items()
    assert json.dumps(rows[0]["software"])
    # A catalog release that does hold the stars (their Gaia positions + 30 mas north, two fragments for one):
    # matched once per star at the offset; the image residuals do not depend on the catalog.
    from romanarchive.catalog.load import replace_skycell

    with archive.engine.begin() as conn:
        g = np.array(conn.execute(sa.text("SELECT ra, dec FROM refcat.gaia_dr3_bright g JOIN products p ON g.pos @ "
                                          "p.s_region WHERE p.level = 2 GROUP BY ra, dec")).all())
        dec = np.r_[g[:, 1], g[0, 1]] + np.r_[np.full(len(g), 30.0), 200.0] / MAS_PER_DEG
        replace_skycell(conn, cell, {"ra": np.r_[g[:, 0], g[0, 0]], "dec": dec}, release="astro_test")
    res = CliRunner().invoke(main, ["astrometry", "check", "--release", "astro_test"], env=env)
    assert res.exit_code == 0, res.output
    with archive.engine.connect() as conn:
        test_rows = conn.execute(sa.text("SELECT * FROM astrometry_checks WHERE release = 'astro_test' AND level = 2"
                                         )).mappings().all()
        live_left = conn.execute(sa.text("SELECT count(*) FROM astrometry_checks WHERE release = 'live'")).scalar()
    assert len(test_rows) == n_l2 and live_left == len(rows)
    by_pid = {r["product_id"]: r for r in l2}
    for r in test_rows:
        assert r["n_objects"] == 3 and r["n_matched"] == 2 == r["n_reference"], dict(r)
        assert r["catalog_sep_median"] == pytest.approx(30.0, abs=0.5)
        assert r["dra_median"] == pytest.approx(by_pid[r["product_id"]]["dra_median"])
    assert find("roman.astrometry_checks") is not None


def test_centroids_on_an_l2_agree_with_the_truth(science_survey: Path) -> None:
    """The centroiding the check relies on, on a calibrated L2: unsaturated truth stars land within ~20 mas of their
    true positions through the L2's gWCS (a common ~(-8, +18) mas offset between the simulated scene and the centroid
    is measured; the saturated Gaia stars show about twice that)."""
    import roman_datamodels.datamodels as rdm
    from astropy.table import Table

    from romanarchive.xmatch.astrometry import paired_stats

    truth = Table.read(science_survey / "truth" / "truth.ecsv")
    path = sorted((science_survey / "l2").glob("*_cal.asdf"))[0]
    with rdm.open(path) as m:
        band = str(m.meta.instrument.optical_element).upper()
        stars = truth[(truth["kind"] == "star") & (truth[f"mag_{band}"] > 16) & (truth[f"mag_{band}"] < 21)]
        ra, dec = np.asarray(stars["ra"], float), np.asarray(stars["dec"], float)
        x, y = (np.asarray(v, float) for v in m.meta.wcs.invert(ra, dec, with_bounding_box=False))
        xc, yc = centroids(np.asarray(m.data, np.float32), np.asarray(m.dq), x + 0.4, y - 0.4, size=23)
        ok = np.isfinite(xc)
        r, d = (np.asarray(v, float) for v in m.meta.wcs(xc[ok], yc[ok], with_bounding_box=False))
    assert ok.sum() >= 3
    s = paired_stats(r % 360.0, d, ra[ok], dec[ok])
    assert s["sep_median"] is not None and s["sep_median"] < 30.0, s
