"""Units, flux accuracy and astrometry of isolated bright stars.

The sample: truth stars of constant flux (kind ``star``) with no other truth source within 2", matched to a catalog
row within 0.2", whose PSF flux S/N in a band exceeds 50. Truth fluxes are AB magnitudes converted to nJy
(m = 31.4 − 2.5 log10 f).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from romanarchive.validate.inputs import APER04_FLUX, KRON_FLUX, PSF_FLUX, Columns
from romanarchive.validate.matching import CONSTANT_STARS, Truth, count_within, offsets_mas
from romanarchive.validate.stats import (
    Figure,
    abs_at_most,
    astrometry,
    at_most,
    between,
    equals,
    flux_bias,
    pull_scatter,
    robust_sigma,
)

UNITS, PHOT, ASTRO = "units", "photometry", "astrometry"
ISOLATION_RADIUS = 2.0
MIN_SNR = 50.0
#: Radius of rad's aper04 aperture.
APER04_RADIUS_ARCSEC = 0.4
#: Native WFI pixel, for ee_radii given in pixels.
L2_PIXEL_ARCSEC = 0.11
#: rad's flux columns: nJy (``aper_bkg_*`` is a surface brightness, nJy/arcsec²).
_FLUX_COLUMN = re.compile(r"^(psf|kron|segment|aper\d\d)_f\d{3}_flux(_err)?$")
#: rad source_catalog_columns (band-independent) the objects table keeps.
RAD_CORE = ("label", "x_centroid", "y_centroid", "x_centroid_err", "y_centroid_err", "ra_centroid", "dec_centroid",
            "ra_centroid_err", "dec_centroid_err", "x_centroid_win", "y_centroid_win", "ra_centroid_win",
            "dec_centroid_win", "ra_centroid_win_err", "dec_centroid_win_err", "segment_area", "semimajor",
            "semiminor", "ellipticity", "orientation_sky", "kron_radius", "fwhm", "nn_distance", "warning_flags",
            "image_flags", "is_extended", "photoz", "photoz_low68", "photoz_high68", "photoz_gof", "photoz_sed")
RAD_BAND = ("psf_{b}_flux", "psf_{b}_flux_err", "psf_flags_{b}", "psf_gof_{b}", "ra_psf_{b}", "dec_psf_{b}",
            "ra_psf_{b}_err", "dec_psf_{b}_err", "kron_{b}_flux", "kron_{b}_flux_err", "kron_{b}_abmag",
            "kron_{b}_abmag_err", "segment_{b}_flux", "segment_{b}_flux_err", "aper02_{b}_flux", "aper02_{b}_flux_err",
            "aper04_{b}_flux", "aper04_{b}_flux_err", "aper_bkg_{b}_flux", "aper_bkg_{b}_flux_err",
            "is_extended_{b}", "sharpness_{b}", "roundness1_{b}", "fluxfrac_radius_50_{b}")


# --------------------------------------------------------------------------- units


def image_unit(meta: dict[str, Any]) -> str:
    """The pixel unit of a roman L2/L3 image from its metadata: MJy/sr once FluxStep ran, else DN/s."""
    flux = str((meta.get("cal_step") or {}).get("flux", "")).upper()
    return "MJy/sr" if flux == "COMPLETE" else "DN/s"


def image_unit_figures(level: int, meta: dict[str, Any] | None, invalid: str | None) -> list[Figure]:
    """The unit of one image of a level and whether it validates against its roman_datamodels schema."""
    if meta is None:
        return [Figure(UNITS, f"L{level} pixel unit", None, equals("MJy/sr"), note=f"no live L{level} product")]
    phot = meta.get("photometry") or {}
    conv = phot.get("conversion_megajanskys")
    note = f"cal_step.flux={(meta.get('cal_step') or {}).get('flux')}, " \
           f"photometry.conversion_megajanskys={conv}, pixel_area={phot.get('pixel_area')}"
    figs = [Figure(UNITS, f"L{level} pixel unit", image_unit(meta), equals("MJy/sr"), note=note,
                   detail={"photometry": phot, "cal_step": meta.get("cal_step")})]
    if level == 3:
        figs.append(Figure(UNITS, "L3 meta.photometry filled", bool(phot) and conv is not None, equals(True)))
    figs.append(Figure(UNITS, f"L{level} validates with roman_datamodels", not invalid, equals(True),
                       note=invalid or ""))
    return figs


def catalog_unit_figures(objects: Columns, bands: list[str], column_units: dict[str, str]) -> list[Figure]:
    """L4: rad's flux columns present, all in nJy; rad source_catalog_columns missing from ``objects``."""
    flux_cols = [c for c in objects if _FLUX_COLUMN.match(c)]
    bad = sorted(c for c in flux_cols if column_units.get(c) != "nJy")
    value = "nJy" if flux_cols and not bad else ("no rad flux columns" if not flux_cols else
                                                  f"{len(bad)} not nJy")
    want = list(RAD_CORE) + [c.format(b=b.lower()) for b in bands for c in RAD_BAND]
    missing = [c for c in want if c not in objects]
    return [
        Figure(UNITS, "L4 flux columns unit", value, equals("nJy"), note=", ".join(bad[:5]),
               detail={"flux_columns": len(flux_cols), "not_njy": bad}),
        Figure(UNITS, "rad source_catalog_columns missing from objects", len(missing), equals(0),
               note=", ".join(missing[:6]) + (" ..." if len(missing) > 6 else ""), detail={"missing": missing}),
    ]


@dataclass
class ApertureCorrection:
    """Encircled energy at rad's aper04 radius from an apcorr reference file."""

    band: str
    ee_at_04: float
    radii_unit: str
    path: Path


def read_apcorr(path: Path, band: str) -> ApertureCorrection:
    """EE fraction at 0.4" from an apcorr reference file; ``ee_radii`` in pixels (0.11") are detected and converted.

    romancal and the CRDS files give ``ee_radii`` in arcsec; a Roman PSF holds 80 % of its light within ~0.4", so a
    radius of the 80 % (or highest) fraction above 1.0 can only be in pixels.
    """
    import asdf

    with asdf.open(path, lazy_load=False) as af:
        data = af.tree["roman"]["data"]
        entry = data.get(band.upper()) or data.get(band.lower()) or next(iter(data.values()))
        frac = np.asarray(entry["ee_fractions"], dtype=float)
        radii = np.asarray(entry["ee_radii"], dtype=float)
    order = np.argsort(radii)
    frac, radii = frac[order], radii[order]
    probe = float(np.interp(0.8, frac, radii)) if frac.max() >= 0.8 else float(radii.max())
    unit = "pixels" if probe > 1.0 else "arcsec"
    radii_arcsec = radii * L2_PIXEL_ARCSEC if unit == "pixels" else radii
    return ApertureCorrection(band.upper(), float(np.interp(APER04_RADIUS_ARCSEC, radii_arcsec, frac)), unit, path)


def apcorr_figures(apcorr: dict[str, ApertureCorrection]) -> list[Figure]:
    if not apcorr:
        return [Figure(UNITS, "apcorr ee_radii unit", None, equals("arcsec"), note="no apcorr reference file")]
    units = sorted({a.radii_unit for a in apcorr.values()})
    return [Figure(UNITS, "apcorr ee_radii unit", "/".join(units), equals("arcsec"),
                   note=", ".join(f"{b}: EE(0.4\")={a.ee_at_04:.3f}" for b, a in sorted(apcorr.items())),
                   detail={b: {"ee_at_0.4": a.ee_at_04, "file": str(a.path)} for b, a in apcorr.items()})]


# --------------------------------------------------------------------------- fluxes


def isolated_stars(truth: Truth) -> np.ndarray:
    """Per truth row: a constant star with no other truth source within :data:`ISOLATION_RADIUS`."""
    tra, tdec, _ = truth.all_positions()
    iso = count_within(truth.ra, truth.dec, tra, tdec, ISOLATION_RADIUS) <= 1  # itself only
    return np.isin(truth.kind, CONSTANT_STARS) & iso


def star_sample(truth: Truth, truth_row: np.ndarray) -> np.ndarray:
    """Truth rows of isolated constant stars matched to a catalog row."""
    return np.flatnonzero(isolated_stars(truth) & (truth_row >= 0))


def _col(objects: Columns, name: str, rows: np.ndarray) -> np.ndarray | None:
    return np.asarray(objects[name], dtype=float)[rows] if name in objects else None


def _snr(objects: Columns, b: str, rows: np.ndarray) -> np.ndarray:
    """S/N of the 0.4" aperture flux in band ``b`` (the sample's selection: independent of how well the PSF fitted,
    whose misfit the PSF flux errors include), the PSF flux's where there is no aperture flux."""
    for name in (APER04_FLUX.format(b=b), PSF_FLUX.format(b=b)):
        f, e = _col(objects, name, rows), _col(objects, name + "_err", rows)
        if f is not None and e is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(e > 0, f / e, np.nan)
    return np.full(len(rows), np.nan)


def flux_figures(objects: Columns, truth: Truth, truth_row: np.ndarray, bands: list[str],
                 apcorr: dict[str, ApertureCorrection], forced: dict[tuple[int, str], tuple[float, int]],
                 plot: dict[str, Any]) -> list[Figure]:
    """Bias and pulls of PSF, aperture-corrected aper04 and Kron fluxes; L4 PSF flux vs the forced-photometry mean."""
    stars = star_sample(truth, truth_row)
    figs: list[Figure] = []
    for band in bands:
        b = band.lower()
        rows = truth_row[stars]
        psf = _col(objects, PSF_FLUX.format(b=b), rows)
        psf_err = _col(objects, PSF_FLUX.format(b=b) + "_err", rows)
        if psf is None or psf_err is None:
            figs.append(Figure(PHOT, f"{band} PSF flux bias", None, abs_at_most(0.01),
                               note=f"objects has no {PSF_FLUX.format(b=b)} column"))
            continue
        good = _snr(objects, b, rows) > MIN_SNR
        sel, rows = stars[good], rows[good]
        true = truth.flux_njy(band)[sel]
        figs.append(Figure(PHOT, f"{band} isolated stars with S/N > {MIN_SNR:g}", int(len(sel))))
        kinds: list[tuple[str, str, float, float]] = [("PSF", PSF_FLUX, 1.0, 0.01),
                                                       ("aper04 / EE(0.4\")", APER04_FLUX, math.nan, 0.01),
                                                       ("Kron", KRON_FLUX, 1.0, 0.03)]
        plot.setdefault("flux", {})[band] = {"mag": truth.mag(band)[sel]}
        for label, pattern, scale, limit in kinds:
            name = pattern.format(b=b)
            flux, err = _col(objects, name, rows), _col(objects, name + "_err", rows)
            note = ""
            if label.startswith("aper"):
                ap = apcorr.get(band)
                scale = 1.0 / ap.ee_at_04 if ap else math.nan
                note = f"EE(0.4\")={ap.ee_at_04:.3f} ({ap.radii_unit})" if ap else "no apcorr file"
            if flux is None or err is None:
                figs.append(Figure(PHOT, f"{band} {label} flux bias", None, abs_at_most(limit),
                                   note=f"objects has no {name}"))
                continue
            flux, err = flux * scale, err * scale
            ratio = flux / true - 1.0
            figs.append(Figure(PHOT, f"{band} {label} flux bias", flux_bias(flux, true), abs_at_most(limit), note=note,
                               detail={"robust_scatter": robust_sigma(ratio), "n": int(np.isfinite(ratio).sum())}))
            pulls = (flux - true) / err
            figs.append(Figure(PHOT, f"{band} {label} flux pull scatter", pull_scatter(flux, true, err),
                               between(0.8, 1.3), note=f"robust {robust_sigma(pulls):.3g}"))
            plot["flux"][band][label] = flux / true
        ids = np.asarray(objects["source_id"])[rows] if "source_id" in objects else np.zeros(0)
        fp = np.array([forced.get((int(s), band), (math.nan, 0))[0] for s in ids], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = psf[good] / fp
        ok = np.isfinite(ratio)
        figs.append(Figure(PHOT, f"{band} L4 PSF flux / forced-photometry mean - 1",
                           float(np.median(ratio[ok]) - 1.0) if ok.any() else None, abs_at_most(0.01),
                           note=f"{int(ok.sum())} stars with a light curve" if ok.any() else
                           "no forced photometry of these stars"))
    return figs


# --------------------------------------------------------------------------- astrometry


def _positions(objects: Columns, bands: list[str]) -> list[tuple[str, str, str, str, str]]:
    """(label, ra, dec, ra_err, dec_err) column names of each position rad gives; the best first."""
    out = [("best (ra, dec)", "ra", "dec", "ra_err", "dec_err"),
           ("centroid_win", "ra_centroid_win", "dec_centroid_win", "ra_centroid_win_err", "dec_centroid_win_err"),
           ("centroid", "ra_centroid", "dec_centroid", "ra_centroid_err", "dec_centroid_err")]
    out += [(f"psf {b}", f"ra_psf_{b.lower()}", f"dec_psf_{b.lower()}", f"ra_psf_{b.lower()}_err",
             f"dec_psf_{b.lower()}_err") for b in bands]
    return [p for p in out if p[1] in objects and p[2] in objects]


def astrometry_figures(objects: Columns, truth: Truth, truth_row: np.ndarray, bands: list[str],
                       plot: dict[str, Any]) -> list[Figure]:
    """Offsets from the truth of S/N > 50 isolated stars (the aperture S/N of their best band): mean, RMS (mas),
    pulls.

    The best position's pulls use the archive's ``ra_err``/``dec_err`` (the PSF fit's errors for point sources, the
    windowed centroid's otherwise, as for ``ra``/``dec``).
    """
    stars = star_sample(truth, truth_row)
    rows = truth_row[stars]
    snr = np.zeros(len(rows))
    for band in bands:
        snr = np.fmax(snr, _snr(objects, band.lower(), rows))
    sel, rows = stars[snr > MIN_SNR], rows[snr > MIN_SNR]
    figs: list[Figure] = [Figure(ASTRO, f"isolated stars with S/N > {MIN_SNR:g}", int(len(sel)))]
    for i, (label, ra_c, dec_c, era, edec) in enumerate(_positions(objects, bands)):
        dra, ddec = offsets_mas(np.asarray(objects[ra_c], float)[rows], np.asarray(objects[dec_c], float)[rows],
                                truth.ra[sel], truth.dec[sel])
        a = astrometry(dra, ddec, _col(objects, era, rows), _col(objects, edec, rows))
        if i == 0:
            plot["astrometry"] = {"dra": dra, "ddec": ddec}
            figs += [
                Figure(ASTRO, f"{label}: mean offset RA cos Dec", a.mean_dra, abs_at_most(3.0), "mas"),
                Figure(ASTRO, f"{label}: mean offset Dec", a.mean_ddec, abs_at_most(3.0), "mas"),
                Figure(ASTRO, f"{label}: RMS offset (larger axis)", a.rms, at_most(10.0), "mas",
                       note=f"RA {a.rms_dra:.3g}, Dec {a.rms_ddec:.3g}"),
                Figure(ASTRO, f"{label}: position pull RA", a.pull_ra, between(0.8, 1.5), note=f"errors {era}"),
                Figure(ASTRO, f"{label}: position pull Dec", a.pull_dec, between(0.8, 1.5)),
            ]
        else:
            figs.append(Figure(ASTRO, f"{label}: RMS offset", a.rms, unit="mas",
                               note=f"mean ({a.mean_dra:.3g}, {a.mean_ddec:.3g}) mas, pulls ({a.pull_ra:.3g}, "
                                    f"{a.pull_dec:.3g})", detail=a.__dict__))
    if len(figs) == 1:
        figs.append(Figure(ASTRO, "best (ra, dec): RMS offset", None, at_most(10.0), "mas", note="no positions"))
    return figs
