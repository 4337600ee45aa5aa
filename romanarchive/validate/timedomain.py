"""Time-domain figures (informational until they have goals): light curves of truth stars, DIA purity, transients.

A DIA source is real when a truth transient, variable or moving object lies within :data:`DIA_RADIUS` of it
(moving objects at any exposure of their track). A transient counts as found when one DIA source of it exists; only
transients that appear before the last L2 exposure, inside the L3 coverage, are asked for.
"""

from __future__ import annotations

import numpy as np

from romanarchive.validate.inputs import Columns
from romanarchive.validate.matching import Truth, nearest
from romanarchive.validate.stats import Figure

SECTION = "time domain"
DIA_RADIUS = 0.3


def light_curve_figures(objects: Columns, truth: Truth, truth_row: np.ndarray, covered: np.ndarray,
                        with_lc: set[int]) -> list[Figure]:
    """Fraction of covered truth stars / variables whose matched object has a forced-photometry light curve."""
    figs = []
    ids = np.asarray(objects["source_id"]) if "source_id" in objects else np.zeros(0, dtype=np.int64)
    for kind in ("star", "variable"):
        sel = np.flatnonzero((truth.kind == kind) & covered)
        rows = truth_row[sel]
        has = np.array([r >= 0 and int(ids[r]) in with_lc for r in rows], dtype=bool)
        figs.append(Figure(SECTION, f"truth {kind}s with a light curve", float(has.mean()) if len(has) else None,
                           note=f"{int(has.sum())}/{len(has)} in the L3 coverage "
                                f"({int((rows >= 0).sum())} catalogued)",
                           detail={"n": len(has), "with_light_curve": int(has.sum()),
                                   "catalogued": int((rows >= 0).sum())}))
    return figs


def dia_figures(dia: Columns, truth: Truth, covered: np.ndarray, last_mjd: float | None) -> list[Figure]:
    """DIA sources matched to truth transients / variables / moving objects; transients found."""
    n = len(dia.get("ra", []))
    figs = [Figure(SECTION, "DIA sources", n)]
    kinds = truth.kind
    tra, tdec, trow = truth.all_positions()
    idx, sep = nearest(dia.get("ra", np.empty(0)), dia.get("dec", np.empty(0)), tra, tdec)
    near = sep <= DIA_RADIUS
    kind_of = np.where(near, kinds[trow[np.clip(idx, 0, None)]] if len(trow) else "", "")
    counts = {k: int((kind_of == k).sum()) for k in ("transient", "variable", "moving")}
    real = sum(counts.values())
    figs.append(Figure(SECTION, f'DIA sources matched to a truth transient within {DIA_RADIUS}"',
                       counts["transient"], note=f"variables {counts['variable']}, moving {counts['moving']}, "
                                                 f"other truth {int(near.sum()) - real}, none {int((~near).sum())}",
                       detail={**counts, "other_truth": int(near.sum()) - real, "unmatched": int((~near).sum())}))
    figs.append(Figure(SECTION, "DIA purity (transient, variable or moving)", real / n if n else None))
    visible = (kinds == "transient") & covered
    if last_mjd is not None and "t0" in truth.table.colnames:
        visible &= np.asarray(truth.table["t0"], float) < last_mjd
    t_sel = np.flatnonzero(visible)
    found = np.zeros(len(t_sel), dtype=bool)
    if n and len(t_sel):
        _, s = nearest(truth.ra[t_sel], truth.dec[t_sel], dia["ra"], dia["dec"])
        found = s <= DIA_RADIUS
    figs.append(Figure(SECTION, "truth transients found by DIA", float(found.mean()) if len(found) else None,
                       note=f"{int(found.sum())}/{len(found)} appearing before the last exposure"))
    return figs
