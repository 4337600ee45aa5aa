"""Tests of the survey planner and truth catalogue (romanarchive.sim.survey / .truth)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from romanarchive.sim import survey, truth
from romanarchive.sim.l1 import L1Spec, l1_filename
from romanarchive.sim.survey import SurveyConfig, plan_exposures
from romanarchive.sim.truth import catalog_for_exposure, exposure_truth, flux_at, positions_at, truth_table


@pytest.fixture(scope="module")
def cfg() -> SurveyConfig:
    # Three epochs so that transients (t0 after epoch 0) show up; two pointings and dithers.
    return SurveyConfig(n_pointings=2, dithers=2, epochs=3, epoch_spacing_days=2.0, filters=["F087", "F158"])


@pytest.fixture(scope="module")
def specs(cfg: SurveyConfig) -> list[L1Spec]:
    return plan_exposures(cfg)


@pytest.fixture(scope="module")
def tab(cfg: SurveyConfig, specs: list[L1Spec]) -> Table:
    return truth_table(cfg, specs)


def _sep_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    return float(SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).arcsec)


# --------------------------------------------------------------------------- planning


def test_plan_count_and_unique_identity() -> None:
    config = SurveyConfig(
        n_pointings=2, dithers=2, epochs=2, filters=["F087", "F158"], detectors=["WFI01", "WFI02"]
    )
    plan = plan_exposures(config)
    assert len(plan) == 2 * 2 * 2 * 2 * 2 == config.n_exposures
    names = [l1_filename(s) for s in plan]
    assert len(set(names)) == len(plan)
    assert len({(s.observation_id, s.detector) for s in plan}) == len(plan)
    assert len({s.seed for s in plan}) == len(plan)
    # Detectors of one exposure share its identity, time and filter (as on the real WFI).
    by_exposure: dict[str, list[L1Spec]] = {}
    for s in plan:
        by_exposure.setdefault(s.observation_id, []).append(s)
    assert all(len(v) == 2 for v in by_exposure.values())
    for group in by_exposure.values():
        assert len({(s.mjd, s.bandpass, s.pass_, s.observation) for s in group}) == 1
    # Epochs are passes, pointings are observations, and time runs forward.
    assert Counter(s.pass_ for s in plan) == {1: 16, 2: 16}
    assert Counter(s.observation for s in plan) == {1: 16, 2: 16}
    assert all(b.mjd >= a.mjd for a, b in zip(plan, plan[1:], strict=False))


def test_plan_geometry(cfg: SurveyConfig, specs: list[L1Spec]) -> None:
    first = specs[0]
    assert (first.ra, first.dec) == pytest.approx((cfg.ra, cfg.dec))
    det0 = [s for s in specs if s.observation == 1 and s.pass_ == 1]
    seps = [_sep_arcsec(first.ra, first.dec, s.ra, s.dec) for s in det0]
    assert 0 < max(seps) < 3 * cfg.dither_arcsec  # dithers of a few arcsec
    other = next(s for s in specs if s.observation == 2)
    assert _sep_arcsec(first.ra, first.dec, other.ra, other.dec) == pytest.approx(cfg.step_arcsec, rel=0.01)


def test_detectors_at_real_focal_plane_offsets() -> None:
    config = SurveyConfig(detectors=["WFI01", "WFI02", "WFI10"])
    plan = plan_exposures(config)
    centres = {s.detector: (s.ra, s.dec) for s in plan}
    # WFI01/WFI02 are neighbours (~0.15 deg apart); WFI10 is on the other side of the array.
    d12 = _sep_arcsec(*centres["WFI01"], *centres["WFI02"]) / 3600
    d110 = _sep_arcsec(*centres["WFI01"], *centres["WFI10"]) / 3600
    assert 0.1 < d12 < 0.25
    assert 0.1 < d110 < 0.6


def test_presets() -> None:
    assert SurveyConfig.tiny().n_exposures <= 4
    demo = SurveyConfig.demo()
    assert demo.n_exposures == 24 == len(plan_exposures(demo))
    assert SurveyConfig.demo(epochs=1).n_exposures == 8
    with pytest.raises(ValueError):
        SurveyConfig(detectors=["WFI19"])


# --------------------------------------------------------------------------- truth


def test_truth_contents(cfg: SurveyConfig, tab: Table) -> None:
    kinds = Counter(tab["kind"])
    n_fp = cfg.n_pointings * len(cfg.detectors)
    assert kinds["star"] == cfg.n_stars * n_fp
    assert kinds["variable"] == cfg.n_variables * n_fp
    assert kinds["galaxy"] == cfg.n_galaxies * n_fp
    assert kinds["transient"] == cfg.n_transients * n_fp
    assert kinds["moving"] == cfg.n_moving
    assert kinds["gaia"] >= 2  # the default field is centred on a Gaia pair
    assert list(tab["id"]) == list(range(len(tab)))
    for f in cfg.filters:
        assert np.all(np.isfinite(tab[f"mag_{f}"]))
    synthetic = tab[tab["kind"] != "gaia"]
    assert synthetic["mag_F158"].min() >= 18.0  # below saturation
    gal = tab[tab["kind"] == "galaxy"]
    assert set(gal["type"]) == {"SER"} and np.all(gal["half_light_radius"] > 0)
    assert set(tab[tab["kind"] != "galaxy"]["type"]) == {"PSF"}


def test_truth_reproducible(cfg: SurveyConfig, specs: list[L1Spec], tab: Table) -> None:
    again = truth_table(cfg, specs)
    for col in tab.colnames:
        np.testing.assert_array_equal(np.asarray(tab[col]), np.asarray(again[col]))
    other = truth_table(cfg.model_copy(update={"seed": 2}), specs)
    assert not np.allclose(other["ra"][:10], tab["ra"][:10])


def test_variables_vary_constants_do_not(tab: Table) -> None:
    mjds = 61000.0 + np.linspace(0, 5, 401)  # dense: >= 8 samples per shortest period (0.1 d)
    var = tab[tab["kind"] == "variable"]
    fluxes = np.array([flux_at(var, m, "F158") for m in mjds])
    assert np.all(fluxes.std(axis=0) > 0.05 * fluxes.mean(axis=0))
    # Amplitude (mag) bounds the variation about the mean magnitude.
    mags = -2.5 * np.log10(fluxes)
    assert np.all(np.abs(mags - np.asarray(var["mag_F158"])) <= np.asarray(var["amplitude"]) + 1e-9)
    for kind in ("star", "galaxy", "gaia"):
        const = tab[tab["kind"] == kind]
        f = np.array([flux_at(const, m, "F158") for m in mjds])
        np.testing.assert_allclose(f, np.broadcast_to(f[0], f.shape))
        np.testing.assert_allclose(f[0], 10 ** (-0.4 * np.asarray(const["mag_F158"])))
    row = var[0]
    assert isinstance(flux_at(row, mjds[0], "F087"), float)


def test_variables_vary_between_epochs(cfg: SurveyConfig, tab: Table) -> None:
    # Periods are chosen not to alias with the epoch spacing.
    var = tab[tab["kind"] == "variable"]
    mags = np.array([truth.mag_at(var, cfg.epoch_mjd(e), "F158") for e in range(cfg.epochs)])
    assert np.all(np.ptp(mags, axis=0) > 0.1 * np.asarray(var["amplitude"]))


def test_synthetic_sources_avoid_gaia_glare(tab: Table) -> None:
    gaia = tab[tab["kind"] == "gaia"]
    synth = tab[np.isin(tab["kind"], ["star", "variable", "transient", "galaxy"])]
    seps = SkyCoord(synth["ra"], synth["dec"], unit="deg").separation(
        SkyCoord(gaia["ra"], gaia["dec"], unit="deg")[:, None]
    )
    assert seps.arcsec.min() > 4.0


def test_transients(cfg: SurveyConfig, specs: list[L1Spec], tab: Table) -> None:
    tr = tab[tab["kind"] == "transient"]
    for row in tr:
        assert flux_at(row, row["t0"] - 0.01, "F158") == 0.0
        peak = flux_at(row, row["t0"], "F158")
        assert peak == pytest.approx(10 ** (-0.4 * row["mag_F158"]))
        assert 0 < flux_at(row, row["t0"] + 3, "F158") < peak  # decays
    # Absent from every epoch-0 exposure, present in the last epoch.
    assert tr["t0"].min() > max(s.mjd for s in specs if s.pass_ == 1)
    assert tr["t0"].max() <= cfg.epoch_mjd(cfg.epochs - 1)
    for s in specs:
        cat = catalog_for_exposure(tab, s)
        kinds = set(tab["kind"][np.isin(tab["id"], cat["id"])])
        assert ("transient" in kinds) == (s.pass_ == cfg.epochs) or 1 < s.pass_ < cfg.epochs
    # Half sit on host galaxies, within a few half-light radii.
    hosted = tr[tr["host_id"] >= 0]
    assert len(hosted) >= len(tr) // 2
    for row in hosted:
        host = tab[row["host_id"]]
        assert host["kind"] == "galaxy"
        assert _sep_arcsec(row["ra"], row["dec"], host["ra"], host["dec"]) <= host["half_light_radius"] + 1e-6


def test_moving_object_moves_and_stays_visible(specs: list[L1Spec], tab: Table) -> None:
    mov = tab[tab["kind"] == "moving"]
    first = [s for s in specs if s.observation == 1]
    ra0, dec0 = positions_at(mov, first[0].mjd)
    ra1, dec1 = positions_at(mov, first[-1].mjd)
    assert _sep_arcsec(ra0[0], dec0[0], ra1[0], dec1[0]) > 10.0
    et = exposure_truth(tab, first)
    seen = et[et["kind"] == "moving"]
    assert len(set(seen["exposure"])) == len(first)  # on every epoch of its pointing
    assert len({round(x) for x in seen["x"]}) > 3


def test_gaia_stars_are_real_and_in_field(specs: list[L1Spec], tab: Table) -> None:
    gaia = truth.read_gaia()
    assert len(gaia) > 400_000
    rows = tab[tab["kind"] == "gaia"]
    lookup = {int(sid): i for i, sid in enumerate(gaia["source_id"])}
    for row in rows:
        star = gaia[lookup[int(row["gaia_source_id"])]]
        assert (row["ra"], row["dec"]) == pytest.approx((star["ra"], star["dec"]))
        assert row["ref_mjd"] == truth.GAIA_EPOCH_MJD
    assert {2257870565276819200, 2257870565276818560} <= set(rows["gaia_source_id"].tolist())
    # Both fall inside the first image.
    et = exposure_truth(tab, specs[:1])
    assert (et["kind"] == "gaia").sum() == 2


def test_catalog_for_exposure_format(specs: list[L1Spec], tab: Table) -> None:
    spec = specs[-1]
    cat = catalog_for_exposure(tab, spec)
    assert {"ra", "dec", "type", "n", "half_light_radius", "pa", "ba", spec.bandpass} <= set(cat.colnames)
    assert 20 < len(cat) < 150
    assert np.all(cat[spec.bandpass] > 0)
    # Limited to the footprint: everything is within the image diagonal plus the margin.
    seps = SkyCoord(cat["ra"], cat["dec"], unit="deg").separation(SkyCoord(spec.ra, spec.dec, unit="deg"))
    assert seps.arcsec.max() < (spec.size / 2 * np.sqrt(2) + 40) * 0.11 + 1


def test_write_truth(tmp_path: Path, specs: list[L1Spec], tab: Table) -> None:
    paths = truth.write_truth(tab, specs[:4], tmp_path)
    back = Table.read(paths["truth"])
    assert len(back) == len(tab) and set(back["kind"]) == set(tab["kind"])
    et = Table.read(paths["exposure_truth"])
    assert set(et["exposure"]) == {l1_filename(s) for s in specs[:4]}
    assert {"id", "mjd", "filter", "flux"} <= set(et.colnames)


def test_simulate_survey_bookkeeping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """simulate_survey wiring, with romanisim and the reference writer replaced by fakes."""
    calls: list[tuple[L1Spec, int]] = []

    def fake_make_l1(spec: L1Spec, catalog: Table, path: Path) -> Path:
        calls.append((spec, len(catalog)))
        Path(path).write_text("fake")
        return Path(path)

    def fake_refs(out_dir: Path, **kw: object) -> dict[str, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "gain.asdf").write_text("fake")
        return {"gain": out_dir / "gain.asdf"}

    monkeypatch.setattr(survey, "make_l1", fake_make_l1)
    monkeypatch.setattr(survey, "write_reference_set", fake_refs)
    config = SurveyConfig.tiny(filters=["F087", "F158"])
    man = survey.simulate_survey(config, tmp_path, progress=False)
    assert len(calls) == len(man.l1) == config.n_exposures
    assert all(n > 10 for _, n in calls)
    assert set(man.refs) == {"WFI01_F087", "WFI01_F158"}
    assert survey.load_manifest(tmp_path) == man
    assert json.loads((tmp_path / "manifest.json").read_text())["config"]["seed"] == config.seed
    assert (tmp_path / man.truth["exposure_truth"]).exists()


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("romanarchive.sim.references") is None, reason="references module missing"
)
def test_simulate_survey_end_to_end(tmp_path: Path) -> None:
    import asdf

    config = SurveyConfig.tiny()
    man = survey.simulate_survey(config, tmp_path, progress=False)
    assert len(man.l1) == config.n_exposures == len(list((tmp_path / "l1").glob("*.asdf")))
    for entry in man.l1:
        with asdf.open(tmp_path / entry["path"]) as af:
            data = af["roman"]["data"]
            assert data.shape[1:] == (config.size + 8, config.size + 8)
            assert af["roman"]["meta"]["observation"]["pass"] == entry["spec"]["pass_"]
    for files in man.refs.values():
        assert all((tmp_path / p).exists() for p in files.values())
    assert (tmp_path / "truth" / "truth.ecsv").exists()
    assert survey.load_manifest(tmp_path).config == config
