"""The archive's sky tessellation: skycells, the fixed pixel grids that L3 mosaics are co-added onto.

romancal 1.1 ships a skycell module (``romancal.skycell``) but its sky map is a CRDS reference file that has to be
downloaded, so the archive defines its own tiling in the same spirit (projection regions split into square cells):

* **Projection regions** are the 49,152 HEALPix cells of order 6 (nested; about 0.92 deg across). Each region has a
  gnomonic (TAN) projection whose tangent point is its HEALPix centre, north up, east left.
* Each region's tangent plane is cut into a grid of ``GRID`` x ``GRID`` square **cells** of ``CORE`` pixels, centred
  on the tangent point. ``GRID`` is large enough for every order-6 HEALPix cell (the largest projects to 0.80 deg
  from its centre; the grid reaches 0.82 deg). Only cells whose core touches their region's HEALPix cell exist.
* A **skycell** is a cell's core plus a ``MARGIN``-pixel overlap margin on each side: its image is
  ``SHAPE`` = 2048 x 2048 pixels. Neighbouring skycells of one region share the projection, so their overlaps are
  pixel-aligned; across region borders the cells overlap because each region's cells reach past its border.
* The pixel scale is ``PIXEL_SCALE_ARCSEC`` = 0.055", half the WFI's 0.11" pixel (as Roman's L3 products): dithered
  inputs then recover resolution lost to the undersampled PSF. A skycell is 1.88' on a side (core 1.76').

Every sky position has one **home** skycell (the cell of its HEALPix region whose core contains it) and lies in the
margins of up to eight more. Names are ``p<region:05d>x<i:02d>y<j:02d>``, e.g. ``p24301x27y13``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from astropy import units as u

from romanarchive.sky.footprint import _counter_clockwise, wcs_corners

#: HEALPix order of the projection regions.
REGION_ORDER = 6
#: Pixel scale of every skycell, arcsec per pixel (half an L2 pixel).
PIXEL_SCALE_ARCSEC = 0.055
#: Side of a cell's core, pixels.
CORE = 1920
#: Overlap margin on each side, pixels.
MARGIN = 64
#: Cells per side of a region's grid.
GRID = 56
#: Shape (ny, nx) of every skycell image.
SHAPE = (CORE + 2 * MARGIN, CORE + 2 * MARGIN)

_N_REGIONS = 12 * 4**REGION_ORDER
_NAME = re.compile(r"^p(\d{5})x(\d{2})y(\d{2})$")
_SCALE_DEG = PIXEL_SCALE_ARCSEC / 3600.0


@lru_cache(maxsize=65536)
def _region_centre(region: int) -> tuple[float, float]:
    import cdshealpix.nested as hp

    lon, lat = hp.healpix_to_lonlat(np.array([region], dtype=np.uint64), REGION_ORDER)
    return float(lon.to_value(u.deg)[0]), float(lat.to_value(u.deg)[0])


def _project(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gnomonic projection onto the region's grid: (X, Y) 0-based region pixels, and cos(distance)."""
    a0, d0 = np.radians(ra0), np.radians(dec0)
    a, d = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.degrees(np.cos(d) * np.sin(a - a0) / cosc)
        eta = np.degrees((np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc)
    # East is to the left (pixel x grows westwards); the tangent point is the corner at GRID/2 cells.
    origin = GRID // 2 * CORE - 0.5
    return origin - xi / _SCALE_DEG, origin + eta / _SCALE_DEG, cosc


@lru_cache(maxsize=4096)
def _region_outline(region: int) -> np.ndarray:
    """The region's HEALPix boundary (sampled) in its own grid pixels, shape (n, 2)."""
    import cdshealpix.nested as hp

    lon, lat = hp.vertices(np.array([region], dtype=np.uint64), REGION_ORDER, step=8)
    ra0, dec0 = _region_centre(region)
    x, y, _ = _project(ra0, dec0, lon.to_value(u.deg)[0], lat.to_value(u.deg)[0])
    return np.stack([x, y], axis=1)


def _overlap(poly_a: np.ndarray, poly_b: np.ndarray) -> bool:
    """Whether the convex hulls of two point sets (n, 2) intersect (separating axis test)."""
    for poly in (poly_a, poly_b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
        for nrm in normals:
            if not np.any(nrm):
                continue
            pa, pb = poly_a @ nrm, poly_b @ nrm
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of (n, 2) points, so the separating axis test is exact for it."""
    pts = sorted(map(tuple, np.asarray(points, dtype=float)))
    if len(pts) <= 2:
        return np.asarray(pts)

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.asarray(lower[:-1] + upper[:-1])


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def _core_rect(i: int, j: int) -> np.ndarray:
    return _rect(i * CORE - 0.5, j * CORE - 0.5, (i + 1) * CORE - 0.5, (j + 1) * CORE - 0.5)


@lru_cache(maxsize=65536)
def _in_use(region: int, i: int, j: int) -> bool:
    return _overlap(_core_rect(i, j), _hull(_region_outline(region)))


@dataclass(frozen=True)
class Skycell:
    """One skycell: a ``SHAPE`` pixel TAN grid at ``PIXEL_SCALE_ARCSEC`` inside a HEALPix projection region.

    Attributes
    ----------
    region
        Nested HEALPix index (order ``REGION_ORDER``) of the projection region.
    i, j
        Column and row of the cell in the region's grid.
    """

    region: int
    i: int
    j: int

    @property
    def name(self) -> str:
        """Stable name, ``p<region>x<i>y<j>``."""
        return f"p{self.region:05d}x{self.i:02d}y{self.j:02d}"

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (ny, nx)."""
        return SHAPE

    @property
    def pixel_scale(self) -> float:
        """Pixel scale in arcsec."""
        return PIXEL_SCALE_ARCSEC

    @cached_property
    def tangent(self) -> tuple[float, float]:
        """(ra, dec) of the projection region's tangent point, degrees."""
        return _region_centre(self.region)

    @property
    def crpix(self) -> tuple[float, float]:
        """FITS (1-based) reference pixel of the tangent point in this cell's image."""
        origin = GRID // 2 * CORE - 0.5
        return origin - (self.i * CORE - MARGIN) + 1.0, origin - (self.j * CORE - MARGIN) + 1.0

    @cached_property
    def wcs(self) -> Any:
        """Celestial astropy WCS of the cell image (TAN, north up, east left)."""
        from astropy.wcs import WCS

        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.cunit = ["deg", "deg"]
        w.wcs.crval = list(self.tangent)
        w.wcs.crpix = list(self.crpix)
        w.wcs.cd = np.array([[-_SCALE_DEG, 0.0], [0.0, _SCALE_DEG]])
        w.pixel_shape = (SHAPE[1], SHAPE[0])
        return w

    @cached_property
    def gwcs(self) -> Any:
        """The same projection as a gwcs (what L3 files carry in ``meta.wcs``)."""
        return tan_gwcs(self.tangent, self.crpix, _SCALE_DEG, SHAPE)

    def corners(self) -> list[tuple[float, float]]:
        """(ra, dec) of the image's outer pixel corners, counter-clockwise: the cell's footprint."""
        return wcs_corners(self.wcs, SHAPE)

    def core_corners(self) -> list[tuple[float, float]]:
        """(ra, dec) of the core's corners (the cell without its overlap margins)."""
        x = np.array([MARGIN, MARGIN + CORE, MARGIN + CORE, MARGIN]) - 0.5
        y = np.array([MARGIN, MARGIN, MARGIN + CORE, MARGIN + CORE]) - 0.5
        ra, dec = self.wcs.pixel_to_world_values(x, y)
        return _counter_clockwise([(float(a) % 360.0, float(b)) for a, b in zip(ra, dec, strict=True)])

    def centre(self) -> tuple[float, float]:
        """(ra, dec) of the image centre."""
        ra, dec = self.wcs.pixel_to_world_values((SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2)
        return float(ra) % 360.0, float(dec)


def tan_gwcs(tangent: tuple[float, float], crpix: tuple[float, float], scale_deg: float,
             shape: tuple[int, int]) -> Any:
    """A gwcs TAN projection, north up and east left.

    Parameters
    ----------
    tangent
        (ra, dec) of the tangent point, degrees.
    crpix
        FITS (1-based) pixel of the tangent point.
    scale_deg
        Pixel scale, degrees.
    shape
        Image shape (ny, nx), recorded as the bounding box.
    """
    from astropy import coordinates
    from astropy.modeling import models
    from gwcs import WCS, coordinate_frames

    transform = ((models.Shift(-(crpix[0] - 1)) & models.Shift(-(crpix[1] - 1)))
                 | (models.Scale(-scale_deg) & models.Scale(scale_deg))
                 | models.Pix2Sky_TAN()
                 | models.RotateNative2Celestial(tangent[0], tangent[1], 180.0))
    detector = coordinate_frames.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    sky = coordinate_frames.CelestialFrame(reference_frame=coordinates.ICRS(), name="world",
                                           unit=(u.deg, u.deg))
    w = WCS([(detector, transform), (sky, None)])
    w.bounding_box = ((-0.5, shape[1] - 0.5), (-0.5, shape[0] - 0.5))
    w.pixel_shape = (shape[1], shape[0])
    return w


def skycell(name: str) -> Skycell:
    """The skycell of a name.

    Raises
    ------
    ValueError
        When the name is malformed or names no cell of the tessellation.
    """
    m = _NAME.match(name.strip())
    if m is None:
        raise ValueError(f"{name!r} is not a skycell name (expected p<region:5 digits>x<i:2>y<j:2>)")
    region, i, j = (int(g) for g in m.groups())
    if region >= _N_REGIONS or i >= GRID or j >= GRID or not _in_use(region, i, j):
        raise ValueError(f"{name!r} names no skycell of the tessellation")
    return Skycell(region, i, j)


def home_skycells(ra: np.ndarray | float, dec: np.ndarray | float) -> list[Skycell]:
    """The home skycell of each position: the cell whose core contains it in its HEALPix region's grid."""
    import cdshealpix.nested as hp

    ra_a = np.atleast_1d(np.asarray(ra, dtype=float)) % 360.0
    dec_a = np.atleast_1d(np.asarray(dec, dtype=float))
    regions = np.asarray(hp.lonlat_to_healpix(ra_a * u.deg, dec_a * u.deg, REGION_ORDER), dtype=np.int64)
    out: list[Skycell] = []
    for r, a, d in zip(regions, ra_a, dec_a, strict=True):
        ra0, dec0 = _region_centre(int(r))
        x, y, _ = _project(ra0, dec0, np.array([a]), np.array([d]))
        i, j = int(np.floor((x[0] + 0.5) / CORE)), int(np.floor((y[0] + 0.5) / CORE))
        out.append(Skycell(int(r), i, j))
    return out


def home_names(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Names of the home skycells of many positions (vectorised :func:`home_skycells`, per HEALPix region)."""
    import cdshealpix.nested as hp

    ra_a = np.atleast_1d(np.asarray(ra, dtype=float)) % 360.0
    dec_a = np.atleast_1d(np.asarray(dec, dtype=float))
    out = np.empty(len(ra_a), dtype=object)
    if not len(ra_a):
        return out
    regions = np.asarray(hp.lonlat_to_healpix(ra_a * u.deg, dec_a * u.deg, REGION_ORDER), dtype=np.int64)
    for r in np.unique(regions):
        sel = regions == r
        x, y, _ = _project(*_region_centre(int(r)), ra_a[sel], dec_a[sel])
        i, j = np.floor((x + 0.5) / CORE).astype(int), np.floor((y + 0.5) / CORE).astype(int)
        out[sel] = [Skycell(int(r), int(a), int(b)).name for a, b in zip(i, j, strict=True)]
    return out


def in_home(ra: np.ndarray, dec: np.ndarray, names: np.ndarray | Sequence[object] | str) -> np.ndarray:
    """Whether each position lies in the core of the skycell named for it (its home cell).

    Overlapping skycells image the same sky; keeping only the home cell's measurement gives one row per object.
    Entries of ``names`` that are not skycell names (NULL, ``product:<id>``) count as home.
    """
    ra_a = np.atleast_1d(np.asarray(ra, dtype=float))
    given = np.full(len(ra_a), names, dtype=object) if isinstance(names, str) else np.asarray(names, dtype=object)
    is_cell = np.array([isinstance(n, str) and _NAME.match(n.strip()) is not None for n in given], dtype=bool)
    keep = np.ones(len(ra_a), dtype=bool)
    if is_cell.any():
        keep[is_cell] = home_names(ra_a[is_cell], np.atleast_1d(np.asarray(dec, dtype=float))[is_cell]) == \
            np.array([str(n).strip() for n in given[is_cell]], dtype=object)
    return keep


def skycells_containing(ra: float, dec: float) -> list[Skycell]:
    """Every skycell whose image (core and margins) contains the position, home cell first."""
    home = home_skycells(ra, dec)[0]
    rest = [c for c in skycells_for_footprint(_tiny_square(ra, dec)) if c != home]
    return [home, *rest]


def _tiny_square(ra: float, dec: float, half: float = 1e-7) -> list[tuple[float, float]]:
    """A square of ``half`` radians around a position, built with vectors so it is valid at the poles too."""
    a, d = np.radians(ra), np.radians(dec)
    p = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    east = np.array([-np.sin(a), np.cos(a), 0.0])
    north = np.cross(p, east)
    out = []
    for se, sn in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        v = p + half * (se * east + sn * north)
        v /= np.linalg.norm(v)
        out.append((float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(np.degrees(np.arcsin(v[2])))))
    return out


def skycells_for_footprint(corners: Sequence[tuple[float, float]] | str) -> list[Skycell]:
    """Every skycell whose image overlaps a footprint.

    Parameters
    ----------
    corners
        (ra, dec) vertices in degrees of a footprint no larger than a few degrees (its edges are great circles), or
        a pgsphere polygon literal ``{(ra d, dec d), ...}``.

    Returns
    -------
    list of Skycell
        Sorted by name.
    """
    import cdshealpix.nested as hp

    verts = np.asarray(parse_spoly(corners) if isinstance(corners, str) else corners, dtype=float)
    if verts.ndim != 2 or verts.shape[0] < 3:
        raise ValueError("a footprint needs at least three (ra, dec) vertices")
    ra, dec = verts[:, 0] % 360.0, verts[:, 1]
    found = np.asarray(hp.polygon_search(ra * u.deg, dec * u.deg, REGION_ORDER, flat=True)[0], dtype=np.int64)
    # Cells of a neighbouring region reach past its border, so look one region further.
    near = hp.neighbours(found.astype(np.uint64), REGION_ORDER).ravel()
    regions = np.unique(np.concatenate([found, near[near >= 0].astype(np.int64)]))
    out: list[Skycell] = []
    for region in regions:
        ra0, dec0 = _region_centre(int(region))
        x, y, cosc = _project(ra0, dec0, ra, dec)
        if np.any(cosc < 0.5):
            continue  # footprint far from this region's tangent point: cannot touch its cells
        # Great circles project to straight lines, so the projected vertices bound the footprint exactly.
        poly = _hull(np.stack([x, y], axis=1))
        lo_i = max(0, int(np.floor((x.min() + 0.5 - CORE - MARGIN) / CORE)) + 1)
        hi_i = min(GRID - 1, int(np.floor((x.max() + 0.5 + MARGIN) / CORE)))
        lo_j = max(0, int(np.floor((y.min() + 0.5 - CORE - MARGIN) / CORE)) + 1)
        hi_j = min(GRID - 1, int(np.floor((y.max() + 0.5 + MARGIN) / CORE)))
        for i in range(lo_i, hi_i + 1):
            for j in range(lo_j, hi_j + 1):
                full = _rect(i * CORE - MARGIN - 0.5, j * CORE - MARGIN - 0.5,
                             (i + 1) * CORE + MARGIN - 0.5, (j + 1) * CORE + MARGIN - 0.5)
                if _overlap(full, poly) and _in_use(int(region), i, j):
                    out.append(Skycell(int(region), i, j))
    return sorted(out, key=lambda c: c.name)


_SPOLY_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*d?\s*,\s*([-+0-9.eE]+)\s*d?\s*\)")


def parse_spoly(text: str) -> list[tuple[float, float]]:
    """Vertices of a pgsphere polygon literal in degrees (as ``spoly_literal`` writes, or radians without ``d``)."""
    pts = [(float(a), float(b)) for a, b in _SPOLY_POINT.findall(text)]
    if "d" not in text:
        pts = [(float(np.degrees(a)), float(np.degrees(b))) for a, b in pts]
    return pts
