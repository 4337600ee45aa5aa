"""Variability indices of light curves: pure functions of (source, time, flux, error) arrays.

Definitions (per source and filter, measurements sorted by time, n >= 2):

* reduced chi-square about the inverse-variance weighted mean, ``sum(((f - fbar) / s)**2) / (n - 1)``;
* Stetson (1996) J on consecutive pairs: with ``d_i = sqrt(n / (n - 1)) (f_i - fbar) / s_i`` and ``P_k =
  d_i d_{i+1}``, ``J = sum(sign(P_k) sqrt|P_k|) / (n - 1)``; near-simultaneous dithers form the pairs, so
  correlated (real) changes give J > 0 and noise gives J ~ 0;
* Stetson K: ``mean|d| / sqrt(mean d**2)`` (~0.80 for Gaussian noise);
* von Neumann eta: mean squared successive difference over the sample variance (~2 for noise, small for smooth
  variability);
* amplitude ``(max - min) / 2``; MAD about the median.

Also a proper-motion test for moving sources: a weighted straight-line fit of the centroid offsets with time; the
drop in chi-square from the constant-offset model (2 dof) flags sources whose position drifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from romanarchive.db.tables_timeseries import VFLAG_FEW_EPOCHS, VFLAG_FLAGGED_POINTS, VFLAG_MOVING, VFLAG_OUTLIER


@dataclass(frozen=True)
class IndexParams:
    """Parameters of :func:`variability_indices`."""

    moving_dchi2: float = 25.0  # chi-square drop (2 dof) of the drift fit that flags a moving source
    moving_min_points: int = 3  # measurable centroids needed for the drift test
    bad_flags: int = 1 | 2 | 16  # measurement flags that exclude a point (edge, bad pixels, saturated)


def light_curve_indices(t: np.ndarray, f: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """Indices of one light curve (unflagged points).

    Returns
    -------
    dict
        n_epochs, mean_flux, chi2_red, stetson_j, stetson_k, eta, amplitude, mad, max_chi2_frac (NaN when n < 2).
    """
    order = np.argsort(t, kind="stable")
    f, s = np.asarray(f, float)[order], np.asarray(s, float)[order]
    n = len(f)
    out = dict(n_epochs=float(n), mean_flux=np.nan, chi2_red=np.nan, stetson_j=np.nan, stetson_k=np.nan,
               eta=np.nan, amplitude=np.nan, mad=np.nan, max_chi2_frac=np.nan)
    if n == 0:
        return out
    w = 1.0 / s**2
    mean = float(np.sum(w * f) / np.sum(w))
    med = float(np.median(f))
    out.update(mean_flux=mean, amplitude=float((f.max() - f.min()) / 2), mad=float(np.median(np.abs(f - med))))
    if n < 2:
        return out
    z2 = ((f - mean) / s) ** 2
    d = np.sqrt(n / (n - 1)) * (f - mean) / s
    pk = d[:-1] * d[1:]
    var = float(np.var(f, ddof=1))
    out.update(
        chi2_red=float(z2.sum() / (n - 1)),
        stetson_j=float(np.sum(np.sign(pk) * np.sqrt(np.abs(pk))) / (n - 1)),
        stetson_k=float(np.mean(np.abs(d)) / np.sqrt(np.mean(d**2))) if np.any(d) else np.nan,
        eta=float(np.sum(np.diff(f) ** 2) / (n - 1) / var) if var > 0 else np.nan,
        max_chi2_frac=float(z2.max() / z2.sum()) if z2.sum() > 0 else np.nan,
    )
    return out


def drift_dchi2(t: np.ndarray, dra: np.ndarray, ddec: np.ndarray, err: np.ndarray) -> float:
    """Chi-square drop of a straight-line fit of the centroid offsets over the constant-offset model (2 dof)."""
    ok = np.isfinite(dra) & np.isfinite(ddec) & np.isfinite(err) & (err > 0)
    t, dra, ddec, err = t[ok], dra[ok], ddec[ok], err[ok]
    if len(t) < 3 or np.ptp(t) <= 0:
        return 0.0
    w = 1.0 / err**2
    tc = t - np.sum(w * t) / np.sum(w)
    stt = np.sum(w * tc**2)
    # For a weighted line, the chi-square drop is (sum w tc v)^2 / sum w tc^2 per axis.
    return float(sum(np.sum(w * tc * v) ** 2 / stt for v in (dra, ddec)))


def variability_indices(source_id: np.ndarray, filt: np.ndarray, t: np.ndarray, flux: np.ndarray,
                        flux_err: np.ndarray, flags: np.ndarray, dra: np.ndarray, ddec: np.ndarray,
                        shift_err: np.ndarray, params: IndexParams | None = None) -> dict[str, np.ndarray]:
    """Indices of every (source, filter) light curve in the arrays.

    Measurements with ``params.bad_flags`` or non-finite flux/error are counted as flagged and left out. The moving
    flag is decided per source over all its filters.

    Returns
    -------
    dict
        Columns of the ``variability`` table (without updated_at), one entry per (source, filter).
    """
    p = params or IndexParams()
    source_id = np.asarray(source_id, np.int64)
    filt = np.asarray(filt).astype(str)
    keys = np.char.add(source_id.astype(str), np.char.add(":", filt))
    rows: dict[str, list[float]] = {k: [] for k in ("source_id", "n_epochs", "n_flagged", "mjd_min", "mjd_max",
                                                     "mean_flux", "chi2_red", "stetson_j", "stetson_k", "eta",
                                                     "amplitude", "mad", "flags")}
    filters: list[str] = []
    moving: dict[int, bool] = {}
    for sid in np.unique(source_id):
        sel = source_id == sid
        moving[int(sid)] = bool(np.count_nonzero(np.isfinite(dra[sel])) >= p.moving_min_points
                                and drift_dchi2(t[sel], dra[sel], ddec[sel], shift_err[sel]) > p.moving_dchi2)
    for key in np.unique(keys):
        sel = np.flatnonzero(keys == key)
        good = ((flags[sel] & p.bad_flags) == 0) & np.isfinite(flux[sel]) & np.isfinite(flux_err[sel]) \
            & (flux_err[sel] > 0)
        g = sel[good]
        ind = light_curve_indices(t[g], flux[g], flux_err[g])
        sid = int(source_id[sel[0]])
        fl = (VFLAG_MOVING if moving[sid] else 0) | (VFLAG_FLAGGED_POINTS if (~good).any() else 0)
        fl |= VFLAG_FEW_EPOCHS if len(g) < 3 else 0
        fl |= VFLAG_OUTLIER if len(g) >= 3 and ind["max_chi2_frac"] > 0.5 and ind["chi2_red"] > 3 else 0
        rows["source_id"].append(sid)
        filters.append(str(filt[sel[0]]))
        rows["n_epochs"].append(len(g))
        rows["n_flagged"].append(int((~good).sum()))
        rows["mjd_min"].append(float(t[sel].min()))
        rows["mjd_max"].append(float(t[sel].max()))
        for k in ("mean_flux", "chi2_red", "stetson_j", "stetson_k", "eta", "amplitude", "mad"):
            rows[k].append(ind[k])
        rows["flags"].append(fl)
    out = {k: np.asarray(v, dtype=np.int64 if k == "source_id" else float) for k, v in rows.items()}
    for k in ("n_epochs", "n_flagged", "flags"):
        out[k] = out[k].astype(np.int32)
    out["filter"] = np.asarray(filters, dtype=object)
    return out
