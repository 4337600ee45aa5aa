"""Saturated bright stars on the sky, from the SATURATED bits of L2 images' DQ arrays.

Shared by the catalog (bright-star cores and halo masks of a skycell) and difference imaging (detections on a
bright star's residuals are masked), so both mask the same stars. A star whose core lies just off a skycell still
throws its halo onto it, which is why the stars come from the L2s rather than from holes in one co-add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SkyStars:
    """Bright stars found elsewhere (saturated cores of the L2 images): sky position and core radius (arcsec)."""

    ra: np.ndarray
    dec: np.ndarray
    core_radius_arcsec: np.ndarray


def saturated_in_l2(dq: np.ndarray, wcs: Any, min_px: int = 6, pixel_arcsec: float = 0.11) -> SkyStars:
    """Saturated cores of one L2 image (clusters of SATURATED pixels in its DQ) on the sky."""
    from scipy import ndimage

    sat = (np.asarray(dq) & 2) != 0  # roman_datamodels.dqflags.pixel.SATURATED
    lab, n = ndimage.label(sat)
    if n == 0:
        return SkyStars(np.empty(0), np.empty(0), np.empty(0))
    area = np.bincount(lab.ravel(), minlength=n + 1)
    big = np.flatnonzero(area >= min_px)
    big = big[big > 0]
    if len(big) == 0:
        return SkyStars(np.empty(0), np.empty(0), np.empty(0))
    cy, cx = (np.asarray(v, float) for v in zip(*ndimage.center_of_mass(sat, lab, big), strict=True))
    ra, dec = (np.asarray(v, float) for v in wcs.pixel_to_world_values(cx, cy))
    return SkyStars(ra % 360.0, dec, np.sqrt(area[big] / np.pi) * pixel_arcsec)


def merge_stars(parts: Sequence[SkyStars], radius_arcsec: float = 1.0) -> SkyStars:
    """One entry per star seen in several images (the largest core)."""
    ra = np.concatenate([p.ra for p in parts]) if parts else np.empty(0)
    dec = np.concatenate([p.dec for p in parts]) if parts else np.empty(0)
    r = np.concatenate([p.core_radius_arcsec for p in parts]) if parts else np.empty(0)
    keep: list[int] = []
    for i in np.argsort(-r, kind="stable"):
        cosd = np.cos(np.radians(dec[i]))
        if all(np.hypot((ra[i] - ra[j]) * cosd, dec[i] - dec[j]) * 3600 > radius_arcsec for j in keep):
            keep.append(int(i))
    k = np.asarray(sorted(keep), dtype=int)
    return SkyStars(ra[k], dec[k], r[k])


def star_mask(x: np.ndarray, y: np.ndarray, stars: SkyStars, wcs: Any, pixel_arcsec: float, per_core: float = 10.0,
              min_arcsec: float = 3.0, max_arcsec: float = 20.0) -> np.ndarray:
    """Which pixel positions ``(x, y)`` of a grid lie within the mask radius of a saturated star.

    The radius is ``per_core`` times the star's core radius, clipped to ``[min_arcsec, max_arcsec]`` — the
    catalog's bright-star mask (:class:`romanarchive.catalog.config.CatalogConfig` ``mask_radius_per_hole_px``,
    ``mask_min_radius_arcsec``, ``mask_max_radius_arcsec``).
    """
    out = np.zeros(len(x), bool)
    if not len(stars.ra) or not len(x):
        return out
    inv = (wcs.invert(stars.ra, stars.dec, with_bounding_box=False) if hasattr(wcs, "invert")
           else wcs.world_to_pixel_values(stars.ra, stars.dec))
    sx, sy = (np.atleast_1d(np.asarray(v, float)) for v in inv)
    r = np.clip(per_core * stars.core_radius_arcsec, min_arcsec, max_arcsec) / pixel_arcsec
    for k in np.flatnonzero(np.isfinite(sx) & np.isfinite(sy)):
        out |= (x - sx[k]) ** 2 + (y - sy[k]) ** 2 <= r[k] ** 2
    return out
