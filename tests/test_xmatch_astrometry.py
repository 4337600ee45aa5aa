"""Astrometry check: catalog rows loaded by the catalog step's loader, matched to Gaia DR3, residuals per skycell."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from romanarchive.archive import Archive
from romanarchive.catalog.load import replace_skycell
from romanarchive.cli import main
from romanarchive.tap.schema import find
from romanarchive.xmatch.astrometry import MAS_PER_DEG, residual_stats
from romanarchive.xmatch.refcat import load_refcat, read_gaia_dr3_bright


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


@pytest.mark.db
def test_check_per_skycell_published(archive: Archive) -> None:
    load_refcat(archive.engine, "gaia-dr3-bright")
    gaia = read_gaia_dr3_bright()
    rng = np.random.default_rng(2)
    cells = {"cellA": (30.0, 10.0, 12.0, -8.0), "cellB": (200.0, -30.0, -20.0, 15.0)}
    with archive.engine.begin() as conn:
        for cell, (ra0, dec0, dra, ddec) in cells.items():
            sel = (np.abs(gaia["ra"] - ra0) < 3) & (np.abs(gaia["dec"] - dec0) < 3)
            ra, dec = _shifted(gaia["ra"][sel], gaia["dec"][sel], dra, ddec, 3.0, rng)
            n_gal = 20
            g_ra, g_dec = ra0 + rng.uniform(-3, 3, n_gal), dec0 + rng.uniform(-3, 3, n_gal)
            replace_skycell(conn, cell, {"ra": np.concatenate([ra, g_ra]), "dec": np.concatenate([dec, g_dec]),
                                         "point_like": np.r_[np.ones(len(ra), bool), np.zeros(n_gal, bool)]})
            cells[cell] = (ra0, dec0, dra, ddec, int(sel.sum()))  # type: ignore[assignment]
    env = {"ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url}
    res = CliRunner().invoke(main, ["astrometry", "check", "--radius", "0.3arcsec"], env=env)
    assert res.exit_code == 0, res.output
    with archive.engine.connect() as conn:
        rows = {r["skycell"]: r for r in conn.execute(sa.text("SELECT * FROM astrometry_checks")).mappings()}
    assert set(rows) == set(cells)
    for cell, (_, _, dra, ddec, n) in cells.items():  # type: ignore[misc]
        r = rows[cell]
        assert r["n_objects"] == n > 50 and r["n_matched"] == n and r["reference"] == "refcat.gaia_dr3_bright"
        assert r["dra_median"] == pytest.approx(dra, abs=1.5) and r["ddec_median"] == pytest.approx(ddec, abs=1.5)
        assert r["dra_scatter"] == pytest.approx(3.0, rel=0.3)
    assert find("roman.astrometry_checks") is not None
