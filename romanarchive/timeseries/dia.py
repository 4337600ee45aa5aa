"""Difference imaging on a common pixel grid: a pure function of (science, template) arrays.

1. Backgrounds: each image's sigma-clipped median is removed (co-adds are sky-matched, this takes what is left).
2. PSF matching where needed: each image's PSF width is measured from its bright point sources (second moments of
   the median normalised stamp); when they differ by more than ``match_tolerance`` the sharper image is convolved
   with a kernel fitted on bright sources (a 7x7 delta-function basis, Bramich 2008, plus a background term)
   that turns it into the broader one (its variance with the squared kernel).
3. Difference ``D = S - T`` with variance ``V = var_S + var_T``.
4. Detection with the matched filter of the PSF ``P``: the PSF-fit flux at every pixel is ``(D * P) / sum P^2`` with
   variance ``(V * P^2) / (sum P^2)^2``; local maxima of ``|flux| / sigma`` above ``threshold`` are sources (both
   signs: brightening and fading).
5. Per source: sub-pixel position (parabola through the S/N peak), difference flux at that position (the vertex of
   the parabola through the flux map: the matched filter's output peaks at the true flux only at the source's
   exact position, and at the nearest pixel it is low by ~delta^2 / (4 sigma^2) of the PSF, 5-9 % for the sharp F087
   PSF on the skycell grid), error and template flux.

The noise of the difference is measured, not assumed, in three parts, each multiplying or adding to the
propagated ``sigma``:

* ``noise_scale``: co-added images have correlated pixel noise, which the per-pixel variance misses; the robust RMS
  of the whole S/N image rescales the errors so that the threshold is in real sigmas;
* ``residual_frac``: static sources never subtract perfectly (PSF-model, kernel and registration errors), a
  residual that scales with the template flux; its size is the robust scatter of difference over template flux at
  the template's bright peaks (variables are few among them), added in quadrature times the template flux;
* a local scale: the robust RMS of the S/N image in tiles of ``tile_px`` (at least 1), which is larger where a
  bright star's halo or spikes leave structured residuals.

The threshold is calibrated: at least ``threshold``, and high enough that Gaussian noise gives fewer than
``false_positives`` detections per image, counting the independent resolution elements of the matched-filtered
image (pixels over the correlation area of the PSF's autocorrelation).

Real/bogus, from simple features of each peak: a **dipole** (an opposite-sign lobe within ``dipole_px`` of at least
``dipole_min_snr`` and ``dipole_ratio`` of the peak, the signature of a registration or PSF mismatch of a static
source) is rejected; a peak within ``group_px`` of a stronger peak of the same sign is that source's PSF structure
(rings, the drizzle kernel's wings split by the local-maximum search) and is dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from romanarchive.imaging.psf import second_moment_width

DIA_NEGATIVE, DIA_EDGE, DIA_PSF_MATCHED, DIA_NEW, DIA_MOVING = 1, 2, 4, 8, 16


@dataclass(frozen=True)
class DiaParams:
    """Algorithm parameters of :func:`difference_image`."""

    threshold: float = 5.0  # detection S/N
    match_tolerance: float = 0.05  # relative PSF-width difference that triggers PSF matching
    edge_px: int = 8  # detections this close to uncovered pixels are flagged
    min_separation_px: int = 3  # local-maximum window half-size
    dipole_px: int = 4  # half-size of the window searched for an opposite-sign lobe
    dipole_min_snr: float = 1.0  # opposite-sign lobe S/N that makes a dipole ...
    dipole_ratio: float = 0.1  # ... when it is at least this fraction of the peak's |S/N|
    group_px: int = 27  # a weaker same-sign peak this close to a stronger one is its PSF structure
    residual_min_snr: float = 20.0  # template S/N of the static sources that measure the residual fraction
    tile_px: int = 64  # side of the tiles of the local noise scale
    false_positives: float = 0.05  # expected noise detections per image that set the calibrated threshold


@dataclass
class DiaResult:
    """Detections on the difference image (grid pixels and image flux units)."""

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    snr: np.ndarray
    flux_template: np.ndarray
    flags: np.ndarray
    dipole: np.ndarray  # strongest opposite-sign S/N within dipole_px, over |snr| (real/bogus feature)
    local_scale: np.ndarray  # the local noise scale at the detection (>= 1)
    residual_frac: float  # measured fractional residual of static sources (noise term eps x template flux)
    noise_scale: float
    threshold: float  # the calibrated detection threshold used
    rejected: dict[str, int]  # peaks above the threshold dropped as dipoles / PSF structure
    convolved: str  # "none", "science" or "template"
    widths: tuple[float, float]

    def subset(self, keep: np.ndarray) -> DiaResult:
        """The detections where ``keep`` is true (image-level values unchanged)."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), np.ndarray)})


def _fft_convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    return np.asarray(fftconvolve(img, kernel, mode="same"))


def _clipped_median(img: np.ndarray, ok: np.ndarray) -> float:
    from astropy.stats import sigma_clipped_stats

    vals = img[ok]
    if vals.size > 400_000:
        vals = vals[:: vals.size // 400_000 + 1]
    return float(sigma_clipped_stats(vals, sigma=3.0, maxiters=5)[1]) if vals.size else 0.0


def psf_width(img: np.ndarray, err: np.ndarray, ok: np.ndarray, n_max: int = 30, half: int = 7) -> float:
    """Second-moment RMS width (pixels) of the median normalised stamp of the brightest isolated peaks (NaN if none)."""
    from scipy.ndimage import maximum_filter

    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(ok, img / err, 0.0)
    peaks = (snr == maximum_filter(snr, size=2 * half + 1)) & (snr > 50)
    ys, xs = np.nonzero(peaks)
    inner = (ys >= half) & (xs >= half) & (ys < img.shape[0] - half) & (xs < img.shape[1] - half)
    ys, xs = ys[inner], xs[inner]
    if len(ys) < 3:
        return float("nan")
    order = np.argsort(-snr[ys, xs])[:n_max]
    stamps = []
    for y, x in zip(ys[order], xs[order], strict=True):
        s = img[y - half:y + half + 1, x - half:x + half + 1]
        if np.all(np.isfinite(s)) and s.sum() > 0:
            stamps.append(s / s.sum())
    if len(stamps) < 3:
        return float("nan")
    return second_moment_width(np.median(np.array(stamps), axis=0))


def fit_kernel(sharp: np.ndarray, broad: np.ndarray, ok: np.ndarray, err: np.ndarray, half: int = 3,
               stamp: int = 10, n_max: int = 300) -> np.ndarray | None:
    """Convolution kernel K (delta-function basis, Bramich 2008) minimising ``|broad - sharp * K - b|`` around the
    brightest isolated sources of ``sharp``; ``None`` when there are too few sources. Its sum absorbs any
    photometric scale difference."""
    from scipy.ndimage import maximum_filter

    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(ok, sharp / err, 0.0)
    r = stamp + half
    peaks = (snr == maximum_filter(snr, size=2 * stamp + 1)) & (snr > 30)
    ys, xs = np.nonzero(peaks)
    inner = (ys >= r) & (xs >= r) & (ys < sharp.shape[0] - r) & (xs < sharp.shape[1] - r)
    ys, xs = ys[inner], xs[inner]
    order = np.argsort(-snr[ys, xs])[:n_max]
    ys, xs = ys[order], xs[order]
    good = [k for k in range(len(ys)) if ok[ys[k] - r:ys[k] + r + 1, xs[k] - r:xs[k] + r + 1].all()]
    if len(good) < 10:
        return None
    ys, xs = ys[good], xs[good]
    off = np.arange(-stamp, stamp + 1)
    py = (ys[:, None, None] + off[None, :, None]).ravel()
    px = (xs[:, None, None] + off[None, None, :]).ravel()
    cols = [sharp[py - dy, px - dx] for dy in range(-half, half + 1) for dx in range(-half, half + 1)]
    a = np.column_stack([*cols, np.ones(len(py))])
    w = 1.0 / err[py, px]
    sol, *_ = np.linalg.lstsq(a * w[:, None], broad[py, px] * w, rcond=None)
    return np.asarray(sol[:-1].reshape(2 * half + 1, 2 * half + 1))


def difference_image(sci: np.ndarray, sci_err: np.ndarray, tmpl: np.ndarray, tmpl_err: np.ndarray, psf: np.ndarray,
                     params: DiaParams | None = None) -> DiaResult:
    """Subtract a template from a science image on the same grid and detect sources on the difference.

    Parameters
    ----------
    sci, sci_err, tmpl, tmpl_err
        Images and 1-sigma errors on one grid; NaN marks uncovered pixels.
    psf
        PSF image on the grid's pixel scale (odd square), normalised to the total flux: its sum is the share of a
        point source's flux inside the stamp (e.g. :func:`romanarchive.imaging.psf.coadd_psf_image`), so fluxes are
        total fluxes.
    params
        Algorithm parameters.

    Returns
    -------
    DiaResult
        Detections.
    """
    from scipy.ndimage import binary_erosion, maximum_filter

    p = params or DiaParams()
    ok = np.isfinite(sci) & np.isfinite(tmpl) & np.isfinite(sci_err) & np.isfinite(tmpl_err) & (sci_err > 0) \
        & (tmpl_err > 0)
    # float32 working arrays: a full 4k x 4k pair then stays within ~1 GB.
    s = np.where(ok, sci - np.float32(_clipped_median(sci, ok)), 0.0).astype(np.float32)
    t = np.where(ok, tmpl - np.float32(_clipped_median(tmpl, ok)), 0.0).astype(np.float32)
    vs = np.where(ok, sci_err.astype(np.float32) ** 2, 0.0).astype(np.float32)
    vt = np.where(ok, tmpl_err.astype(np.float32) ** 2, 0.0).astype(np.float32)

    ws, wt = psf_width(s, np.sqrt(vs), ok), psf_width(t, np.sqrt(vt), ok)
    convolved = "none"
    if np.isfinite(ws) and np.isfinite(wt) and abs(ws - wt) > p.match_tolerance * max(ws, wt):
        # Convolve the sharper image with the kernel fitted to turn it into the broader one.
        if ws < wt:
            k = fit_kernel(s, t, ok, np.sqrt(vs + vt))
            if k is not None:
                s, vs, convolved = _fft_convolve(s, k), _fft_convolve(vs, k**2), "science"
        else:
            k = fit_kernel(t, s, ok, np.sqrt(vs + vt))
            if k is not None:
                t, vt, convolved = _fft_convolve(t, k), _fft_convolve(vt, k**2), "template"

    pn = np.asarray(psf, dtype=np.float32)
    p2 = float(np.sum(pn.astype(float) ** 2))
    flux = _fft_convolve(s - t, pn[::-1, ::-1]) / p2
    sigma = np.sqrt(np.clip(_fft_convolve(vs + vt, (pn**2)[::-1, ::-1]), 0, None)) / p2
    del vs, vt
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(ok & (sigma > 0), flux / sigma, 0.0)
    # Correlated (drizzled) noise: rescale by the robust RMS of the S/N image over source-free pixels.
    core = ok & (np.abs(snr) < 5)
    mad = float(np.median(np.abs(snr[core] - np.median(snr[core])))) * 1.4826 if core.any() else 1.0
    noise_scale = mad if mad > 0 else 1.0
    sigma = sigma * noise_scale
    # Static sources do not subtract perfectly (PSF-model, kernel and registration errors): a residual that scales
    # with the template flux. Its size eps is measured as the robust scatter of diff/template flux at the template's
    # bright peaks (variables are few among them) and added to the noise in quadrature.
    tflux = _fft_convolve(t, pn[::-1, ::-1]) / p2
    eps = residual_fraction(flux, tflux, sigma, ok, p)
    if eps > 0:
        sigma = np.sqrt(sigma**2 + (eps * np.clip(tflux, 0, None)) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(ok & (sigma > 0), flux / sigma, 0.0)
    local = local_noise_scale(snr, ok, p.tile_px)
    snr, sigma = snr / local, sigma * local
    threshold = calibrated_threshold(pn, int(ok.sum()), p)

    a = np.abs(snr)
    w = 2 * p.min_separation_px + 1
    peaks = (a == maximum_filter(a, size=w)) & (a > threshold) & ok
    ys, xs = np.nonzero(peaks)
    inner = (ys > 0) & (xs > 0) & (ys < a.shape[0] - 1) & (xs < a.shape[1] - 1)
    ys, xs = ys[inner], xs[inner]
    wd = 2 * p.dipole_px + 1
    opposite = np.where(snr[ys, xs] > 0, maximum_filter(-snr, size=wd)[ys, xs], maximum_filter(snr, size=wd)[ys, xs])
    is_dipole = (opposite >= p.dipole_min_snr) & (opposite >= p.dipole_ratio * a[ys, xs])
    structure = psf_structure(xs, ys, snr[ys, xs], p.group_px)
    rejected = {"dipole": int(is_dipole.sum()), "psf_structure": int((structure & ~is_dipole).sum())}
    keep = ~is_dipole & ~structure
    ys, xs, opposite = ys[keep], xs[keep], opposite[keep]

    def refine(c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        den = lo - 2 * c + hi
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(den != 0, 0.5 * (lo - hi) / den, 0.0)
        return np.clip(np.nan_to_num(d), -0.5, 0.5)

    c = a[ys, xs]
    xf = xs + refine(c, a[ys, xs - 1], a[ys, xs + 1])
    yf = ys + refine(c, a[ys - 1, xs], a[ys + 1, xs])
    peak_flux = peak_value(flux, ys, xs)
    dipole = np.clip(opposite, 0, None) / np.maximum(np.abs(snr[ys, xs]), 1e-12)
    near_edge = ~binary_erosion(ok, iterations=p.edge_px, border_value=0)
    flags = (np.where(snr[ys, xs] < 0, DIA_NEGATIVE, 0) | np.where(near_edge[ys, xs], DIA_EDGE, 0)
             | (DIA_PSF_MATCHED if convolved != "none" else 0))
    return DiaResult(xf.astype(float), yf.astype(float), peak_flux, sigma[ys, xs], snr[ys, xs], tflux[ys, xs],
                     flags.astype(np.int16), dipole, local[ys, xs], eps, noise_scale, threshold, rejected, convolved,
                     (ws, wt))


def peak_value(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Extremum of ``img`` near integer peaks ``(ys, xs)``, interpolated per axis through each pixel and its two
    neighbours: a Gaussian (a parabola in log |value|) where the three have the peak's sign — the matched-filter flux
    map is the flux times the PSF's autocorrelation, near-Gaussian in its core — else a parabola. The vertex is held
    within half a pixel of the peak."""
    c = img[ys, xs].astype(float)
    gain = np.ones(len(c))
    for lo, hi in ((img[ys, xs - 1], img[ys, xs + 1]), (img[ys - 1, xs], img[ys + 1, xs])):
        lo, hi = lo.astype(float), hi.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            same = (lo * c > 0) & (hi * c > 0)
            l0, l1, l2 = (np.log(np.abs(np.where(same, v, 1.0))) for v in (lo, c, hi))
            a, b = 0.5 * (l0 + l2 - 2 * l1), 0.5 * (l2 - l0)
            u = np.clip(np.where(a < 0, -b / (2 * a), 0.0), -0.5, 0.5)
            g_log = np.exp(b * u + a * u * u)
            pa, pb = 0.5 * (lo + hi - 2 * c), 0.5 * (hi - lo)
            pu = np.clip(np.where(pa * c < 0, -pb / (2 * pa), 0.0), -0.5, 0.5)
            g_par = 1.0 + np.where(c != 0, (pb * pu + pa * pu * pu) / c, 0.0)
        gain *= np.nan_to_num(np.where(same, g_log, g_par), nan=1.0)
    return c * gain


def local_noise_scale(snr: np.ndarray, ok: np.ndarray, tile: int) -> np.ndarray:
    """Robust RMS (1.4826 MAD) of the S/N image in ``tile`` x ``tile`` tiles, the larger of each tile's and its
    neighbours' median, at least 1, at every pixel (tiles with under a quarter of their pixels usable get 1)."""
    from scipy.ndimage import median_filter

    ny, nx = snr.shape
    ty, tx = -(-ny // tile), -(-nx // tile)
    scale = np.ones((ty, tx))
    for i in range(ty):
        for j in range(tx):
            sl = (slice(i * tile, (i + 1) * tile), slice(j * tile, (j + 1) * tile))
            v = snr[sl][ok[sl]]
            if v.size >= tile * tile // 4:
                scale[i, j] = 1.4826 * float(np.median(np.abs(v - np.median(v))))
    # One noisy tile next to clean ones is a bright source's own core, not a halo: the 3x3 median keeps halos.
    smooth = np.maximum(median_filter(scale, size=3, mode="nearest"), 1.0)
    return np.asarray(np.repeat(np.repeat(smooth, tile, axis=0), tile, axis=1)[:ny, :nx], np.float32)


def calibrated_threshold(psf: np.ndarray, n_pixels: int, params: DiaParams) -> float:
    """Detection threshold: ``params.threshold`` or the |S/N| that Gaussian noise exceeds ``false_positives``
    times per image (both signs) over its independent elements, whichever is higher."""
    from scipy.signal import fftconvolve
    from scipy.stats import norm

    ac = fftconvolve(psf, psf[::-1, ::-1], mode="full")
    rho = ac / ac.max()
    n_eff = max(n_pixels / float(np.sum(rho**2)), 1.0)
    return float(max(params.threshold, norm.isf(params.false_positives / (2.0 * n_eff))))


def psf_structure(xs: np.ndarray, ys: np.ndarray, snr: np.ndarray, radius: float) -> np.ndarray:
    """Peaks within ``radius`` pixels of a stronger peak of the same sign."""
    out = np.zeros(len(xs), bool)
    order = np.argsort(-np.abs(snr), kind="stable")
    kept: list[int] = []
    for i in order:
        for j in kept:
            if np.sign(snr[i]) == np.sign(snr[j]) and (xs[i] - xs[j]) ** 2 + (ys[i] - ys[j]) ** 2 <= radius**2:
                out[i] = True
                break
        else:
            kept.append(int(i))
    return out


def residual_fraction(flux: np.ndarray, tflux: np.ndarray, sigma: np.ndarray, ok: np.ndarray,
                      params: DiaParams) -> float:
    """Robust (1.4826 MAD) scatter of difference over template PSF flux at the template's bright peaks (template
    flux over the difference's noise ``sigma`` above ``residual_min_snr``), less what that noise explains; 0 with
    fewer than 10 peaks."""
    from scipy.ndimage import maximum_filter

    with np.errstate(invalid="ignore", divide="ignore"):
        tsnr = np.where(ok & (sigma > 0), tflux / sigma, 0.0)
    peaks = (tsnr == maximum_filter(tsnr, size=2 * params.min_separation_px + 1)) & (tsnr > params.residual_min_snr)
    if peaks.sum() < 10:
        return 0.0
    r = flux[peaks] / tflux[peaks]
    noise = float(np.median(1.0 / tsnr[peaks]))  # the part of the scatter the difference's noise explains
    mad = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    return float(np.sqrt(max(mad**2 - noise**2, 0.0)))
