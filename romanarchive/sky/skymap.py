"""The archive's tessellation (:mod:`romanarchive.sky.skycells`) as a rad ``skycells`` reference file.

romancal's skycell machinery (``romancal.skycell.skymap``: ``SkyCells.from_names``, ``cores_containing``, the
source catalogue's ``flagged_spatial_id``) reads a *sky map*, a ``SkycellsRefModel`` file that it would otherwise
fetch from CRDS.  :func:`write_skymap` writes the archive's own tessellation in that schema, for the projection
regions a set of skycells, positions or footprints touches (the whole sky would be ~50 million cells), and
:func:`configure_skymap` points ``romancal.skycell.skymap.SKYMAP`` at it.  An operator with an official sky map
sets romancal's own ``SKYMAP_PATH`` environment variable to it; :func:`configure_skymap` then uses that file and
writes nothing.

How the tessellation maps onto the schema
-----------------------------------------
* ``projection_regions`` holds every one of the 49,152 HEALPix regions, in order, so that ``index`` (romancal uses
  it as the row number) is the region number of the archive's names; regions without cells in the file have
  ``skycell_start == skycell_end``.  ``ra_min``..``dec_max`` are the lon/lat bounds of the HEALPix cell (romancal
  assumes lon/lat boxes; a HEALPix cell is not one, see below).
* ``skycells`` holds all cells of the chosen regions, region by region.  ``nxy_skycell`` is 2048,
  ``skycell_border_pixels`` 128 (neighbours overlap by twice the 64-pixel margin, so romancal's core is the same
  1920² as the archive's) and ``pixel_scale`` 0.055".
* **Parity.**  romancal builds every skycell WCS with ``cdelt = +pixel_scale`` on both axes and a pure rotation
  (``orientat``), so RA grows with x (east right); the archive's cells are east left (``CD1_1 < 0``), as FITS
  images usually are.  The schema has no parity field, so the file describes each cell in x-mirrored pixels:
  romancal's ``(x, y)`` is the archive's ``(2047 - x, y)``.  Sky positions, corners, centres and core membership
  agree exactly (the core is symmetric); pixel coordinates from romancal's ``SkyCells.wcs`` must be mirrored in x
  to address the archive's L3 arrays (:func:`to_archive_pixels`).
* ``orientat`` of a cell is the angle of north from +y towards +x in romancal's (mirrored) frame, as in the
  CRDS-style files; regions have ``orientat = 0`` (north up at the tangent point).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u

from romanarchive.sky import skycells as sc

__all__ = [
    "BORDER_PIXELS",
    "SKYMAP_ENV",
    "configure_skymap",
    "regions_for",
    "to_archive_pixels",
    "use_skymap",
    "write_skymap",
]

#: romancal's own environment variable for its sky map file: an operator's official map, if set.
SKYMAP_ENV = "SKYMAP_PATH"
#: Pixels two neighbouring cells share along each axis (romancal takes half of it as the core margin).
BORDER_PIXELS = 2 * sc.MARGIN
#: Bumped when the file layout changes, so cached files are rewritten.
FORMAT_VERSION = 1

_N = sc.SHAPE[0]  # pixels per skycell side
_SPAN = sc.GRID * sc.CORE  # pixels across a region's grid of cores
_ORIGIN = sc.GRID // 2 * sc.CORE - 0.5  # 0-based region pixel of the tangent point (archive frame)
_SCALE_DEG = sc.PIXEL_SCALE_ARCSEC / 3600.0


def _deproject(ra0: float, dec0: float, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`romanarchive.sky.skycells._project`: archive region pixels -> (ra, dec) degrees."""
    xi = np.radians((_ORIGIN - np.asarray(x, float)) * _SCALE_DEG)
    eta = np.radians((np.asarray(y, float) - _ORIGIN) * _SCALE_DEG)
    d0 = np.radians(dec0)
    den = np.cos(d0) - eta * np.sin(d0)
    ra = (ra0 + np.degrees(np.arctan2(xi, den))) % 360.0
    dec = np.degrees(np.arctan2(np.sin(d0) + eta * np.cos(d0), np.hypot(xi, den)))
    return ra, dec


@lru_cache(maxsize=4096)
def _cells_of(region: int) -> tuple[tuple[int, int], ...]:
    """(i, j) of the cells in use in a region, row-major in j then i."""
    outline = sc._region_outline(region)
    lo = np.floor((outline.min(axis=0) + 0.5) / sc.CORE).astype(int)
    hi = np.floor((outline.max(axis=0) + 0.5) / sc.CORE).astype(int)
    return tuple(
        (i, j)
        for j in range(max(lo[1], 0), min(hi[1], sc.GRID - 1) + 1)
        for i in range(max(lo[0], 0), min(hi[0], sc.GRID - 1) + 1)
        if sc._in_use(region, i, j)
    )


def regions_for(names: Iterable[str] = (), positions: tuple[np.ndarray, np.ndarray] | None = None,
                footprints: Iterable[Sequence[tuple[float, float]] | str] = ()) -> list[int]:
    """Projection regions of the skycells that some names, positions or footprints touch.

    Parameters
    ----------
    names
        Skycell names (``p<region>x<i>y<j>``).
    positions
        ``(ra, dec)`` arrays in degrees: the regions of every skycell containing each position (home cell and
        the cells whose margins reach it).
    footprints
        Polygons (``[(ra, dec), ...]`` or pgsphere literals): the regions of every skycell overlapping them.

    Returns
    -------
    list of int
        Sorted region numbers.
    """
    regions = {sc.skycell(n).region for n in names}
    if positions is not None:
        ra, dec = (np.atleast_1d(np.asarray(a, float)) for a in positions)
        for a, d in zip(ra, dec, strict=True):
            regions.update(c.region for c in sc.skycells_containing(float(a), float(d)))
    for fp in footprints:
        regions.update(c.region for c in sc.skycells_for_footprint(fp))
    return sorted(regions)


def _region_bounds() -> np.ndarray:
    """(ra_min, ra_max, dec_min, dec_max) of every HEALPix region, shape (n, 4)."""
    import cdshealpix.nested as hp

    n = 12 * 4**sc.REGION_ORDER
    cells = np.arange(n, dtype=np.uint64)
    lon, lat = hp.vertices(cells, sc.REGION_ORDER, step=4)
    lon, lat = lon.to_value(u.deg), lat.to_value(u.deg)
    clon, clat = hp.healpix_to_lonlat(cells, sc.REGION_ORDER)
    clon = clon.to_value(u.deg)
    # Longitudes relative to the centre (handles the 0/360 seam); a vertex on a pole has no longitude.
    rel = (lon - clon[:, None] + 180.0) % 360.0 - 180.0
    rel = np.where(np.abs(lat) > 90.0 - 1e-9, np.nan, rel)
    ra_min = (clon + np.nanmin(rel, axis=1)) % 360.0
    ra_max = (clon + np.nanmax(rel, axis=1)) % 360.0
    return np.stack([ra_min, ra_max, lat.min(axis=1), lat.max(axis=1)], axis=1)


def _region_table(cell_ranges: dict[int, tuple[int, int]]) -> np.ndarray:
    import cdshealpix.nested as hp
    from roman_datamodels import datamodels as rdm

    n = 12 * 4**sc.REGION_ORDER
    dtype = rdm.SkycellsRefModel.create_fake_data().projection_regions.dtype
    table = np.zeros(n, dtype=dtype)
    lon, lat = hp.healpix_to_lonlat(np.arange(n, dtype=np.uint64), sc.REGION_ORDER)
    table["index"] = np.arange(n)
    table["ra_tangent"], table["dec_tangent"] = lon.to_value(u.deg), lat.to_value(u.deg)
    bounds = _region_bounds()
    table["ra_min"], table["ra_max"], table["dec_min"], table["dec_max"] = bounds.T
    table["orientat"] = 0.0
    # Region frame in romancal's (x-mirrored) pixels, wide enough for the edge cells' margins.
    table["x_tangent"] = _SPAN - 1 + sc.MARGIN - _ORIGIN
    table["y_tangent"] = _ORIGIN + sc.MARGIN
    table["nx"] = table["ny"] = _SPAN + 2 * sc.MARGIN
    start = 0
    for region in range(n):
        first, count = cell_ranges.get(region, (start, 0))
        table["skycell_start"][region], table["skycell_end"][region] = first, first + count
        start = first + count
    return table


def _cell_table(regions: Sequence[int]) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    from roman_datamodels import datamodels as rdm

    dtype = rdm.SkycellsRefModel.create_fake_data().skycells.dtype
    rows: list[np.ndarray] = []
    ranges: dict[int, tuple[int, int]] = {}
    start = 0
    for region in regions:
        ij = np.array(_cells_of(region), dtype=float).reshape(-1, 2)
        ra0, dec0 = sc._region_centre(region)
        t = np.zeros(len(ij), dtype=dtype)
        t["name"] = [sc.Skycell(region, int(i), int(j)).name for i, j in ij]
        x0, y0 = ij[:, 0] * sc.CORE - sc.MARGIN, ij[:, 1] * sc.CORE - sc.MARGIN  # cell pixel 0 in region pixels
        centre = (_N - 1) / 2
        t["ra_center"], t["dec_center"] = _deproject(ra0, dec0, x0 + centre, y0 + centre)
        # romancal's corners 1..4 are its pixels (-0.5,-0.5), (n-0.5,-0.5), (n-0.5,n-0.5), (-0.5,n-0.5): with
        # x mirrored, the archive's (n-0.5,-0.5), (-0.5,-0.5), (-0.5,n-0.5), (n-0.5,n-0.5).
        for k, (cx, cy) in enumerate([(_N - 0.5, -0.5), (-0.5, -0.5), (-0.5, _N - 0.5), (_N - 0.5, _N - 0.5)], 1):
            t[f"ra_corn{k}"], t[f"dec_corn{k}"] = _deproject(ra0, dec0, x0 + cx, y0 + cy)
        # Tangent point in each cell's (mirrored) pixels.
        t["x_tangent"] = _N - 1 - (_ORIGIN - x0)
        t["y_tangent"] = _ORIGIN - y0
        # North at the centre, from +y towards +x in the mirrored frame: a step north, projected.
        x_c, y_c, _ = sc._project(ra0, dec0, t["ra_center"], np.minimum(t["dec_center"] + 1e-4, 90.0))
        x_n, y_n, _ = sc._project(ra0, dec0, t["ra_center"], t["dec_center"])
        t["orientat"] = np.degrees(np.arctan2(-(x_c - x_n), y_c - y_n))
        ranges[region] = (start, len(t))
        start += len(t)
        rows.append(t)
    cells = np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)
    return cells, ranges


def write_skymap(path: Path | str, regions: Iterable[int]) -> Path:
    """Write the archive's tessellation for ``regions`` as a ``SkycellsRefModel`` ASDF file.

    Parameters
    ----------
    path
        Output file (written atomically).
    regions
        HEALPix region numbers (order :data:`romanarchive.sky.skycells.REGION_ORDER`) whose cells to include.

    Returns
    -------
    Path
        The file.
    """
    from astropy.time import Time
    from roman_datamodels import datamodels as rdm

    regions = sorted({int(r) for r in regions})
    if any(not 0 <= r < 12 * 4**sc.REGION_ORDER for r in regions):
        raise ValueError("region numbers must be HEALPix order-6 nested indices")
    cells, ranges = _cell_table(regions)
    model = rdm.SkycellsRefModel.create_fake_data()
    model.projection_regions = _region_table(ranges)
    model.skycells = cells
    meta = model.meta
    meta.reftype = "SKYCELLS"
    meta.pedigree = "GROUND"  # the only value the schema allows
    meta.description = (f"romanarchive sky tessellation (HEALPix order-{sc.REGION_ORDER} projection regions, "
                        f"{sc.CORE}-pixel cores, x mirrored for romancal's east-right parity): "
                        f"{len(cells)} skycells of {len(regions)} regions")
    meta.author = "romanarchive"
    meta.useafter = Time("2020-01-01T00:00:00")
    meta.telescope = "ROMAN"
    meta.origin = "romanarchive"
    meta.instrument = {"name": "WFI"}
    meta.nxy_skycell = _N
    meta.skycell_border_pixels = BORDER_PIXELS
    meta.pixel_scale = sc.PIXEL_SCALE_ARCSEC
    model.validate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part.asdf")
    model.save(tmp)
    tmp.replace(path)
    return path


def use_skymap(path: Path | str) -> Path:
    """Point romancal's global sky map (``romancal.skycell.skymap.SKYMAP``) at ``path``; returns it."""
    import romancal.skycell.skymap as rsm

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sky map {path} does not exist")
    if rsm.SKYMAP.path is None or Path(rsm.SKYMAP.path) != path:
        rsm.SKYMAP.path = path  # the setter drops the loaded model
    return path


def _default_folder() -> Path:
    from romanarchive.config import load_settings

    return load_settings().home / "skymap"


def configure_skymap(folder: Path | str | None = None, *, names: Iterable[str] = (),
                     positions: tuple[np.ndarray, np.ndarray] | None = None,
                     footprints: Iterable[Sequence[tuple[float, float]] | str] = (),
                     official: Path | str | None = None) -> Path:
    """Make romancal's skycell machinery work offline for some of the archive's skycells.

    An official sky map (``official``, else ``$SKYMAP_PATH``) is used as it is.  Otherwise the archive's
    tessellation for the regions that ``names``/``positions``/``footprints`` touch is written once to
    ``folder`` (default ``$ROMANARCHIVE_HOME/skymap``), under a name derived from the regions, and used.

    Returns
    -------
    Path
        The sky map file romancal now reads.
    """
    official = official or os.environ.get(SKYMAP_ENV) or None
    if official:
        return use_skymap(official)
    regions = regions_for(names, positions, footprints)
    if not regions:
        raise ValueError("configure_skymap needs skycell names, positions or footprints")
    key = hashlib.sha256(repr((FORMAT_VERSION, sc.REGION_ORDER, sc.CORE, sc.MARGIN, sc.GRID,
                               sc.PIXEL_SCALE_ARCSEC, regions)).encode()).hexdigest()[:12]
    path = Path(folder) if folder is not None else _default_folder()
    path = path / f"romanarchive_skymap_{key}.asdf"
    if not path.exists():
        write_skymap(path, regions)
    return use_skymap(path)


def to_archive_pixels(x: Any, y: Any) -> tuple[Any, Any]:
    """romancal's pixel coordinates in a skycell of a file from :func:`write_skymap` -> the archive's L3 pixels."""
    return _N - 1 - np.asarray(x, float), np.asarray(y, float)
