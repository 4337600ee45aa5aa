"""L3 mosaics: co-add quality against the simulation truth, outlier rejection, jobs, registration, bad inputs."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.imaging.coadd import CoaddInput, MosaicError, coadd
from romanarchive.imaging.l2 import L2Input, load_l2
from romanarchive.mosaic.step import MosaicConfig, MosaicResult, MosaicStep
from romanarchive.sim.calibrated import l2_files
from romanarchive.sky.footprint import wcs_corners
from romanarchive.sky.skycells import Skycell, home_skycells, skycells_for_footprint

FILTER = "F158"


@pytest.fixture(scope="module")
def f158(science_survey: Path) -> list[Path]:
    return [p for p in l2_files(science_survey) if f"_{FILTER.lower()}_" in p.name]


@pytest.fixture(scope="module")
def inputs(f158: list[Path]) -> list[L2Input]:
    return [load_l2(p) for p in f158]


@pytest.fixture(scope="module")
def cell(inputs: list[L2Input]) -> Skycell:
    ra, dec = inputs[0].arrays.wcs.pixel_to_world_values(255.5, 255.5)
    return home_skycells(float(ra), float(dec))[0]


@pytest.fixture(scope="module")
def mosaic(inputs: list[L2Input], cell: Skycell) -> MosaicResult:
    t0 = time.perf_counter()
    res = MosaicStep().run(inputs, cell)
    print(f"\nco-add of {len(inputs)} x 512^2 L2 onto {cell.name} {cell.shape}: {time.perf_counter() - t0:.2f} s, "
          f"outliers per input {res.coadd.n_outliers}")
    return res


def _phot(img: np.ndarray, x: float, y: float, r: float) -> float:
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry

    ap = CircularAperture((x, y), r)
    bkg = ApertureStats(img, CircularAnnulus((x, y), 1.75 * r, 2.5 * r)).median
    return float(aperture_photometry(img, ap)["aperture_sum"][0] - bkg * ap.area)


def _isolated_stars(science_survey: Path, inputs: list[L2Input], mag_max: float,
                    band: str = FILTER) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    from astropy.table import Table

    from romanarchive.sim.truth import positions_at

    truth = Table.read(science_survey / "truth" / "truth.ecsv")
    mjd = float(np.mean([x.t_start for x in inputs if x.t_start is not None]))
    ra, dec = positions_at(truth, mjd)
    mag = np.asarray(truth[f"mag_{band}"], dtype=float)
    out = []
    for k in np.flatnonzero(np.asarray(truth["kind"]) == "star"):
        if not mag[k] < mag_max:
            continue
        sep = np.hypot((ra - ra[k]) * np.cos(np.radians(dec[k])), dec - dec[k]) * 3600.0
        if np.any((sep > 0) & (sep < 2.5) & (mag < mag[k] + 4.0)):
            continue  # a neighbour would share the aperture
        out.append(int(k))
    return out, np.asarray(ra), np.asarray(dec), mag


#: Aperture radius of the flux comparisons, arcsec: 6 L2 / 12 L3 pixels, large enough that the L3's slightly broader
#: PSF (the drizzle adds the L2 pixel) loses no measurable flux outside it.
AP_ARCSEC = 0.66


def _aperture_correction(band: str, radius_arcsec: float) -> float:
    """Total / aperture flux of the band's PSF (galsim.roman, as the simulation draws it) for a radius in arcsec.

    The unit-flux profile is drawn unnormalised, so the aperture sum is the share of the *total* flux (the PSF's
    wings reach far beyond any stamp), the truth's definition of a star's flux.
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    from romanarchive.imaging.psf import psf_object

    img = psf_object(band).drawImage(nx=401, ny=401, scale=0.011).array  # type: ignore[attr-defined]
    return 1.0 / float(aperture_photometry(img, CircularAperture((200.0, 200.0), radius_arcsec / 0.011))
                       ["aperture_sum"][0])


def _star_fluxes(science_survey: Path, inputs: list[L2Input], l3: object, band: str,
                 mag_max: float = 21.5) -> list[tuple[int, float, float, float]]:
    """(truth index, L2 nJy, L3 nJy, truth nJy) of isolated stars: aperture sums x pixel area [sr] x 1e15.

    The L2 flux is the mean over the inputs that hold the star (pixels in MJy/sr x ``meta.photometry.pixel_area``
    of the L2); the L3 one uses the L3's ``meta.photometry.pixel_area`` (the 0.055" pixel).
    """
    stars, ra, dec, mag = _isolated_stars(science_survey, inputs, mag_max, band)
    data, wcs = l3.data, l3.meta.wcs  # type: ignore[attr-defined]
    l3_njy = float(l3.meta.photometry.pixel_area) * 1e15  # type: ignore[attr-defined]
    scale3 = float(np.degrees(np.sqrt(l3.meta.photometry.pixel_area)) * 3600.0)  # type: ignore[attr-defined]
    ny, nx = data.shape
    out = []
    for k in stars:
        x3, y3 = wcs.world_to_pixel_values(ra[k], dec[k])
        if not (np.isfinite(x3) and np.isfinite(y3)) or not (60 < x3 < nx - 60 and 60 < y3 < ny - 60):
            continue
        f2 = []
        for inp in inputs:
            x2, y2 = inp.arrays.wcs.world_to_pixel_values(ra[k], dec[k])
            if 20 < x2 < 491 and 20 < y2 < 491:
                f2.append(_phot(inp.arrays.data, x2, y2, AP_ARCSEC / 0.11) * inp.njy_per_pixel())
        if len(f2) < len(inputs) - 1:
            continue
        f3 = _phot(data, x3, y3, AP_ARCSEC / scale3) * l3_njy
        out.append((int(k), float(np.mean(f2)), f3, 3631e9 * 10 ** (-0.4 * mag[k])))
        print(f"{band} star {k} mag {mag[k]:.2f}: L3/L2 {f3 / out[-1][1]:.4f}, L2/truth(aperture) "
              f"{out[-1][1] / out[-1][3]:.4f}")
    return out


def _check_star_fluxes(science_survey: Path, inputs: list[L2Input], l3: object, band: str) -> None:
    rows = _star_fluxes(science_survey, inputs, l3, band)
    assert len(rows) >= 2
    f2, f3, truth = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
    ratio = f3 / f2
    apcorr = _aperture_correction(band, AP_ARCSEC)
    print(f"{band}: {len(rows)} stars, L3/L2 median {np.median(ratio):.4f} (min {ratio.min():.4f}, max "
          f"{ratio.max():.4f}); aperture-corrected L2/truth median {np.median(f2 * apcorr / truth):.4f}, "
          f"L3/truth {np.median(f3 * apcorr / truth):.4f} (aperture correction {apcorr:.4f})")
    # The same star in nJy on the L2s and on the L3: within 1 %.
    assert np.all(np.abs(ratio - 1.0) < 0.01), ratio
    # ... and the simulation's truth, after the PSF's aperture correction.
    assert abs(np.median(f2 * apcorr / truth) - 1.0) < 0.02
    assert abs(np.median(f3 * apcorr / truth) - 1.0) < 0.02


def test_star_fluxes_agree_with_the_l2_measurements(science_survey: Path, inputs: list[L2Input],
                                                    mosaic: MosaicResult) -> None:
    _check_star_fluxes(science_survey, inputs, mosaic.model, FILTER)


def test_star_fluxes_agree_in_f087_too(science_survey: Path, cell: Skycell) -> None:
    f087 = [load_l2(p) for p in l2_files(science_survey) if "_f087_" in p.name]
    assert len(f087) == 8
    _check_star_fluxes(science_survey, f087, MosaicStep().run(f087, cell).model, "F087")


def test_truth_positions_map_to_the_measured_centroids(science_survey: Path, inputs: list[L2Input],
                                                       mosaic: MosaicResult) -> None:
    from photutils.centroids import centroid_2dg

    stars, ra, dec, mag = _isolated_stars(science_survey, inputs, 22.5)
    img = mosaic.model.data
    offsets = []
    for k in stars:
        x, y = mosaic.model.meta.wcs.world_to_pixel_values(ra[k], dec[k])
        if not (np.isfinite(x) and np.isfinite(y)):
            continue  # outside the skycell
        ix, iy = int(round(float(x))), int(round(float(y)))
        if not (30 < ix < img.shape[1] - 30 and 30 < iy < img.shape[0] - 30):
            continue
        box = img[iy - 5:iy + 6, ix - 5:ix + 6]
        if not np.all(np.isfinite(box)):
            continue
        cx, cy = centroid_2dg(box - np.nanmedian(img[iy - 20:iy + 21, ix - 20:ix + 21]))
        offsets.append((cx + ix - 5 - x, cy + iy - 5 - y))
    off = np.asarray(offsets)
    rms = float(np.sqrt(np.mean(np.sum(off**2, axis=1))))
    print(f"\n{len(off)} isolated stars: truth -> L3 gwcs vs measured centroid, mean offset "
          f"({off[:, 0].mean():+.3f}, {off[:, 1].mean():+.3f}) px, rms {rms:.3f} L3 px ({rms * 55:.1f} mas)")
    assert len(off) >= 4
    assert rms < 0.1


def test_cosmic_ray_in_one_input_is_rejected(inputs: list[L2Input], cell: Skycell) -> None:
    # A blank patch of sky in the first input (away from sources), hit by a few hot pixels.
    first = inputs[0].arrays
    med = float(np.nanmedian(first.data))
    y0, x0 = 300, 200
    for dy in range(-40, 40, 5):  # move until the patch is source-free
        patch = first.data[y0 + dy - 3:y0 + dy + 4, x0 - 3:x0 + 4]
        if np.all(np.abs(patch - med) < 4 * np.nanmedian(first.err)):
            y0 += dy
            break
    hit = first.data.copy()
    hit[y0, x0] += 400.0
    hit[y0, x0 + 1] += 250.0
    hit[y0 + 1, x0] += 150.0
    struck = dataclasses.replace(first, data=hit, name="struck")
    # A cut-out of the skycell around the hit keeps this fast: the co-add takes any target grid.
    ra, dec = first.wcs.pixel_to_world_values(float(x0), float(y0))
    cx, cy = cell.wcs.world_to_pixel_values(ra, dec)
    ix, iy = int(cx), int(cy)
    sub_wcs = cell.wcs[iy - 100:iy + 100, ix - 100:ix + 100]
    arrays = [struck] + [x.arrays for x in inputs[1:]]
    cfg = MosaicConfig()
    struck_l2 = L2Input(struck, FILTER, None, None, first.exptime, "struck")
    kept, used = MosaicStep(MosaicConfig(outlier_detection=False)).resample([struck_l2, *inputs[1:]], sub_wcs,
                                                                            (200, 200))
    assert used[0] is struck_l2 and len(used) == len(inputs)
    clean = coadd(arrays, sub_wcs, (200, 200), cfg.params())
    px, py = (int(round(float(v))) for v in sub_wcs.world_to_pixel_values(ra, dec))
    win = (slice(py - 3, py + 4), slice(px - 3, px + 4))
    background = float(np.nanmedian(clean.data))
    noise = float(np.nanmedian(clean.err))
    assert np.nanmax(kept.data[win]) - background > 20 * noise  # without rejection the hit shows
    assert np.nanmax(np.abs(clean.data[win] - background)) < 5 * noise  # with it, it is gone
    assert clean.n_outliers[0] >= 3
    assert np.all(clean.weight[win] > 0)  # the other inputs still cover it


def test_output_model_and_its_metadata(mosaic: MosaicResult, cell: Skycell, inputs: list[L2Input],
                                       tmp_path: Path) -> None:
    import roman_datamodels.datamodels as rdm

    path = mosaic.write(tmp_path / "l3.asdf")
    with rdm.open(path) as m:
        assert type(m).__name__ == "MosaicModel" and m.meta.product_type == "wfi_l3"
        assert m.data.shape == cell.shape == m.err.shape == m.weight.shape
        assert m.meta.instrument.optical_element == FILTER and m.meta.wcsinfo.skycell_name == cell.name
        assert list(m.meta.resample.members) == [x.filename for x in inputs]
        assert m.context.shape[0] == 1 and int(np.max(m.context)) == 2 ** len(inputs) - 1
        ra, dec = cell.wcs.pixel_to_world_values(1000.0, 700.0)
        assert np.allclose(m.meta.wcs.pixel_to_world_values(1000.0, 700.0), (ra, dec), atol=1e-10)
        covered = m.weight > 0
        assert np.all(np.isfinite(m.data[covered])) and np.all(np.isnan(m.data[~covered]))
        # The co-add is deeper than one input: err (MJy/sr, like the inputs') shrinks by about sqrt(N) where all
        # inputs overlap.
        full = m.context[0] == 2 ** len(inputs) - 1
        one = float(np.nanmedian(inputs[0].arrays.err))
        assert float(np.nanmedian(m.err[full])) < 0.6 * one
        # Surface brightness is conserved: the sky level is the inputs' (MJy/sr; sky matching keeps their mean), not
        # scaled by the pixel-area ratio (0.25).
        from astropy.stats import sigma_clipped_stats

        sky = sigma_clipped_stats(m.data[full], sigma=3.0, maxiters=10)[1]
        assert sky == pytest.approx(float(np.mean(mosaic.coadd.sky)), rel=0.03)
        # Variances are those of the weighted mean: err^2 = var_poisson + var_rnoise.
        np.testing.assert_allclose(m.err[full] ** 2, m.var_poisson[full] + m.var_rnoise[full], rtol=1e-4)


def test_l3_validates_and_carries_photometry(mosaic: MosaicResult, cell: Skycell, inputs: list[L2Input],
                                             tmp_path: Path) -> None:
    import roman_datamodels.datamodels as rdm

    path = mosaic.write(tmp_path / "l3.asdf")
    with rdm.open(path) as m:
        m.validate()
        assert m.meta.cal_step.flux == "COMPLETE" and m.meta.cal_step.resample == "COMPLETE"
        phot = m.meta.photometry
        assert phot.conversion_megajanskys == 1.0  # already MJy/sr
        assert phot.pixel_area == pytest.approx(np.radians(cell.pixel_scale / 3600.0) ** 2, rel=1e-12)
        assert phot.pixel_area == pytest.approx(np.radians(0.055 / 3600.0) ** 2, rel=1e-6)
        # romancal's meaning: output pixel scale over the L2's (0.055" / 0.11").
        assert m.meta.resample.pixel_scale_ratio == pytest.approx(0.5, rel=0.02)
        assert m.meta.resample.pointings == len(inputs)
        assert m.meta.coadd_info.exposure_time == pytest.approx(sum(x.exptime for x in inputs))
        l2_area = inputs[0].pixel_area
        assert l2_area is not None and phot.pixel_area == pytest.approx(l2_area / 4.0, rel=0.02)


def test_bad_inputs_give_one_line_errors(inputs: list[L2Input], f158: list[Path], cell: Skycell,
                                        tmp_path: Path) -> None:
    a = inputs[0].arrays
    with pytest.raises(MosaicError, match="^no input images to co-add$"):
        MosaicStep().run([], cell)
    nan = CoaddInput(np.full_like(a.data, np.nan), a.err, a.wcs, a.dq, None, 1.0, "nan_cal.asdf")
    with pytest.raises(MosaicError, match=r"^nan_cal.asdf: no valid pixels"):
        coadd([nan], cell.wcs, cell.shape)
    nowcs = CoaddInput(a.data, a.err, None, a.dq, None, 1.0, "nowcs_cal.asdf")
    with pytest.raises(MosaicError, match=r"^nowcs_cal.asdf: L2 image has no WCS"):
        coadd([nowcs], cell.wcs, cell.shape)
    far = home_skycells(10.0, -30.0)[0]
    with pytest.raises(MosaicError, match="^no input overlaps the target grid$"):
        coadd([a], far.wcs, far.shape)
    mixed = [inputs[0], L2Input(a, "F087", None, None, 1.0, "other_cal.asdf")]
    with pytest.raises(MosaicError, match="mix filters"):
        MosaicStep().run(mixed, cell)
    # An L2 model without meta.wcs (the schema forbids writing one, so it can only come from memory).
    import roman_datamodels.datamodels as rdm

    with rdm.open(f158[0]) as m:
        del m.meta["wcs"]
        with pytest.raises(MosaicError, match=r"L2 image has no WCS") as info:
            MosaicStep().run([m], cell)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------- archive and jobs
def _mosaic_jobs(archive: Archive, state: str = "queued") -> set[str]:
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT target FROM jobs WHERE kind = 'mosaic' AND state = :s"), {"s": state})
        return {r[0] for r in rows}


def _run_mosaic_jobs(archive: Archive) -> int:
    from romanarchive.jobs.worker import run_one

    n = 0
    while run_one(archive, kinds=("mosaic",)) is not None:
        n += 1
    return n


def _expected_targets(paths: list[Path]) -> set[str]:
    out = set()
    for p in paths:
        x = load_l2(p)
        for c in skycells_for_footprint(wcs_corners(x.arrays.wcs, x.arrays.data.shape)):
            out.add(f"{c.name} {x.filter}")
    return out


@pytest.mark.db
def test_new_l2_queues_its_skycells_and_rebuilds_them(archive: Archive, f158: list[Path]) -> None:
    from romanarchive.db.tables import files, products, provenance
    from romanarchive.ingest.service import ingest_paths

    first, late = f158[:2], f158[2]
    list(ingest_paths(archive, first))
    assert _mosaic_jobs(archive) == _expected_targets(first)
    assert _run_mosaic_jobs(archive) == len(_expected_targets(first))
    with archive.engine.connect() as conn:
        l3 = conn.execute(sa.select(products).where(products.c.level == 3)).mappings().all()
        prov = {r.product_id: r for r in conn.execute(sa.select(provenance))}
        catalog = {r[0] for r in conn.execute(sa.text("SELECT target FROM jobs WHERE kind = 'catalog'"))}
        failed = conn.execute(sa.text("SELECT count(*) FROM jobs WHERE state = 'failed'")).scalar_one()
    assert failed == 0
    assert {f"{r['obs_id']} {r['filter']}" for r in l3} == _expected_targets(first)
    assert catalog == {r["obs_id"] for r in l3}
    for r in l3:
        assert r["product_type"] == "wfi_l3" and r["release"] == "live" and r["s_region"] and r["hpx"]
        assert r["s_xel1"] == r["s_xel2"] == 2048 and r["em_min"] < 1.58e-6 < r["em_max"]
        assert r["t_min"] <= r["t_max"]
        p = prov[r["product_id"]]
        assert p.step == "romanarchive.MosaicStep" and p.wall_time_s > 0 and p.peak_rss_mb > 0
        assert "drizzle" in p.software and p.parameters["skycell"] == r["obs_id"]
        assert 1 <= len(p.inputs) <= 2

    # The command line: list cells of a product and of a position, rebuild one cell by hand.
    import json
    import os

    from click.testing import CliRunner

    from romanarchive.cli import main

    env = {**os.environ, "ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
           "ROMANARCHIVE_STORE": archive.settings.store_url}
    with archive.engine.connect() as conn:
        l2_id = conn.execute(sa.select(products.c.product_id).where(products.c.level == 2)).scalars().first()
    res = CliRunner().invoke(main, ["skycells", "--product", str(l2_id), "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert {f"{c['name']} {FILTER}" for c in json.loads(res.output)} <= _expected_targets(first)
    res = CliRunner().invoke(main, ["skycells", "--ra", "271.81", "--dec", "66.72"], env=env)
    assert res.exit_code == 0 and res.output.startswith("p")
    one = sorted(r["obs_id"] for r in l3)[0]
    res = CliRunner().invoke(main, ["mosaic", "--skycell", one, "--filter", FILTER], env=env)
    assert res.exit_code == 0 and f"{one} {FILTER}: L3 product" in res.output, res.output
    res = CliRunner().invoke(main, ["mosaic", "--skycell", "p1x2"], env=env)
    assert res.exit_code != 0 and "not a skycell name" in res.output
    with archive.engine.connect() as conn:
        l3 = conn.execute(sa.select(products).where(products.c.level == 3)).mappings().all()
        prov = {r.product_id: r for r in conn.execute(sa.select(provenance))}
    assert len(l3) == len(_expected_targets(first))  # the hand-made L3 replaced the job's one

    # One more L2: exactly its skycells are queued again, and their L3s are rebuilt with one more input.
    before = {r["obs_id"]: (r["product_id"], len(prov[r["product_id"]].inputs), r["file_id"]) for r in l3}
    list(ingest_paths(archive, [late]))
    assert _mosaic_jobs(archive) == _expected_targets([late])
    _run_mosaic_jobs(archive)
    with archive.engine.connect() as conn:
        l3_new = conn.execute(sa.select(products).where(products.c.level == 3)).mappings().all()
        prov = {r.product_id: r for r in conn.execute(sa.select(provenance))}
        file_ids = set(conn.execute(sa.select(files.c.file_id)).scalars())
    rebuilt = {t.split()[0] for t in _expected_targets([late])}
    assert len(l3_new) == len({r["obs_id"] for r in l3_new})  # one live L3 per skycell and filter
    for r in l3_new:
        old_pid, old_n, old_file = before.get(r["obs_id"], (None, 0, None))
        if r["obs_id"] in rebuilt:
            assert r["product_id"] != old_pid and len(prov[r["product_id"]].inputs) == old_n + 1
            assert old_file is None or old_file not in file_ids  # the replaced L3's file went with it
        else:
            assert r["product_id"] == old_pid
    # Replaced L3s that no release froze are gone, with their files and stored objects.
    from tests.conftest import unreferenced_objects

    assert unreferenced_objects(archive) == []
    assert len([k for k in archive.store.list_keys() if "/l3/" in f"/{k}"]) == len(l3_new)


@pytest.mark.db
def test_bad_l2_fails_its_job_and_registers_nothing(archive: Archive, f158: list[Path], tmp_path: Path) -> None:
    import roman_datamodels.datamodels as rdm

    from romanarchive.ingest.service import ingest_paths

    bad = tmp_path / f158[0].name
    with rdm.open(f158[0]) as m:
        m.data[...] = np.nan
        m.save(bad)
    list(ingest_paths(archive, [bad]))
    queued = _mosaic_jobs(archive)
    assert queued
    _run_mosaic_jobs(archive)
    with archive.engine.connect() as conn:
        errors = conn.execute(sa.text("SELECT error FROM jobs WHERE kind = 'mosaic'")).scalars().all()
        n_l3 = conn.execute(sa.text("SELECT count(*) FROM products WHERE level = 3")).scalar_one()
    assert n_l3 == 0 and len(errors) == len(queued)
    assert all(e.startswith(f"MosaicError: {bad.name}: no valid pixels") for e in errors)
    from tests.conftest import unreferenced_objects

    assert unreferenced_objects(archive) == []


def test_interpolated_pixel_map_matches_the_exact_one(inputs: list[L2Input], cell: Skycell) -> None:
    from romanarchive.imaging.coadd import _pixmap

    exact = _pixmap(inputs[0].arrays, cell.wcs, step=1)
    fast = _pixmap(inputs[0].arrays, cell.wcs)
    assert np.nanmax(np.abs(exact - fast)) < 1e-4


def test_nan_median_matches_numpy() -> None:
    import warnings

    from romanarchive.imaging.coadd import _nanmedian0

    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 60, 50))
    a[rng.random(a.shape) < 0.4] = np.nan
    a[:, 0, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expect = np.nanmedian(a, axis=0)
    assert np.allclose(_nanmedian0(a), expect, equal_nan=True)


def test_pixel_area_map_and_true_surface_brightness(inputs: list[L2Input]) -> None:
    from romanarchive.imaging.coadd import pixel_area_map, true_surface_brightness

    a = inputs[0].arrays
    area = pixel_area_map(a.wcs, a.data.shape)
    for x, y in ((3.0, 5.0), (255.0, 300.0), (500.0, 480.0)):
        # The solid angle of one pixel from its four edge midpoints, exactly at that pixel.
        (r0, d0), (r1, d1), (r2, d2), (r3, d3) = (a.wcs.pixel_to_world_values(x + dx, y + dy) for dx, dy in
                                                  ((-0.5, 0), (0.5, 0), (0, -0.5), (0, 0.5)))
        c = np.cos(np.radians(d0))
        exact = abs((r1 - r0) * c * (d3 - d2) - (d1 - d0) * (r3 - r2) * c) * np.radians(1.0) ** 2
        assert area[int(y), int(x)] == pytest.approx(exact, rel=1e-6)
    # The simulated WFI01 pixels are ~0.1089": 2 % smaller than the nominal 0.11" the MJy/sr calibration assumed.
    assert inputs[0].pixel_area is not None
    assert 0.97 < float(np.median(area)) / inputs[0].pixel_area < 0.99
    sb = true_surface_brightness(a)
    np.testing.assert_allclose(sb.data, a.data * (a.pixel_area / area), rtol=1e-5)
    np.testing.assert_allclose(sb.err, a.err * (a.pixel_area / area), rtol=1e-5)
    assert sb.pixel_area is None and true_surface_brightness(sb) is sb
