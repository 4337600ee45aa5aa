"""HEALPix indexes of positions (nested scheme), as the archive stores them (order 29) and as matching buckets them."""

from __future__ import annotations

import astropy.units as u
import cdshealpix
import numpy as np

#: Order of the ``hpx`` columns: cells of ~0.4 milliarcsec.
ORDER = 29


def healpix_nested(ra: np.ndarray, dec: np.ndarray, order: int = ORDER) -> np.ndarray:
    """Nested HEALPix index of each (ra, dec) in degrees, as int64.

    Parameters
    ----------
    ra, dec
        Positions in degrees; ra is wrapped into [0, 360), dec must lie in [-90, 90].
    order
        HEALPix order (depth), 0 to 29.

    Returns
    -------
    numpy.ndarray
        int64 indexes.
    """
    ra = np.mod(np.asarray(ra, np.float64), 360.0)
    dec = np.asarray(dec, np.float64)
    if len(ra) == 0:
        return np.empty(0, np.int64)
    idx = cdshealpix.lonlat_to_healpix(ra * u.deg, dec * u.deg, order)
    return np.asarray(idx, np.int64)


def check_positions(ra: np.ndarray, dec: np.ndarray, what: str) -> None:
    """Raise `ValueError` naming ``what`` when a position is not finite or dec is outside [-90, 90]."""
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        raise ValueError(f"{what}: {int(bad.sum())} rows have no finite RA/Dec (first at row {int(np.argmax(bad))})")
    out = (np.abs(dec) > 90) | (ra < -360) | (ra > 720)
    if out.any():
        i = int(np.argmax(out))
        raise ValueError(f"{what}: {int(out.sum())} rows have RA/Dec out of range (row {i}: ra={ra[i]!r}, "
                         f"dec={dec[i]!r}; dec must be within [-90, 90] degrees)")
