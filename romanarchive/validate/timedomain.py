"""Time-domain figures: light curves of truth stars and variables, DIA purity, transients, difference fluxes.

Light curves (``forced_phot``) are compared with ``exposure_truth.ecsv``, the true flux of every source in every
exposure, matched by the exposure's file name (the L2 ``..._cal.asdf`` of the L1 ``..._uncal.asdf``):

* **coverage**: truth stars brighter than :data:`LC_MAG` and truth variables inside the L3 coverage whose matched
  catalog object has a light curve;
* **scatter**: the median reduced chi-square of constant stars (``variability.chi2_red``) per filter, divided by
  the median a correct error model gives for each star's degrees of freedom (``n_epochs - 1``): chi2/nu is skewed,
  and its median for 5 degrees of freedom (six epochs, the demo's) is 0.87, not 1;
* **detection**: variables above the constant stars' 99th-percentile ``chi2_red`` in at least one filter (so at most
  ~2 % of constant stars are false alarms over two filters) — the index's power at that false-alarm rate;
* **flux scale**: the median of (measured / true) - 1 over unflagged measurements of stars and variables with
  S/N > 50, per filter.

A DIA source is real when a truth transient, variable or moving object lies within :data:`DIA_RADIUS` of it
(moving objects at any exposure of their track). A moving object's brightenings must be flagged moving and linked
into one track (``dia_tracks``). A transient counts as found at first appearance when a DIA source
of it exists, in that filter, at the first differenced epoch (not the survey's first) after its ``t0``. The true
difference flux of a row is the mean true flux over its epoch image's exposures minus that over its template's
(exposures that hold the source).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.stats import chi2 as chi2_dist

from romanarchive.timeseries.dia import DIA_MOVING
from romanarchive.timeseries.photometry import BAD_MEASUREMENT
from romanarchive.validate.inputs import Columns
from romanarchive.validate.matching import AB_ZP_NJY, Truth, count_within, nearest
from romanarchive.validate.stats import Figure, abs_at_most, at_least, between

SECTION = "time domain"
DIA_RADIUS = 0.3
LC_MAG = 23.0
NJY_PER_MAGGIE = 10.0 ** (0.4 * AB_ZP_NJY)


def exposure_stem(filename: str) -> str:
    """The exposure part of an L1/L2 file name (``r..._0001_wfi01_f087``)."""
    return str(filename).rsplit("_", 1)[0]


def true_fluxes(truth: Truth) -> dict[tuple[int, str], float]:
    """(truth id, exposure stem) -> true flux in nJy, from ``exposure_truth.ecsv`` (empty without it)."""
    ex = truth.exposures
    if ex is None or not len(ex):
        return {}
    stems = [exposure_stem(e) for e in np.asarray(ex["exposure"]).astype(str)]
    return {(int(i), s): float(f) * NJY_PER_MAGGIE
            for i, s, f in zip(np.asarray(ex["id"]), stems, np.asarray(ex["flux"], float), strict=True)}


def light_curve_figures(objects: Columns, truth: Truth, truth_row: np.ndarray, covered: np.ndarray,
                        with_lc: set[int]) -> list[Figure]:
    """Fraction of covered truth stars (brighter than :data:`LC_MAG`) / variables whose matched object has a
    forced-photometry light curve."""
    figs = []
    ids = np.asarray(objects["source_id"]) if "source_id" in objects else np.zeros(0, dtype=np.int64)
    bright = truth.mag(truth.ref_filter) < LC_MAG
    for kind, sel_kind, goal, label in (("star", bright, 0.95, f"truth stars < {LC_MAG:g} mag"),
                                        ("variable", np.ones(len(bright), bool), 1.0, "truth variables")):
        sel = np.flatnonzero((truth.kind == kind) & covered & sel_kind)
        rows = truth_row[sel]
        has = np.array([r >= 0 and int(ids[r]) in with_lc for r in rows], dtype=bool)
        missing = [int(truth.table["id"][sel[k]]) for k in np.flatnonzero(~has)]
        figs.append(Figure(SECTION, f"{label} with a light curve", float(has.mean()) if len(has) else None,
                           at_least(goal), note=f"{int(has.sum())}/{len(has)} in the L3 coverage "
                                                f"({int((rows >= 0).sum())} catalogued)",
                           detail={"n": len(has), "with_light_curve": int(has.sum()),
                                   "catalogued": int((rows >= 0).sum()), "missing_truth_ids": missing}))
    return figs


def _source_truth(objects: Columns, truth: Truth, truth_row: np.ndarray) -> dict[int, int]:
    """source_id -> truth row of every matched object."""
    ids = np.asarray(objects.get("source_id", np.zeros(0, np.int64)))
    return {int(ids[r]): int(t) for t, r in enumerate(truth_row) if r >= 0}


def variability_figures(var: Columns, objects: Columns, truth: Truth, truth_row: np.ndarray) -> list[Figure]:
    """Median reduced chi-square of constant stars per filter; variables detected at the constant stars' 1 %
    per-filter false-alarm threshold."""
    figs: list[Figure] = []
    if not len(var.get("source_id", ())):
        return [Figure(SECTION, "variability indices", None, note="no variability rows")]
    row_of = _source_truth(objects, truth, truth_row)
    kind = truth.kind
    bright = truth.mag(truth.ref_filter) < LC_MAG
    sid, filt = np.asarray(var["source_id"], np.int64), np.asarray(var["filter"]).astype(str)
    chi = np.asarray(var["chi2_red"], float)
    nu = np.asarray(var.get("n_epochs", np.full(len(chi), np.nan)), float) - 1
    with np.errstate(invalid="ignore"):
        expected = np.where(nu >= 1, chi2_dist.median(np.clip(nu, 1, None)) / np.clip(nu, 1, None), np.nan)
    trow = np.array([row_of.get(int(s), -1) for s in sid])
    is_const = (trow >= 0) & np.isin(kind[np.clip(trow, 0, None)], ["star"]) & bright[np.clip(trow, 0, None)]
    is_var = (trow >= 0) & (kind[np.clip(trow, 0, None)] == "variable")
    above: dict[int, bool] = defaultdict(bool)
    const_ids: set[int] = set()
    var_ids: set[int] = set()
    for f in sorted(set(filt)):
        c = is_const & (filt == f) & np.isfinite(chi)
        if not c.any():
            continue
        rel = c & np.isfinite(expected)
        med = float(np.median(chi[rel] / expected[rel])) if rel.any() else None
        figs.append(Figure(SECTION, f"constant stars' median chi2_red / expected median ({f})", med,
                           between(0.9, 1.3),
                           note=f"{int(c.sum())} stars < {LC_MAG:g} mag; median chi2_red {np.median(chi[c]):.2f} "
                                f"(expected {np.median(expected[rel]) if rel.any() else np.nan:.2f}); 16-84 %: "
                                f"{np.quantile(chi[c], 0.16):.2f}-{np.quantile(chi[c], 0.84):.2f}"))
        thr = float(np.quantile(chi[c], 0.99))
        for k in np.flatnonzero((c | (is_var & (filt == f))) & np.isfinite(chi)):
            above[int(sid[k])] |= bool(chi[k] > thr)
        const_ids |= {int(s) for s in sid[c]}
        var_ids |= {int(s) for s in sid[is_var & (filt == f)]}
    n_var = len({int(truth.table["id"][t]) for t in np.flatnonzero(kind == "variable") if t in row_of.values()})
    found = sum(above[s] for s in var_ids)
    fa = sum(above[s] for s in const_ids)
    figs.append(Figure(SECTION, "truth variables detected (chi2_red, <= 2 % false alarms)",
                       found / n_var if n_var else None, at_least(0.95),
                       note=f"{found}/{n_var} catalogued variables; false alarms {fa}/{len(const_ids)} constant stars",
                       detail={"found": found, "n": n_var, "false_alarms": fa, "n_constant": len(const_ids)}))
    return figs


def flux_scale_figures(lcs: Columns, objects: Columns, truth: Truth, truth_row: np.ndarray,
                       min_snr: float = 50.0) -> list[Figure]:
    """Per filter: median (light-curve flux / true flux) - 1 and the pull scatter of stars and variables."""
    from romanarchive.validate.stats import robust_sigma

    fluxes = true_fluxes(truth)
    if not fluxes or not len(lcs.get("source_id", ())):
        return [Figure(SECTION, "light-curve flux vs truth", None, note="no exposure truth or no light curves")]
    row_of = _source_truth(objects, truth, truth_row)
    ids = np.asarray(truth.table["id"], np.int64)
    kinds = truth.kind
    figs = []
    sid = np.asarray(lcs["source_id"], np.int64)
    filt = np.asarray(lcs["filter"]).astype(str)
    flux, err = np.asarray(lcs["flux"], float), np.asarray(lcs["flux_err"], float)
    good = (np.asarray(lcs["flags"], np.int64) & BAD_MEASUREMENT) == 0
    true = np.full(len(sid), np.nan)
    for k in range(len(sid)):
        t = row_of.get(int(sid[k]), -1)
        if t >= 0 and kinds[t] in ("star", "variable"):
            true[k] = fluxes.get((int(ids[t]), exposure_stem(lcs["filename"][k])), np.nan)
    ok = good & np.isfinite(true) & (true > 0) & np.isfinite(flux) & (err > 0) & (true / np.where(err > 0, err, 1)
                                                                                    > min_snr)
    for f in sorted(set(filt[ok])):
        m = ok & (filt == f)
        figs.append(Figure(SECTION, f"light-curve flux / truth - 1, S/N > {min_snr:g} ({f})",
                           float(np.median(flux[m] / true[m]) - 1.0), abs_at_most(0.01),
                           note=f"{int(m.sum())} measurements of {len(set(sid[m]))} stars and variables"))
        figs.append(Figure(SECTION, f"light-curve flux pull scatter ({f})",
                           robust_sigma((flux[m] - true[m]) / err[m]), between(0.8, 1.3)))
    return figs


def dia_figures(dia: Columns, truth: Truth, covered: np.ndarray, epochs: dict[str, list[float]]) -> list[Figure]:
    """DIA purity, transients found at first appearance, rows per transient and epoch, difference-flux accuracy."""
    n = len(dia.get("ra", []))
    figs = [Figure(SECTION, "DIA sources", n)]
    kinds = truth.kind
    tra, tdec, trow = truth.all_positions()
    idx, sep = nearest(dia.get("ra", np.empty(0)), dia.get("dec", np.empty(0)), tra, tdec)
    near = sep <= DIA_RADIUS
    row = np.where(near, trow[np.clip(idx, 0, None)] if len(trow) else -1, -1)
    kind_of = np.where(row >= 0, kinds[np.clip(row, 0, None)], "")
    counts = {k: int((kind_of == k).sum()) for k in ("transient", "variable", "moving")}
    real = sum(counts.values())
    figs.append(Figure(SECTION, f'DIA sources matched to a truth transient within {DIA_RADIUS}"',
                       counts["transient"], note=f"variables {counts['variable']}, moving {counts['moving']}, "
                                                 f"other truth {int(near.sum()) - real}, none {int((~near).sum())}",
                       detail={**counts, "other_truth": int(near.sum()) - real, "unmatched": int((~near).sum())}))
    figs.append(Figure(SECTION, "DIA purity (transient, variable or moving)", real / n if n else None,
                       at_least(0.9)))
    figs += _first_appearance(dia, truth, covered, epochs, row)
    figs += _difference_flux(dia, truth, row, kind_of)
    figs += _moving(dia, row, kind_of)
    return figs


def _moving(dia: Columns, row: np.ndarray, kind_of: np.ndarray) -> list[Figure]:
    """Brightenings of truth moving objects flagged moving (16), and each mover's in one track."""
    n = len(kind_of)
    snr = np.asarray(dia.get("snr", np.ones(n)), float)
    mine = (kind_of == "moving") & (snr > 0)
    if not mine.any():
        return []
    flags = np.asarray(dia.get("flags", np.zeros(n)), np.int64)
    tracks = np.asarray(dia.get("track_id", np.full(n, -1)), np.int64)
    flagged = (flags[mine] & DIA_MOVING) != 0
    movers = sorted(set(row[mine].tolist()))
    one = sum(len(set(tracks[mine & (row == m)].tolist())) == 1 and tracks[mine & (row == m)][0] >= 0
              for m in movers)
    return [Figure(SECTION, "DIA brightenings of truth moving objects flagged moving", float(flagged.mean()),
                   at_least(1.0), note=f"{int(flagged.sum())}/{int(mine.sum())}"),
            Figure(SECTION, "truth moving objects whose DIA brightenings are one track", one / len(movers),
                   at_least(1.0), note=f"{one}/{len(movers)}")]


def _first_appearance(dia: Columns, truth: Truth, covered: np.ndarray, epochs: dict[str, list[float]],
                      row: np.ndarray) -> list[Figure]:
    """Transients found at their first differenced epoch, and DIA rows per (transient, filter, epoch)."""
    if "t0" not in truth.table.colnames:
        return []
    t0 = np.asarray(truth.table["t0"], float)
    filt = np.asarray(dia.get("filter", np.empty(0))).astype(str)
    mjd = np.asarray(dia.get("mjd", np.empty(0)), float)
    cases = found = 0
    missed: list[str] = []
    for t in np.flatnonzero((truth.kind == "transient") & covered):
        for f, times in epochs.items():
            later = [m for m in times[1:] if m >= t0[t]]
            if not later or not np.isfinite(truth.mag(f)[t]):
                continue
            cases += 1
            hit = bool(np.any((row == t) & (filt == f) & (np.abs(mjd - later[0]) < 0.25)))
            found += hit
            if not hit:
                missed.append(f"{int(truth.table['id'][t])} {f} {later[0]:.2f}")
    figs = [Figure(SECTION, "truth transients found by DIA at first appearance", found / cases if cases else None,
                   at_least(1.0), note=f"{found}/{cases} (transient, filter) cases",
                   detail={"missed": missed})]
    per: dict[tuple[int, str, float], int] = defaultdict(int)
    for k in np.flatnonzero(row >= 0):
        if truth.kind[row[k]] == "transient":
            per[(int(row[k]), filt[k], round(float(mjd[k]), 3))] += 1
    if per:
        one = sum(v == 1 for v in per.values())
        figs.append(Figure(SECTION, "transient epochs with exactly one DIA row", one / len(per), at_least(1.0),
                           note=f"{one}/{len(per)}; most rows for one: {max(per.values())}"))
    return figs


def _difference_flux(dia: Columns, truth: Truth, row: np.ndarray, kind_of: np.ndarray,
                     min_snr: float = 20.0) -> list[Figure]:
    """Median measured / true difference flux of real point sources (transients, variables) with |S/N| > min_snr."""
    fluxes = true_fluxes(truth)
    if not fluxes or "science_files" not in dia:
        return []
    ids = np.asarray(truth.table["id"], np.int64)
    filt = np.asarray(dia["filter"]).astype(str)
    ratio = np.full(len(row), np.nan)
    snr = np.abs(np.asarray(dia["snr"], float))
    for k in np.flatnonzero(np.isin(kind_of, ["transient", "variable"]) & (snr > min_snr)):
        tid = int(ids[row[k]])

        def mean_flux(names: str, tid: int = tid) -> float:
            # Only the exposures that hold the source (the others do not cover it in the co-add).
            v = [fluxes[(tid, exposure_stem(n))] for n in str(names).split() if (tid, exposure_stem(n)) in fluxes]
            return float(np.mean(v)) if v else np.nan

        change = mean_flux(dia["science_files"][k]) - mean_flux(dia["template_files"][k])
        if np.isfinite(change) and abs(change) > 0:
            ratio[k] = float(dia["flux"][k]) / change
    figs = []
    for f in sorted(set(filt[np.isfinite(ratio)])):
        m = np.isfinite(ratio) & (filt == f)
        figs.append(Figure(SECTION, f"DIA flux / true change - 1, |S/N| > {min_snr:g} ({f})",
                           float(np.median(ratio[m]) - 1.0), abs_at_most(0.05), note=f"{int(m.sum())} rows"))
    return figs


def dia_object_figures(objs: Columns, objects: Columns, truth: Truth, truth_row: np.ndarray) -> list[Figure]:
    """Truth transients and variables with DIA objects: exactly one object each, and variables linked to their own
    static catalog object."""
    n = len(objs.get("ra", ()))
    figs = [Figure(SECTION, "DIA objects", n)]
    if not n:
        return figs
    ora, odec = np.asarray(objs["ra"], float), np.asarray(objs["dec"], float)
    ids = np.asarray(objects.get("source_id", np.zeros(0, np.int64)))
    counterpart = np.asarray(objs["counterpart_id"], np.int64)
    for kind in ("transient", "variable"):
        sel = np.flatnonzero(truth.kind == kind)
        counts = count_within(truth.ra[sel], truth.dec[sel], ora, odec, DIA_RADIUS)
        seen = counts > 0
        if not seen.any():
            continue
        figs.append(Figure(SECTION, f"truth {kind}s with DIA detections that are one DIA object",
                           float(np.mean(counts[seen] == 1)), at_least(1.0),
                           note=f"{int(np.sum(counts[seen] == 1))}/{int(seen.sum())}; most objects for one: "
                                f"{int(counts.max())}"))
        if kind == "variable":
            closest, _ = nearest(truth.ra[sel[seen]], truth.dec[sel[seen]], ora, odec)
            linked = [bool(truth_row[t] >= 0 and counterpart[j] == int(ids[truth_row[t]]))
                      for t, j in zip(sel[seen], closest, strict=True)]
            figs.append(Figure(SECTION, "DIA objects of truth variables linked to their catalog object",
                               float(np.mean(linked)), at_least(1.0), note=f"{int(np.sum(linked))}/{len(linked)}"))
    return figs
