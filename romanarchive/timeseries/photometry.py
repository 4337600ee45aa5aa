"""Forced photometry at fixed positions: a pure, vectorised function of image arrays.

For N positions on one image, all stamps are cut at once (:func:`romanarchive.imaging.stamps.stamp_index`, fancy
indexing without a copy of the image) and fitted in batch:

* **PSF flux** — linear least squares of ``flux * PSF + sky`` at the *fixed* position (uniform weights inside the
  stamp, which is the optimal PSF-weighted estimator for background-limited noise); its variance propagates the
  per-pixel ``err`` exactly through the linear estimator.
* **Aperture flux** — exact-overlap circular aperture minus the fitted sky, times the PSF's aperture correction.
* **Centroid** — a second linear fit with the PSF's x/y derivatives (``F P + F dx dP/dx + F dy dP/dy + sky``) gives
  the shift from the fixed position and its covariance; a shift beyond ``shift_snr`` sigma (a systematic floor
  added) flags the measurement, which is then measured again at the shifted position.

Everything is in the image's units (MJy/sr for the archive's L2s); the caller scales to nJy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from romanarchive.db.tables_timeseries import FLAG_BAD_PIXELS, FLAG_EDGE, FLAG_LOW_SNR, FLAG_SATURATED, FLAG_SHIFTED
from romanarchive.imaging.stamps import stamp_index
from romanarchive.timeseries.psf import PsfGrid

#: roman_datamodels DQ bits: DO_NOT_USE, SATURATED.
DQ_DO_NOT_USE, DQ_SATURATED = 1, 2
#: Flags of a measurement whose flux is not to be trusted (off the image's edge, masked or saturated core).
BAD_MEASUREMENT = FLAG_EDGE | FLAG_BAD_PIXELS | FLAG_SATURATED


@dataclass(frozen=True)
class ForcedParams:
    """Algorithm parameters of :func:`forced_photometry`."""

    shift_snr: float = 5.0  # centroid shift significance that flags a measurement as shifted
    centroid_min_snr: float = 5.0  # PSF-flux S/N below which the centroid is not measured
    shift_floor_pix: float = 0.03  # systematic centroid/registration uncertainty added in quadrature
    max_shift_pix: float = 1.5  # linearised centroid beyond this is unreliable: not re-measured
    chunk: int = 20_000  # positions per batch (bounds memory: ~7 stamps of 8 bytes x size^2 per position)
    register: bool = True  # re-centre the catalog on the image by the median shift of bright sources
    register_min_snr: float = 20.0  # PSF-flux S/N of the sources that define the registration offset
    register_min_sources: int = 3
    register_sample: int = 3000  # positions (at most) measured to find the offset


@dataclass
class ForcedResult:
    """Per-position results (image units; pixel shifts)."""

    flux: np.ndarray
    flux_err: np.ndarray
    flux_ap: np.ndarray
    flux_ap_err: np.ndarray
    sky: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    shift_err: np.ndarray
    shift_snr: np.ndarray
    flux_shifted: np.ndarray
    flux_shifted_err: np.ndarray
    flags: np.ndarray
    offset: tuple[float, float] = (0.0, 0.0)  # registration shift applied to every position (x, y), pixels


def _linear_fit(d: np.ndarray, e2: np.ndarray, m: np.ndarray, basis: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Batched unweighted least squares over masked pixels; returns coefficients (N, k) and covariance (N, k, k)."""
    a = np.stack([b * m for b in basis], axis=-1)  # (N, p, k)
    at = a.transpose(0, 2, 1)
    ata = at @ a
    atd = (at @ (d * m)[:, :, None])[:, :, 0]
    k = a.shape[-1]
    ok = np.linalg.det(ata) > 1e-12 * np.abs(ata).max(axis=(1, 2)).clip(1e-300) ** k
    ata[~ok] = np.eye(k)
    inv = np.linalg.inv(ata)
    coef = (inv @ atd[:, :, None])[:, :, 0]
    # Sandwich covariance: the estimator is linear in the data (pixel weights w = a inv), whose variance is err**2.
    w = a @ inv  # (N, p, k)
    cov = (w * e2[:, :, None]).transpose(0, 2, 1) @ w
    coef[~ok] = np.nan
    cov[~ok] = np.nan
    return coef, cov


def forced_photometry(data: np.ndarray, err: np.ndarray, dq: np.ndarray | None, x: np.ndarray, y: np.ndarray,
                      grid: PsfGrid, params: ForcedParams | None = None) -> ForcedResult:
    """Measure fluxes at fixed positions on one image.

    Parameters
    ----------
    data, err
        Image and its 1-sigma uncertainty (NaN or err <= 0 marks unusable pixels).
    dq
        Data-quality bits (``DQ_DO_NOT_USE`` and ``DQ_SATURATED`` pixels are left out), or ``None``.
    x, y
        0-based pixel positions (column, row).
    grid
        Tabulated PSF of the image's filter.
    params
        Algorithm parameters.

    Returns
    -------
    ForcedResult
        One entry per position.
    """
    p = params or ForcedParams()
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    offset = registration_offset(data, err, dq, x, y, grid, p) if p.register else (0.0, 0.0)
    x, y = x + offset[0], y + offset[1]
    parts = [_measure(data, err, dq, x[i:i + p.chunk], y[i:i + p.chunk], grid, p, remeasure=True)
             for i in range(0, max(len(x), 1), p.chunk)]
    names = [f for f in ForcedResult.__dataclass_fields__ if f != "offset"]
    arrays = {f: np.concatenate([getattr(r, f) for r in parts]) for f in names}
    return ForcedResult(**arrays, offset=offset)


def registration_offset(data: np.ndarray, err: np.ndarray, dq: np.ndarray | None, x: np.ndarray, y: np.ndarray,
                        grid: PsfGrid, params: ForcedParams) -> tuple[float, float]:
    """Median centroid shift of the bright, clean sources: the catalog-to-image astrometric offset (pixels).

    A catalog position off by a fraction of a pixel costs an undersampled PSF fit several per cent of flux, with
    a sign that changes with the sub-pixel phase (i.e. between dithers); one common shift per image removes it
    without re-centring sources individually.
    """
    # A random subset is enough to find the median shift and keeps this pass cheap on large catalogs.
    if len(x) > params.register_sample:
        pick = np.random.default_rng(0).choice(len(x), params.register_sample, replace=False)
        x, y = x[pick], y[pick]
    first = [_measure(data, err, dq, x[i:i + params.chunk], y[i:i + params.chunk], grid, params, remeasure=False)
             for i in range(0, max(len(x), 1), params.chunk)]
    flux = np.concatenate([r.flux for r in first])
    ferr = np.concatenate([r.flux_err for r in first])
    dx = np.concatenate([r.dx for r in first])
    dy = np.concatenate([r.dy for r in first])
    flags = np.concatenate([r.flags for r in first])
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (flux > params.register_min_snr * ferr) & np.isfinite(dx) & ((flags & (FLAG_EDGE | FLAG_BAD_PIXELS
                                                                                  | FLAG_SATURATED)) == 0)
    if ok.sum() < params.register_min_sources:
        return 0.0, 0.0
    return _clipped_centre(dx[ok], dy[ok])


def _clipped_centre(dx: np.ndarray, dy: np.ndarray, nsigma: float = 3.0, iterations: int = 5) -> tuple[float, float]:
    """Median shift after iterative MAD clipping in both axes.

    Sources whose centroids are pulled by a neighbour (deblended fragments in the halo of a saturated star, blends,
    galaxies with structure) scatter widely, while well-measured point sources agree to a few hundredths of a
    pixel; clipping keeps the common offset from being dragged by the former.
    """
    keep = np.ones(len(dx), bool)
    for _ in range(iterations):
        mx, my = np.median(dx[keep]), np.median(dy[keep])
        sx = 1.4826 * np.median(np.abs(dx[keep] - mx)) + 1e-3
        sy = 1.4826 * np.median(np.abs(dy[keep] - my)) + 1e-3
        new = (np.abs(dx - mx) < nsigma * sx) & (np.abs(dy - my) < nsigma * sy)
        if new.sum() < 3 or np.array_equal(new, keep):
            break
        keep = new
    return float(np.median(dx[keep])), float(np.median(dy[keep]))


def _measure(data: np.ndarray, err: np.ndarray, dq: np.ndarray | None, x: np.ndarray, y: np.ndarray, grid: PsfGrid,
             p: ForcedParams, remeasure: bool) -> ForcedResult:
    n, s = len(x), grid.size
    ix = np.floor(x + 0.5).astype(np.intp)
    iy = np.floor(y + 0.5).astype(np.intp)
    px, py = grid.phase_index(x - ix), grid.phase_index(y - iy)
    rows, cols, inside3 = stamp_index(data.shape, ix, iy, s)
    inside = inside3.reshape(n, -1)
    d = data[rows, cols].reshape(n, -1).astype(float)
    e = err[rows, cols].reshape(n, -1).astype(float)
    q = (dq[rows, cols].reshape(n, -1).astype(np.int64) if dq is not None else np.zeros((n, s * s), np.int64))
    good = inside & np.isfinite(d) & np.isfinite(e) & (e > 0) & ((q & (DQ_DO_NOT_USE | DQ_SATURATED)) == 0)
    m = good.astype(float)
    d = np.where(good, d, 0.0)
    e2 = np.where(good, e, 0.0) ** 2
    # First-order interpolation from the nearest tabulated phase to the exact sub-pixel position.
    ddx = (x - ix - grid.phase_offset(px))[:, None]
    ddy = (y - iy - grid.phase_offset(py))[:, None]
    dpdx = grid.dpdx[py, px].reshape(n, -1)
    dpdy = grid.dpdy[py, px].reshape(n, -1)
    psf = grid.psf[py, px].reshape(n, -1) + ddx * dpdx + ddy * dpdy
    ones = np.ones_like(psf)

    coef, cov = _linear_fit(d, e2, m, [psf, ones])
    flux, sky = coef[:, 0], coef[:, 1]
    flux_err = np.sqrt(cov[:, 0, 0])
    w = grid.ap_weight[py, px].reshape(n, -1)
    apc = grid.ap_corr[py, px]
    flux_ap = np.einsum("np,np->n", w * m, d - sky[:, None]) * apc
    flux_ap_err = np.sqrt(np.einsum("np,np->n", w * w, e2)) * apc

    flags = np.zeros(n, dtype=np.int16)
    flags[~inside.all(axis=1)] |= FLAG_EDGE
    core = np.zeros((s, s), dtype=bool)
    core[s // 2 - 1:s // 2 + 2, s // 2 - 1:s // 2 + 2] = True
    # Masked pixels are left out of the fit; the measurement is suspect only when they hit the PSF core.
    flags[~good[:, core.ravel()].all(axis=1) & inside[:, core.ravel()].all(axis=1)] |= FLAG_BAD_PIXELS
    flags[((q[:, core.ravel()] & DQ_SATURATED) != 0).any(axis=1)] |= FLAG_SATURATED

    # Centroid: linearised PSF fit with the PSF's derivatives at the fixed position.
    dx = np.full(n, np.nan)
    dy = np.full(n, np.nan)
    shift_err = np.full(n, np.nan)
    snr_shift = np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        measurable = np.isfinite(flux) & (flux > p.centroid_min_snr * flux_err)
    flags[~measurable] |= FLAG_LOW_SNR
    if measurable.any():
        k = np.flatnonzero(measurable)
        c4, v4 = _linear_fit(d[k], e2[k], m[k], [psf[k], dpdx[k], dpdy[k], ones[k]])
        f = c4[:, 0]
        sx, sy = c4[:, 1] / f, c4[:, 2] / f
        ex = np.sqrt(v4[:, 1, 1] / f**2 + p.shift_floor_pix**2)
        ey = np.sqrt(v4[:, 2, 2] / f**2 + p.shift_floor_pix**2)
        dx[k], dy[k] = sx, sy
        shift_err[k] = np.sqrt((ex**2 + ey**2) / 2)
        snr_shift[k] = np.hypot(sx / ex, sy / ey)
    shifted = np.nan_to_num(snr_shift) > p.shift_snr
    flags[shifted] |= FLAG_SHIFTED

    flux_s = np.full(n, np.nan)
    flux_se = np.full(n, np.nan)
    redo = np.flatnonzero(shifted & (np.hypot(np.nan_to_num(dx), np.nan_to_num(dy)) < p.max_shift_pix))
    if remeasure and len(redo):
        again = _measure(data, err, dq, x[redo] + dx[redo], y[redo] + dy[redo], grid, p, remeasure=False)
        flux_s[redo], flux_se[redo] = again.flux, again.flux_err
    return ForcedResult(flux, flux_err, flux_ap, flux_ap_err, sky, dx, dy, shift_err, snr_shift, flux_s, flux_se, flags)
