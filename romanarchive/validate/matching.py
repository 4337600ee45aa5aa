"""The simulation's truth catalogue and positional matching on the sphere.

The truth is the ``truth.ecsv`` that :mod:`romanarchive.sim.truth` writes (one row per source: ``id``, ``kind``,
``ra``, ``dec`` at ``ref_mjd``, ``mag_<FILTER>`` AB, motion and variability parameters) and, when present, the
``exposure_truth.ecsv`` next to it (one row per source and exposure, with the position at that exposure). Moving
objects leave a track across the survey's co-adds, so a catalog row anywhere on the track is real: their positions
at every exposure count as truth positions for purity.

Matching uses unit vectors in a k-d tree (chord length ≈ angle below a degree): exact on the sphere, no wrap at
RA = 0, and fast for the ~10⁵ rows of a large catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

#: AB magnitude of 1 nJy: m = 31.4 - 2.5 log10(f / nJy).
AB_ZP_NJY = 31.4
#: Truth kinds that are point sources with a constant flux (the photometry and astrometry sample).
CONSTANT_STARS = ("star",)
#: Truth kinds that are stars (classification sample); ``gaia`` stars saturate and are left out.
STARS = ("star", "variable")
ARCSEC = 1.0 / 3600.0


class TruthError(Exception):
    """The truth catalogue is missing or unreadable."""


def mag_to_njy(mag: np.ndarray) -> np.ndarray:
    """AB magnitude -> flux in nJy (``inf`` magnitude -> 0)."""
    return np.asarray(10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - AB_ZP_NJY)))


@dataclass
class Truth:
    """A simulation's truth: the source table and the extra positions of moving objects along their tracks."""

    table: Table
    #: (ra, dec, row index into ``table``) of moving objects at every exposure (empty without exposure truth).
    track_ra: np.ndarray
    track_dec: np.ndarray
    track_row: np.ndarray
    path: Path
    #: ``exposure_truth.ecsv`` (true flux of every source in every exposure, maggies), or ``None``.
    exposures: Table | None = None

    @property
    def filters(self) -> list[str]:
        """Filters with a ``mag_<FILTER>`` column, in table order."""
        return [c[4:] for c in self.table.colnames if c.startswith("mag_")]

    @property
    def ref_filter(self) -> str:
        """The simulation's reference (detection) filter: ``meta['ref_filter']`` or the reddest."""
        ref = self.table.meta.get("ref_filter")
        return str(ref) if ref in self.filters else self.filters[-1]

    @property
    def ra(self) -> np.ndarray:
        return np.asarray(self.table["ra"], dtype=float)

    @property
    def dec(self) -> np.ndarray:
        return np.asarray(self.table["dec"], dtype=float)

    @property
    def kind(self) -> np.ndarray:
        return np.asarray(self.table["kind"]).astype(str)

    def mag(self, band: str) -> np.ndarray:
        """AB magnitude in ``band`` (upper or lower case); NaN when the simulation has no such filter."""
        name = f"mag_{band.upper()}"
        return np.asarray(self.table[name], dtype=float) if name in self.table.colnames else \
            np.full(len(self.table), np.nan)

    def flux_njy(self, band: str) -> np.ndarray:
        """Mean (constant, variables) or peak (transients) flux in nJy."""
        return mag_to_njy(self.mag(band))

    def all_positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every truth position (sources at their reference epoch, moving objects along their tracks) and the
        truth row each belongs to."""
        n = len(self.table)
        return (np.concatenate([self.ra, self.track_ra]), np.concatenate([self.dec, self.track_dec]),
                np.concatenate([np.arange(n), self.track_row]))


def load_truth(path: Path) -> Truth:
    """Read ``truth.ecsv`` (and ``exposure_truth.ecsv`` beside it, when there).

    Parameters
    ----------
    path
        The truth file, or the survey folder (``truth/truth.ecsv`` inside it) or its ``truth`` folder.

    Raises
    ------
    TruthError
        When no truth file is found or it lacks the columns the validation needs.
    """
    path = Path(path)
    for candidate in (path, path / "truth.ecsv", path / "truth" / "truth.ecsv"):
        if candidate.is_file():
            path = candidate
            break
    else:
        raise TruthError(f"no truth catalogue at {path} (expected truth/truth.ecsv of a simulated survey)")
    table = Table.read(path, format="ascii.ecsv")
    missing = {"id", "kind", "ra", "dec"} - set(table.colnames)
    if missing or not any(c.startswith("mag_") for c in table.colnames):
        raise TruthError(f"{path} is not a romanarchive truth table (missing {sorted(missing) or 'mag_<FILTER>'})")
    track_ra = track_dec = np.empty(0)
    track_row = np.empty(0, dtype=int)
    exposure = path.parent / "exposure_truth.ecsv"
    moving = np.flatnonzero(np.asarray(table["kind"]).astype(str) == "moving")
    ex = Table.read(exposure, format="ascii.ecsv") if exposure.is_file() else None
    if ex is not None and len(moving):
        row_of = {int(table["id"][i]): i for i in moving}
        sel = np.isin(np.asarray(ex["id"]), list(row_of))
        track_ra = np.asarray(ex["ra"][sel], dtype=float)
        track_dec = np.asarray(ex["dec"][sel], dtype=float)
        track_row = np.array([row_of[int(i)] for i in ex["id"][sel]], dtype=int)
    return Truth(table, track_ra, track_dec, track_row, path, ex)


# --------------------------------------------------------------------------- matching


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) of positions in degrees."""
    a, d = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    return np.column_stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])


def _chord(radius_arcsec: float) -> float:
    return float(2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0))


def separation_arcsec(ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray) -> np.ndarray:
    """Angular separation in arcsec (element-wise)."""
    chord = np.linalg.norm(unit_vectors(ra1, dec1) - unit_vectors(ra2, dec2), axis=-1)
    return np.asarray(np.degrees(2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))) * 3600.0)


def nearest(ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position, the index of the nearest reference position and the separation in arcsec.

    With no reference positions the index is -1 and the separation infinite.
    """
    n = len(np.atleast_1d(ra))
    if n == 0 or len(np.atleast_1d(ref_ra)) == 0:
        return np.full(n, -1, dtype=int), np.full(n, np.inf)
    dist, idx = cKDTree(unit_vectors(ref_ra, ref_dec)).query(unit_vectors(ra, dec))
    sep = np.degrees(2.0 * np.arcsin(np.clip(dist / 2.0, 0.0, 1.0))) * 3600.0
    return np.asarray(idx, dtype=int), np.asarray(sep)


def neighbours(ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray,
               radius_arcsec: float) -> list[list[int]]:
    """For each position, the indices of the reference positions within ``radius_arcsec``."""
    if len(np.atleast_1d(ra)) == 0:
        return []
    if len(np.atleast_1d(ref_ra)) == 0:
        return [[] for _ in range(len(np.atleast_1d(ra)))]
    tree = cKDTree(unit_vectors(ref_ra, ref_dec))
    return [sorted(x) for x in tree.query_ball_point(unit_vectors(ra, dec), _chord(radius_arcsec))]


def count_within(ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray,
                 radius_arcsec: float) -> np.ndarray:
    """For each position, how many reference positions lie within ``radius_arcsec``."""
    return np.array([len(x) for x in neighbours(ra, dec, ref_ra, ref_dec, radius_arcsec)], dtype=int)


def pairs_within(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float) -> np.ndarray:
    """Pairs (i, j), i < j, of distinct positions closer than ``radius_arcsec``; shape (n_pairs, 2)."""
    if len(np.atleast_1d(ra)) < 2:
        return np.empty((0, 2), dtype=int)
    pairs = cKDTree(unit_vectors(ra, dec)).query_pairs(_chord(radius_arcsec), output_type="ndarray")
    return np.asarray(pairs, dtype=int).reshape(-1, 2)


def isolated(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float) -> np.ndarray:
    """True for positions with no other position within ``radius_arcsec``."""
    return count_within(ra, dec, ra, dec, radius_arcsec) <= 1


def offsets_mas(ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray) -> tuple[np.ndarray,
                                                                                                      np.ndarray]:
    """Position minus reference: (ΔRA·cos Dec, ΔDec) in mas (small offsets)."""
    dra = (np.asarray(ra, float) - np.asarray(ref_ra, float) + 180.0) % 360.0 - 180.0
    cosd = np.cos(np.radians(np.asarray(ref_dec, float)))
    return dra * cosd * 3.6e6, (np.asarray(dec, float) - np.asarray(ref_dec, float)) * 3.6e6
