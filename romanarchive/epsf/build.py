"""ePSF fitting: star cut-outs of dithered L2 images -> one oversampled ePSF (Anderson & King 2000).

The fit itself is photutils' :class:`~photutils.psf.EPSFBuilder` (iterative: stack the stars' samples on the
oversampled grid, re-fit each star's centre and flux with the current ePSF, recentre). What is added around it:

* stars are cut out here (:class:`~photutils.psf.EPSFStar`) rather than with ``extract_stars`` so that each gets its
  own local background (:mod:`romanarchive.epsf.stars`) and zero weight on bad pixels;
* a second pass without the outliers of the first: a star whose residual from the first ePSF is far above the
  others' is a galaxy, a blend or a cosmic ray the selection missed;
* the flux of each native-pixel sub-lattice equalised (:func:`equalise_phases`): the stack's pixel-phase pattern
  otherwise biases PSF fluxes by several per cent;
* no smoothing kernel by default: EPSFBuilder's quartic kernel broadens an undersampled PSF (F087's FWHM by
  several per cent), and with hundreds of dithered stars the stack is well enough sampled without it;
* normalisation to the *total* flux: EPSFBuilder scales the stamp to sum to ``oversample**2`` (all the flux inside
  the cut-out), but a PSF fit must measure total fluxes, as the archive's ``epsf`` reference files do. The share
  of the flux inside a core radius (4 pixels) cannot be measured from stars this faint, so it comes from the model
  PSF's encircled energy (galsim.roman, :func:`model_anchor`) — an aperture correction of a few per cent,
  recorded with the ePSF;
* the origin: the stamp is shifted so that its core centroid sits where the model PSF's does (the source position
  is not the light's centroid for an asymmetric PSF).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from romanarchive.epsf.config import EpsfConfig
from romanarchive.epsf.stars import DQ_DO_NOT_USE, StarField
from romanarchive.imaging.epsf import WFI_SCALE, centroid, fwhm
from romanarchive.imaging.psf import psf_object


class EpsfBuildError(ValueError):
    """The inputs cannot make an ePSF (too few stars, all saturated, no images): nothing is registered."""


@dataclass
class EpsfFit:
    """One fitted ePSF and what it was made from."""

    stamp: np.ndarray  # (n, n) fine samples, romancal's epsf convention; norm_fraction of the flux within 4 pix
    x: float
    y: float
    oversample: int
    n_images: int
    n_stars: int
    n_rejected: int
    snr: float
    fwhm: float
    residual_rms: float
    norm_fraction: float
    stars: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0


@dataclass(frozen=True)
class ModelAnchor:
    """What the model PSF fixes in an empirical ePSF: its normalisation and its origin."""

    norm_fraction: float  # share of the total flux inside the stamp
    centroid: tuple[float, float]  # core centroid (imaging.epsf.centroid) relative to the source position, pixels
    core_radius: float  # radius the ePSF is normalised within, pixels
    core_fraction: float  # share of the total flux inside core_radius


def _inside(stamp: np.ndarray, oversample: int, radius: float) -> float:
    """Flux share inside ``radius`` pixels of the centre of an ``oversample**2``-scaled stamp."""
    c = stamp.shape[0] // 2
    yy, xx = (np.indices(stamp.shape) - c) / oversample
    return float(stamp[np.hypot(xx, yy) <= radius].sum() / oversample**2)


@lru_cache(maxsize=32)
def model_anchor(band: str, sca: int, stamp: int, oversample: int = 4, core_radius: float = 4.0) -> ModelAnchor:
    """The model PSF's (galsim.roman, with the pixel response) flux share inside a ``stamp``-pixel box and core
    centroid offset.

    Stars fix an ePSF's shape but neither its total flux (the wings beyond the stamp are below the noise) nor where
    the source lies relative to its light (an asymmetric PSF's centroid is not the source position: ~0.09 pixel on
    F087): both are taken from the model, so PSF fits with the library give total fluxes and model-consistent
    positions.
    """
    import galsim

    obj = galsim.Convolve(psf_object(band, sca), galsim.Pixel(WFI_SCALE))
    n = stamp * oversample + 1
    img = obj.drawImage(nx=n, ny=n, scale=WFI_SCALE / oversample, method="no_pixel")  # type: ignore[attr-defined]
    arr = np.asarray(img.array, float) * oversample**2
    return ModelAnchor(float(arr.sum() / oversample**2), centroid(arr, oversample), core_radius,
                       _inside(arr, oversample, core_radius))


def _cutouts(fields: Sequence[StarField], config: EpsfConfig, region: tuple[float, float, float, float] | None
             ) -> tuple[list[Any], list[dict[str, Any]]]:
    """EPSFStar cut-outs of the selected stars inside ``region`` (x0, x1, y0, y1), with their provenance."""
    from photutils.psf import EPSFStar

    s = config.stamp
    h = s // 2
    stars: list[Any] = []
    info: list[dict[str, Any]] = []
    for f in fields:
        for x, y, bkg, snr in zip(f.x, f.y, f.background, f.snr, strict=True):
            if region is not None and not (region[0] <= x < region[1] and region[2] <= y < region[3]):
                continue
            ix, iy = int(round(x)), int(round(y))
            sl = (slice(iy - h, iy + h + 1), slice(ix - h, ix + h + 1))
            data = f.data[sl] - bkg
            # Uniform weights (the sky's noise): weights from err, which holds the star's own Poisson noise, make
            # the flux and centre fits favour the wings, and the stacked ePSF comes out several per cent too sharp.
            w = np.where(np.isfinite(f.err[sl]) & (f.err[sl] > 0), 1.0 / f.sky_err, 0.0)
            if f.dq is not None:
                w = np.where((f.dq[sl] & DQ_DO_NOT_USE) != 0, 0.0, w)
            w = np.where(np.isfinite(data), w, 0.0)
            stars.append(EPSFStar(np.nan_to_num(data), weights=w, cutout_center=(x - (ix - h), y - (iy - h)),
                                  origin=(ix - h, iy - h), id_label=len(stars) + 1))
            info.append({"image": f.name, "x": float(x), "y": float(y), "snr": float(snr)})
    return stars, info


def _residuals(epsf: Any, stars: Sequence[Any], radius: float = 3.0) -> np.ndarray:
    """Per star: RMS of (star - fitted ePSF) within ``radius`` pixels of its centre, over the model's peak."""
    out = np.full(len(stars), np.inf)
    for k, st in enumerate(stars):
        if not np.isfinite(st.flux) or st.flux <= 0:
            continue
        yy, xx = np.indices(st.data.shape, dtype=float)
        cx, cy = st.cutout_center
        model = epsf.evaluate(xx, yy, st.flux, cx, cy)
        core = (np.hypot(xx - cx, yy - cy) <= radius) & (st.weights > 0)
        if core.sum() > 5:
            out[k] = float(np.sqrt(np.mean((st.data - model)[core] ** 2)) / model.max())
    return out


def recentre(stamp: np.ndarray, oversample: int, target: tuple[float, float] = (0.0, 0.0),
             iterations: int = 3) -> np.ndarray:
    """The stamp shifted (cubic spline) so that its core centroid (:func:`~romanarchive.imaging.epsf.centroid`)
    lies at ``target`` (pixels from the central sample).

    EPSFBuilder centres the ePSF on the centroid of a 5 x 5 fine-sample box; on an asymmetric, undersampled PSF that
    differs from the core centroid by up to ~0.1 pixel, which then shows as a position bias of every fit.
    """
    from scipy.ndimage import shift

    out = np.asarray(stamp, float)
    for _ in range(iterations):
        cx, cy = centroid(out, oversample)
        dx, dy = cx - target[0], cy - target[1]
        if max(abs(dx), abs(dy)) < 1e-4:
            break
        out = shift(out, (-dy * oversample, -dx * oversample), order=3, mode="constant")
    return out


def equalise_phases(stamp: np.ndarray, oversample: int) -> np.ndarray:
    """The stamp with the flux of each of its ``oversample**2`` native-pixel sub-lattices made equal.

    A pixel-integrated PSF sampled on native pixels holds the same flux at every sub-pixel phase (what a star puts
    on the detector does not depend on where it falls in a pixel). EPSFBuilder's stack breaks that by a few per
    cent when the stars' phases are few or unevenly fitted (a pattern with the period of one native pixel): the
    amplitude of a PSF fit then depends on the star's phase, by +-5 % on F087. Each sub-lattice is scaled to the
    mean.
    """
    o = oversample
    n = (stamp.shape[0] - 1) // o * o  # a whole number of native pixels: every sub-lattice has as many samples
    sums = np.array([[stamp[i:n:o, j:n:o].sum() for j in range(o)] for i in range(o)])
    out = np.asarray(stamp, float).copy()
    for i in range(o):
        for j in range(o):
            out[i::o, j::o] *= sums.mean() / sums[i, j]
    return out


def fit_epsf(fields: Sequence[StarField], config: EpsfConfig, anchor: ModelAnchor, position: tuple[float, float],
             region: tuple[float, float, float, float] | None = None) -> EpsfFit:
    """Build one ePSF from the selected stars of ``fields`` (inside ``region``, when given).

    Raises
    ------
    EpsfBuildError
        Fewer than ``config.min_stars`` usable stars before or after the rejection pass.
    """
    from photutils.psf import EPSFBuilder, EPSFStars

    t0 = time.perf_counter()
    stars, info = _cutouts(fields, config, region)
    where = f" near ({position[0]:.0f}, {position[1]:.0f})" if region is not None else ""
    if len(stars) < config.min_stars:
        raise EpsfBuildError(f"{len(stars)} usable star images{where} on {len(fields)} image(s); an ePSF needs at "
                             f"least {config.min_stars} (isolated, unsaturated, S/N >= {config.min_snr:g})")
    o = config.oversample
    shape = (config.stamp * o + 1, config.stamp * o + 1)

    def run(subset: list[Any]) -> Any:
        builder = EPSFBuilder(oversampling=o, shape=shape, maxiters=config.maxiters, progress_bar=False,
                              smoothing_kernel="quartic" if config.smoothing else None)
        return builder(EPSFStars(subset))

    first = run(stars)
    res = _residuals(first.epsf, list(first.fitted_stars))
    finite = res[np.isfinite(res)]
    med = float(np.median(finite)) if len(finite) else np.inf
    mad = 1.4826 * float(np.median(np.abs(finite - med))) if len(finite) else 0.0
    keep = np.flatnonzero(np.isfinite(res) & (res <= med + config.reject_sigma * max(mad, 1e-3 * med)))
    if len(keep) < config.min_stars:
        raise EpsfBuildError(f"only {len(keep)} of {len(stars)} star images{where} fit an ePSF consistently; "
                             f"at least {config.min_stars} are needed")
    second = run([stars[k] for k in keep])
    fitted = list(second.fitted_stars)
    final = _residuals(second.epsf, fitted)
    data = recentre(equalise_phases(np.asarray(second.epsf.data, float), o), o, anchor.centroid)
    # Scaled on the core, where the stars' S/N is high: a sky error of a fraction of the noise in the cut-outs'
    # outskirts, summed over the stamp, moved the whole-stamp normalisation (and the PSF fluxes) by up to 5 %.
    stamp = data * (anchor.core_fraction / _inside(data, o, anchor.core_radius))
    used = []
    for j, k in enumerate(keep):
        used.append({**info[k], "flux": float(fitted[j].flux), "residual": float(final[j])})
    snr = np.array([u["snr"] for u in used])
    ok = final[np.isfinite(final)]
    return EpsfFit(stamp.astype(np.float32), float(position[0]), float(position[1]), o,
                   len({u["image"] for u in used}), len(keep), len(stars) - len(keep),
                   float(np.sqrt(np.sum(snr**2))), fwhm(stamp, o),
                   float(np.median(ok)) if len(ok) else float("nan"), anchor.core_fraction, used,
                   time.perf_counter() - t0)


def grid_regions(size_x: int, size_y: int, n: int) -> list[tuple[tuple[float, float], tuple[float, float, float,
                                                                                                 float]]]:
    """``n`` x ``n`` cells over a detector image: ((x, y) of each cell centre, (x0, x1, y0, y1)), row-major in y."""
    ex = np.linspace(-0.5, size_x - 0.5, n + 1)
    ey = np.linspace(-0.5, size_y - 0.5, n + 1)
    out = []
    for j in range(n):
        for i in range(n):
            out.append((((ex[i] + ex[i + 1]) / 2, (ey[j] + ey[j + 1]) / 2), (ex[i], ex[i + 1], ey[j], ey[j + 1])))
    return out
