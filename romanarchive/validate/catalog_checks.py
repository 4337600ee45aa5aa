"""Catalog figures: purity, bright-star debris, duplicates, skycells catalogued, failed jobs, star/galaxy class."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from romanarchive.validate.inputs import Columns, FailedJob
from romanarchive.validate.matching import STARS, Truth, count_within, nearest, neighbours
from romanarchive.validate.stats import (
    Figure,
    at_least,
    at_most,
    duplicate_pairs,
    equals,
    multiplicity_histogram,
)

SECTION = "catalog"
#: Matching radius of a catalog row to a truth source.
MATCH_RADIUS = 0.2
#: Rows closer than this are duplicates.
DUPLICATE_RADIUS = 0.3
#: Debris radius around a saturated star.
BRIGHT_RADIUS = 10.0
#: A row within this of a saturated star is the star itself (its core is masked, so the centroid may be off).
STAR_SELF_RADIUS = 1.0
#: Truth magnitude (brightest band) below which a star saturates the L2 core with the demo's MA tables.
SATURATION_MAG = 17.0
#: Star/galaxy classification is asked of stars brighter than this (reference band).
CLASS_MAG = 23.0


@dataclass
class CatalogMatch:
    """Rows matched to the truth and truth sources matched to rows (within :data:`MATCH_RADIUS`)."""

    #: Per row: a truth position (sources, moving-object tracks) within the radius.
    row_real: np.ndarray
    #: Per row: the truth row of the nearest truth position, -1 when none within the radius.
    row_truth: np.ndarray
    #: Per truth source: the nearest row within the radius (-1 when none) and how many rows lie within it.
    truth_row: np.ndarray
    truth_nrows: np.ndarray


def match_catalog(truth: Truth, ra: np.ndarray, dec: np.ndarray, radius: float = MATCH_RADIUS) -> CatalogMatch:
    """Match catalog positions to the truth both ways."""
    tra, tdec, trow = truth.all_positions()
    idx, sep = nearest(ra, dec, tra, tdec)
    real = sep <= radius
    row_truth = np.where(real, trow[np.clip(idx, 0, None)] if len(trow) else -1, -1)
    t_idx, t_sep = nearest(truth.ra, truth.dec, ra, dec)
    truth_row = np.where(t_sep <= radius, t_idx, -1)
    return CatalogMatch(real, row_truth, truth_row, count_within(truth.ra, truth.dec, ra, dec, radius))


def purity_figures(objects: Columns, match: CatalogMatch) -> list[Figure]:
    """Rows, the fraction without a truth match (overall and per home skycell)."""
    n = len(match.row_real)
    frac = float(1.0 - match.row_real.mean()) if n else math.nan
    figs = [Figure(SECTION, "catalog rows", n),
            Figure(SECTION, f'rows without a truth source within {MATCH_RADIUS}"', frac, at_most(0.10),
                   detail={"n_unmatched": int(n - match.row_real.sum())})]
    cells = objects.get("skycell", np.full(n, ""))
    for cell in sorted(set(cells.tolist())):
        sel = cells == cell
        figs.append(Figure(SECTION, f"  skycell {cell or '?'}: rows without truth match",
                           float(1.0 - match.row_real[sel].mean()),
                           detail={"rows": int(sel.sum()), "unmatched": int((~match.row_real[sel]).sum())}))
    return figs


def saturated_stars(truth: Truth, dq_saturated: np.ndarray | None) -> np.ndarray:
    """Truth rows of saturated stars: flagged SATURATED in an L2's DQ, or brighter than :data:`SATURATION_MAG`."""
    mags = np.column_stack([truth.mag(b) for b in truth.filters])
    bright = np.nanmin(np.where(np.isfinite(mags), mags, np.inf), axis=1) < SATURATION_MAG
    flagged = dq_saturated if dq_saturated is not None else np.zeros(len(truth.table), dtype=bool)
    star = np.isin(truth.kind, ("star", "variable", "gaia"))
    return np.flatnonzero(star & (bright | flagged))


def bright_star_figures(truth: Truth, ra: np.ndarray, dec: np.ndarray, match: CatalogMatch,
                        saturated: np.ndarray, dq_saturated: np.ndarray | None) -> list[Figure]:
    """Per saturated star: catalog rows within :data:`BRIGHT_RADIUS` besides the star itself.

    The value (and its goal, ≤ 1) counts rows with no truth source within the match radius — debris of the star's
    light; real neighbours are counted in the detail.
    """
    figs = []
    around = neighbours(truth.ra[saturated], truth.dec[saturated], ra, dec, BRIGHT_RADIUS)
    for star, rows in zip(saturated, around, strict=True):
        rows_arr = np.asarray(rows, dtype=int)
        sep = np.full(len(rows_arr), np.inf)
        if len(rows_arr):
            _, s = nearest(ra[rows_arr], dec[rows_arr], truth.ra[[star]], truth.dec[[star]])
            sep = s
        self_row = rows_arr[np.argmin(sep)] if len(rows_arr) and sep.min() <= STAR_SELF_RADIUS else -1
        others = rows_arr[rows_arr != self_row]
        spurious = int((~match.row_real[others]).sum()) if len(others) else 0
        mags = {b: round(float(truth.mag(b)[star]), 2) for b in truth.filters}
        why = "L2 DQ SATURATED" if dq_saturated is not None and dq_saturated[star] else f"mag < {SATURATION_MAG:g}"
        figs.append(Figure(
            SECTION, f'saturated star {int(truth.table["id"][star])}: spurious rows within {BRIGHT_RADIUS:g}"',
            spurious, at_most(1),
            note=f"{why}; {len(others)} rows besides the star, star itself {'found' if self_row >= 0 else 'missing'}",
            detail={"truth_id": int(truth.table["id"][star]), "mag": mags, "rows_within": len(others),
                    "spurious_within": spurious, "star_row_found": bool(self_row >= 0)}))
    if not figs:
        figs.append(Figure(SECTION, "saturated stars in the field", 0))
    return figs


def duplicate_figures(ra: np.ndarray, dec: np.ndarray, skycells: np.ndarray | None, match: CatalogMatch,
                      truth: Truth) -> list[Figure]:
    """Pairs of rows within :data:`DUPLICATE_RADIUS`, and how many rows each truth source matches."""
    pairs = duplicate_pairs(ra, dec, DUPLICATE_RADIUS)
    cross = int((skycells[pairs[:, 0]] != skycells[pairs[:, 1]]).sum()) if skycells is not None and len(pairs) \
        else 0
    matched_truth = match.truth_nrows[match.truth_nrows > 0]
    hist = multiplicity_histogram(matched_truth) if len(matched_truth) else {}
    return [
        Figure(SECTION, f'duplicate pairs (distinct rows within {DUPLICATE_RADIUS}")', len(pairs), equals(0),
               detail={"cross_skycell_pairs": cross}),
        Figure(SECTION, f'truth sources matched by more than one row (within {MATCH_RADIUS}")',
               int((matched_truth > 1).sum()), equals(0),
               note="rows per matched truth source: " + ", ".join(f"{k}: {v}" for k, v in hist.items()),
               detail={"histogram": hist, "kinds_with_multiple": sorted(set(truth.kind[match.truth_nrows > 1]))}),
    ]


def skycell_figures(l3_skycells: set[str], catalogued: set[str], failed: list[FailedJob],
                    job_states: dict[str, int]) -> list[Figure]:
    """Every skycell with a live L3 has a live catalog; no failed job in the queue."""
    missing = sorted(l3_skycells - catalogued)
    return [
        Figure(SECTION, "skycells with an L3 but no catalog", len(missing), equals(0),
               note=", ".join(missing), detail={"l3_skycells": len(l3_skycells), "missing": missing}),
        Figure(SECTION, "failed jobs in the queue", len(failed), equals(0),
               note="; ".join(f"{j.kind} {j.target}: {j.error}" for j in failed[:3]),
               detail={"failed": [j.__dict__ for j in failed], "states": job_states}),
    ]


def classification_figures(objects: Columns, truth: Truth, match: CatalogMatch) -> list[Figure]:
    """Fraction of matched truth stars brighter than :data:`CLASS_MAG` with ``is_extended`` FALSE, and of matched
    truth galaxies with ``is_extended`` TRUE (NULL counts as neither)."""
    if "is_extended" not in objects:
        note = "objects has no is_extended column"
        return [Figure(SECTION, f"stars < {CLASS_MAG:g} mag point-like", None, at_least(0.95), note=note),
                Figure(SECTION, "galaxies extended", None, at_least(0.95), note=note)]
    ext = np.asarray(objects["is_extended"], dtype=float)
    band = truth.ref_filter
    rows = match.truth_row
    star = np.isin(truth.kind, STARS) & (truth.mag(band) < CLASS_MAG) & (rows >= 0)
    gal = (truth.kind == "galaxy") & (rows >= 0)
    star_pt = ext[rows[star]] == 0.0
    gal_ext = ext[rows[gal]] == 1.0
    return [
        Figure(SECTION, f"stars < {CLASS_MAG:g} mag ({band}) point-like", float(star_pt.mean()) if star.any()
               else None, at_least(0.95), note=f"{int(star_pt.sum())}/{int(star.sum())} matched stars",
               detail={"n": int(star.sum()), "point_like": int(star_pt.sum())}),
        Figure(SECTION, "galaxies extended", float(gal_ext.mean()) if gal.any() else None, at_least(0.95),
               note=f"{int(gal_ext.sum())}/{int(gal.sum())} matched galaxies",
               detail={"n": int(gal.sum()), "extended": int(gal_ext.sum())}),
    ]


def dq_saturated_truth(truth: Truth, images: list[tuple[object, np.ndarray]], box: int = 2) -> np.ndarray:
    """Truth rows with a SATURATED DQ pixel within ``box`` pixels of their position in any of the L2 images.

    ``images`` are (:class:`~romanarchive.validate.inputs.Image`, DQ array) pairs; only sources brighter than 20 mag
    in some band are looked at (fainter ones cannot saturate).
    """
    from roman_datamodels import dqflags

    sat_bit = int(dqflags.pixel.SATURATED)
    mags = np.column_stack([truth.mag(b) for b in truth.filters])
    cand = np.flatnonzero(np.nanmin(np.where(np.isfinite(mags), mags, np.inf), axis=1) < 20.0)
    out = np.zeros(len(truth.table), dtype=bool)
    for image, dq in images:
        if not len(cand):
            break
        x, y = image.pixel(truth.ra[cand], truth.dec[cand])  # type: ignore[attr-defined]
        ny, nx = dq.shape
        for i, xi, yi in zip(cand, x, y, strict=True):
            if not (np.isfinite(xi) and np.isfinite(yi)):
                continue
            cx, cy = int(round(xi)), int(round(yi))
            x0, x1, y0, y1 = max(cx - box, 0), min(cx + box + 1, nx), max(cy - box, 0), min(cy + box + 1, ny)
            if x0 < x1 and y0 < y1 and np.any(dq[y0:y1, x0:x1] & sat_bit):
                out[i] = True
    return out

