"""Array operations on oversampled ePSF stamps: interpolation over the focal plane, jitter, and quality figures.

Stamps follow romancal's ``epsf`` reference convention (see :mod:`romanarchive.db.tables_epsf`): square, odd side,
centred on the central fine sample, pixel-integrated and scaled by ``oversample**2``. Everything here is pure numpy
/ scipy, shared by the library's builder (:mod:`romanarchive.epsf`), its selection API
(:mod:`romanarchive.ingest.epsf_library`) and the acceptance tests.
"""

from __future__ import annotations

import numpy as np

#: Native WFI pixel scale, arcsec.
WFI_SCALE = 0.11


def bilinear_weights(xs: np.ndarray, ys: np.ndarray, x: float, y: float) -> dict[int, float]:
    """Weights of grid points ``(xs[k], ys[k])`` for bilinear interpolation at ``(x, y)``.

    The points must form a rectangular grid (any order; one row or one column is allowed, a single point too).
    Outside the grid the weights are those of the nearest edge (no extrapolation). Returns ``{index: weight}``
    with the weights summing to 1 (zero weights left out).
    """
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ux, uy = np.unique(xs), np.unique(ys)
    if len(ux) * len(uy) != len(xs):
        raise ValueError(f"{len(xs)} ePSF positions do not form a rectangular grid ({len(ux)} x {len(uy)})")

    def axis(u: np.ndarray, v: float) -> list[tuple[float, float]]:
        if len(u) == 1 or v <= u[0]:
            return [(u[0], 1.0)]
        if v >= u[-1]:
            return [(u[-1], 1.0)]
        i = int(np.searchsorted(u, v)) - 1
        t = (v - u[i]) / (u[i + 1] - u[i])
        return [(u[i], 1.0 - t), (u[i + 1], t)]

    out: dict[int, float] = {}
    for gx, wx in axis(ux, x):
        for gy, wy in axis(uy, y):
            if wx * wy > 0:
                k = int(np.flatnonzero((xs == gx) & (ys == gy))[0])
                out[k] = out.get(k, 0.0) + wx * wy
    return out


def nearest_index(xs: np.ndarray, ys: np.ndarray, x: float, y: float) -> int:
    """Index of the grid point nearest ``(x, y)``."""
    return int(np.argmin(np.hypot(np.asarray(xs, float) - x, np.asarray(ys, float) - y)))


def combine(stamps: np.ndarray, weights: dict[int, float]) -> np.ndarray:
    """Weighted sum of ``stamps[k]`` (a (n, s, s) stack) with :func:`bilinear_weights`."""
    out = np.zeros(stamps.shape[1:], float)
    for k, w in weights.items():
        out += w * np.asarray(stamps[k], float)
    return out


def convolve_jitter(stamp: np.ndarray, oversample: int, sigma_mas: float, scale: float = WFI_SCALE) -> np.ndarray:
    """The stamp convolved with a circular Gaussian pointing jitter of ``sigma_mas`` RMS per axis.

    The sum is kept (flux outside the stamp is not modelled), so the PSF's normalisation does not change.
    """
    from scipy.ndimage import gaussian_filter

    if sigma_mas < 0:
        raise ValueError("jitter must be >= 0 mas")
    if sigma_mas == 0:
        return np.asarray(stamp, float)
    sigma_fine = sigma_mas / 1000.0 / (scale / oversample)
    out = gaussian_filter(np.asarray(stamp, float), sigma_fine, mode="constant")
    return np.asarray(out * (stamp.sum() / out.sum()), float)


def fwhm(stamp: np.ndarray, oversample: int, upsample: int = 4) -> float:
    """Effective FWHM in native pixels: the diameter of the circle whose area is the area above half the peak.

    The core is spline-upsampled first so that the area is not quantised by the fine grid.
    """
    from scipy.ndimage import zoom

    c = stamp.shape[0] // 2
    h = min(c, 4 * oversample)
    core = zoom(np.asarray(stamp[c - h:c + h + 1, c - h:c + h + 1], float), upsample, order=3)
    area = np.count_nonzero(core >= 0.5 * core.max()) / (upsample * oversample) ** 2
    return float(2.0 * np.sqrt(area / np.pi))


def centroid(stamp: np.ndarray, oversample: int, radius: float = 1.5) -> tuple[float, float]:
    """First-moment centroid within ``radius`` native pixels of the stamp centre, in native pixels from it."""
    n = stamp.shape[0]
    c = n // 2
    yy, xx = (np.indices(stamp.shape) - c) / oversample
    w = np.where(np.hypot(xx, yy) <= radius, np.clip(stamp, 0, None), 0.0)
    return float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())


def residual_rms(stamp: np.ndarray, truth: np.ndarray, oversample: int, radius: float = 3.0) -> float:
    """RMS of ``stamp - truth`` within ``radius`` native pixels of the centre, as a fraction of the truth's peak."""
    c = stamp.shape[0] // 2
    yy, xx = (np.indices(stamp.shape) - c) / oversample
    core = np.hypot(xx, yy) <= radius
    return float(np.sqrt(np.mean((stamp - truth)[core] ** 2)) / truth.max())


def crop(stamp: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` samples of a stamp (``size`` odd, at most the stamp's side)."""
    n = stamp.shape[0]
    if size % 2 == 0 or size > n:
        raise ValueError(f"cannot crop a {n}-sample stamp to {size}")
    o = (n - size) // 2
    return np.asarray(stamp[o:o + size, o:o + size])
