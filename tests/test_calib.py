"""Tests of L1 simulation, synthetic reference files and offline calibration (512x512 images)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from romanarchive.calib.pipeline import CalibConfig, bare_pipeline_call, calibrate, pipeline_kwargs
from romanarchive.crds_offline import OFFLINE_SERVER_URL, configure_offline
from romanarchive.sim.l1 import L1Spec, l1_filename, make_l1
from romanarchive.sim.references import REFTYPES, read_reference_info, write_reference_set

RA, DEC = 270.0, 66.0
SIZE = 512
# Bright, isolated point sources (offsets in arcsec from the detector centre) for the WCS check.
# A 512-pixel image is 56" wide and rotated on the sky, so keep them within ~16" of the centre.
STARS = [(-10.0, -8.0, 18.0), (8.0, 12.0, 18.5), (12.0, -10.0, 19.0), (-12.0, 10.0, 19.5)]


def _catalog() -> Table:
    cosd = np.cos(np.radians(DEC))
    ra = [RA + dx / 3600 / cosd for dx, _, _ in STARS]
    dec = [DEC + dy / 3600 for _, dy, _ in STARS]
    flux = [10 ** (-0.4 * m) for _, _, m in STARS]  # maggies
    n = len(STARS)
    return Table(
        {
            "ra": ra, "dec": dec, "type": ["PSF"] * n, "n": [-1.0] * n,
            "half_light_radius": [0.0] * n, "pa": [0.0] * n, "ba": [1.0] * n, "F158": flux,
        }
    )


def _spec(**kw: object) -> L1Spec:
    base: dict[str, object] = dict(
        ra=RA, dec=DEC, detector="WFI01", bandpass="F158", size=SIZE, seed=7,
        program=123, execution_plan=2, pass_=3, segment=4, observation=5, visit=6, exposure=7,
    )
    base.update(kw)
    return L1Spec(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------- fast unit tests


def test_l1_filename_follows_roman_convention() -> None:
    spec = L1Spec(ra=RA, dec=DEC)
    assert l1_filename(spec) == "r0000101001001001001_0001_wfi01_f158_uncal.asdf"
    spec = _spec(detector="WFI12", bandpass="f213")
    assert l1_filename(spec) == "r0012302003004005006_0007_wfi12_f213_uncal.asdf"
    assert spec.observation_id == "0012302003004005006011010007"


def test_l1spec_validation() -> None:
    with pytest.raises(ValueError):
        L1Spec(ra=RA, dec=DEC, detector="WFI19")
    with pytest.raises(ValueError):
        L1Spec(ra=RA, dec=DEC, bandpass="F999")
    with pytest.raises(ValueError):
        L1Spec(ra=RA, dec=DEC, size=10)


def test_configure_offline_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_OBSERVATORY", "STPIPE_DISABLE_CRDS_STEPPARS"):
        monkeypatch.setenv(var, "placeholder")  # restored after the test
    configure_offline(tmp_path / "crds")
    cfg = tmp_path / "crds" / "config" / "roman" / "server_config"
    first = cfg.read_text()
    configure_offline(tmp_path / "crds")
    assert cfg.read_text() == first
    info = eval(first)  # the file is a Python literal, as CRDS writes it
    assert info["observatory"] == "roman" and info["force_remote_mode"] is False
    assert os.environ["CRDS_SERVER_URL"] == OFFLINE_SERVER_URL
    assert os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] == "True"
    assert os.environ["CRDS_PATH"] == str((tmp_path / "crds").resolve())


def test_offline_crds_answers_unknown_lookups_without_the_network(tmp_path: Path) -> None:
    """A lookup nothing overrides (romancal's SFD dust maps) fails at once from the cached empty context: a CRDS
    error, no download attempt and no traceback printed (the demo log had four per catalog)."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from romanarchive.crds_offline import configure_offline\n"
        f"configure_offline(Path({str(tmp_path / 'crds')!r}))\n"
        "import crds\n"
        "from crds.core.exceptions import CrdsError\n"
        "try:\n"
        "    crds.getreferences({'roman.meta.instrument.name': 'wfi', 'roman.field': 'north'}, "
        "reftypes=['dustmap'], observatory='roman')\n"
        "except CrdsError as exc:\n"
        "    print('refused:', type(exc).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "refused: CrdsUnknownInstrumentError" in out.stdout
    assert "Traceback" not in out.stderr and "jsonrpc" not in out.stderr


def test_reference_round_trip(tmp_path: Path) -> None:
    # The PSF-based types (apcorr, epsf) are covered by the slow tests.
    types = tuple(t for t in REFTYPES if t not in ("apcorr", "epsf"))
    refs = write_reference_set(tmp_path, detector="wfi03", optical_element="F087", size=256, reftypes=types)
    assert set(refs) == set(types)
    for reftype, path in refs.items():
        info = read_reference_info(path)
        assert info.reftype == reftype
        assert info.detector == "WFI03"
        assert info.path == path
        assert info.useafter.isot.startswith("2020-01-01T00:00:00")
        if reftype in ("distortion", "flat", "dark"):
            assert info.optical_element == "F087"
        elif reftype in ("mask", "gain", "photom"):
            assert info.optical_element is None
    # Deterministic names: a second run writes the same files.
    again = write_reference_set(tmp_path, detector="WFI03", optical_element="F087", size=256, reftypes=("flat",))
    assert again["flat"] == refs["flat"]
    import roman_datamodels.datamodels as rdm

    with rdm.open(refs["flat"]) as flat:
        assert flat.data.shape == (256, 256)
    with rdm.open(refs["gain"]) as gain:
        assert gain.data.shape == (264, 264) and np.all(gain.data == 2.0)


def test_pipeline_kwargs_skips_for_small_images() -> None:
    refs = {t: Path(f"/x/{t}.asdf") for t in REFTYPES}
    small = pipeline_kwargs(refs, 512)["steps"]
    assert small["refpix"]["skip"] and small["dark_decay"]["skip"]
    assert small["source_catalog"]["skip"] and small["tweakreg"]["skip"]
    assert small["flatfield"]["override_flat"] == "/x/flat.asdf"
    full = pipeline_kwargs(refs, 4088)["steps"]
    assert not full["refpix"]["skip"] and full["refpix"]["override_refpix"] == "/x/refpix.asdf"
    with pytest.raises(ValueError):
        CalibConfig(run_tweakreg=True)


# ---------------------------------------------------------------- slow: romanisim + romancal


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("calib")


@pytest.fixture(scope="module")
def l1_file(workdir: Path) -> Path:
    out = workdir / "a"
    out.mkdir()
    return make_l1(_spec(), _catalog(), out)  # a directory: the Roman file name is used


@pytest.fixture(scope="module")
def refs(workdir: Path) -> dict[str, Path]:
    return write_reference_set(workdir / "refs", detector="WFI01", optical_element="F158", size=SIZE)


@pytest.fixture(scope="module")
def calibrated(workdir: Path, l1_file: Path, refs: dict[str, Path]):  # type: ignore[no-untyped-def]
    return calibrate(l1_file, refs, workdir / "mine" / "x_cal.asdf", CalibConfig(crds_path=workdir / "crds"))


@pytest.mark.slow
def test_make_l1_valid_and_deterministic(workdir: Path, l1_file: Path) -> None:
    import roman_datamodels.datamodels as rdm

    spec = _spec()
    assert l1_file.name == l1_filename(spec)
    with rdm.open(l1_file) as m:
        assert isinstance(m, rdm.ScienceRawModel)
        m.validate()
        assert m.data.shape == (9, SIZE + 8, SIZE + 8)
        assert m.amp33.shape == (9, SIZE + 8, 128)
        obs = m.meta.observation
        assert (obs.program, obs.execution_plan, obs["pass"], obs.segment) == (123, 2, 3, 4)
        assert (obs.observation, obs.visit, obs.exposure) == (5, 6, 7)
        assert obs.visit_id == spec.visit_id and obs.observation_id == spec.observation_id
        assert m.meta.instrument.detector == "WFI01" and m.meta.instrument.optical_element == "F158"
        assert abs(m.meta.exposure.start_time.mjd - spec.mjd) < 1e-6
        assert m.meta.wcsinfo.ra_ref == pytest.approx(RA, abs=1e-4)
        assert m.meta.wcsinfo.dec_ref == pytest.approx(DEC, abs=1e-4)
        data = np.array(m.data)
    with rdm.open(make_l1(spec, _catalog(), workdir / "b.asdf")) as again:
        assert np.array_equal(data, again.data)


@pytest.mark.slow
def test_calibrate_matches_bare_romancal(workdir: Path, l1_file: Path, refs: dict[str, Path], calibrated) -> None:  # type: ignore[no-untyped-def]
    import roman_datamodels.datamodels as rdm

    res = calibrated
    assert res.out_path.exists()
    assert "refpix (SKIPPED)" in res.steps and "ramp_fit" in res.steps and "flat_field" in res.steps
    assert res.steps[-1] == "flux" and res.parameters["flux_step"] is True
    assert res.software["romancal"] and res.reference_files["flat"] == refs["flat"].name
    assert res.wall_time_s > 0 and res.peak_rss_mb > 50
    bare = bare_pipeline_call(l1_file, refs, workdir / "bare", crds_path=workdir / "crds")
    with rdm.open(res.out_path) as mine, rdm.open(bare) as ref:
        assert isinstance(mine, rdm.ImageModel)
        assert mine.data.shape == (SIZE, SIZE)
        good = mine.dq == 0
        assert good.mean() > 0.95
        assert np.all(np.isfinite(mine.data[good]))
        arrays = [n for n in ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat") if n in mine]
        assert {"data", "err", "var_poisson"} <= set(arrays)
        for name in arrays:
            assert np.array_equal(getattr(mine, name), getattr(ref, name)), name
        assert mine.meta.cal_step.flux == ref.meta.cal_step.flux == "COMPLETE"


@pytest.mark.slow
def test_flux_calibrated_l2_is_in_mjy_per_sr(workdir: Path, l1_file: Path, refs: dict[str, Path],
                                            calibrated) -> None:  # type: ignore[no-untyped-def]
    import roman_datamodels.datamodels as rdm

    from romanarchive.imaging.l2 import load_l2, njy_factor

    dn = calibrate(l1_file, refs, workdir / "dn" / "x_cal.asdf",
                   CalibConfig(crds_path=workdir / "crds", skip_steps=("flux",)))
    assert "flux" not in dn.steps and dn.parameters["flux_step"] is False
    with rdm.open(calibrated.out_path) as sb, rdm.open(dn.out_path) as rate:
        sb.validate()
        assert sb.meta.cal_step.flux == "COMPLETE" and rate.meta.cal_step.flux == "INCOMPLETE"
        conv = float(rate.meta.photometry.conversion_megajanskys)
        area = float(rate.meta.photometry.pixel_area)
        # The photometry keywords stay (DN/s -> MJy/sr factor and the 0.11" pixel's area in sr).
        assert float(sb.meta.photometry.conversion_megajanskys) == conv > 0
        assert float(sb.meta.photometry.pixel_area) == area == pytest.approx(np.radians(0.11 / 3600) ** 2, rel=0.02)
        for name, power in (("data", 1), ("err", 1), ("var_poisson", 2), ("var_rnoise", 2), ("var_flat", 2)):
            if name not in rate:
                continue
            got, dn_values = np.asarray(getattr(sb, name)), np.asarray(getattr(rate, name))
            # rad stores err / var_* as float16: scaling re-rounds them (2^-11 relative).
            tol = 1e-6 if got.dtype == np.float32 else 2e-3
            np.testing.assert_allclose(got.astype(np.float64), dn_values.astype(np.float64) * conv**power, rtol=tol,
                                       atol=0, err_msg=name)
        # nJy per pixel value: the pixel area alone for MJy/sr, times the conversion for DN/s; both give one flux.
        assert njy_factor(sb.meta) == pytest.approx(area * 1e15)
        assert njy_factor(rate.meta) == pytest.approx(conv * area * 1e15)
        sky = float(np.nanmedian(rate.data))
        # A co-add input read from either file is in MJy/sr.
        a, b = load_l2(sb).arrays, load_l2(rate).arrays
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-6 * abs(sky * conv))
        np.testing.assert_allclose(a.err, b.err, rtol=2e-3)


@pytest.mark.slow
def test_calibrated_wcs_hits_catalog_stars(calibrated) -> None:  # type: ignore[no-untyped-def]
    import roman_datamodels.datamodels as rdm

    cat = _catalog()
    with rdm.open(calibrated.out_path) as m:
        data = np.array(m.data, dtype=float)
        x, y = m.meta.wcs.world_to_pixel_values(np.array(cat["ra"]), np.array(cat["dec"]))
    sky = np.nanmedian(data)
    for xi, yi in zip(x, y, strict=True):
        assert 10 < xi < SIZE - 10 and 10 < yi < SIZE - 10
        ix, iy = round(xi), round(yi)
        box = data[iy - 5 : iy + 6, ix - 5 : ix + 6] - sky
        # Refine on the brightest pixel, then a 5x5 flux-weighted centroid.
        py, px = np.unravel_index(np.nanargmax(box), box.shape)
        cy, cx = iy - 5 + py, ix - 5 + px
        stamp = np.clip(data[cy - 2 : cy + 3, cx - 2 : cx + 3] - sky, 0, None)
        yy, xx = np.mgrid[-2:3, -2:3]
        xc = cx + (stamp * xx).sum() / stamp.sum()
        yc = cy + (stamp * yy).sum() / stamp.sum()
        assert np.hypot(xc - xi, yc - yi) < 1.0, (xi, yi, xc, yc)
