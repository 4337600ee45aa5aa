"""Photometric redshifts from Roman-only photometry by template fitting.

Templates: the four Coleman, Wu & Weedman (1980) galaxy SEDs extended to the UV and IR (E, Sbc, Scd, Im) that
galsim installs in ``galsim/share/SEDs`` (``CWW_*_ext.sed``). They are redshifted on a grid and integrated through
the galsim.roman bandpasses (AB zero-points) — nothing is downloaded. The templates end at 2.2 um, so F213 is
integrated only over the part they cover for z < 0.1. For each object the fitter finds, for every
(template, z), the amplitude minimising chi2 analytically and keeps the best; the redshift error is half the width of
the z range with chi2 < min + 1 (over all templates), whose ends are the 68 % bounds. Objects with fewer than three
bands get no redshift (one colour cannot fix template, redshift and amplitude). No prior, no IGM attenuation
beyond the templates'.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from romanarchive.imaging.psf import galsim_band

TEMPLATES = ("CWW_E_ext.sed", "CWW_Sbc_ext.sed", "CWW_Scd_ext.sed", "CWW_Im_ext.sed")
Z_GRID = np.round(np.arange(0.0, 4.0001, 0.02), 4)


@lru_cache(maxsize=8)
def template_fluxes(bands: tuple[str, ...]) -> np.ndarray:
    """AB-normalised flux densities (f_nu, arbitrary scale) of every template at every z.

    Returns
    -------
    numpy.ndarray
        Shape (n_templates, n_z, n_bands).
    """
    import galsim
    import galsim.roman as gr

    bps = gr.getBandpasses(AB_zeropoint=True)
    out = np.empty((len(TEMPLATES), len(Z_GRID), len(bands)))
    for t, name in enumerate(TEMPLATES):
        sed = galsim.SED(name, wave_type="A", flux_type="flambda")
        for k, z in enumerate(Z_GRID):
            shifted = sed.atRedshift(float(z))
            for b, band in enumerate(bands):
                bp = bps[galsim_band(band)]
                if bp.red_limit > shifted.red_limit:  # templates end at 2.2 um: F213 at z < 0.1 is truncated
                    bp = bp.truncate(red_limit=shifted.red_limit).withZeropoint("AB")
                out[t, k, b] = 10.0 ** (-0.4 * shifted.calculateMagnitude(bp))
    return out


@dataclass(frozen=True)
class PhotoZ:
    """Fit results, one entry per object (NaN where fewer than two bands were usable)."""

    z: np.ndarray
    z_err: np.ndarray
    z_low: np.ndarray
    z_high: np.ndarray
    chi2: np.ndarray
    template: np.ndarray


def fit_photoz(flux: np.ndarray, flux_err: np.ndarray, bands: tuple[str, ...], min_bands: int = 3) -> PhotoZ:
    """Fit every object's fluxes with the template grid.

    Parameters
    ----------
    flux, flux_err
        (n_objects, n_bands) fluxes in any common linear unit; NaN or non-positive errors mark missing bands.
    bands
        Filter names of the columns.
    min_bands
        Usable bands an object needs; with fewer (or no positive flux) every output is NaN — a fit that cannot be
        made is never reported as a redshift.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=float))
    err = np.atleast_2d(np.asarray(flux_err, dtype=float))
    ok = np.isfinite(flux) & np.isfinite(err) & (err > 0)
    w = np.where(ok, 1.0 / np.where(ok, err, 1.0) ** 2, 0.0)
    f = np.where(ok, flux, 0.0)
    tmpl = template_fluxes(tuple(bands)).reshape(-1, len(bands))  # (M, B)
    num = (f * w) @ tmpl.T  # (N, M)
    den = w @ (tmpl**2).T
    amp = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    amp = np.clip(amp, 0.0, None)  # negative amplitudes are unphysical
    chi2 = (f**2 * w).sum(axis=1)[:, None] - 2 * amp * num + amp**2 * den
    n_t, n_z = len(TEMPLATES), len(Z_GRID)
    chi2 = chi2.reshape(len(f), n_t, n_z)
    best = chi2.reshape(len(f), -1).argmin(axis=1)
    bt, bz = np.divmod(best, n_z)
    chi2_min = chi2.reshape(len(f), -1).min(axis=1)
    chi2_z = chi2.min(axis=1)  # best template per z
    inside = chi2_z <= chi2_min[:, None] + 1.0
    zs = np.where(inside, Z_GRID[None, :], np.nan)
    z_err = (np.nanmax(zs, axis=1) - np.nanmin(zs, axis=1)) / 2.0
    usable = (ok.sum(axis=1) >= min_bands) & ((f * ok) > 0).any(axis=1)
    nan = np.full(len(f), np.nan)
    return PhotoZ(
        z=np.where(usable, Z_GRID[bz], nan), z_err=np.where(usable, np.maximum(z_err, 0.01), nan),
        z_low=np.where(usable, np.nanmin(zs, axis=1), nan), z_high=np.where(usable, np.nanmax(zs, axis=1), nan),
        chi2=np.where(usable, chi2_min, nan), template=np.where(usable, bt, -1).astype(np.int16),
    )
