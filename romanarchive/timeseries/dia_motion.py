"""Moving objects in DIA: each detection's motion within its epoch, and tracks across epochs.

**Within an epoch** (:func:`epoch_rates`): a survey epoch's exposures span minutes, long enough for a solar-system
object to move a measurable fraction of a pixel (1"/h is 0.1" over six minutes). Forced photometry of the detection
on each science exposure (:mod:`romanarchive.timeseries.dia_exposures`) gives its centroid offset on each; a
weighted straight line through the offsets against time gives the rate (arcsec/h) and the chi-square drop over a
fixed position. A drop above ``moving_dchi2`` (2 degrees of freedom, 25 is ~5 sigma) flags the detection as moving.
The centroid errors of forced photometry are statistical; the offsets of one source between exposures also carry
systematics (the linearised centroid of an undersampled PSF depends on the pixel phase, which changes with the
dither; the L2s' registration), so a per-exposure floor is measured from the detections themselves
(:func:`offset_floor`: most DIA detections do not move, and the floor is the one that gives their rate fits the
median chi-square drop of 2 degrees of freedom, 1.39) and added in quadrature.
Two exposures are enough (the drop is then the squared significance of their offset difference); fadings are not
fitted (the moving object's residual is in the template, a stack of several epochs).

**Across epochs** (:func:`link_tracks`): moving brightenings are linked greedily in time order; a detection joins
the track whose last detection, carried forward at the track's mean rate, predicts its position within
``3 sigma`` (the rate errors times the interval) plus ``rate_tolerance`` of the predicted motion plus
``min_tolerance_arcsec``, and whose rate agrees with its own within the same allowance. Linear motion over a few
days is what a survey cadence of days allows to be tested; orbit fitting is for the Minor Planet Center's tools.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOURS_PER_DAY = 24.0


@dataclass
class Rates:
    """Per detection: rate in RA (times cos dec) and Dec, arcsec/h, its 1-sigma error and the chi-square drop."""

    ra: np.ndarray
    dec: np.ndarray
    err: np.ndarray
    dchi2: np.ndarray


#: Median of a chi-square with 2 degrees of freedom.
MEDIAN_DCHI2 = 2.0 * np.log(2.0)


def offset_floor(t_days: np.ndarray, dra_mas: np.ndarray, ddec_mas: np.ndarray, err_mas: np.ndarray,
                 min_detections: int = 5) -> float:
    """The per-exposure centroid floor (mas) that gives the detections' rate fits the median chi-square drop of
    2 degrees of freedom; 0 when they already scatter less, or when fewer than ``min_detections`` are measured."""
    fits = epoch_rates(t_days, dra_mas, ddec_mas, err_mas)
    ok = np.isfinite(fits.dchi2)
    if ok.sum() < min_detections or np.median(fits.dchi2[ok]) <= MEDIAN_DCHI2:
        return 0.0
    lo, hi = 0.0, 1000.0
    for _ in range(40):  # bisection: the median drop falls as the floor grows
        mid = 0.5 * (lo + hi)
        d = epoch_rates(t_days, dra_mas, ddec_mas, np.hypot(err_mas, mid)).dchi2
        lo, hi = (mid, hi) if np.median(d[np.isfinite(d)]) > MEDIAN_DCHI2 else (lo, mid)
    return hi


def epoch_rates(t_days: np.ndarray, dra_mas: np.ndarray, ddec_mas: np.ndarray, err_mas: np.ndarray) -> Rates:
    """Weighted straight-line fits of centroid offsets (detections x exposures) against exposure time (MJD)."""
    n = dra_mas.shape[0]
    out = Rates(*(np.full(n, np.nan) for _ in range(4)))
    t = np.broadcast_to(np.asarray(t_days, float), dra_mas.shape)
    for k in range(n):
        ok = np.isfinite(dra_mas[k]) & np.isfinite(ddec_mas[k]) & np.isfinite(err_mas[k]) & (err_mas[k] > 0)
        if ok.sum() < 2 or np.ptp(t[k, ok]) <= 0:
            continue
        tk, w = t[k, ok] * HOURS_PER_DAY, 1.0 / err_mas[k, ok] ** 2
        tc = tk - np.sum(w * tk) / np.sum(w)
        stt = float(np.sum(w * tc**2))
        slopes = [float(np.sum(w * tc * v[k, ok]) / stt) for v in (dra_mas, ddec_mas)]
        out.ra[k], out.dec[k] = slopes[0] / 1e3, slopes[1] / 1e3
        out.err[k] = float(np.sqrt(1.0 / stt)) / 1e3
        out.dchi2[k] = float(sum(s * s * stt for s in slopes))
    return out


@dataclass(frozen=True)
class Detection:
    """A moving detection to link: position (deg), time (MJD) and rate (arcsec/h)."""

    ra: float
    dec: float
    mjd: float
    rate_ra: float
    rate_dec: float
    rate_err: float


def mean_rate(dets: list[Detection], members: list[int]) -> tuple[float, float, float]:
    """Inverse-variance weighted mean rate (RA, Dec) of detections ``members`` and its 1-sigma error, arcsec/h."""
    w = np.array([1.0 / dets[i].rate_err ** 2 for i in members])
    rra = float(np.sum(w * [dets[i].rate_ra for i in members]) / w.sum())
    rde = float(np.sum(w * [dets[i].rate_dec for i in members]) / w.sum())
    return rra, rde, float(np.sqrt(1.0 / w.sum()))


def link_tracks(dets: list[Detection], rate_tolerance: float = 0.2, min_tolerance_arcsec: float = 1.0,
                nsigma: float = 3.0) -> np.ndarray:
    """Track index of each detection (see the module); detections are given in any order."""
    track = np.full(len(dets), -1, np.int64)
    tracks: list[list[int]] = []
    for k in sorted(range(len(dets)), key=lambda i: dets[i].mjd):
        d = dets[k]
        best, best_miss = -1, np.inf
        for j, members in enumerate(tracks):
            last = dets[members[-1]]
            dt_h = (d.mjd - last.mjd) * HOURS_PER_DAY
            rra, rde, rerr = mean_rate(dets, members)
            cosd = np.cos(np.radians(last.dec))
            pra = last.ra + rra * dt_h / 3600.0 / cosd
            pde = last.dec + rde * dt_h / 3600.0
            miss = float(np.hypot(((d.ra - pra + 180.0) % 360.0 - 180.0) * cosd, d.dec - pde) * 3600.0)
            motion = float(np.hypot(rra, rde) * abs(dt_h))
            tol = nsigma * rerr * abs(dt_h) + rate_tolerance * motion + min_tolerance_arcsec
            rate_diff = float(np.hypot(d.rate_ra - rra, d.rate_dec - rde))
            rate_tol = nsigma * float(np.hypot(d.rate_err, rerr)) + rate_tolerance * float(np.hypot(rra, rde))
            if miss <= tol and rate_diff <= rate_tol and miss < best_miss:
                best, best_miss = j, miss
        if best < 0:
            tracks.append([k])
            track[k] = len(tracks) - 1
        else:
            tracks[best].append(k)
            track[k] = best
    return track
