"""Positional cross-match of two position lists by a HEALPix sort-merge, in vectorised numpy.

Both sides are bucketed by their nested HEALPix cell at an order whose cells are several times wider than the
radius, so every partner of a left position lies in its own cell or one of the 8 neighbours. The right side is sorted
by cell (a shift of its order-29 index when it is already stored in HEALPix order); each left position looks up the
9 cell ranges with ``searchsorted`` and the candidate pairs are tested with q3c's own distance formula
(``q3c_sindist(...) < sin^2(r/2)``), so the pairs are the ones ``q3c_join`` returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cdshealpix
import numpy as np

from romanarchive.xmatch.healpix import ORDER, healpix_nested

#: Largest radius accepted (degrees): beyond it a "cross-match" is a region query.
MAX_RADIUS_DEG = 1.0
# Cells at least this many radii wide keep every partner within the 3x3 neighbourhood, even where cells are thin.
_CELL_OVER_RADIUS = 4.0


@dataclass
class Pairs:
    """Matched pairs: indexes into the left and right inputs and the separation."""

    left: np.ndarray
    right: np.ndarray
    sep_arcsec: np.ndarray

    def __len__(self) -> int:
        return len(self.left)


def bucket_order(radius_deg: float) -> int:
    """The HEALPix order whose cells are at least `_CELL_OVER_RADIUS` radii wide (at most 29)."""
    # Mean cell width at order k: sqrt(4 pi / (12 * 4**k)) radians.
    width0 = math.degrees(math.sqrt(4 * math.pi / 12))
    k = int(math.floor(math.log2(width0 / (_CELL_OVER_RADIUS * radius_deg))))
    return max(0, min(ORDER, k))


def check_radius(radius_deg: float) -> None:
    """Raise `ValueError` for a radius that is not a positive angle up to `MAX_RADIUS_DEG`."""
    if not math.isfinite(radius_deg) or radius_deg <= 0:
        raise ValueError(f"the radius must be positive, not {radius_deg * 3600:g} arcsec")
    if radius_deg > MAX_RADIUS_DEG:
        raise ValueError(f"a radius of {radius_deg:g} deg is too large for a cross-match (at most "
                         f"{MAX_RADIUS_DEG:g} deg); use a region query instead")


def sindist(ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray) -> np.ndarray:
    """``sin^2(d/2)`` of the angular distance d, computed as q3c's ``q3c_sindist`` (degrees in)."""
    d2r = math.pi / 180.0
    x = np.sin((ra1 - ra2) / 2 * d2r)
    x *= x
    y = np.sin((dec1 - dec2) / 2 * d2r)
    y *= y
    z = np.cos((dec1 + dec2) / 2 * d2r)
    z *= z
    return x * (z - y) + y


def _cell_ranges(cells_sorted: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.searchsorted(cells_sorted, wanted, "left"), np.searchsorted(cells_sorted, wanted, "right")


def _chunk_pairs(ra1: np.ndarray, dec1: np.ndarray, cells1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray,
                 cells2: np.ndarray, order: int, limit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nb = np.sort(np.asarray(cdshealpix.nested.neighbours(cells1.astype(np.uint64), order), np.int64), axis=1)
    # -1 marks a missing neighbour; near base-cell corners the same neighbour can appear twice: count it once.
    keep = nb >= 0
    keep[:, 1:] &= nb[:, 1:] != nb[:, :-1]
    n = len(cells1)
    left = np.repeat(np.arange(n), nb.shape[1])[keep.ravel()]
    cells = nb.ravel()[keep.ravel()]
    lo, hi = _cell_ranges(cells2, cells)
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0)
    li = np.repeat(left, counts)
    # Right index of each candidate: the start of its range plus its rank within the range.
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    ri = starts + np.arange(total)
    s = sindist(ra1[li], dec1[li], ra2[ri], dec2[ri])
    ok = s < limit
    li, ri, s = li[ok], ri[ok], s[ok]
    sep = np.degrees(2 * np.arcsin(np.sqrt(s))) * 3600.0
    return li, ri, sep


def crossmatch(ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray, radius_deg: float, *,
               nearest: bool = False, hpx2: np.ndarray | None = None, chunk: int = 250_000,
               progress: Iterable[int] | None = None) -> Pairs:
    """Every (left, right) pair closer than ``radius_deg``, or the nearest right per left.

    Parameters
    ----------
    ra1, dec1, ra2, dec2
        Positions in degrees (finite, dec within [-90, 90]).
    radius_deg
        Match radius in degrees (strictly closer pairs match, as in ``q3c_join``).
    nearest
        Keep only the closest right position of each left one (ties: the lower right index).
    hpx2
        Order-29 nested HEALPix indexes of the right positions when the caller has them.
    chunk
        Left rows per step (bounds memory).
    progress
        Called as ``progress(n)`` after each ``n`` left rows (e.g. a tqdm ``update``).

    Returns
    -------
    Pairs
        Sorted by left index, then right index.
    """
    check_radius(radius_deg)
    order = bucket_order(radius_deg)
    if hpx2 is None:
        hpx2 = healpix_nested(ra2, dec2)
    cells2 = np.asarray(hpx2, np.int64) >> np.int64(2 * (ORDER - order))
    perm = None
    if len(cells2) > 1 and not bool(np.all(cells2[1:] >= cells2[:-1])):
        perm = np.argsort(cells2, kind="stable")
        cells2, ra2, dec2 = cells2[perm], ra2[perm], dec2[perm]
    limit = math.sin(math.radians(radius_deg) / 2) ** 2
    cells1 = healpix_nested(ra1, dec1, order)
    out_l, out_r, out_s = [], [], []
    for start in range(0, len(ra1), chunk):
        stop = min(start + chunk, len(ra1))
        li, ri, sep = _chunk_pairs(ra1[start:stop], dec1[start:stop], cells1[start:stop], ra2, dec2, cells2, order,
                                   limit)
        out_l.append(li + start)
        out_r.append(ri)
        out_s.append(sep)
        if progress is not None:
            progress(stop - start)  # type: ignore[operator]
    left = np.concatenate(out_l) if out_l else np.empty(0, np.int64)
    right = np.concatenate(out_r) if out_r else np.empty(0, np.int64)
    sep = np.concatenate(out_s) if out_s else np.empty(0)
    if perm is not None:
        right = perm[right]
    if nearest and len(left):
        o = np.lexsort((right, sep, left))
        left, right, sep = left[o], right[o], sep[o]
        first = np.concatenate(([True], left[1:] != left[:-1]))
        left, right, sep = left[first], right[first], sep[first]
    o = np.lexsort((right, left))
    return Pairs(left[o].astype(np.int64), right[o].astype(np.int64), sep[o])
