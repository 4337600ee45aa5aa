"""Stable object identifiers that encode the HEALPix cell, as Gaia's ``source_id`` does.

Layout (63 bits, always positive)::

    source_id = hpx27 * 32 + k          hpx27 = nested HEALPix index at order 27 (~1.6 mas cells)
                                         k     = 0..31, a counter for objects sharing an order-27 cell

so ``source_id >> 35`` is the nested order-12 index (27 - 12 = 15 levels = 30 bits, plus 5 counter bits = 35), and
ids sort by position along the HEALPix curve. Stability when a skycell is re-processed:

1. a new detection within ``match_radius`` of a live row of the same skycell keeps that row's id (when the id's
   order-12 cell still holds the new position), so small centroid changes do not renumber objects;
2. any other detection gets the smallest counter ``k`` of its order-27 cell not taken by an id kept in step 1 or
   by a live row of another skycell (overlapping skycells see the same object).

Deterministic inputs therefore give identical ids, and the counter keeps ids unique even for coincident positions.
"""

from __future__ import annotations

import numpy as np

COUNTER_BITS = 5
ORDER = 27
SHIFT_TO_ORDER12 = 35
_PER_CELL = 1 << COUNTER_BITS


def hpx_order27(hpx29: np.ndarray) -> np.ndarray:
    """Order-27 nested index of order-29 indices."""
    return np.asarray(hpx29, dtype=np.int64) >> 4


def assign_source_ids(hpx29: np.ndarray, ra: np.ndarray, dec: np.ndarray, previous_ids: np.ndarray,
                      previous_ra: np.ndarray, previous_dec: np.ndarray, taken_elsewhere: set[int],
                      match_radius_arcsec: float = 0.1) -> np.ndarray:
    """Ids for new detections (see the module docstring).

    Parameters
    ----------
    hpx29, ra, dec
        The new detections' order-29 indices and positions (degrees).
    previous_ids, previous_ra, previous_dec
        Live rows of the same skycell from the last run.
    taken_elsewhere
        Ids that other skycells' live rows hold in the same order-27 cells.
    match_radius_arcsec
        How far an object may move between runs and keep its id.
    """
    n = len(hpx29)
    ids = np.full(n, -1, dtype=np.int64)
    used = set(taken_elsewhere)
    cell12 = np.asarray(hpx29, dtype=np.int64) >> 34
    if len(previous_ids) and n:
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        new = SkyCoord(ra * u.deg, dec * u.deg)
        old = SkyCoord(np.asarray(previous_ra) * u.deg, np.asarray(previous_dec) * u.deg)
        inew, iold, sep, _ = old.search_around_sky(new, match_radius_arcsec * u.arcsec)
        prev = np.asarray(previous_ids, dtype=np.int64)
        for k in np.argsort(sep.arcsec, kind="stable"):  # closest pairs first; one old id per new object
            i, cand = int(inew[k]), int(prev[iold[k]])
            if ids[i] < 0 and cand not in used and cand >> SHIFT_TO_ORDER12 == cell12[i]:
                ids[i] = cand
                used.add(cand)
    todo = np.flatnonzero(ids < 0)
    if len(todo):
        ids[todo] = _first_free(np.asarray(hpx29, dtype=np.int64)[todo], used, ra[todo], dec[todo])
    return ids


def _first_free(hpx29: np.ndarray, used: set[int], ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Smallest free counter per order-27 cell, in HEALPix order: vectorised, with a loop only where ``used`` ids
    sit in the same cells."""
    order = np.argsort(hpx29, kind="stable")
    cells = hpx_order27(hpx29[order])
    start = np.r_[0, np.flatnonzero(np.diff(cells)) + 1]
    rank = np.arange(len(cells)) - np.repeat(start, np.diff(np.r_[start, len(cells)]))
    if len(rank) and rank.max() >= _PER_CELL:
        i = int(order[int(np.argmax(rank))])
        raise ValueError(f"more than {_PER_CELL} objects in one order-27 HEALPix cell at ra={ra[i]}, dec={dec[i]}")
    out = np.empty(len(cells), dtype=np.int64)
    out[order] = (cells << COUNTER_BITS) + rank
    used_cells = {u >> COUNTER_BITS for u in used}
    clash = np.flatnonzero(np.isin(out >> COUNTER_BITS, list(used_cells))) if used_cells else np.empty(0, int)
    taken = set(used)
    taken.update(int(v) for v in np.delete(out, clash))
    for i in clash[np.argsort(hpx29[clash], kind="stable")]:
        base = (int(hpx29[i]) >> 4) << COUNTER_BITS
        out[i] = next((base + k for k in range(_PER_CELL) if base + k not in taken), -1)
        taken.add(int(out[i]))
    if (out < 0).any():
        i = int(np.flatnonzero(out < 0)[0])
        raise ValueError(f"more than {_PER_CELL} objects in one order-27 HEALPix cell at ra={ra[i]}, dec={dec[i]}")
    return out
