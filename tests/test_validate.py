"""``romanarchive validate``: matching and figure functions on small tables with known answers, and one run on a real
catalogued archive."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import asdf
import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from romanarchive.validate import catalog_checks, matching, photometry, stats, timedomain
from romanarchive.validate.matching import AB_ZP_NJY, Truth, load_truth, mag_to_njy
from romanarchive.validate.report import Report

ARC = 1.0 / 3600.0
RA0, DEC0 = 10.0, 60.0
COSD = math.cos(math.radians(DEC0))


def _offset(d_east_arcsec: float, d_north_arcsec: float) -> tuple[float, float]:
    """A position east/north of (RA0, DEC0) by small offsets in arcsec."""
    return RA0 + d_east_arcsec * ARC / COSD, DEC0 + d_north_arcsec * ARC


def _truth(rows: list[dict[str, Any]], path: Path | None = None) -> Truth:
    defaults = {"mag_F087": 20.0, "mag_F158": 20.0, "ref_mjd": 61000.0, "dra_dt": 0.0, "ddec_dt": 0.0,
                "t0": math.nan}
    table = Table(rows=[{**defaults, **r} for r in rows])
    table.meta = {"filters": ["F087", "F158"], "ref_filter": "F158"}
    return Truth(table, np.empty(0), np.empty(0), np.empty(0, dtype=int), path or Path("truth.ecsv"))


# --------------------------------------------------------------------------- matching


def test_separations_and_nearest_are_exact_on_the_sphere() -> None:
    ra, dec = _offset(0.3, 0.4)
    assert matching.separation_arcsec(np.array([RA0]), np.array([DEC0]), np.array([ra]), np.array([dec]))[0] == \
        pytest.approx(0.5, abs=1e-6)
    # Across RA = 0: 359.9999° and 0.0001° are 0.72" apart at the equator.
    idx, sep = matching.nearest(np.array([359.9999]), np.array([0.0]), np.array([0.0001, 180.0]), np.zeros(2))
    assert idx[0] == 0 and sep[0] == pytest.approx(0.72, abs=1e-6)
    idx, sep = matching.nearest(np.array([1.0]), np.array([1.0]), np.empty(0), np.empty(0))
    assert idx[0] == -1 and sep[0] == np.inf


def test_pairs_counts_and_isolation() -> None:
    pos = [_offset(0, 0), _offset(0.25, 0), _offset(0.6, 0), _offset(5, 5)]
    ra, dec = (np.array(v) for v in zip(*pos, strict=True))
    assert matching.pairs_within(ra, dec, 0.3).tolist() == [[0, 1]]
    assert sorted(map(tuple, matching.pairs_within(ra, dec, 0.4).tolist())) == [(0, 1), (1, 2)]
    assert matching.count_within(ra[:1], dec[:1], ra, dec, 1.0).tolist() == [3]
    assert matching.isolated(ra, dec, 2.0).tolist() == [False, False, False, True]


def test_offsets_are_east_and_north_in_mas() -> None:
    ra, dec = _offset(0.010, -0.004)
    dra, ddec = matching.offsets_mas(np.array([ra]), np.array([dec]), np.array([RA0]), np.array([DEC0]))
    assert dra[0] == pytest.approx(10.0, rel=1e-6) and ddec[0] == pytest.approx(-4.0, rel=1e-6)


def test_truth_loading_with_moving_tracks_and_errors(tmp_path: Path) -> None:
    truth = Table({"id": [0, 1], "kind": ["star", "moving"], "ra": [RA0, RA0], "dec": [DEC0, DEC0 + 0.01],
                   "mag_F158": [20.0, 21.0]})
    (tmp_path / "truth").mkdir()
    truth.write(tmp_path / "truth" / "truth.ecsv")
    Table({"id": [1, 1, 0], "ra": [RA0, RA0, RA0], "dec": [DEC0 + 0.011, DEC0 + 0.012, DEC0]}).write(
        tmp_path / "truth" / "exposure_truth.ecsv")
    t = load_truth(tmp_path)  # the survey folder works as well as the file
    assert t.filters == ["F158"] and t.ref_filter == "F158"
    ra, dec, row = t.all_positions()
    assert len(ra) == 4 and row.tolist() == [0, 1, 1, 1]
    assert mag_to_njy(np.array([AB_ZP_NJY]))[0] == pytest.approx(1.0)
    assert t.flux_njy("f158")[0] == pytest.approx(10 ** (0.4 * (AB_ZP_NJY - 20.0)))
    with pytest.raises(matching.TruthError, match="no truth catalogue"):
        load_truth(tmp_path / "nothing")
    Table({"a": [1]}).write(tmp_path / "bad.ecsv")
    with pytest.raises(matching.TruthError, match="not a romanarchive truth table"):
        load_truth(tmp_path / "bad.ecsv")


# --------------------------------------------------------------------------- statistics


def test_unmatched_fraction_duplicates_and_multiplicity() -> None:
    truth = [_offset(0, 0), _offset(10, 0)]
    rows = [_offset(0.1, 0), _offset(10, 0.15), _offset(10.3, 0), _offset(20, 20)]  # 2 matched, 0.3" and far off
    tra, tdec = (np.array(v) for v in zip(*truth, strict=True))
    ra, dec = (np.array(v) for v in zip(*rows, strict=True))
    frac, matched = stats.unmatched_fraction(ra, dec, tra, tdec, 0.2)
    assert frac == pytest.approx(0.5) and matched.tolist() == [True, True, False, False]
    assert math.isnan(stats.unmatched_fraction(np.empty(0), np.empty(0), tra, tdec, 0.2)[0])
    assert stats.duplicate_pairs(ra, dec, 0.3).tolist() == []  # rows 1 and 2 are 0.335" apart
    assert stats.duplicate_pairs(ra, dec, 0.4).tolist() == [[1, 2]]
    assert stats.multiplicity_histogram(np.array([0, 1, 1, 2, 1])) == {0: 1, 1: 3, 2: 1}


def test_completeness_per_bin_and_shortfall() -> None:
    mag = np.array([18.2, 18.7, 18.8, 19.1, np.inf, 19.4])
    det = np.array([True, False, True, False, True, True])
    c = stats.completeness(mag, det, [18.0, 18.5, 19.0, 19.5])
    assert c.n.tolist() == [1, 2, 2] and c.n_detected.tolist() == [1, 1, 1]
    assert c.fraction.tolist() == [1.0, 0.5, 0.5]
    peer = stats.completeness(mag, np.ones(6, bool), [18.0, 18.5, 19.0, 19.5])
    assert stats.completeness_shortfall(c, peer, min_sources=2) == pytest.approx(0.5)
    assert stats.completeness_shortfall(peer, c, min_sources=2) == pytest.approx(-0.5)  # never worse
    assert math.isnan(stats.completeness_shortfall(c, peer, min_sources=3))


def test_bias_pulls_and_astrometry() -> None:
    truth = np.array([100.0, 200.0, 300.0, 400.0])
    assert stats.flux_bias(truth * np.array([1.02, 0.98, 1.01, np.nan]), truth) == pytest.approx(0.01)
    assert math.isnan(stats.flux_bias(np.array([1.0]), np.array([0.0])))
    err = np.array([10.0, 10.0, 5.0, 5.0])
    measured = truth + np.array([-10.0, 10.0, -5.0, 5.0])  # pulls -1, 1, -1, 1: std (ddof 1) = sqrt(4/3)
    assert stats.pull_scatter(measured, truth, err) == pytest.approx(math.sqrt(4 / 3))
    assert stats.robust_sigma(np.array([-1.0, 0.0, 1.0])) == pytest.approx(1.4826)
    a = stats.astrometry(np.array([1.0, 3.0]), np.array([-2.0, 2.0]), np.array([0.001, 0.001]),
                         np.array([0.002, 0.002]))
    assert (a.n, a.mean_dra, a.mean_ddec) == (2, 2.0, 0.0)
    assert a.rms_dra == pytest.approx(math.sqrt(5.0)) and a.rms_ddec == pytest.approx(2.0) and a.rms == a.rms_dra
    assert a.pull_ra == pytest.approx(math.sqrt(2.0)) and a.pull_dec == pytest.approx(math.sqrt(2.0))


def test_goals_and_figures() -> None:
    assert stats.at_most(0.1).check(0.1) is True and stats.at_most(0.1).check(0.2) is False
    assert stats.abs_at_most(3).check(-2.5) is True and stats.between(0.8, 1.3).check(1.31) is False
    assert stats.equals("MJy/sr").check("DN/s") is False
    assert stats.at_least(0.95).check(None) is False and stats.at_least(0.95).check(math.nan) is False
    assert stats.INFO.check(5) is None
    f = stats.Figure("s", "x", np.float64(0.5), stats.at_most(0.1), detail={"a": np.array([1, 2])})
    assert f.verdict == "FAIL" and f.as_dict()["detail"] == {"a": [1, 2]} and f.formatted() == "0.5"
    assert stats.Figure("s", "y", None, stats.equals(0)).formatted() == "n/a"


# --------------------------------------------------------------------------- figures from tables


def _field() -> tuple[Truth, dict[str, np.ndarray]]:
    """A bright star with 3 debris rows and one real neighbour, 2 isolated stars, a galaxy, a duplicate."""
    t = [dict(id=0, kind="gaia", mag_F087=9.0, mag_F158=9.0), dict(id=1, kind="star", mag_F158=21.0),
         dict(id=2, kind="star", mag_F158=19.0), dict(id=3, kind="star", mag_F158=19.5),
         dict(id=4, kind="galaxy", mag_F158=21.0)]
    pos = [_offset(0, 0), _offset(6, 0), _offset(60, 0), _offset(120, 0), _offset(180, 0)]
    for r, (ra, dec) in zip(t, pos, strict=True):
        r.update(ra=ra, dec=dec)
    truth = _truth(t)
    rows = [_offset(0.5, 0), _offset(3, 3), _offset(-4, 2), _offset(0, -7), _offset(6, 0.05),  # star + debris + nb
            _offset(60, 0), _offset(120.01, 0), _offset(180, 0), _offset(180.2, 0.1)]  # stars, galaxy twice
    ra, dec = (np.array(v) for v in zip(*rows, strict=True))
    objects = {"ra": ra, "dec": dec, "source_id": np.arange(9) + 100,
               "skycell": np.array(["a"] * 5 + ["b"] * 4),
               "is_extended": np.array([0, 1, 1, 1, 0, 0, np.nan, 1, 1], dtype=float)}
    return truth, objects


def test_catalog_figures_on_a_known_field() -> None:
    truth, objects = _field()
    match = catalog_checks.match_catalog(truth, objects["ra"], objects["dec"])
    assert match.row_real.tolist() == [False, False, False, False, True, True, True, True, False]
    assert match.truth_row.tolist() == [-1, 4, 5, 6, 7] and match.truth_nrows.tolist() == [0, 1, 1, 1, 1]
    purity = {f.name: f for f in catalog_checks.purity_figures(objects, match)}
    assert purity['rows without a truth source within 0.2"'].value == pytest.approx(5 / 9)
    assert purity["  skycell a: rows without truth match"].value == pytest.approx(4 / 5)
    sat = catalog_checks.saturated_stars(truth, None)
    assert sat.tolist() == [0]
    (bright,) = catalog_checks.bright_star_figures(truth, objects["ra"], objects["dec"], match, sat, None)
    assert bright.value == 3 and bright.detail["rows_within"] == 4 and bright.detail["star_row_found"]
    dup = {f.name.split(" (")[0]: f for f in catalog_checks.duplicate_figures(
        objects["ra"], objects["dec"], objects["skycell"], match, truth)}
    assert dup["duplicate pairs"].value == 1 and dup["duplicate pairs"].passed is False  # the galaxy's rows 7, 8
    assert dup["truth sources matched by more than one row"].value == 0  # row 8 is 0.22" from the galaxy
    cls = catalog_checks.classification_figures(objects, truth, match)
    # Stars 1, 2 matched (rows 4, 5: point-like); star 3 matched to row 6 whose class is NULL: 2 of 3.
    assert cls[0].value == pytest.approx(2 / 3) and cls[0].passed is False
    assert cls[1].value == 1.0 and cls[1].passed is True
    cells = catalog_checks.skycell_figures({"a", "b", "c"}, {"a", "b"}, [], {"done": 3})
    assert cells[0].value == 1 and cells[0].note == "c" and cells[1].value == 0 and cells[1].passed


def test_flux_and_astrometry_figures_recover_a_known_bias(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 40
    t = [dict(id=i, kind="star", mag_F087=19.0 + 0.05 * i, mag_F158=19.0 + 0.05 * i,
              ra=_offset(10.0 * i, 0)[0], dec=DEC0) for i in range(n)]
    truth = _truth(t)
    true = truth.flux_njy("F158")
    err = 0.005 * true  # S/N 200
    noise = rng.standard_normal(n)
    psf = true * 1.004 + err * noise
    e_arcsec = 0.002
    ra = truth.ra + rng.normal(0, e_arcsec, n) * ARC / COSD + 0.001 * ARC / COSD  # +1 mas east
    objects = {"ra": ra, "dec": truth.dec.copy(), "source_id": np.arange(n),
               "psf_f158_flux": psf, "psf_f158_flux_err": err,
               "aper04_f158_flux": true * 0.8, "aper04_f158_flux_err": err * 0.8,
               "kron_f158_flux": true * 0.95, "kron_f158_flux_err": err,
               "ra_err": np.full(n, e_arcsec), "dec_err": np.full(n, e_arcsec)}
    truth_row = np.arange(n)
    ap = tmp_path / "apcorr.asdf"
    # ee_radii in pixels: 0.4" = 3.64 px of 0.11"; EE there = 0.8 by construction.
    asdf.AsdfFile({"roman": {"data": {"F158": {"ee_fractions": np.array([0.5, 0.8, 0.9]),
                                                "ee_radii": np.array([1.0, 0.4 / 0.11, 6.0])}}}}).write_to(ap)
    apcorr = {"F158": photometry.read_apcorr(ap, "F158")}
    assert apcorr["F158"].radii_unit == "pixels" and apcorr["F158"].ee_at_04 == pytest.approx(0.8)
    forced = {(int(i), "F158"): (float(true[i] * 1.004 * 0.98), 4) for i in range(n)}
    plot: dict[str, Any] = {}
    figs = {f.name: f for f in photometry.flux_figures(objects, truth, truth_row, ["F158"], apcorr, forced, plot)}
    assert figs["F158 isolated stars with S/N > 50"].value == n
    assert figs["F158 PSF flux bias"].value == pytest.approx(0.004, abs=0.003) and figs["F158 PSF flux bias"].passed
    assert 0.7 < figs["F158 PSF flux pull scatter"].value < 1.4
    assert figs['F158 aper04 / EE(0.4") flux bias'].value == pytest.approx(0.0, abs=1e-12)
    assert figs["F158 Kron flux bias"].value == pytest.approx(-0.05) and not figs["F158 Kron flux bias"].passed
    ratio = figs["F158 L4 PSF flux / forced-photometry mean - 1"].value
    assert ratio == pytest.approx(1 / 0.98 - 1, abs=0.01)
    astro = {f.name: f for f in photometry.astrometry_figures(objects, truth, truth_row, ["F158"], plot)}
    assert astro["best (ra, dec): mean offset RA cos Dec"].value == pytest.approx(1.0, abs=1.2)
    assert astro["best (ra, dec): mean offset Dec"].value == pytest.approx(0.0, abs=1e-6)
    assert 0.7 < astro["best (ra, dec): position pull RA"].value < 1.4
    # A close pair is not isolated: move star 1 next to star 0 and it leaves the sample.
    truth.table["ra"][1] = truth.table["ra"][0] + 1.0 * ARC / COSD
    assert 1 not in photometry.star_sample(truth, truth_row) and 0 not in photometry.star_sample(truth, truth_row)


def test_units_and_missing_columns() -> None:
    assert photometry.image_unit({"cal_step": {"flux": "COMPLETE"}}) == "MJy/sr"
    assert photometry.image_unit({"cal_step": {"flux": "INCOMPLETE"}}) == "DN/s"
    figs = photometry.image_unit_figures(3, {"cal_step": {"flux": "COMPLETE"}, "photometry": {
        "conversion_megajanskys": 1.0, "pixel_area": 7.1e-14}}, "")
    assert [f.passed for f in figs] == [True, True, True]
    objects = {"psf_f158_flux": np.ones(1), "kron_f158_flux": np.ones(1), "ra": np.ones(1)}
    unit, missing = photometry.catalog_unit_figures(objects, ["F158"], {"psf_f158_flux": "nJy",
                                                                         "kron_f158_flux": "MJy/sr"})
    assert unit.value == "1 not nJy" and not unit.passed and "label" in missing.detail["missing"]
    assert photometry.flux_figures({"ra": np.ones(1)}, _field()[0], np.zeros(5, int), ["F158"], {}, {},
                                   {})[0].value is None


def test_dia_and_light_curve_figures() -> None:
    t = [dict(id=0, kind="transient", t0=61001.0), dict(id=1, kind="transient", t0=61010.0),
         dict(id=2, kind="variable"), dict(id=3, kind="star"), dict(id=4, kind="star", mag_F158=24.0)]
    pos = [_offset(0, 0), _offset(30, 0), _offset(60, 0), _offset(90, 0), _offset(120, 0)]
    for r, (ra, dec) in zip(t, pos, strict=True):
        r.update(ra=ra, dec=dec)
    truth = _truth(t)
    # Transient 0 twice at the second epoch (one row too many), the variable, and one row on nothing.
    dia_pos = [_offset(0.1, 0), _offset(0, 0.1), _offset(60, 0.2), _offset(200, 0)]
    dia = {"ra": np.array([p[0] for p in dia_pos]), "dec": np.array([p[1] for p in dia_pos]),
           "filter": np.array(["F158"] * 4), "mjd": np.array([61002.0] * 4)}
    epochs = {"F158": [61000.0, 61002.0, 61004.0]}  # transient 1 (t0 61010) never appears
    figs = {f.name: f for f in timedomain.dia_figures(dia, truth, np.ones(5, bool), epochs)}
    assert figs['DIA sources matched to a truth transient within 0.3"'].value == 2
    assert figs["DIA purity (transient, variable or moving)"].value == pytest.approx(3 / 4)
    assert not figs["DIA purity (transient, variable or moving)"].passed
    assert figs["truth transients found by DIA at first appearance"].value == 1.0
    assert figs["transient epochs with exactly one DIA row"].value == 0.0
    # The same row one epoch late does not count as found at first appearance.
    late = {**dia, "mjd": np.array([61004.0] * 4)}
    figs = {f.name: f for f in timedomain.dia_figures(late, truth, np.ones(5, bool), epochs)}
    assert figs["truth transients found by DIA at first appearance"].value == 0.0
    objects = {"source_id": np.array([10, 11])}
    lc = {f.name: f for f in timedomain.light_curve_figures(objects, truth, np.array([-1, -1, 0, 1, -1]),
                                                             np.ones(5, bool), {10})}
    # The 24th-magnitude star is not asked for.
    assert lc["truth variables with a light curve"].value == 1.0 and lc["truth stars < 23 mag with a light curve"
                                                                          ].value == 0
    assert lc["truth stars < 23 mag with a light curve"].detail["n"] == 1


def test_variability_and_flux_scale_figures() -> None:
    t = [dict(id=k, kind="star") for k in range(20)] + [dict(id=20, kind="variable")]
    truth = _truth(t)
    truth.exposures = Table({"exposure": ["r1_0001_wfi01_f158_uncal.asdf"] * 21, "id": np.arange(21),
                             "flux": np.full(21, 10.0 ** (-0.4 * 20.0))})
    objects = {"source_id": np.arange(100, 121)}
    rows = np.arange(21)
    chi = np.r_[np.linspace(0.8, 1.2, 20), 30.0]
    var = {"source_id": np.arange(100, 121), "filter": np.array(["F158"] * 21), "chi2_red": chi,
           "n_epochs": np.full(21, 6)}
    figs = {f.name: f for f in timedomain.variability_figures(var, objects, truth, rows)}
    # chi2/nu of six epochs has a median of 0.870 for a correct error model, not 1.
    scatter = figs["constant stars' median chi2_red / expected median (F158)"]
    assert scatter.passed and scatter.value == pytest.approx(1.0 / 0.8703, rel=1e-3)
    var["chi2_red"] = np.r_[np.random.default_rng(3).chisquare(5, 20) / 5, 30.0]
    figs = {f.name: f for f in timedomain.variability_figures(var, objects, truth, rows)}
    assert figs["constant stars' median chi2_red / expected median (F158)"].value == pytest.approx(1.0, abs=0.3)
    assert figs["truth variables detected (chi2_red, <= 2 % false alarms)"].value == 1.0
    true = 10.0 ** (-0.4 * (20.0 - 31.4))
    lcs = {"source_id": np.arange(100, 121), "filter": np.array(["F158"] * 21), "flux": np.full(21, 1.02 * true),
           "flux_err": np.full(21, true / 100), "flags": np.zeros(21, int),
           "filename": np.array(["r1_0001_wfi01_f158_cal.asdf"] * 21)}
    scale = {f.name: f for f in timedomain.flux_scale_figures(lcs, objects, truth, rows)}
    bias = scale["light-curve flux / truth - 1, S/N > 50 (F158)"]
    assert bias.value == pytest.approx(0.02) and not bias.passed


def test_report_text_json_and_plots(tmp_path: Path) -> None:
    rep = Report("db", "truth.ecsv", "live", [stats.Figure("catalog", "rows", 3),
                                             stats.Figure("units", "L2 pixel unit", "DN/s", stats.equals("MJy/sr"))])
    c = stats.completeness(np.array([18.2, 18.7]), np.array([True, False]), [18.0, 18.5, 19.0])
    rep.plot = {"completeness": {"F158": {"ours": c, "peer": c}},
                "astrometry": {"dra": np.array([1.0, -2.0]), "ddec": np.array([0.5, 0.0])}}
    text = rep.text()
    assert "== units ==" in text and "FAIL" in text and "1 failed" in text
    written = rep.write(tmp_path / "r")
    assert {p.name for p in written} == {"report.json", "report.txt", "completeness.png", "astrometry.png"}
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["failed"] == 1 and data["figures"][1]["passed"] is False


def test_cli_without_truth_fails_clearly(tmp_path: Path) -> None:
    from romanarchive.cli.main import main

    res = CliRunner().invoke(main, ["validate", "--survey", str(tmp_path)], env={"ROMANARCHIVE_HOME": str(tmp_path)})
    assert res.exit_code == 1 and "no truth catalogue" in res.output


# --------------------------------------------------------------------------- real archives


@pytest.mark.db
def test_empty_archive_is_a_clear_error(archive: Any, tmp_path: Path) -> None:
    from romanarchive.validate.inputs import EmptyArchiveError
    from romanarchive.validate.run import validate_archive

    Table({"id": [0], "kind": ["star"], "ra": [RA0], "dec": [DEC0], "mag_F158": [20.0]}).write(tmp_path / "t.ecsv")
    with pytest.raises(EmptyArchiveError, match="no catalog rows"):
        validate_archive(archive, tmp_path / "t.ecsv", progress=False)


@pytest.mark.db
@pytest.mark.slow
def test_validate_a_catalogued_science_survey(pg_server: str, science_survey: Path, tmp_path: Path) -> None:
    """One skycell of the science survey co-added and catalogued; the report's figures checked independently."""
    from astropy.coordinates import SkyCoord

    from romanarchive.archive import Archive
    from romanarchive.config import Settings
    from romanarchive.db.engine import upgrade
    from romanarchive.db.scratch import create_database, drop_database
    from romanarchive.validate.run import validate_archive
    from tests.conftest import catalogue_one_skycell

    url = create_database(pg_server, "ra_validate")
    try:
        upgrade(url)
        (tmp_path / "home").mkdir()
        archive = Archive(Settings(home=tmp_path / "home", database_url=url, store=str(tmp_path / "store")))
        catalogue_one_skycell(archive, sorted((science_survey / "l2").glob("*_cal.asdf")))
        report = validate_archive(archive, science_survey, survey=science_survey, progress=False)
        figs = {f.name: f for f in report.figures}
        with archive.engine.connect() as conn:
            import sqlalchemy as sa

            ra, dec = np.array(conn.execute(sa.text("SELECT ra, dec FROM objects")).all()).T
        assert figs["catalog rows"].value == len(ra) > 0
        truth = Table.read(science_survey / "truth" / "truth.ecsv")
        _, sep, _ = SkyCoord(ra, dec, unit="deg").match_to_catalog_sky(SkyCoord(truth["ra"], truth["dec"],
                                                                                unit="deg"))
        expected = float(np.mean(sep.arcsec > 0.2))
        # The report also matches the moving object along its track (exposure_truth.ecsv): one row may differ.
        assert figs['rows without a truth source within 0.2"'].value == pytest.approx(expected, abs=1.5 / len(ra))
        assert figs["skycells with an L3 but no catalog"].value == 0
        assert figs["L3 pixel unit"].value in ("MJy/sr", "DN/s")
        for band in ("F087", "F158"):
            assert figs[f"{band} archive completeness (all magnitudes)"].value > 0.3
            if os.path.exists("/usr/bin/source-extractor"):
                assert figs[f"{band} completeness shortfall vs source-extractor (worst bin)"].value is not None
        assert figs["isolated stars with S/N > 50"].value > 0
        assert (tmp_path / "r" / "report.json") in report.write(tmp_path / "r")
    finally:
        drop_database(pg_server, url)


def test_moving_object_figures() -> None:
    # Rows 0-2 are brightenings of mover 7 (one not flagged moving, one in another track), row 3 its fading.
    dia = {"snr": np.array([20.0, 15.0, 12.0, -9.0]), "flags": np.array([16, 16, 0, 17]),
           "track_id": np.array([5, 5, 6, -1])}
    row = np.array([7, 7, 7, 7])
    kind = np.array(["moving"] * 4)
    figs = {f.name: f for f in timedomain._moving(dia, row, kind)}
    assert figs["DIA brightenings of truth moving objects flagged moving"].value == pytest.approx(2 / 3)
    assert figs["truth moving objects whose DIA brightenings are one track"].value == 0.0
    dia["flags"][2], dia["track_id"][2] = 16, 5
    figs = {f.name: f for f in timedomain._moving(dia, row, kind)}
    assert figs["DIA brightenings of truth moving objects flagged moving"].passed
    assert figs["truth moving objects whose DIA brightenings are one track"].passed


def test_l2_catalog_figures() -> None:
    """Per-image catalogs: rows and purity, and the PSF flux bias / pulls / position RMS of isolated S/N > 50 stars."""
    from romanarchive.validate import l2catalog

    rng = np.random.default_rng(5)
    n = 30
    t = [dict(id=i, kind="star", mag_F087=19.0 + 0.05 * i, mag_F158=19.0 + 0.05 * i,
              ra=_offset(10.0 * i, 0)[0], dec=DEC0) for i in range(n)]
    truth = _truth(t)
    true = truth.flux_njy("F158")
    err = 0.004 * true
    flux = true * 1.01 + err * rng.standard_normal(n)
    ra = np.r_[truth.ra, _offset(5.0, 5.0)[0]]  # one row on empty sky
    dec = np.r_[truth.dec, _offset(5.0, 5.0)[1]]
    rows = {"product_id": np.ones(n + 1, int), "filter": np.array(["F158"] * (n + 1)), "ra": ra, "dec": dec,
            "psf_flux": np.r_[flux, 100.0], "psf_flux_err": np.r_[err, 10.0],
            "aper04_flux": np.r_[0.8 * true, 80.0], "aper04_flux_err": np.r_[err, 10.0]}
    figs = {f.name: f for f in l2catalog.l2_catalog_figures(rows, truth)}
    assert figs["L2 catalog rows"].value == n + 1
    assert figs['L2 rows without a truth source within 0.2"'].value == pytest.approx(1 / (n + 1))
    assert figs["F158 L2 PSF flux / truth - 1 (isolated stars, S/N > 50)"].value == pytest.approx(0.01, abs=0.004)
    assert 0.6 < figs["F158 L2 PSF flux pull scatter"].value < 1.4
    assert figs["F158 L2 position RMS offset"].value == pytest.approx(0.0, abs=1e-3)
    assert [f.name for f in l2catalog.l2_catalog_figures({}, truth)] == ["L2 catalog rows"]
