"""Aperture corrections of the catalog's fluxes from the PSF's curve of growth (pure functions of arrays).

romancal measures the Kron flux inside the Kron ellipse and leaves it there: for a point source that misses the
PSF's light outside the ellipse (11 % in F087 and 16 % in F158 on the demo, varying from star to star with the
ellipse's size, so the Kron fluxes of stars scattered 12-20 times their errors). The archive divides each Kron
flux by the PSF's encircled energy within the object's own Kron aperture — the point-source aperture correction
HSC and LSST apply to their Kron fluxes too. For a galaxy it restores the PSF's share of the missing light only, as
for them; the ellipse is taken as the circle of equal area (stars are round; the PSF's light in an elongated
ellipse is slightly less).

The curve of growth is the ``apcorr`` reference file's (``ee_fractions`` at ``ee_radii``, arcsec, the L2 PSF: the
co-add's broadening moves the EE by < 0.1 % at the radii of Kron apertures). Beyond its last radius the PSF's
wings fall as r⁻³, so the missing light falls as 1/r.

:func:`psf_aperture_factors` ties the PSF fluxes to the curve of growth of the skycell's bright point sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: photutils' (and romancal's) Kron parameters where the catalog's metadata does not give them.
DEFAULT_KRON_PARAMS = (2.5, 1.4)


@dataclass(frozen=True)
class EncircledEnergy:
    """A PSF's encircled-energy fraction as a function of radius (arcsec)."""

    radii: np.ndarray
    fractions: np.ndarray

    def __post_init__(self) -> None:
        order = np.argsort(self.radii)
        object.__setattr__(self, "radii", np.asarray(self.radii, float)[order])
        object.__setattr__(self, "fractions", np.asarray(self.fractions, float)[order])

    def __call__(self, radius_arcsec: Any) -> np.ndarray:
        """EE at ``radius_arcsec`` (interpolated; 1/r missing light beyond the last radius)."""
        r = np.asarray(radius_arcsec, float)
        inside = np.interp(r, self.radii, self.fractions)
        r_last, f_last = self.radii[-1], self.fractions[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            beyond = 1.0 - (1.0 - f_last) * r_last / r
        return np.where(r > r_last, beyond, inside)

    @classmethod
    def from_apcorr(cls, path: str | Path, band: str) -> EncircledEnergy | None:
        """The curve of ``band`` in an ``apcorr`` reference file (``None`` where it has none)."""
        import roman_datamodels as rdm

        with rdm.open(path) as model:
            entry = model.data.get(band.upper()) if hasattr(model.data, "get") else None
            if entry is None:
                return None
            radii, frac = np.asarray(entry["ee_radii"], float), np.asarray(entry["ee_fractions"], float)
        return cls(radii, frac) if len(radii) else None


def kron_aperture_radius(kron_radius_arcsec: np.ndarray, semimajor_arcsec: np.ndarray,
                         semiminor_arcsec: np.ndarray, pixel_scale_arcsec: float,
                         kron_params: Sequence[float] = DEFAULT_KRON_PARAMS) -> np.ndarray:
    """Radius (arcsec) of the circle with the area of each object's Kron ellipse.

    photutils' ellipse has semi-axes ``k * r_K * a`` and ``k * r_K * b`` with ``r_K`` the (dimensionless) first-moment
    Kron radius, which romancal reports multiplied by the pixel scale, and ``k = kron_params[0]``.
    """
    r_k = np.fmax(np.asarray(kron_radius_arcsec, float) / pixel_scale_arcsec, kron_params[1])
    return kron_params[0] * r_k * np.sqrt(np.asarray(semimajor_arcsec, float) * np.asarray(semiminor_arcsec, float))


def correct_kron(col: dict[str, np.ndarray], keys: Sequence[str], curves: Mapping[str, EncircledEnergy],
                 pixel_scale_arcsec: float, kron_params: Sequence[float] = DEFAULT_KRON_PARAMS) -> dict[str, float]:
    """Divide each band's Kron flux (and error) by the PSF's EE within the object's Kron aperture, in place.

    ``abmag`` follows the flux; its error (relative) does not change. Returns each corrected band's median factor
    (for provenance); bands without a curve or Kron columns are left as romancal gave them.
    """
    needed = ("kron_radius", "semimajor", "semiminor")
    if not all(k in col for k in needed):
        return {}
    radius = kron_aperture_radius(col["kron_radius"], col["semimajor"], col["semiminor"], pixel_scale_arcsec,
                                  kron_params)
    out: dict[str, float] = {}
    for k in keys:
        curve = curves.get(k.upper())
        flux = col.get(f"kron_{k}_flux")
        if curve is None or flux is None:
            continue
        ee = curve(radius)
        factor = np.where(np.isfinite(ee) & (ee > 0), 1.0 / ee, np.nan)
        col[f"kron_{k}_flux"] = flux * factor
        if f"kron_{k}_flux_err" in col:
            col[f"kron_{k}_flux_err"] = col[f"kron_{k}_flux_err"] * factor
        if f"kron_{k}_abmag" in col:
            with np.errstate(divide="ignore", invalid="ignore"):
                col[f"kron_{k}_abmag"] = col[f"kron_{k}_abmag"] - 2.5 * np.log10(factor)
        ok = np.isfinite(factor)
        out[k] = round(float(np.median(factor[ok])), 4) if ok.any() else float("nan")
    return out


def psf_aperture_factors(col: dict[str, np.ndarray], keys: Sequence[str], ee04: Mapping[str, float],
                         min_stars: int = 5, min_snr: float = 50.0) -> dict[str, tuple[float, float]]:
    """Per band, median of (0.4" aperture flux / EE(0.4")) / PSF flux over bright unflagged point sources, and the
    relative scatter of that ratio beyond the statistical errors (the PSF model's systematic error).

    romancal's L3 PSF model (the ePSF convolved with boxes for the drizzle drop and the L3 pixel) is not the co-add's
    exact PSF; tying the PSF fluxes to the curve of growth of the skycell's own stars removes that bias, as an
    aperture correction does. (1, 0) where fewer than ``min_stars`` stars qualify.
    """
    out = {}
    n = len(next(iter(col.values()))) if col else 0
    for k in keys:
        f, e, a = (col.get(name, np.full(n, np.nan)) for name in (f"psf_{k}_flux", f"psf_{k}_flux_err",
                                                                    f"aper04_{k}_flux"))
        ee = ee04.get(k.upper())
        ok = ((col.get(f"is_extended_{k}", np.ones(n)) == 0) & (col.get(f"psf_flags_{k}", np.ones(n)) == 0)
              & (f > 0) & (e > 0) & np.isfinite(a))
        with np.errstate(divide="ignore", invalid="ignore"):
            ok &= f / e >= min_snr
        if ee and ok.sum() >= min_stars:
            ratio = a[ok] / ee / f[ok]
            med = float(np.median(ratio))
            # The stars' scatter beyond their statistical errors: the PSF model's systematic error (reported).
            excess = (1.4826 * np.median(np.abs(ratio - med))) ** 2 - np.median((e[ok] / f[ok]) ** 2)
            out[k] = (med, float(np.sqrt(max(0.0, excess))))
        else:
            out[k] = (1.0, 0.0)
    return out
