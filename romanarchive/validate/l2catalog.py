"""Per-image (L2) source catalogs (``l2_sources``, romancal's ``SourceCatalogStep`` on each L2) against the truth.

Informational figures — issue 13's goals are the L4 catalog's: rows, the share without a truth source, and for
isolated constant stars with aperture S/N > 50 the PSF flux against the truth (bias, robust scatter, pulls) and the
PSF positions' RMS offset.
"""

from __future__ import annotations

import math

import numpy as np

from romanarchive.validate.catalog_checks import MATCH_RADIUS, match_catalog
from romanarchive.validate.inputs import Columns
from romanarchive.validate.matching import Truth, offsets_mas
from romanarchive.validate.photometry import MIN_SNR, isolated_stars
from romanarchive.validate.stats import Figure, pull_scatter, robust_sigma

SECTION = "L2 catalogs"


def l2_catalog_figures(rows: Columns, truth: Truth) -> list[Figure]:
    """Rows, purity and bright isolated stars' PSF photometry and astrometry of the per-image catalogs."""
    n = len(rows.get("ra", ()))
    if n == 0:
        return [Figure(SECTION, "L2 catalog rows", 0, note="no l2_sources rows (no l2_catalog jobs have run)")]
    ra, dec = np.asarray(rows["ra"], float), np.asarray(rows["dec"], float)
    images = np.asarray(rows["product_id"])
    per_image = np.unique(images, return_counts=True)[1]
    match = match_catalog(truth, ra, dec)
    figs = [Figure(SECTION, "L2 catalog rows", n, note=f"{len(per_image)} images, median {np.median(per_image):.0f} "
                                                       "rows per image"),
            Figure(SECTION, f'L2 rows without a truth source within {MATCH_RADIUS}"',
                   float(1.0 - match.row_real.mean()))]
    row = match.row_truth
    star = isolated_stars(truth)
    filters = np.asarray(rows["filter"]).astype(str)
    for band in sorted(set(filters.tolist())):
        if band.upper() not in truth.filters:
            continue
        sel = (filters == band) & (row >= 0)
        sel[sel] &= star[row[sel]]
        f, e = (np.asarray(rows[k], float) for k in ("psf_flux", "psf_flux_err"))
        a, ae = (np.asarray(rows[k], float) for k in ("aper04_flux", "aper04_flux_err"))
        with np.errstate(divide="ignore", invalid="ignore"):
            sel &= np.where(ae > 0, a / ae, 0.0) > MIN_SNR
        true = truth.flux_njy(band.upper())[row[sel]]
        ratio = f[sel] / true - 1.0
        ok = np.isfinite(ratio)
        dra, ddec = offsets_mas(ra[sel], dec[sel], truth.ra[row[sel]], truth.dec[row[sel]])
        rms = float(np.sqrt(np.nanmean(np.r_[dra, ddec] ** 2))) if len(dra) else math.nan
        mean = f"mean ({np.nanmean(dra):.3g}, {np.nanmean(ddec):.3g}) mas" if len(dra) else ""
        figs += [
            Figure(SECTION, f"{band} L2 PSF flux / truth - 1 (isolated stars, S/N > {MIN_SNR:g})",
                   float(np.median(ratio[ok])) if ok.any() else math.nan,
                   note=f"{int(ok.sum())} measurements, robust scatter {robust_sigma(ratio):.3g}"),
            Figure(SECTION, f"{band} L2 PSF flux pull scatter", pull_scatter(f[sel], true, e[sel])),
            Figure(SECTION, f"{band} L2 position RMS offset", rms, unit="mas", note=mean),
        ]
    return figs
