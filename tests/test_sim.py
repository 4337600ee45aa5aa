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


def test_synthetic_sources_avoid_gaia_spikes(cfg: SurveyConfig, specs: list[L1Spec], tab: Table) -> None:
    """Beyond the glare radius the diffraction spikes and wings still matter: sources stay off them too."""
    gaia = truth._gaia(cfg, specs, list(cfg.filters))
    patch = truth._patches(specs, gaia)[0]
    assert patch.glare is not None
    limit = truth.GLARE_LIMIT * 10 ** (-0.4 * 21.0)
    # The map flags more than the old 8" circles: spikes cross the image.
    assert (patch.glare > limit).mean() > 0.2
    synth = tab[np.isin(tab["kind"], ["star", "variable", "transient", "galaxy"])]
    x, y = patch.wcs.radecToxy(np.asarray(synth["ra"]), np.asarray(synth["dec"]), units="deg")
    inside = (x > 0) & (x < cfg.size - 1) & (y > 0) & (y < cfg.size - 1)
    pad = truth._GLARE_PAD
    glare = patch.glare[np.rint(y[inside]).astype(int) + pad, np.rint(x[inside]).astype(int) + pad]
    # Sources placed for the other pointing were checked on its own map (same sky, same spikes).
    assert inside.sum() > 20 and (glare <= limit).mean() > 0.95


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


# --------------------------------------------------------------------------- bright-star wings


def _one_star(ra: float, dec: float, mag: float, filt: str = "F158") -> Table:
    return Table({
        "ra": [ra], "dec": [dec], "type": ["PSF"], "n": [0.0], "half_light_radius": [0.0], "pa": [0.0],
        "ba": [1.0], filt: [10.0 ** (-0.4 * mag)],
    })


def _noiseless(objs: list, xy: list[tuple[float, float]], size: int = 256, wide: bool = True) -> np.ndarray:
    """romanisim's add_objects_to_image on an empty image, with or without the archive's wide wings."""
    import contextlib

    import galsim
    import romanisim.image as rimage
    import romanisim.psf as rpsf

    from romanarchive.sim.l1 import detector_size
    from romanarchive.sim.wings import wide_wings

    spec = L1Spec(ra=survey.DEMO_FIELD[0], dec=survey.DEMO_FIELD[1], size=size)
    wcs = survey.spec_wcs(spec)
    with detector_size(size), (wide_wings(1, "F158", size) if wide else contextlib.nullcontext()):
        psf = rpsf.make_psf(1, "F158", wcs=wcs, psftype="galsim", variable=True)
        img = galsim.ImageF(size, size, wcs=wcs)
        x, y = (np.array(a, float) for a in zip(*xy, strict=True))
        rimage.add_objects_to_image(img, objs, x, y, psf, 139.0 * 3.38e10, filter_name="F158")
    return img.array


def _point(mag: float) -> object:
    import galsim
    from romanisim.catalog import CatalogObject

    return CatalogObject(None, galsim.DeltaFunction(), {"F158": 10.0 ** (-0.4 * mag)})


def test_wide_wings_leave_faint_sources_alone() -> None:
    """Sources below WIDE_PSF_ELECTRONS get romanisim's own pixels, bit for bit."""
    import galsim
    from romanisim.catalog import CatalogObject

    objs = [_point(19.0), CatalogObject(None, galsim.Sersic(1.5, half_light_radius=0.4), {"F158": 1e-8})]
    xy = [(100.3, 90.7), (160.0, 150.2)]
    assert np.array_equal(_noiseless(objs, xy, wide=True), _noiseless(objs, xy, wide=False))


def test_bright_star_drawn_over_the_whole_image() -> None:
    """A 9th-magnitude star lights every pixel (no stamp border) and its profile falls smoothly."""
    from romanarchive.sim.wings import WIDE_PSF_ELECTRONS

    x0, y0 = 60.2, 70.6
    wide = _noiseless([_point(9.0)], [(x0, y0)])
    narrow = _noiseless([_point(9.0)], [(x0, y0)], wide=False)
    assert WIDE_PSF_ELECTRONS < 139.0 * 3.38e10 * 10 ** (-0.4 * 9.0)
    assert (narrow == 0).mean() > 0.3  # romanisim's own stamp stops well inside a 256² image ...
    assert wide.min() > 0  # ... the wide one reaches every pixel, with no negative ringing
    yy, xx = np.indices(wide.shape)
    r = np.hypot(xx - x0, yy - y0) * survey.PIXEL_SCALE
    edges = np.arange(5.0, r.max(), 1.0)
    # Medians over 1" annuli: the diffraction spikes, a few pixels of each annulus, do not count.
    prof = np.array([np.median(wide[(r >= a) & (r < a + 1)]) for a in edges])
    assert prof[edges >= 20].min() > 1.0  # > 1 e-/pixel beyond 20"
    # No step: from one annulus to the next the profile falls by less than half (a stamp border drops it
    # to zero) and never rises much (aliased wings folded back into the stamp would).
    steps = prof[1:] / prof[:-1]
    assert steps.min() > 0.5 and steps.max() < 1.2, steps
    # The core is romanisim's PSF (finer pupil sampling here, aberrations at the image centre rather than
    # interpolated from the corners): the same pixels to a few % of the peak.
    core = (slice(int(y0) - 10, int(y0) + 11), slice(int(x0) - 10, int(x0) + 11))
    assert np.abs(wide[core] - narrow[core]).max() < 0.03 * narrow.max()
    assert np.sqrt(np.mean((wide[core] - narrow[core]) ** 2)) < 0.005 * narrow.max()
    # Flux: the image holds nearly all of it (the star is inside, the wings leave through the edges).
    total = 139.0 * 3.38e10 * 10 ** (-0.4 * 9.0)
    assert 0.97 * total < wide.sum() < total


@pytest.mark.slow
def test_simulated_bright_star_has_no_stamp_edge(tmp_path: Path) -> None:
    """In a simulated L1 (noise, sky, cosmic rays) a bright star's wing is there out to the image edge."""
    import asdf

    from romanarchive.sim.l1 import make_l1

    spec = L1Spec(ra=survey.DEMO_FIELD[0], dec=survey.DEMO_FIELD[1], size=256, seed=7)
    x0, y0 = 60.0, 70.0
    ra, dec = survey.spec_wcs(spec).xyToradec(x0, y0, units="deg")

    def counts(mag: float, name: str) -> np.ndarray:
        with asdf.open(make_l1(spec, _one_star(float(ra), float(dec), mag), tmp_path / name)) as af:
            data = np.asarray(af["roman"]["data"], float)
        return (data[-1] - data[0])[4:-4, 4:-4]  # DN accumulated between first and last resultant

    diff = counts(9.0, "star.asdf") - counts(40.0, "sky.asdf")  # same seed: the sky level cancels
    yy, xx = np.indices(diff.shape)
    r = np.hypot(xx - x0, yy - y0) * survey.PIXEL_SCALE
    edges = np.arange(5.0, r.max() - 1, 1.0)
    med = np.array([np.median(diff[(r >= a) & (r < a + 1)]) for a in edges])
    assert (edges[-1] > 25) and med.min() > 0, med
    assert np.median(diff[r > 20]) > 2.0  # DN: wing flux beyond 20" (the old stamp ended at ~12-17")
    assert (med[1:] / med[:-1]).min() > 0.4, med


# --------------------------------------------------------------------------- apcorr reference file


@pytest.mark.slow
def test_apcorr_ee_radii_in_arcsec(tmp_path: Path) -> None:
    """``ee_radii`` are arcsec (as romancal evaluates them): in native pixels they give the PSF's encircled energy."""
    import galsim
    from photutils.aperture import CircularAperture, aperture_photometry
    from roman_datamodels import datamodels as rdm
    from romanisim.psf import make_one_psf_galsim

    from romanarchive.sim.references import write_reference_set

    size = 256
    path = write_reference_set(tmp_path, detector="WFI01", optical_element="F158", size=size,
                               reftypes=("apcorr",))["apcorr"]
    with rdm.open(path) as ref:
        entry = ref.data["F158"]
        fractions, radii = np.asarray(entry["ee_fractions"]), np.asarray(entry["ee_radii"])
    # A Roman PSF in F158 holds half its light within ~0.1-0.2" and 90 % within ~1": arcsec, not pixels.
    assert 0.08 < np.interp(0.5, fractions, radii) < 0.25 and 0.4 < np.interp(0.9, fractions, radii) < 2.0
    # The same unit-flux PSF, drawn independently with romanisim's nominal 0.11" pixel response (the local
    # pixel is within 1 % of it) on a 4x finer grid, measured by photutils in circles of ee_radii / 0.11
    # native pixels: fractions of the total flux.
    psf = make_one_psf_galsim(1, "F158", pix=((size - 1) / 2, (size - 1) / 2))  # SCA axes, arcsec
    img = galsim.Convolve(psf, galsim.Pixel(survey.PIXEL_SCALE)).drawImage(
        nx=801, ny=801, scale=survey.PIXEL_SCALE / 4, method="no_pixel").array
    native = radii / survey.PIXEL_SCALE
    measured = [float(aperture_photometry(img, CircularAperture((400.0, 400.0), 4 * r))["aperture_sum"][0])
                for r in native]
    np.testing.assert_allclose(measured, fractions, atol=0.01)
    # romancal interpolates the file with a spline at its aperture radii (arcsec): the PSF's EE there too.
    from types import SimpleNamespace

    from romancal.source_catalog._utils import get_ee_spline

    model = SimpleNamespace(meta=SimpleNamespace(instrument=SimpleNamespace(optical_element="F158")))
    spline = get_ee_spline(model, str(path))
    for arcsec in (0.2, 0.4, 0.8):
        ee = float(aperture_photometry(img, CircularAperture((400.0, 400.0), arcsec / survey.PIXEL_SCALE * 4))
                   ["aperture_sum"][0])
        assert abs(float(spline(arcsec)) - ee) < 0.01, (arcsec, float(spline(arcsec)), ee)
