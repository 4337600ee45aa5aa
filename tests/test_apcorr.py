"""Aperture corrections of catalog fluxes: the PSF's curve of growth, Kron apertures, Kron flux correction."""

from __future__ import annotations

import numpy as np
import pytest

from romanarchive.catalog.apcorr import EncircledEnergy, correct_kron, kron_aperture_radius

SIGMA = 0.08  # arcsec: a Gaussian "PSF", whose EE is known in closed form


def _gauss_ee(r: np.ndarray) -> np.ndarray:
    return 1.0 - np.exp(-np.asarray(r, float) ** 2 / (2 * SIGMA**2))


def _curve() -> EncircledEnergy:
    radii = np.linspace(0.02, 0.3, 40)[::-1]  # unsorted on purpose: the curve sorts
    return EncircledEnergy(radii, _gauss_ee(radii))


def test_curve_interpolates_and_extrapolates_the_wings() -> None:
    c = _curve()
    r = np.array([0.05, 0.1, 0.2])
    assert np.allclose(c(r), _gauss_ee(r), atol=2e-3)
    last_r, last_f = 0.3, float(_gauss_ee(0.3))
    # Beyond the table the missing light falls as 1/r (r^-3 wings): half the missing light at twice the radius.
    assert float(c(2 * last_r)) == pytest.approx(1 - (1 - last_f) / 2)
    assert float(c(last_r)) == pytest.approx(last_f)
    assert np.all(np.diff(c(np.linspace(0.01, 3.0, 200))) >= 0)


def test_kron_radius_follows_photutils_ellipse() -> None:
    # r_K = 2 (dimensionless; romancal reports 2 * 0.05" = 0.1"), a = b = 0.1": circle of 2.5 * 2 * 0.1 = 0.5".
    r = kron_aperture_radius(np.array([0.1]), np.array([0.1]), np.array([0.1]), 0.05, (2.5, 1.4))
    assert r[0] == pytest.approx(0.5)
    # Below photutils' minimum the minimum holds; an ellipse counts as the circle of its area.
    r = kron_aperture_radius(np.array([0.01]), np.array([0.2]), np.array([0.05]), 0.05, (2.5, 1.4))
    assert r[0] == pytest.approx(2.5 * 1.4 * 0.1)


def test_correct_kron_restores_a_point_sources_total_flux() -> None:
    rng = np.random.default_rng(3)
    n = 50
    a = rng.uniform(0.05, 0.1, n)
    kron = np.full(n, 1.4 * 0.05)  # the minimum: the aperture is 3.5 a, a few sigma
    radius = kron_aperture_radius(kron, a, a, 0.05)
    total = rng.uniform(1e3, 1e5, n)
    measured = total * _gauss_ee(radius)  # what a Kron aperture holds of a Gaussian point source
    col = {"kron_radius": kron, "semimajor": a, "semiminor": a, "kron_f158_flux": measured.copy(),
           "kron_f158_flux_err": 0.01 * measured, "kron_f158_abmag": 31.4 - 2.5 * np.log10(measured)}
    factors = correct_kron(col, ["f158", "f087"], {"F158": _curve()}, 0.05)
    assert set(factors) == {"f158"} and factors["f158"] > 1.0
    assert np.allclose(col["kron_f158_flux"], total, rtol=3e-3)
    assert np.allclose(col["kron_f158_flux_err"] / col["kron_f158_flux"], 0.01)
    assert np.allclose(col["kron_f158_abmag"], 31.4 - 2.5 * np.log10(col["kron_f158_flux"]))
    # Without the shape columns nothing is touched.
    bare = {"kron_f158_flux": measured.copy()}
    assert correct_kron(bare, ["f158"], {"F158": _curve()}, 0.05) == {}
    assert np.array_equal(bare["kron_f158_flux"], measured)
