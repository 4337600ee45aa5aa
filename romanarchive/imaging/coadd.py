"""Co-add L2 images onto a target grid: sky matching, outlier (cosmic-ray) rejection and a weighted drizzle.

A pure function of arrays (``coadd``) in the romancal/stcal split, shared by the processing domains:
``romanarchive.mosaic.step`` wraps it with a configuration and the L3 datamodel, difference imaging
(``romanarchive.timeseries.dia_step``) builds per-epoch images and templates with it; L2 files are read into its
:class:`CoaddInput` by :func:`romanarchive.imaging.l2.load_l2`. The algorithm follows romancal's MosaicPipeline
(and JWST's ``outlier_detection``), written over the ``drizzle`` package because romancal's skycell map needs a CRDS
download:

0. **Pixel areas**: an L2's MJy/sr assumes its nominal pixel area (``meta.photometry.pixel_area``, one number
   per detector), while the geometric distortion makes the real pixels differ (the simulated WFI01 pixels are
   0.1089", 2 % smaller in area than 0.11"). Where the input's ``pixel_area`` is known, each pixel is multiplied by
   nominal / true area (a pixel-area map from its WCS, as HST/JWST pixel-area maps do), making it the true surface
   brightness; then a star's flux summed on the L2 with the nominal area equals the flux summed on the co-add.
1. **Sky matching**: each input's sky is the sigma-clipped median of its valid pixels. ``match`` (default) shifts
   every input to the inputs' mean sky, so the co-add keeps the common background level; ``local`` subtracts each
   input's own sky; ``none`` leaves the data alone.
2. **Outlier rejection** (three inputs or more): every input is drizzled alone onto the grid (drizzle's ``turbo``
   kernel, an axis-aligned square: a third faster than ``square``, and the median needs no more), the per-pixel median
   of those images (ignoring poorly covered pixels) is blotted back onto each input, and a pixel is an outlier when
   ``|data - blot| > snr * err + scale * derivative(blot)`` with the first (snr, scale) pair, or with the second pair
   next to such a pixel. The derivative term keeps undersampled star cores from being flagged.
3. **Co-add**: one drizzle of all inputs, each weighted by the inverse of its median (sky + read noise) variance
   (``ivm``) or by its exposure time, outliers and flagged pixels at zero weight. Variances are drizzled with
   squared weights (the variance of the weighted mean of the inputs' values).

Surface brightness is conserved (drizzle's ``iscale`` = 1, as in romancal's ResampleStep): inputs in MJy/sr give an
L3 in MJy/sr on the target grid, whatever its pixel size, and a flux is the sum over an aperture times the *target*
pixel's area. ``CoaddResult.pixel_area_ratio`` records the output/input pixel-area ratio (romancal's
``pixel_scale_ratio`` squared); it is not applied to the values. Pixels that no input covers are NaN with zero
weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

#: DQ bits that exclude an L2 pixel (roman_datamodels' DO_NOT_USE and SATURATED).
BAD_DQ = 1 | 2


class MosaicError(ValueError):
    """A co-add cannot be made from these inputs; the message is one line for the user."""


@dataclass
class CoaddInput:
    """One L2 image, as arrays.

    Attributes
    ----------
    data, err
        Science data and total 1-sigma uncertainty (surface brightness, MJy/sr for the archive's L2s).
    wcs
        gwcs (or astropy WCS) mapping pixel (x, y) to ICRS (ra, dec) in degrees.
    dq
        Data-quality flags, or ``None``.
    var_poisson
        Source shot-noise variance, or ``None``.
    exptime
        Exposure time in seconds.
    name
        For messages and provenance.
    pixel_area
        The nominal pixel area (sr) the surface-brightness calibration assumed, or ``None`` to take the values as
        true surface brightness (no pixel-area correction).
    """

    data: np.ndarray
    err: np.ndarray
    wcs: Any
    dq: np.ndarray | None = None
    var_poisson: np.ndarray | None = None
    exptime: float = 1.0
    name: str = "input"
    pixel_area: float | None = None

    def validate(self) -> None:
        """Raise :class:`MosaicError` for an input that cannot be co-added."""
        if self.wcs is None:
            raise MosaicError(f"{self.name}: L2 image has no WCS (meta.wcs missing)")
        if self.data.ndim != 2 or self.data.size == 0:
            raise MosaicError(f"{self.name}: data is not a non-empty 2-D image (shape {self.data.shape})")
        if self.err.shape != self.data.shape:
            raise MosaicError(f"{self.name}: err shape {self.err.shape} differs from data {self.data.shape}")
        if not np.any(self.good()):
            raise MosaicError(f"{self.name}: no valid pixels (all NaN, zero-error or flagged)")

    def good(self) -> np.ndarray:
        """Pixels that may be used."""
        ok = np.isfinite(self.data) & np.isfinite(self.err) & (self.err > 0)
        if self.dq is not None:
            ok &= (self.dq & BAD_DQ) == 0
        return ok


@dataclass(frozen=True)
class CoaddParams:
    """Algorithm parameters (the step's configuration passes these through)."""

    pixfrac: float = 1.0
    kernel: str = "square"
    weight_type: Literal["ivm", "exptime"] = "ivm"
    skymethod: Literal["match", "local", "none"] = "match"
    outlier_detection: bool = True
    snr: tuple[float, float] = (5.0, 4.0)
    scale: tuple[float, float] = (1.2, 0.7)
    maskpt: float = 0.7
    min_inputs_for_outliers: int = 3


@dataclass
class CoaddResult:
    """Co-added arrays on the target grid (the inputs' surface-brightness unit) and what was done.

    ``pixel_area_ratio`` is the area of an output pixel over that of an input pixel (median over the first input).
    """

    data: np.ndarray
    err: np.ndarray
    weight: np.ndarray
    context: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray
    sky: list[float] = field(default_factory=list)
    n_outliers: list[int] = field(default_factory=list)
    used: list[bool] = field(default_factory=list)
    pixel_area_ratio: float = 1.0


def sky_level(inp: CoaddInput) -> float:
    """Sigma-clipped median of an input's valid pixels (sources and cosmic rays clipped)."""
    from astropy.stats import sigma_clipped_stats

    vals = inp.data[inp.good()]
    if vals.size > 50_000:  # a regular subsample is as good an estimate (to ~0.5 % of the noise) and fast
        vals = vals[:: vals.size // 50_000 + 1]
    _, median, _ = sigma_clipped_stats(vals, sigma=3.0, maxiters=10)
    return float(median)


def _pixmap(inp: CoaddInput, target_wcs: Any, step: int = 16) -> np.ndarray:
    """Input pixel -> target pixel map, shape (ny, nx, 2).

    The (smooth) distortion is evaluated exactly on a grid every ``step`` pixels and interpolated with bicubic
    splines in between: about 50 times fewer WCS evaluations, with errors below 1e-4 pixel (checked by a test).
    """
    from scipy.interpolate import RectBivariateSpline

    ny, nx = inp.data.shape
    if step <= 1 or min(ny, nx) < 4 * step:
        from drizzle.utils import calc_pixmap

        return np.asarray(calc_pixmap(inp.wcs, target_wcs, inp.data.shape), dtype=np.float64)
    gx = np.unique(np.r_[np.arange(0, nx, step), nx - 1]).astype(float)
    gy = np.unique(np.r_[np.arange(0, ny, step), ny - 1]).astype(float)
    xx, yy = np.meshgrid(gx, gy)
    ra, dec = inp.wcs.pixel_to_world_values(xx, yy)
    tx, ty = target_wcs.world_to_pixel_values(ra, dec)
    tx, ty = np.asarray(tx, dtype=float), np.asarray(ty, dtype=float)
    if not (np.all(np.isfinite(tx)) and np.all(np.isfinite(ty))):
        from drizzle.utils import calc_pixmap

        return np.asarray(calc_pixmap(inp.wcs, target_wcs, inp.data.shape), dtype=np.float64)
    out = np.empty((ny, nx, 2), dtype=np.float64)
    xs, ys = np.arange(nx, dtype=float), np.arange(ny, dtype=float)
    out[..., 0] = RectBivariateSpline(gy, gx, tx, kx=3, ky=3)(ys, xs)
    out[..., 1] = RectBivariateSpline(gy, gx, ty, kx=3, ky=3)(ys, xs)
    return out


def pixel_area_map(wcs: Any, shape: tuple[int, int], step: int = 64) -> np.ndarray:
    """Solid angle (sr) of every pixel of an image with WCS ``wcs``, shape ``shape``.

    The Jacobian of the WCS is evaluated by unit finite differences on a grid every ``step`` pixels (local tangent
    plane) and interpolated with bicubic splines: the distortion is smooth.
    """
    from scipy.interpolate import RectBivariateSpline

    ny, nx = shape
    gx = np.unique(np.r_[np.arange(0, nx, step), nx - 1]).astype(float)
    gy = np.unique(np.r_[np.arange(0, ny, step), ny - 1]).astype(float)
    xx, yy = np.meshgrid(gx, gy)
    ra0, dec0 = (np.asarray(v, float) for v in wcs.pixel_to_world_values(xx - 0.5, yy))
    ra1, dec1 = (np.asarray(v, float) for v in wcs.pixel_to_world_values(xx + 0.5, yy))
    ra2, dec2 = (np.asarray(v, float) for v in wcs.pixel_to_world_values(xx, yy - 0.5))
    ra3, dec3 = (np.asarray(v, float) for v in wcs.pixel_to_world_values(xx, yy + 0.5))
    cosd = np.cos(np.radians(0.5 * (dec0 + dec1)))
    ax, ay = ((ra1 - ra0 + 180.0) % 360.0 - 180.0) * cosd, dec1 - dec0
    bx, by = ((ra3 - ra2 + 180.0) % 360.0 - 180.0) * cosd, dec3 - dec2
    area = np.abs(ax * by - ay * bx) * np.radians(1.0) ** 2
    if not np.all(np.isfinite(area)) or len(gx) < 4 or len(gy) < 4:
        return np.full(shape, float(np.nanmedian(area)))
    return np.asarray(RectBivariateSpline(gy, gx, area, kx=3, ky=3)(np.arange(ny, dtype=float),
                                                                     np.arange(nx, dtype=float)))


def true_surface_brightness(inp: CoaddInput) -> CoaddInput:
    """The input with data, err and var_poisson scaled by nominal / true pixel area (step 0 of the module doc).

    Returned unchanged when ``inp.pixel_area`` is ``None``.
    """
    if not inp.pixel_area:
        return inp
    scale = (inp.pixel_area / pixel_area_map(inp.wcs, inp.data.shape)).astype(np.float32)
    var = None if inp.var_poisson is None else (inp.var_poisson.astype(np.float32) * scale**2).astype(np.float32)
    return CoaddInput(data=(inp.data.astype(np.float32) * scale).astype(np.float32),
                      err=(inp.err.astype(np.float32) * scale).astype(np.float32), wcs=inp.wcs, dq=inp.dq,
                      var_poisson=var, exptime=inp.exptime, name=inp.name, pixel_area=None)


def _bbox(pixmaps: list[np.ndarray], shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Smallest (y0, y1, x0, x1) window of the target that the inputs reach (margin of 2 pixels)."""
    xs = [p[..., 0][np.isfinite(p[..., 0])] for p in pixmaps]
    ys = [p[..., 1][np.isfinite(p[..., 1])] for p in pixmaps]
    xa, ya = np.concatenate(xs), np.concatenate(ys)
    if xa.size == 0:
        return None
    x0, x1 = max(0, int(np.floor(xa.min())) - 2), min(shape[1], int(np.ceil(xa.max())) + 3)
    y0, y1 = max(0, int(np.floor(ya.min())) - 2), min(shape[0], int(np.ceil(ya.max())) + 3)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def _area_ratio(pixmap: np.ndarray) -> float:
    """Median number of output pixels per input pixel (|det| of the pixel map's Jacobian)."""
    gx_y, gx_x = np.gradient(pixmap[..., 0])
    gy_y, gy_x = np.gradient(pixmap[..., 1])
    det = np.abs(gx_x * gy_y - gx_y * gy_x)
    det = det[np.isfinite(det)]
    if det.size == 0:
        raise MosaicError("cannot map the input pixels onto the target grid")
    return float(np.median(det))


def _weights(inp: CoaddInput, weight_type: str) -> np.ndarray:
    """Per-pixel weights: one value per image (zero where flagged), so a star's pixels are never re-weighted.

    ``ivm`` is the inverse of the image's median variance (sky and read noise: the noise of faint sources). A
    per-pixel inverse variance would down-weight each source's own bright pixels by their shot noise and, where an
    output pixel mixes bright and faint input pixels, bias its flux low.
    """
    good = inp.good()
    if weight_type == "exptime":
        value = float(inp.exptime)
    else:
        err = inp.err[good]
        var = err[:: err.size // 50_000 + 1].astype(np.float64) ** 2  # a regular subsample, as for the sky
        value = 1.0 / float(np.median(var))
    return np.where(good, value, 0.0).astype(np.float32)


def _nanmedian0(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (NaN where all are NaN); a sort is much faster than ``np.nanmedian``."""
    srt = np.sort(stack, axis=0)  # NaN sort last
    n = np.count_nonzero(np.isfinite(srt), axis=0)
    lo = np.clip((n - 1) // 2, 0, None)[None]
    hi = np.clip(n // 2, 0, stack.shape[0] - 1)[None]
    med = 0.5 * (np.take_along_axis(srt, lo, 0)[0] + np.take_along_axis(srt, hi, 0)[0])
    return np.where(n > 0, med, np.nan)


def _derivative(img: np.ndarray) -> np.ndarray:
    """Largest absolute difference to the four neighbours (JWST's ``abs_deriv``)."""
    d = np.zeros_like(img)
    for axis in (0, 1):
        for shift in (1, -1):
            d = np.maximum(d, np.abs(img - np.roll(img, shift, axis=axis)))
    return d


def _nearest(grid: np.ndarray, pixmap: np.ndarray) -> np.ndarray:
    """``grid`` (boolean) at the nearest target pixel of every input pixel; False off the grid (a nearest blot)."""
    ix = np.rint(np.nan_to_num(pixmap[..., 0], nan=-1.0)).astype(np.int64)
    iy = np.rint(np.nan_to_num(pixmap[..., 1], nan=-1.0)).astype(np.int64)
    inside = (ix >= 0) & (iy >= 0) & (ix < grid.shape[1]) & (iy < grid.shape[0])
    out = np.zeros(ix.shape, dtype=bool)
    out[inside] = grid[iy[inside], ix[inside]]
    return out


def _outliers(inputs: Sequence[CoaddInput], data: list[np.ndarray], pixmaps: list[np.ndarray],
              weights: list[np.ndarray], sub_shape: tuple[int, int], params: CoaddParams) -> list[np.ndarray]:
    """Outlier masks per input (True = reject), from the median of single-image drizzles blotted back."""
    from drizzle.resample import Drizzle, blot_image
    from scipy.ndimage import binary_dilation

    singles, whts = [], []
    for d, pm, w in zip(data, pixmaps, weights, strict=True):
        drz = Drizzle(kernel="turbo", out_shape=sub_shape, fillval=np.nan, disable_ctx=True)
        drz.add_image(d, exptime=1.0, pixmap=pm, weight_map=w, iscale=1.0, pixfrac=1.0, in_units="cps")
        singles.append(drz.out_img)
        whts.append(drz.out_wht)
    stack = np.stack(singles)
    wstack = np.stack(whts)
    for k in range(len(whts)):
        covered = wstack[k] > 0
        if np.any(covered):
            # Pixels only partly covered by an input's valid pixels are unreliable in its single image.
            stack[k][wstack[k] < params.maskpt * np.median(wstack[k][covered])] = np.nan
    median = _nanmedian0(stack)
    valid_median = np.isfinite(median)
    median = np.where(valid_median, median, 0.0).astype(np.float32)
    masks = []
    for inp, d, pm in zip(inputs, data, pixmaps, strict=True):
        blot = blot_image(median, pm, iscale=1.0, fillval=np.nan)
        valid = _nearest(valid_median, pm)
        valid &= np.isfinite(blot)
        blot = np.where(valid, blot, 0.0)
        deriv = _derivative(blot)
        diff = np.abs(d - blot)
        err = inp.err.astype(np.float32)
        snr1, snr2 = params.snr
        s1, s2 = params.scale
        with np.errstate(invalid="ignore"):
            cr1 = valid & (diff > snr1 * err + s1 * deriv)
            cr2 = valid & (diff > snr2 * err + s2 * deriv)
        masks.append(cr1 | (binary_dilation(cr1) & cr2))
    return masks


def coadd(inputs: Sequence[CoaddInput], target_wcs: Any, shape: tuple[int, int],
          params: CoaddParams | None = None) -> CoaddResult:
    """Resample and co-add L2 images onto a target grid.

    Parameters
    ----------
    inputs
        The images; each must have a WCS and valid pixels.
    target_wcs
        WCS of the output grid (astropy or gwcs; ``world_to_pixel_values``), e.g. ``Skycell.wcs``.
    shape
        Output shape (ny, nx).
    params
        Algorithm parameters.

    Returns
    -------
    CoaddResult
        Arrays of ``shape``; ``used[k]`` says whether input k reached the grid (``sky``, ``n_outliers`` and the
        context bits follow the inputs used).

    Raises
    ------
    MosaicError
        No inputs, an input without WCS or valid pixels, or no input overlapping the grid.
    """
    from drizzle.resample import Drizzle

    params = params or CoaddParams()
    if not inputs:
        raise MosaicError("no input images to co-add")
    for inp in inputs:
        inp.validate()
    pixmaps = [_pixmap(inp, target_wcs) for inp in inputs]
    box = _bbox(pixmaps, shape)
    if box is None:
        raise MosaicError("no input overlaps the target grid")
    y0, y1, x0, x1 = box
    sub_shape = (y1 - y0, x1 - x0)
    # Work in the window the inputs reach: the rest of the grid stays empty.
    for pm in pixmaps:
        pm[..., 0] -= x0
        pm[..., 1] -= y0
    used = [bool(np.any((pm[..., 0] > -0.5) & (pm[..., 0] < sub_shape[1] - 0.5) & (pm[..., 1] > -0.5)
                        & (pm[..., 1] < sub_shape[0] - 0.5))) for pm in pixmaps]
    if not any(used):
        raise MosaicError("no input overlaps the target grid")
    # Inputs that miss the grid are left out; context bit k is the k-th input that is used.
    inputs = [inp for inp, u in zip(inputs, used, strict=True) if u]
    pixmaps = [pm for pm, u in zip(pixmaps, used, strict=True) if u]
    # Surface brightness is resampled as it is (iscale 1); the area ratio is only recorded.
    area_ratio = 1.0 / _area_ratio(pixmaps[0])
    inputs = [true_surface_brightness(inp) for inp in inputs]

    skies = [sky_level(inp) for inp in inputs] if params.skymethod != "none" else [0.0] * len(inputs)
    mean_sky = float(np.mean(skies))
    offsets = [s - mean_sky if params.skymethod == "match" else (s if params.skymethod == "local" else 0.0)
               for s in skies]
    data = [np.where(inp.good(), inp.data.astype(np.float32) - np.float32(off), 0.0).astype(np.float32)
            for inp, off in zip(inputs, offsets, strict=True)]
    weights = [_weights(inp, params.weight_type) for inp in inputs]

    n_outliers = [0] * len(inputs)
    if params.outlier_detection and len(inputs) >= params.min_inputs_for_outliers:
        masks = _outliers(inputs, data, pixmaps, weights, sub_shape, params)
        for k, m in enumerate(masks):
            n_outliers[k] = int(np.count_nonzero(m & (weights[k] > 0)))
            weights[k] = np.where(m, 0.0, weights[k]).astype(np.float32)

    # Total and Poisson variances; the read-noise (+ flat) part is their difference, as drizzle is linear.
    out_var = [np.zeros(sub_shape, np.float32) for _ in range(2)]
    drz = Drizzle(kernel=params.kernel, out_shape=sub_shape, fillval=np.nan, out_img2=out_var,
                  max_ctx_id=len(inputs))
    for inp, d, pm, w in zip(inputs, data, pixmaps, weights, strict=True):
        var = np.where(w > 0, inp.err.astype(np.float32) ** 2, 0.0).astype(np.float32)
        vp = (np.nan_to_num(inp.var_poisson.astype(np.float32), nan=0.0) if inp.var_poisson is not None
              else np.zeros_like(var))
        vp = np.where(w > 0, np.minimum(vp, var), 0.0).astype(np.float32)
        drz.add_image(d, exptime=inp.exptime, pixmap=pm, weight_map=w, iscale=1.0, pixfrac=params.pixfrac,
                      in_units="cps", data2=[var, vp])

    def full(sub: np.ndarray, fill: float, dtype: Any = np.float32) -> np.ndarray:
        out = np.full(shape, fill, dtype=dtype)
        out[y0:y1, x0:x1] = sub
        return out

    wht = drz.out_wht
    empty = ~(wht > 0)
    img2 = [np.where(empty, np.nan, v) for v in drz.out_img2]
    img2[1] = np.minimum(img2[1], img2[0])
    img2.append(img2[0] - img2[1])
    ctx_sub = drz.out_ctx.astype(np.uint32)
    context = np.zeros((ctx_sub.shape[0], *shape), np.uint32)
    context[:, y0:y1, x0:x1] = ctx_sub
    return CoaddResult(
        data=full(np.where(empty, np.nan, drz.out_img), np.nan), err=full(np.sqrt(img2[0]), np.nan),
        weight=full(wht, 0.0), context=context, var_poisson=full(img2[1], np.nan),
        var_rnoise=full(img2[2], np.nan), sky=skies, n_outliers=n_outliers, used=used, pixel_area_ratio=area_ratio,
    )
