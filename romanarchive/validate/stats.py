"""Reported figures and the pure statistics behind them.

A :class:`Figure` is one number of the report next to its acceptance :class:`Goal` and whether it passes.
A figure that cannot be computed (no data, a missing column) carries ``value=None`` and a ``note`` saying why; it
fails when it has a goal, since the acceptance asks for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from romanarchive.validate.matching import nearest, pairs_within


@dataclass(frozen=True)
class Goal:
    """An acceptance goal: its text and the test a value must pass (``None``: informational, no goal)."""

    text: str
    test: Callable[[float], bool] | None = None

    def check(self, value: Any) -> bool | None:
        if self.test is None:
            return None
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return False
        return bool(self.test(value))


def at_most(limit: float, unit: str = "") -> Goal:
    return Goal(f"<= {limit:g}{unit}", lambda v: v <= limit)


def at_least(limit: float, unit: str = "") -> Goal:
    return Goal(f">= {limit:g}{unit}", lambda v: v >= limit)


def abs_at_most(limit: float, unit: str = "") -> Goal:
    return Goal(f"|x| <= {limit:g}{unit}", lambda v: abs(v) <= limit)


def between(lo: float, hi: float) -> Goal:
    return Goal(f"{lo:g} - {hi:g}", lambda v: lo <= v <= hi)


def equals(target: Any) -> Goal:
    return Goal(f"= {target}", lambda v: v == target)


INFO = Goal("(info)")


@dataclass
class Figure:
    """One reported number."""

    section: str
    name: str
    value: Any
    goal: Goal = INFO
    unit: str = ""
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        return self.goal.check(self.value)

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: ""}[self.passed]

    def formatted(self) -> str:
        v = self.value
        if v is None:
            return "n/a"
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, float):
            return "nan" if not math.isfinite(v) else f"{v:.4g}"
        return str(v)

    def as_dict(self) -> dict[str, Any]:
        return {"section": self.section, "name": self.name, "value": _jsonable(self.value), "unit": self.unit,
                "goal": self.goal.text, "passed": self.passed, "note": self.note,
                "detail": _jsonable(self.detail)}


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.bool_):
        return bool(x)
    return x


# --------------------------------------------------------------------------- catalog statistics


def unmatched_fraction(ra: np.ndarray, dec: np.ndarray, truth_ra: np.ndarray, truth_dec: np.ndarray,
                       radius_arcsec: float) -> tuple[float, np.ndarray]:
    """Fraction of catalog rows with no truth position within ``radius_arcsec``, and the per-row matched mask.

    The fraction is NaN for an empty catalog.
    """
    _, sep = nearest(ra, dec, truth_ra, truth_dec)
    matched = sep <= radius_arcsec
    return (float(1.0 - matched.mean()) if len(matched) else math.nan), matched


def duplicate_pairs(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float) -> np.ndarray:
    """Pairs of distinct rows closer than ``radius_arcsec`` (:func:`~romanarchive.validate.matching.pairs_within`)."""
    return pairs_within(ra, dec, radius_arcsec)


def multiplicity_histogram(counts: np.ndarray) -> dict[int, int]:
    """How many truth sources are matched by 0, 1, 2, ... rows."""
    values, n = np.unique(np.asarray(counts, dtype=int), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, n, strict=True)}


@dataclass
class Completeness:
    """Detected fraction per magnitude bin."""

    edges: np.ndarray
    n: np.ndarray
    n_detected: np.ndarray

    @property
    def fraction(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.n_detected / np.maximum(self.n, 1), np.nan)

    def as_dict(self) -> dict[str, Any]:
        return {"edges": self.edges, "n": self.n, "n_detected": self.n_detected, "fraction": self.fraction}


def completeness(mag: np.ndarray, detected: np.ndarray, edges: Sequence[float]) -> Completeness:
    """Fraction of sources detected per magnitude bin ``[edges[i], edges[i+1])``; non-finite magnitudes skipped."""
    mag = np.asarray(mag, dtype=float)
    det = np.asarray(detected, dtype=bool)
    e = np.asarray(edges, dtype=float)
    ok = np.isfinite(mag)
    n, _ = np.histogram(mag[ok], e)
    nd, _ = np.histogram(mag[ok & det], e)
    return Completeness(e, n, nd)


def completeness_shortfall(ours: Completeness, peer: Completeness, min_sources: int = 3) -> float:
    """Largest amount by which ``peer`` beats ``ours`` in a bin with ≥ ``min_sources`` sources (≤ 0: never worse).

    NaN when no bin has enough sources.
    """
    ok = (ours.n >= min_sources) & (peer.n >= min_sources)
    if not ok.any():
        return math.nan
    return float(np.max(peer.fraction[ok] - ours.fraction[ok]))


# --------------------------------------------------------------------------- photometry and astrometry


def _finite(*arrays: np.ndarray) -> np.ndarray:
    ok = np.ones(len(np.atleast_1d(arrays[0])), dtype=bool)
    for a in arrays:
        ok &= np.isfinite(np.asarray(a, dtype=float))
    return ok


def flux_bias(measured: np.ndarray, truth: np.ndarray) -> float:
    """Median of measured / truth − 1 over finite pairs with positive truth (NaN when none)."""
    m, t = np.asarray(measured, float), np.asarray(truth, float)
    ok = _finite(m, t) & (t > 0)
    return float(np.median(m[ok] / t[ok]) - 1.0) if ok.any() else math.nan


def pull_scatter(measured: np.ndarray, truth: np.ndarray, error: np.ndarray) -> float:
    """Standard deviation of (measured − truth) / quoted error (NaN with fewer than 2 usable values)."""
    m, t, e = (np.asarray(a, float) for a in (measured, truth, error))
    ok = _finite(m, t, e) & (e > 0)
    return float(np.std((m[ok] - t[ok]) / e[ok], ddof=1)) if ok.sum() >= 2 else math.nan


def robust_sigma(x: np.ndarray) -> float:
    """1.4826 × the median absolute deviation from the median (NaN when empty)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else math.nan


@dataclass
class Astrometry:
    """Offsets of measured positions from the truth (mas) and their pulls."""

    n: int
    mean_dra: float
    mean_ddec: float
    rms_dra: float
    rms_ddec: float
    pull_ra: float
    pull_dec: float

    @property
    def rms(self) -> float:
        """Per-axis RMS of the offsets about zero (the larger axis)."""
        return max(self.rms_dra, self.rms_ddec)


def astrometry(dra_mas: np.ndarray, ddec_mas: np.ndarray, ra_err_arcsec: np.ndarray | None = None,
               dec_err_arcsec: np.ndarray | None = None) -> Astrometry:
    """Mean and RMS (about zero) of (ΔRA·cos Dec, ΔDec) in mas, and the std of offset / quoted error per axis.

    Errors are in arcsec (rad's ``*_err`` columns); pulls are NaN without them.
    """
    dra, ddec = np.asarray(dra_mas, float), np.asarray(ddec_mas, float)
    ok = _finite(dra, ddec)
    dra, ddec = dra[ok], ddec[ok]
    n = int(ok.sum())

    def pull(d: np.ndarray, err: np.ndarray | None) -> float:
        if err is None:
            return math.nan
        e = np.asarray(err, float)[ok] * 1000.0
        good = np.isfinite(e) & (e > 0)
        return float(np.std(d[good] / e[good], ddof=1)) if good.sum() >= 2 else math.nan

    if n == 0:
        return Astrometry(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    return Astrometry(n, float(dra.mean()), float(ddec.mean()), float(np.sqrt(np.mean(dra ** 2))),
                      float(np.sqrt(np.mean(ddec ** 2))), pull(dra, ra_err_arcsec), pull(ddec, dec_err_arcsec))
