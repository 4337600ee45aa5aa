"""The difference-imaging function on synthetic images: a point source is found with its flux, a mis-registered
static star (a dipole) and a point source's own PSF structure are not, and the noise terms are measured."""

from __future__ import annotations

import numpy as np

from romanarchive.timeseries.dia import (
    DiaParams,
    calibrated_threshold,
    difference_image,
    local_noise_scale,
    psf_structure,
)

N = 256
SIGMA_PX = 1.6


def _psf(size: int = 21) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    p = np.exp(-(x**2 + y**2) / (2 * SIGMA_PX**2))
    return p / p.sum()


def _star(flux: float, x0: float, y0: float) -> np.ndarray:
    y, x = np.mgrid[:N, :N]
    return flux * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * SIGMA_PX**2)) / (2 * np.pi * SIGMA_PX**2)


def _pair(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    err = np.full((N, N), 1.0, np.float32)
    sci = rng.normal(0, 1, (N, N)).astype(np.float32)
    tmpl = rng.normal(0, 1, (N, N)).astype(np.float32)
    return sci, err, tmpl, err.copy()


def test_point_source_found_with_its_flux_and_dipole_rejected() -> None:
    rng = np.random.default_rng(3)
    sci, err, tmpl, terr = _pair(rng)
    sci += _star(2000.0, 60.0, 70.0)  # a transient
    # A static star registered 0.6 px differently in the two images: a dipole, not a source.
    tmpl += _star(20000.0, 180.0, 180.0)
    sci += _star(20000.0, 180.6, 180.0)
    res = difference_image(sci, err, tmpl, terr, _psf(), DiaParams(match_tolerance=1.0))
    assert len(res.x) == 1, list(zip(res.x, res.y, res.snr, strict=True))
    assert abs(res.x[0] - 60) < 0.5 and abs(res.y[0] - 70) < 0.5
    assert abs(res.flux[0] / 2000.0 - 1) < 0.1
    assert res.rejected["dipole"] >= 1
    assert res.dipole[0] < 0.1


def test_weaker_peaks_near_a_stronger_one_are_its_structure() -> None:
    xs, ys = np.array([10, 14, 40, 12]), np.array([10, 10, 10, 11])
    snr = np.array([100.0, 8.0, 9.0, -7.0])
    # The 8-sigma peak 4 px from the 100-sigma one goes; the far one and the opposite-sign one stay.
    assert psf_structure(xs, ys, snr, radius=5).tolist() == [False, True, False, False]


def test_noise_terms_are_measured() -> None:
    rng = np.random.default_rng(4)
    snr = rng.normal(0, 1, (128, 128))
    snr[:64, :64] *= 3.0  # a structured-residual corner
    ok = np.ones_like(snr, bool)
    scale = local_noise_scale(snr, ok, 32)
    assert scale[10, 10] > 2.5 and scale[120, 120] < 1.2 and scale.min() >= 1.0
    # More independent elements -> a higher threshold for the same expected false positives.
    p = DiaParams(threshold=0.0)
    assert calibrated_threshold(_psf(), 10**6, p) > calibrated_threshold(_psf(), 10**4, p) > 3.0


def test_difference_flux_is_measured_at_the_sub_pixel_position() -> None:
    # A sharp PSF (sigma 0.8 px) at the worst sub-pixel phase: the matched filter at the nearest pixel is ~8 % low.
    global SIGMA_PX
    saved, SIGMA_PX = SIGMA_PX, 0.8
    try:
        rng = np.random.default_rng(4)
        err = np.full((N, N), 0.1, np.float32)
        sci = _star(1000.0, 100.5, 120.5) - _star(1000.0, 60.5, 60.5) + rng.normal(0, 0.1, (N, N))
        tmpl = rng.normal(0, 0.1, (N, N)).astype(np.float32)
        res = difference_image(sci.astype(np.float32), err, tmpl, err.copy(), _psf(),
                               DiaParams(match_tolerance=1.0))
        assert len(res.flux) == 2
        assert np.allclose(np.sort(res.flux), [-1000.0, 1000.0], rtol=0.01), res.flux
    finally:
        SIGMA_PX = saved
