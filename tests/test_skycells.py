"""The sky tessellation: names, full-sky coverage, overlaps and pixel scale."""

from __future__ import annotations

import numpy as np
import pytest

from romanarchive.sky import skycells as sc


def _random_sky(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    # Poles, the RA = 0/360 seam, the equator and HEALPix corner latitudes.
    edge_ra = np.array([0.0, 359.9999999, 0.0, 180.0, 10.0, 0.0, 45.0, 360.0 - 1e-9, 90.0, 270.0])
    edge_dec = np.array([0.0, 0.0, 90.0, -90.0, 89.99, 41.8103149, -41.8103149, -89.9999, 0.0, 66.7])
    return np.concatenate([ra, edge_ra]), np.concatenate([dec, edge_dec])


def test_every_position_has_a_home_cell_whose_core_contains_it() -> None:
    ra, dec = _random_sky(1500)
    cells = sc.home_skycells(ra, dec)
    tol = 1e-6  # positions exactly on a core edge may round to either side
    for cell, a, d in zip(cells, ra, dec, strict=True):
        assert 0 <= cell.i < sc.GRID and 0 <= cell.j < sc.GRID
        x, y = cell.wcs.world_to_pixel_values(a, d)
        lo, hi = sc.MARGIN - 0.5 - tol, sc.MARGIN + sc.CORE - 0.5 + tol
        assert lo <= x <= hi and lo <= y <= hi, (a, d, cell.name, x, y)


def test_names_round_trip_and_bad_names_fail() -> None:
    ra, dec = _random_sky(300, seed=3)
    for cell in sc.home_skycells(ra, dec):
        assert sc.skycell(cell.name) == cell
        assert len(cell.name) == 12
    with pytest.raises(ValueError, match="not a skycell name"):
        sc.skycell("x12")
    with pytest.raises(ValueError, match="names no skycell"):
        sc.skycell("p99999x00y00")
    with pytest.raises(ValueError, match="names no skycell"):
        sc.skycell("p00000x00y00")  # a corner of the grid outside its HEALPix region


def test_grid_reaches_past_every_region() -> None:
    import astropy.units as u
    import cdshealpix.nested as hp

    ipix = np.arange(12 * 4**sc.REGION_ORDER, dtype=np.uint64)[::97]
    lon, lat = hp.vertices(ipix, sc.REGION_ORDER, step=4)
    for k, region in enumerate(ipix):
        ra0, dec0 = sc._region_centre(int(region))
        x, y, _ = sc._project(ra0, dec0, lon[k].to_value(u.deg), lat[k].to_value(u.deg))
        assert x.min() > -0.5 and y.min() > -0.5
        assert x.max() < sc.GRID * sc.CORE - 0.5 and y.max() < sc.GRID * sc.CORE - 0.5


def test_pixel_scale_shape_and_gwcs_agree_with_fits_wcs() -> None:
    cell = sc.home_skycells(271.81053, 66.72141)[0]
    assert cell.shape == (2048, 2048) and cell.pixel_scale == 0.055
    from astropy.wcs.utils import proj_plane_pixel_scales

    assert np.allclose(proj_plane_pixel_scales(cell.wcs) * 3600.0, 0.055, rtol=1e-12)
    # Local scale on the sky at the cell's far corner (TAN stretches away from the tangent point by < 0.02%).
    for x, y in [(0.0, 0.0), (2047.0, 2047.0), (1024.0, 10.0)]:
        a1, d1 = cell.wcs.pixel_to_world_values(x, y)
        a2, d2 = cell.wcs.pixel_to_world_values(x + 1.0, y)
        sep = np.degrees(np.arccos(np.sin(np.radians(d1)) * np.sin(np.radians(d2)) + np.cos(np.radians(d1))
                                   * np.cos(np.radians(d2)) * np.cos(np.radians(a2 - a1)))) * 3600.0
        assert sep == pytest.approx(0.055, rel=2e-3)
        g = cell.gwcs.pixel_to_world_values(x, y)
        assert np.allclose(g, (a1, d1), atol=1e-10)
        assert np.allclose(cell.gwcs.world_to_pixel_values(a1, d1), (x, y), atol=1e-6)


def test_neighbours_overlap_by_the_margin() -> None:
    cell = sc.home_skycells(271.81053, 66.72141)[0]
    right = sc.Skycell(cell.region, cell.i + 1, cell.j)
    up = sc.Skycell(cell.region, cell.i, cell.j + 1)
    for other, axis in ((right, 0), (up, 1)):
        # The neighbour's first pixel sits 2 * MARGIN pixels before this cell's last one: same grid, shifted.
        ra, dec = other.wcs.pixel_to_world_values(0.0, 0.0)
        x, y = cell.wcs.world_to_pixel_values(ra, dec)
        expect = (sc.CORE + 0.0, 0.0) if axis == 0 else (0.0, sc.CORE + 0.0)
        assert np.allclose((x, y), expect, atol=1e-6)
        assert sc.CORE + 2 * sc.MARGIN - expect[axis] == 2 * sc.MARGIN
    # A point in the overlap strip belongs to both cells.
    ra, dec = cell.wcs.pixel_to_world_values(sc.CORE + sc.MARGIN + 10.0, 1000.0)
    names = {c.name for c in sc.skycells_containing(float(ra), float(dec))}
    assert {cell.name, right.name} <= names


def test_cells_across_a_region_border_overlap() -> None:
    import astropy.units as u
    import cdshealpix.nested as hp

    # A point on the border of two HEALPix regions is in cells of both.
    lon, lat = hp.vertices(np.array([20000], dtype=np.uint64), sc.REGION_ORDER, step=2)
    a = (lon.to_value(u.deg)[0][0] + lon.to_value(u.deg)[0][1]) / 2
    d = (lat.to_value(u.deg)[0][0] + lat.to_value(u.deg)[0][1]) / 2
    regions = {c.region for c in sc.skycells_containing(a, d)}
    assert len(regions) >= 2


def test_footprint_lookup_finds_every_cell_it_touches() -> None:
    from romanarchive.sky.footprint import spoly_literal

    ra0, dec0, h = 271.81053, 66.72141, 0.03
    corners = [(ra0 - h / np.cos(np.radians(dec0)), dec0 - h), (ra0 + h / np.cos(np.radians(dec0)), dec0 - h),
               (ra0 + h / np.cos(np.radians(dec0)), dec0 + h), (ra0 - h / np.cos(np.radians(dec0)), dec0 + h)]
    cells = sc.skycells_for_footprint(corners)
    assert cells == sc.skycells_for_footprint(spoly_literal(corners))
    names = {c.name for c in cells}
    # Every point sampled in the footprint has its home cell in the list.
    rng = np.random.default_rng(1)
    ra = ra0 + rng.uniform(-h, h, 400) / np.cos(np.radians(dec0))
    dec = dec0 + rng.uniform(-h, h, 400)
    assert {c.name for c in sc.home_skycells(ra, dec)} <= names
    # And no listed cell is far from it.
    for c in cells:
        ca, cd = c.centre()
        assert abs(cd - dec0) < h + 0.03


@pytest.mark.parametrize(("ra", "dec"), [(0.0, 90.0), (123.0, -90.0), (359.99999999, 0.0), (0.0, 0.0)])
def test_cells_containing_poles_and_the_seam(ra: float, dec: float) -> None:
    cells = sc.skycells_containing(ra, dec)
    assert cells[0] == sc.home_skycells(ra, dec)[0]
    assert len({c.name for c in cells}) == len(cells) >= 1
    for c in cells:  # each really contains the position (core or margin)
        x, y = c.wcs.world_to_pixel_values(ra, dec)
        assert -0.5 - 1e-6 <= x <= sc.SHAPE[1] - 0.5 + 1e-6 and -0.5 - 1e-6 <= y <= sc.SHAPE[0] - 0.5 + 1e-6
