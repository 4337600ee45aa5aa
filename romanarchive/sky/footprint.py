"""Footprints, HEALPix indices and pgsphere literals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy import units as u

HPX_ORDER = 29


def healpix29(ra: np.ndarray | float, dec: np.ndarray | float) -> np.ndarray:
    """HEALPix nested index at order 29 (the archive's spatial key).

    Parameters
    ----------
    ra, dec
        ICRS coordinates in degrees.

    Returns
    -------
    numpy.ndarray
        int64 indices.
    """
    import cdshealpix

    lon = np.atleast_1d(np.asarray(ra, dtype=float)) * u.deg
    lat = np.atleast_1d(np.asarray(dec, dtype=float)) * u.deg
    return np.asarray(cdshealpix.nested.lonlat_to_healpix(lon, lat, HPX_ORDER), dtype=np.int64)


def spoly_literal(corners: Sequence[tuple[float, float]]) -> str:
    """pgsphere polygon literal from (ra, dec) vertices in degrees."""
    if len(corners) < 3:
        raise ValueError("a polygon needs at least three vertices")
    return "{" + ",".join(f"({ra % 360.0:.9f}d,{dec:.9f}d)" for ra, dec in corners) + "}"


def _unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def centre_and_fov(corners: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """Centre (mean unit vector) and diameter in degrees of the circle around the vertices."""
    arr = np.asarray(corners, dtype=float)
    vec = _unit_vectors(arr[:, 0], arr[:, 1])
    c = vec.mean(axis=0)
    c /= np.linalg.norm(c)
    ra = float(np.degrees(np.arctan2(c[1], c[0])) % 360.0)
    dec = float(np.degrees(np.arcsin(np.clip(c[2], -1, 1))))
    radius = float(np.degrees(np.arccos(np.clip(vec @ c, -1, 1))).max())
    return ra, dec, 2.0 * radius


def wcs_corners(wcs: object, shape: tuple[int, int]) -> list[tuple[float, float]]:
    """Sky positions of the outer pixel corners of an image, counter-clockwise.

    Parameters
    ----------
    wcs
        A gwcs or astropy WCS with ``pixel_to_world_values`` (x, y) -> (ra, dec).
    shape
        Image shape (ny, nx).
    """
    ny, nx = shape
    x = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = wcs.pixel_to_world_values(x, y)  # type: ignore[attr-defined]
    pts = [(float(a) % 360.0, float(b)) for a, b in zip(np.atleast_1d(ra), np.atleast_1d(dec), strict=True)]
    return _counter_clockwise(pts)


def _counter_clockwise(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    # pgsphere accepts either orientation, but a consistent one keeps AREA() and DALI output predictable.
    ra0, dec0, _ = centre_and_fov(pts)
    x = [((a - ra0 + 180) % 360 - 180) * np.cos(np.radians(dec0)) for a, _ in pts]
    y = [b - dec0 for _, b in pts]
    signed = sum(x[i] * y[(i + 1) % len(pts)] - x[(i + 1) % len(pts)] * y[i] for i in range(len(pts)))
    # Sky images have RA increasing to the left: counter-clockwise on the sky is clockwise in (x=RA, y=Dec).
    return pts if signed < 0 else pts[::-1]
