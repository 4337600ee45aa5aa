"""The archive's tessellation as a rad skycells file, read by romancal's own skycell machinery (offline)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from romanarchive.sky import skycells as sc
from romanarchive.sky import skymap as smap

# The demo field, a position next to the north pole and one on the RA = 0/360 seam.
POSITIONS = [(271.81053, 66.72141), (45.0, 89.95), (359.999, -10.0)]


@pytest.fixture(autouse=True)
def _restore_skymap() -> Iterator[None]:
    """Tests point romancal's global SKYMAP elsewhere: put it back afterwards."""
    import romancal.skycell.skymap as rsm

    saved = rsm.SKYMAP.path
    yield
    rsm.SKYMAP.path = saved


@pytest.fixture(scope="module")
def skymap_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ra, dec = (np.array(a) for a in zip(*POSITIONS, strict=True))
    return smap.write_skymap(tmp_path_factory.mktemp("skymap") / "skymap.asdf",
                             smap.regions_for(positions=(ra, dec)))


def _cells() -> list[sc.Skycell]:
    """Home cells of the test positions plus a neighbour in each (margins and region borders included)."""
    out: list[sc.Skycell] = []
    for ra, dec in POSITIONS:
        out.extend(sc.skycells_containing(ra, dec)[:2])
    return out


def _sep_mas(ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray) -> np.ndarray:
    return SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).to_value("mas")


def test_file_follows_rad_schema_and_holds_whole_regions(skymap_file: Path) -> None:
    from roman_datamodels import datamodels as rdm

    with rdm.open(skymap_file) as model:
        assert isinstance(model, rdm.SkycellsRefModel)
        model.validate()
        regions, cells = np.asarray(model.projection_regions), np.asarray(model.skycells)
        assert model.meta.nxy_skycell == sc.SHAPE[0] and model.meta.pixel_scale == sc.PIXEL_SCALE_ARCSEC
    assert len(regions) == 12 * 4**sc.REGION_ORDER and np.array_equal(regions["index"], np.arange(len(regions)))
    assert len(set(cells["name"])) == len(cells)
    for ra, dec in POSITIONS:
        home = sc.home_skycells(ra, dec)[0]
        row = regions[home.region]
        names = cells["name"][row["skycell_start"]:row["skycell_end"]]
        assert home.name in names
        assert all(n.startswith(f"p{home.region:05d}") for n in names)
        # Every cell of the region is there, and only cells of the tessellation.
        assert len(names) == len(smap._cells_of(home.region)) > 500
        assert all(sc.skycell(str(n)).region == home.region for n in names[:50])
        # The region's lon/lat box contains its HEALPix cell's centre.
        assert row["dec_min"] <= row["dec_tangent"] <= row["dec_max"]


def test_romancal_finds_the_archive_names_and_agrees_on_geometry(skymap_file: Path) -> None:
    import romancal.skycell.skymap as rsm

    smap.use_skymap(skymap_file)
    cells = _cells()
    found = rsm.SkyCells.from_names([c.name for c in cells])
    by_name = {str(n): k for k, n in enumerate(found.names)}
    n = sc.SHAPE[0]
    grid = np.linspace(-0.5, n - 0.5, 9)
    x, y = (a.ravel() for a in np.meshgrid(grid, grid))
    for cell in cells:
        k = by_name[cell.name]
        # romancal's WCS in its (x-mirrored) pixels is the archive's WCS, to far better than 1 mas.
        ra_r, dec_r = found.wcs[k](x, y, with_bounding_box=False)
        ax, ay = smap.to_archive_pixels(x, y)
        ra_a, dec_a = cell.wcs.pixel_to_world_values(ax, ay)
        assert _sep_mas(ra_r, dec_r, ra_a, dec_a).max() < 1.0, cell.name
        # Same four corners (as a set) and centre.
        theirs = found.radec_corners[k]
        ours = np.array(cell.corners())
        d = _sep_mas(theirs[:, None, 0], theirs[:, None, 1], ours[None, :, 0], ours[None, :, 1])
        assert d.min(axis=1).max() < 1.0 and len(set(d.argmin(axis=1))) == 4, cell.name
        assert _sep_mas(*found.radec_centers[k], *cell.centre()) < 1.0
        # orientat: north from +y towards +x in romancal's frame, as its own WCS says.
        c = (n - 1) / 2
        ra_c, dec_c = found.wcs[k](c, c, with_bounding_box=False)
        xn, yn = found.wcs[k].forward_transform.inverse(ra_c, min(dec_c + 1e-4, 90.0))
        assert abs(np.degrees(np.arctan2(xn - c, yn - c)) - found.orientations[k]) < 0.01, cell.name


def test_romancal_core_is_the_archive_core(skymap_file: Path) -> None:
    """cores_containing (what the catalog's flagged_spatial_id uses) picks the archive's 1920² core."""
    import romancal.skycell.skymap as rsm

    smap.use_skymap(skymap_file)
    rng = np.random.default_rng(3)
    # Not the cells by the pole: for a projection region holding a pole, gwcs's bounded ``invert`` (which
    # cores_containing calls) returns NaN everywhere -- romancal's own sky map's polar cap 0 does the same.
    for cell in _cells()[:2] + _cells()[4:]:
        x, y = rng.uniform(-0.5, sc.SHAPE[1] - 0.5, 3000), rng.uniform(-0.5, sc.SHAPE[0] - 0.5, 3000)
        ra, dec = cell.wcs.pixel_to_world_values(x, y)
        ra = np.asarray(ra) % 360.0
        found = rsm.SkyCells.from_names([cell.name])
        inside = np.zeros(len(x), dtype=bool)
        for idx in found.cores_containing(np.array([ra, dec]).T).values():
            inside[idx] = True
        lo, hi = sc.MARGIN - 0.5, sc.MARGIN + sc.CORE - 0.5
        core = (x > lo) & (x < hi) & (y > lo) & (y < hi)
        in_region = np.array([c.region == cell.region for c in sc.home_skycells(ra, dec)])
        # romancal keeps only points inside the region's lon/lat box; the archive's home cell also needs the
        # point's HEALPix region to be the cell's.  Inside the region both say the same.
        assert np.array_equal(inside[in_region], core[in_region]), cell.name
        assert np.array_equal(sc.in_home(ra, dec, cell.name), core & in_region)


def test_configure_writes_once_and_points_romancal_at_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import romancal.skycell.skymap as rsm

    monkeypatch.delenv(smap.SKYMAP_ENV, raising=False)
    name = sc.home_skycells(*POSITIONS[0])[0].name
    path = smap.configure_skymap(tmp_path, names=[name])
    assert rsm.SKYMAP.path == path and path.parent == tmp_path
    stamp = path.stat().st_mtime_ns
    assert smap.configure_skymap(tmp_path, names=[name]) == path and path.stat().st_mtime_ns == stamp  # reused
    assert rsm.SkyCells.from_names([name]).names == [name]
    with pytest.raises(KeyError):  # a cell of a region the file does not hold
        rsm.SkyCells.from_names([sc.home_skycells(*POSITIONS[2])[0].name])
    with pytest.raises(ValueError):
        smap.configure_skymap(tmp_path)


def test_official_sky_map_by_configuration_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With romancal's SKYMAP_PATH set (an operator's official map), that file is used and nothing is written."""
    import romancal
    import romancal.skycell.skymap as rsm

    official = Path(romancal.__file__).parent / "skycell" / "tests" / "data" / "skymap_subset.asdf"
    monkeypatch.setenv(smap.SKYMAP_ENV, str(official))
    assert smap.configure_skymap(tmp_path, names=[sc.home_skycells(*POSITIONS[0])[0].name]) == official
    assert rsm.SKYMAP.path == official and not any(tmp_path.iterdir())
    assert rsm.SkyCells.from_names(["135p90x25y50"]).names == ["135p90x25y50"]


def test_regions_for_names_positions_and_footprints() -> None:
    cell = sc.home_skycells(*POSITIONS[0])[0]
    assert smap.regions_for(names=[cell.name]) == [cell.region]
    ra, dec = POSITIONS[0]
    assert cell.region in smap.regions_for(positions=(np.array([ra]), np.array([dec])))
    assert set(smap.regions_for(footprints=[cell.corners()])) >= {cell.region}


@pytest.mark.slow
def test_source_catalog_on_an_l3_runs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """romancal's SourceCatalogStep on a skycell mosaic: flagged_spatial_id comes from the archive's sky map."""
    from roman_datamodels import datamodels as rdm

    from romanarchive.crds_offline import configure_offline
    from romanarchive.sim.references import write_reference_set

    monkeypatch.delenv(smap.SKYMAP_ENV, raising=False)
    configure_offline(tmp_path / "crds")
    cell = sc.home_skycells(*POSITIONS[0])[0]
    smap.configure_skymap(tmp_path, names=[cell.name])
    apcorr = write_reference_set(tmp_path, detector="WFI01", optical_element="F158", size=64,
                                 reftypes=("apcorr",))["apcorr"]
    n = 300
    model = rdm.MosaicModel.create_fake_data(shape=(n, n))
    model.meta.instrument.optical_element = "F158"
    yy, xx = np.indices((n, n))
    data = np.random.default_rng(0).normal(0.0, 1.0, (n, n)).astype(np.float32)
    sources = [(50.0, 60.0), (150.0, 150.0), (250.0, 40.0), (100.0, 250.0)]  # (x, y); two in the margin
    for x0, y0 in sources:
        data += 200.0 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.5**2)).astype(np.float32)
    model.data, model.err, model.weight = data, np.ones_like(data), np.ones_like(data)
    model.meta.wcs = cell.gwcs  # the mosaic is the cell's first 300² pixels
    model.meta.wcsinfo.skycell_name = cell.name
    model.meta.wcsinfo.pixel_scale_ref = sc.PIXEL_SCALE_ARCSEC / 3600.0

    from romancal.source_catalog import SourceCatalogStep

    cat, _segm = SourceCatalogStep.call(model, override_apcorr=str(apcorr), fit_psf=False, bkg_boxsize=50)
    table = cat.source_catalog
    assert len(table) == len(sources)
    sid = np.asarray(table["flagged_spatial_id"]).astype(np.int64)
    assert np.all(sid != 0)  # zero is romancal's "skycell not found" value
    # Skycell column and row (bits 32-38 and 39-45) are the name's x/y.  (The projection-region field, bits
    # 46-58, holds 13 bits: the archive's region numbers reach 49151, so for regions >= 8192 it runs into the
    # out-of-core flag at bit 59; romanarchive.catalog writes its own id.)
    assert set((sid >> 32) & 127) == {cell.i} and set((sid >> 39) & 127) == {cell.j}
