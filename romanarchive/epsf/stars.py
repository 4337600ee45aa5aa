"""Star selection for the ePSF library: isolated, unsaturated, bright point sources on one L2 image.

Candidates are the image's own peaks (photutils ``find_peaks`` on the background-subtracted image, at
``detect_sigma`` times the image's ``err``), kept when

* bright: aperture S/N (r = 3 pixels) of at least ``min_snr``;
* unsaturated: no SATURATED or DO_NOT_USE pixel within 4 pixels of the peak;
* isolated: no other detection within ``isolation`` pixels (a neighbour or a galaxy's knot biases the wings);
* away from saturated stars: not within ``bright_factor`` core radii (+ ``bright_margin`` pixels) of a cluster of
  SATURATED pixels, whose rings and spikes are found as peaks and whose halo is not flat under a cut-out;
* inside: the whole cut-out lies on the image;
* not known to be extended: when the archive's catalog has objects there, the job passes the pixel positions of
  its extended ones, and candidates within 1.5 pixels of one are dropped.

Galaxies the catalog does not know are removed later by the fit itself (:mod:`romanarchive.epsf.build` rejects
stars whose ePSF residual is an outlier). Each star's local background is the sigma-clipped median of an annulus
outside the cut-out (15-22 pixels), where the PSF's wing is far below the noise, so the cut-out's own wing is not
subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from romanarchive.epsf.config import EpsfConfig

#: roman_datamodels.dqflags.pixel: DO_NOT_USE and SATURATED.
DQ_DO_NOT_USE = 1
DQ_SATURATED = 2


@dataclass
class StarField:
    """What one L2 image contributes: its arrays and the stars selected on it (0-based pixel positions)."""

    name: str
    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray | None
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))
    background: np.ndarray = field(default_factory=lambda: np.empty(0))
    snr: np.ndarray = field(default_factory=lambda: np.empty(0))
    sky_err: float = 1.0  # median err of the image's sky pixels: the stars' (uniform) fit weights are 1 / sky_err
    rejected: dict[str, int] = field(default_factory=dict)


def select_stars(name: str, data: np.ndarray, err: np.ndarray, dq: np.ndarray | None, config: EpsfConfig,
                 extended_xy: tuple[np.ndarray, np.ndarray] | None = None) -> StarField:
    """Select the ePSF stars of one image (see the module docstring); ``rejected`` counts each reason."""
    from astropy.stats import sigma_clipped_stats
    from photutils.aperture import CircularAperture, aperture_photometry
    from photutils.detection import find_peaks

    data = np.asarray(data, float)
    err = np.asarray(err, float)
    good = np.isfinite(data) & np.isfinite(err) & (err > 0)
    if dq is not None:
        good &= (np.asarray(dq) & DQ_DO_NOT_USE) == 0
    _, sky, _ = sigma_clipped_stats(data[good], sigma=3.0)
    sub = np.where(good, data - sky, 0.0)
    peaks = find_peaks(sub, config.detect_sigma * np.where(good, err, np.inf), box_size=5, mask=~good)
    out = StarField(name, data, err, dq, sky_err=float(np.median(err[good])))
    if peaks is None or len(peaks) == 0:
        return out
    px = np.asarray(peaks["x_peak"], float)
    py = np.asarray(peaks["y_peak"], float)
    ny, nx = data.shape
    half = config.stamp // 2 + 1
    reasons = {"edge": 0, "faint": 0, "saturated": 0, "crowded": 0, "extended": 0, "bright_star": 0}
    near_bright = _near_saturated(dq, px, py, config) if dq is not None else np.zeros(len(px), bool)

    ap = CircularAperture(np.column_stack([px, py]), 3.0)
    phot = aperture_photometry(sub, ap, error=np.where(good, err, 0.0))
    snr = np.asarray(phot["aperture_sum"], float) / np.maximum(np.asarray(phot["aperture_sum_err"], float), 1e-30)
    crowded = np.zeros(len(px), bool)
    if len(px) > 1:  # a k-d tree: a full detector has tens of thousands of peaks
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(np.column_stack([px, py])).query(np.column_stack([px, py]), k=2)
        crowded = dist[:, 1] < config.isolation
    bad = (np.asarray(dq) & (DQ_SATURATED | DQ_DO_NOT_USE)) != 0 if dq is not None else ~good
    keep = []
    for k in range(len(px)):
        ix, iy = int(px[k]), int(py[k])
        if ix < half or iy < half or ix >= nx - half or iy >= ny - half:
            reasons["edge"] += 1
        elif snr[k] < config.min_snr:
            reasons["faint"] += 1
        elif bad[max(iy - 4, 0):iy + 5, max(ix - 4, 0):ix + 5].any():
            reasons["saturated"] += 1
        elif near_bright[k]:
            reasons["bright_star"] += 1
        elif crowded[k]:
            reasons["crowded"] += 1
        elif extended_xy is not None and len(extended_xy[0]) and \
                np.min(np.hypot(extended_xy[0] - px[k], extended_xy[1] - py[k])) < 1.5:
            reasons["extended"] += 1
        else:
            keep.append(k)
    idx = np.asarray(keep, np.intp)
    out.x, out.y, out.snr = px[idx], py[idx], snr[idx]
    out.background = np.array([_annulus_background(data, good, px[k], py[k]) for k in idx])
    out.rejected = reasons
    return out


def _near_saturated(dq: np.ndarray, x: np.ndarray, y: np.ndarray, config: EpsfConfig) -> np.ndarray:
    """Which positions lie in the zone of a saturated star (a cluster of >= 6 SATURATED pixels)."""
    from scipy import ndimage

    lab, n = ndimage.label((np.asarray(dq) & DQ_SATURATED) != 0)
    out = np.zeros(len(x), bool)
    if n == 0:
        return out
    area = np.bincount(lab.ravel(), minlength=n + 1)
    big = [k for k in range(1, n + 1) if area[k] >= 6]
    if not big:
        return out
    for (cy, cx), k in zip(ndimage.center_of_mass(lab > 0, lab, big), big, strict=True):
        radius = config.bright_factor * np.sqrt(area[k] / np.pi) + config.bright_margin
        out |= np.hypot(x - cx, y - cy) < radius
    return out


def _annulus_background(data: np.ndarray, good: np.ndarray, x: float, y: float, r_in: float = 15.0,
                        r_out: float = 22.0) -> float:
    """Sigma-clipped median of the annulus r_in..r_out pixels around (x, y)."""
    from astropy.stats import sigma_clipped_stats

    ny, nx = data.shape
    x0, x1 = max(int(x - r_out), 0), min(int(x + r_out) + 1, nx)
    y0, y1 = max(int(y - r_out), 0), min(int(y + r_out) + 1, ny)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    r = np.hypot(xx - x, yy - y)
    ring = (r >= r_in) & (r <= r_out) & good[y0:y1, x0:x1]
    return float(sigma_clipped_stats(data[y0:y1, x0:x1][ring], sigma=3.0)[1])
