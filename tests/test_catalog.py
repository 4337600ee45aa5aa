"""L4 static-sky catalogs: measurement against truth and Source Extractor, ids, loading, TAP, the catalog job."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from support.synthetic import mag_to_njy, synthetic_image

from romanarchive.archive import Archive
from romanarchive.catalog.config import CatalogConfig
from romanarchive.catalog.draw import mosaic_model
from romanarchive.catalog.ids import assign_source_ids
from romanarchive.catalog.peer import available, run_source_extractor
from romanarchive.catalog.photoz import Z_GRID, fit_photoz, template_fluxes
from romanarchive.catalog.select import CatalogInputError, saturated_cores
from romanarchive.catalog.step import CatalogStep, LoadedImage
from romanarchive.sky.footprint import healpix29

CELL = "p16043x23y12"  # the skycell that is home to most of the simulated WFI01 field
MATCH = 0.2  # arcsec


def _match(ra: np.ndarray, dec: np.ndarray, cra: np.ndarray, cdec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest catalog row and whether it is within MATCH, for every truth row."""
    if len(cra) == 0:
        return np.zeros(len(ra), int), np.zeros(len(ra), bool)
    idx, sep, _ = SkyCoord(ra * u.deg, dec * u.deg).match_to_catalog_sky(SkyCoord(cra * u.deg, cdec * u.deg))
    return idx, sep.arcsec <= MATCH


def _report(title: str, mags: np.ndarray, found: np.ndarray, flux_ratio: np.ndarray, sep_mas: np.ndarray) -> None:
    print(f"\n{title}\n  mag bin      n  complete  flux bias  astrometric rms (mas)")
    for lo in np.arange(np.floor(np.nanmin(mags)), np.ceil(np.nanmax(mags))):
        sel = (mags >= lo) & (mags < lo + 1)
        if sel.any():
            rec = sel & found
            bias = np.nanmedian(flux_ratio[rec]) - 1 if rec.any() else np.nan
            rms = np.sqrt(np.nanmean(sep_mas[rec] ** 2)) if rec.any() else np.nan
            print(f"  {lo:4.0f}-{lo + 1:<4.0f} {sel.sum():4d}  {rec.sum() / sel.sum():7.2f}  {bias:+9.3f}  {rms:8.1f}")


def _snr_pred(mag: np.ndarray, err_at: np.ndarray, scale: float, radius: float = 0.2, ee: float = 0.7) -> np.ndarray:
    """Predicted S/N of a point source of ``mag`` in a ``radius`` aperture holding ``ee`` of its flux, where the
    per-pixel error is ``err_at`` (MJy/sr)."""
    n_pix = np.pi * (radius / scale) ** 2
    noise_njy = err_at * np.sqrt(n_pix) * np.radians(scale / 3600) ** 2 * 1e15
    return mag_to_njy(mag) * ee / noise_njy


# ------------------------------------------------------------------------------------------------ pure functions
def test_photoz_recovers_template_redshifts() -> None:
    """Self-consistency: noisy synthetic photometry of the templates gives back their redshifts."""
    bands = ("F062", "F087", "F106", "F129", "F158", "F184", "F213")
    grid = template_fluxes(bands)
    rng = np.random.default_rng(3)
    t = rng.integers(0, grid.shape[0], 300)
    k = rng.integers(5, len(Z_GRID) - 5, 300)
    flux = grid[t, k] * rng.uniform(0.5, 5, (300, 1))
    err = 0.03 * flux
    pz = fit_photoz(flux + rng.normal(0, 1, flux.shape) * err, err, bands)
    dz = np.abs(pz.z - Z_GRID[k]) / (1 + Z_GRID[k])
    print(f"\nphoto-z self-consistency: median |dz|/(1+z) {np.median(dz):.3f}, "
          f"outliers (>0.15) {np.mean(dz > 0.15):.3f}")
    assert np.median(dz) < 0.03 and np.mean(dz > 0.15) < 0.1
    assert np.all((pz.z_low <= pz.z) & (pz.z <= pz.z_high))
    for k in (1, 2):  # one colour cannot fix template, redshift and amplitude: no redshift rather than z = 0
        few = fit_photoz(flux[:, :k], err[:, :k], bands[:k])
        assert np.isnan(few.z).all() and np.isnan(few.z_low).all() and (few.template == -1).all()


def test_source_ids_encode_healpix_and_are_unique_and_stable() -> None:
    rng = np.random.default_rng(5)
    ra = rng.uniform(271.7, 271.9, 2000)
    dec = rng.uniform(66.6, 66.8, 2000)
    ra[1], dec[1] = ra[0], dec[0]  # a coincident pair must still get distinct ids
    hpx = healpix29(ra, dec)
    ids = assign_source_ids(hpx, ra, dec, np.empty(0, np.int64), np.empty(0), np.empty(0), set())
    assert len(np.unique(ids)) == len(ids) and (ids > 0).all()
    assert ((ids >> 35) == (hpx >> 34)).all()  # order-12 nested index, as Gaia's
    # Re-processing: centroids move by up to 20 mas, the order is shuffled; every object keeps its id.
    perm = rng.permutation(len(ra))
    ra2 = ra[perm] + rng.normal(0, 0.01, len(ra)) / 3600 / np.cos(np.radians(dec[perm]))
    dec2 = dec[perm] + rng.normal(0, 0.01, len(ra)) / 3600
    again = assign_source_ids(healpix29(ra2, dec2), ra2, dec2, ids, ra, dec, set())
    moved_cell = (healpix29(ra2, dec2) >> 34) != (hpx[perm] >> 34)
    pair = np.isin(perm, [0, 1])  # a coincident pair may swap ids (they are indistinguishable), nothing else
    assert (again[~moved_cell & ~pair] == ids[perm][~moved_cell & ~pair]).all()
    assert set(again[pair]) == set(ids[:2])
    taken = {int(ids[5])}
    other = assign_source_ids(hpx[5:6], ra[5:6], dec[5:6], np.empty(0, np.int64), np.empty(0), np.empty(0), taken)
    assert other[0] != ids[5] and other[0] >> 35 == ids[5] >> 35  # another skycell's object keeps its id


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """apcorr + ePSF reference files of F087 and F158 (galsim's Roman PSF, as the simulation writes them)."""
    from romanarchive.sim.references import write_reference_set

    out = tmp_path_factory.mktemp("catalog_refs")
    return {band: {k: Path(v) for k, v in write_reference_set(out, detector="WFI01", optical_element=band, size=512,
                                                               reftypes=("apcorr", "epsf")).items()}
            for band in ("F087", "F158")}


@pytest.fixture(scope="module")
def synthetic() -> tuple[object, object]:
    """A 512² F158 image and the F087 image of the same sources and grid."""
    f158 = synthetic_image(band="F158", n_stars=80, n_galaxies=80, seed=11, mag_range=(20.0, 28.0))
    f087 = synthetic_image(band="F087", truth=f158.truth, seed=12)
    return f158, f087


def _loaded(im: object) -> LoadedImage:
    return LoadedImage(mosaic_model(im.data, im.err, im.wcs, im.band), im.band)  # type: ignore[attr-defined]


def test_synthetic_catalog_against_truth_and_source_extractor(synthetic: tuple[object, object],
                                                              references: dict[str, dict[str, Path]]) -> None:
    f158, f087 = synthetic
    truth = f158.truth  # type: ignore[attr-defined]
    res = CatalogStep(CatalogConfig(), references).run([_loaded(f087), _loaded(f158)])
    c = res.catalog.columns
    assert res.catalog.bands == ("F087", "F158") and len(res.catalog) > 50
    idx, found = _match(truth["ra"], truth["dec"], c["ra"], c["dec"])
    sep = SkyCoord(truth["ra"] * u.deg, truth["dec"] * u.deg).separation(
        SkyCoord(c["ra"][idx] * u.deg, c["dec"][idx] * u.deg)).to_value(u.mas)
    mags = np.asarray(truth["mag"])
    star = np.asarray(truth["kind"]) == "point"
    _report("synthetic F087+F158, all sources (Kron flux / truth)", mags, found, c["kron_f158_flux"][idx] /
            mag_to_njy(mags), sep)
    _report("synthetic stars (PSF flux / truth)", mags[star], found[star],
            c["psf_f158_flux"][idx][star] / mag_to_njy(mags[star]), sep[star])
    bright = mags < 24
    assert found[bright].mean() >= 0.95
    assert np.sqrt(np.mean(sep[bright & found & star] ** 2)) < 15  # mas (0.14 pixel)
    psf_ratio = c["psf_f158_flux"][idx] / mag_to_njy(mags)
    assert abs(np.median(psf_ratio[bright & found & star]) - 1) < 0.03
    # Purity: rows with no drawn source within 0.2".
    _, real = _match(c["ra"], c["dec"], np.asarray(truth["ra"]), np.asarray(truth["dec"]))
    print(f"purity {real.mean():.3f} ({len(real)} rows)")
    assert real.mean() >= 0.9
    ext = np.asarray(c["is_extended"])[idx]
    sel = found & (mags < 23)
    print(f"stars point-like (mag < 23) {np.mean(ext[sel & star] == 0):.3f}, galaxies extended "
          f"{np.mean(ext[sel & ~star] == 1):.3f}")
    assert np.mean(ext[sel & star] == 0) >= 0.95
    assert np.mean(ext[sel & ~star] == 1) >= 0.8
    assert res.catalog.segmentation.shape == f158.data.shape  # type: ignore[attr-defined]

    if not available():
        pytest.skip("source-extractor is not installed")
    # source-extractor at 3 sigma, the comparison the issue asks for (our detection threshold is romancal's 5).
    sx = run_source_extractor(f158.data, f158.err, f158.wcs, detect_thresh=3.0)  # type: ignore[attr-defined]
    _, theirs = _match(truth["ra"], truth["dec"], np.asarray(sx.table["ALPHAWIN_J2000"]),
                       np.asarray(sx.table["DELTAWIN_J2000"]))
    five = _snr_pred(mags, np.full(len(mags), 0.02), 0.11) >= 5
    print(f"completeness at predicted S/N >= 5 ({five.sum()} sources): ours {found[five].mean():.3f}, "
          f"source-extractor {theirs[five].mean():.3f}; detections ours {len(res.catalog)}, theirs {len(sx.table)}")
    assert found[five].mean() >= theirs[five].mean()


def test_bad_inputs_raise_clear_errors(synthetic: tuple[object, object],
                                       references: dict[str, dict[str, Path]]) -> None:
    from romanarchive.catalog.step import load_image

    f158, _ = synthetic
    good = _loaded(f158)
    step = CatalogStep(CatalogConfig(), references)

    def band(data: np.ndarray, err: np.ndarray, name: str = "F158") -> LoadedImage:
        return LoadedImage(mosaic_model(data, err, f158.wcs, name), name)  # type: ignore[attr-defined]

    with pytest.raises(CatalogInputError, match="no input"):
        step.run([])
    with pytest.raises(CatalogInputError, match="all NaN"):
        step.run([band(np.full((64, 64), np.nan), np.ones((64, 64)))])
    with pytest.raises(CatalogInputError, match="empty image"):
        step.run([band(np.zeros((64, 64)), np.ones((64, 64)))])
    with pytest.raises(CatalogInputError, match="shape"):
        step.run([good, band(np.ones((8, 8)), np.ones((8, 8)), "F087")])
    with pytest.raises(CatalogInputError, match="once"):
        step.run([good, good])
    with pytest.raises(CatalogInputError, match="apcorr for F213, epsf for F213"):
        CatalogStep(CatalogConfig(), references).run([band(f158.data, f158.err, "F213")])  # type: ignore[attr-defined]
    model = mosaic_model(f158.data, f158.err, f158.wcs, "F158")  # type: ignore[attr-defined]
    del model.meta["wcs"]
    with pytest.raises(CatalogInputError, match="no WCS"):
        load_image(model)


def test_saturated_cores_mask_a_bright_star_and_its_spikes() -> None:
    """A hole in the data with smaller holes (saturated spike pixels) inside its mask is one star; a coverage gap
    touching the edge is not a star."""
    usable = np.ones((400, 400), bool)
    yy, xx = np.mgrid[:400, :400]
    usable[(xx - 200) ** 2 + (yy - 180) ** 2 <= 15**2] = False  # saturated core, r = 15 px
    usable[238:244, 200:206] = False  # a saturated spike 3" below the core
    usable[:, :20] = False  # coverage gap along the edge
    usable[50:53, 300:303] = False  # a few bad pixels: not a star
    stars = saturated_cores(usable, 0.055, CatalogConfig())
    assert len(stars.x) == 1
    assert abs(stars.x[0] - 200) < 0.5 and abs(stars.y[0] - 180) < 0.5
    assert 3.0 / 0.055 <= stars.mask_radius[0] <= 20.0 / 0.055
    assert stars.mask_radius[0] <= stars.halo_radius[0] <= 45.0 / 0.055
    # A star seen in the L2s off this grid (its halo reaches in) is kept, with finite pixel coordinates.
    from romanarchive.catalog.draw import tan_wcs
    from romanarchive.imaging.saturation import SkyStars
    from romanarchive.sky.skycells import tan_gwcs

    w = tan_wcs((400, 400), 271.8, 66.7, 0.055)
    gw = tan_gwcs((271.8, 66.7), (200.5, 200.5), 0.055 / 3600, (400, 400))
    ra, dec = (float(v) for v in w.pixel_to_world_values(-150.0, 100.0))
    both = saturated_cores(usable, 0.055, CatalogConfig(), SkyStars(np.array([ra]), np.array([dec]), np.array([1.0])),
                           gw)
    assert len(both.x) == 2 and np.isfinite(both.x).all()
    assert abs(both.x[-1] + 150) < 0.5 and abs(both.y[-1] - 100) < 0.5
    assert abs(both.mask_radius[-1] - 10.0 * 1.0 / 0.055) < 1e-6


# ------------------------------------------------------------------------------------- the archive, end to end
@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from romanarchive.sim.calibrated import calibrated_survey, science_config

    return calibrated_survey(science_config(), out_dir=tmp_path_factory.mktemp("science"), progress=False)


def test_l2_without_wcs_is_refused(survey: Path) -> None:
    import roman_datamodels as rdm

    from romanarchive.catalog.step import load_image
    from romanarchive.sim.calibrated import l2_files

    with rdm.open(l2_files(survey)[1]) as model:
        del model.meta["wcs"]
        with pytest.raises(CatalogInputError, match="no WCS"):
            load_image(model)


@pytest.fixture(scope="module")
def catalogued(pg_server: str, tmp_path_factory: pytest.TempPathFactory, survey: Path) -> Iterator[Archive]:
    """The survey's L2s ingested, the skycell's two L3s co-added, and its catalog job run."""
    from romanarchive.config import Settings
    from romanarchive.db.engine import upgrade
    from romanarchive.db.scratch import create_database, drop_database
    from romanarchive.ingest.service import ingest_paths
    from romanarchive.jobs.worker import run_one
    from romanarchive.mosaic.job import build_and_register
    from romanarchive.sim.calibrated import l2_files

    work = tmp_path_factory.mktemp("catalog_archive")
    url = create_database(pg_server, "ra_cat")
    upgrade(url)
    archive = Archive(Settings(home=work / "home", database_url=url, store=str(work / "store"), lease_seconds=600))
    list(ingest_paths(archive, [survey / "refs", *l2_files(survey)]))
    for flt in ("F087", "F158"):
        assert build_and_register(archive, CELL, flt) is not None
    with archive.engine.connect() as conn:  # the mosaic step queued one catalog job for the cell
        assert conn.execute(sa.text("SELECT count(*) FROM jobs WHERE kind = 'catalog' AND target = :c "
                                    "AND state = 'queued'"), {"c": CELL}).scalar_one() == 1
    assert run_one(archive, kinds=("catalog",)) is not None
    yield archive
    drop_database(pg_server, url)


def _objects(archive: Archive) -> Table:
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM objects WHERE skycell = :c ORDER BY ctid"), {"c": CELL})
        names = list(rows.keys())
        data = rows.all()
    return Table(rows=[tuple(r) for r in data], names=names) if data else Table(names=names)


@pytest.mark.db
def test_l3_catalog_against_truth_and_source_extractor(catalogued: Archive, survey: Path) -> None:
    from romanarchive.catalog.job import live_l3
    from romanarchive.catalog.step import load_image

    archive = catalogued
    with archive.engine.connect() as conn:
        job = conn.execute(sa.text("SELECT state, error FROM jobs WHERE kind = 'catalog'")).one()
        assert job.state == "done", job.error
        # The new catalog queues forced photometry on every live L2 over the skycell.
        forced = conn.execute(sa.text("SELECT count(*) FROM jobs WHERE kind = 'forced_phot' AND state = 'queued'"
                                      )).scalar_one()
        n_l2 = conn.execute(sa.text("SELECT count(*) FROM products WHERE level = 2")).scalar_one()
        assert 0 < forced <= n_l2
        l4 = conn.execute(sa.text("SELECT p.product_id, p.product_type, p.level, v.inputs FROM products p "
                                  "JOIN provenance v USING (product_id) WHERE p.level = 4 ORDER BY 1")).all()
        l3 = {r.product_id: r for r in live_l3(conn, CELL)}
    assert sorted(r.product_type for r in l4) == ["wfi_l4_cat", "wfi_l4_segm"]
    for r in l4:
        assert sorted(x["product_id"] for x in r.inputs) == sorted(l3)
    obj = _objects(archive)
    assert len(obj) >= 10
    assert (np.diff(np.asarray(obj["source_id"])) > 0).all()  # rows are stored in HEALPix order
    assert ((np.asarray(obj["source_id"]) >> 35) == (np.asarray(obj["hpx"]) >> 34)).all()

    assert set(obj["skycell"]) == {CELL}
    # flagged_spatial_id (61 bits) decodes to the object's cell and position: it must never pass through a float.
    real_rows = np.asarray(obj["label"]) > 0  # saturated-star rows have no romancal measurement
    sid = np.asarray(obj["flagged_spatial_id"], dtype=np.int64)[real_rows]
    assert (((sid >> 44) & 0xFFFF) == int(CELL[1:6])).all() and ((sid >> 60) == 0).all()
    x_virtual = np.asarray(obj["x_centroid"], float)[real_rows] * 0.055 / 0.05
    assert (np.abs((sid & 0xFFFF) - np.floor(x_virtual)) <= 1).all()
    from romanarchive.sky.skycells import in_home

    assert in_home(np.asarray(obj["ra"]), np.asarray(obj["dec"]), CELL).all()  # each object in its home cell only

    truth = Table.read(survey / "truth" / "truth.ecsv")
    truth = truth[np.isin(truth["kind"], ["star", "galaxy", "gaia", "variable"])]
    f158 = next(load_image(archive.store.local_path(r.uri), pid) for pid, r in l3.items() if r.filter == "F158")
    x, y = (np.asarray(v) for v in f158.wcs.world_to_pixel_values(truth["ra"], truth["dec"]))
    ny, nx = f158.data.shape
    xi, yi = np.clip(np.round(x).astype(int), 0, nx - 1), np.clip(np.round(y).astype(int), 0, ny - 1)
    err_at = f158.err[yi, xi]
    covered = (x > 20) & (x < nx - 20) & (y > 20) & (y < ny - 20) & (err_at > 0) & np.isfinite(f158.data[yi, xi])
    covered &= in_home(np.asarray(truth["ra"]), np.asarray(truth["dec"]), CELL)
    # Saturated stars (< 14 mag) are rows of their own (flagged); inside their masks (everything dropped out to 10
    # core radii, ~15") and halos (only point sources kept, out to 30 core radii, up to 45") compare what is kept.
    bright = truth[truth["mag_F158"] < 14]
    if len(bright):
        _, d2, _ = SkyCoord(truth["ra"] * u.deg, truth["dec"] * u.deg).match_to_catalog_sky(
            SkyCoord(bright["ra"] * u.deg, bright["dec"] * u.deg), nthneighbor=1)
        point = np.isin(truth["kind"], ["star", "variable"])
        covered &= (d2.arcsec > 45) | (point & (d2.arcsec > 16)) | (truth["mag_F158"] < 14)
    covered &= truth["mag_F158"] >= 14
    t = truth[covered]
    mags = np.asarray(t["mag_F158"])
    idx, found = _match(np.asarray(t["ra"]), np.asarray(t["dec"]), np.asarray(obj["ra"]), np.asarray(obj["dec"]))
    sep = SkyCoord(t["ra"] * u.deg, t["dec"] * u.deg).separation(
        SkyCoord(np.asarray(obj["ra"])[idx] * u.deg, np.asarray(obj["dec"])[idx] * u.deg)).to_value(u.mas)
    kron = np.asarray(obj["kron_f158_flux"], dtype=float)[idx]
    psf = np.asarray(obj["psf_f158_flux"], dtype=float)[idx]
    _report(f"L3 {CELL} F087+F158 vs simulation truth ({len(t)} stars and galaxies; Kron flux / truth)", mags,
            found, kron / mag_to_njy(mags), sep)
    star = np.asarray(t["kind"]) != "galaxy"
    _report("  stars (PSF flux / truth)", mags[star], found[star], psf[star] / mag_to_njy(mags[star]), sep[star])
    assert found[mags < 23].mean() >= 0.9
    ok = found & star & (mags < 23)
    assert np.sqrt(np.mean(sep[ok] ** 2)) < 20  # mas
    assert abs(np.nanmedian(psf[ok] / mag_to_njy(mags[ok])) - 1) < 0.05  # nJy from MJy/sr L3s
    ext = np.asarray(obj["is_extended"], dtype=float)[idx]
    assert np.nanmean(ext[ok]) <= 0.05  # stars are point-like
    # Purity over the rows of objects measured inside the covered area.
    _, real = _match(np.asarray(obj["ra"]), np.asarray(obj["dec"]), np.asarray(truth["ra"]),
                     np.asarray(truth["dec"]))
    print(f"purity {real.mean():.3f} of {len(obj)} rows")
    assert real.mean() >= 0.8

    if not available():
        pytest.skip("source-extractor is not installed")
    sx = run_source_extractor(f158.data, f158.err, f158.wcs, detect_thresh=3.0)
    _, theirs = _match(np.asarray(t["ra"]), np.asarray(t["dec"]), np.asarray(sx.table["ALPHAWIN_J2000"]),
                       np.asarray(sx.table["DELTAWIN_J2000"]))
    five = _snr_pred(mags, err_at[covered], 0.055) >= 5
    print(f"L3 completeness at predicted S/N >= 5 ({five.sum()} sources): ours {found[five].mean():.3f}, "
          f"source-extractor (F158) {theirs[five].mean():.3f}; rows ours {len(obj)}, theirs {len(sx.table)}")
    assert found[five].mean() >= theirs[five].mean()


@pytest.mark.db
def test_l4_files_are_rad_models(catalogued: Archive) -> None:
    """The L4 catalog and segmentation map are romancal's datamodels and validate against rad."""
    import roman_datamodels as rdm

    with catalogued.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT p.product_type, f.uri FROM products p JOIN files f USING (file_id) "
                                    "WHERE p.level = 4 ORDER BY 1")).all()
    obj = _objects(catalogued)
    for ptype, uri in rows:
        with rdm.open(catalogued.store.local_path(uri)) as model:
            model.validate()
            if ptype == "wfi_l4_cat":
                assert type(model).__name__ == "MultibandSourceCatalogModel"
                cat = model.source_catalog
                assert sorted(np.asarray(cat["source_id"]).tolist()) == sorted(np.asarray(obj["source_id"]).tolist())
                assert cat["psf_f158_flux"].unit == u.nJy and cat["segment_area"].unit == u.arcsec**2
            else:
                assert type(model).__name__ == "MultibandSegmentationMapModel"
                lut = np.asarray(model["label_source_id"])
                labels = np.asarray(obj["label"])[np.asarray(obj["label"]) > 0]
                assert set(lut[labels]) <= set(np.asarray(obj["source_id"]).tolist())


@pytest.mark.db
def test_rerun_keeps_ids_and_replaces_rows(catalogued: Archive) -> None:
    from click.testing import CliRunner

    from romanarchive.cli import main

    before = _objects(catalogued)
    with catalogued.engine.connect() as conn:
        old_l4 = set(conn.execute(sa.text("SELECT product_id FROM products WHERE level = 4")).scalars())
    env = {"ROMANARCHIVE_HOME": str(catalogued.settings.home), "ROMANARCHIVE_DATABASE_URL": catalogued.url,
           "ROMANARCHIVE_STORE": catalogued.settings.store_url}
    out = CliRunner().invoke(main, ["catalog", "--skycell", CELL], env=env)
    assert out.exit_code == 0, out.output
    assert f"{CELL}: {len(before)} objects in F087+F158" in out.output
    after = _objects(catalogued)
    assert len(after) == len(before)
    assert (np.asarray(after["source_id"]) == np.asarray(before["source_id"])).all()
    with catalogued.engine.connect() as conn:
        new_l4 = set(conn.execute(sa.text("SELECT product_id FROM products WHERE level = 4")).scalars())
    assert len(new_l4) == 2 and not (new_l4 & old_l4)  # the earlier live L4s were retired
    for args, needle in ((["catalog"], "--skycell NAME or --all"), (["catalog", "--skycell", "p00000x00y00"],
                                                                   "has no live L3")):
        bad = CliRunner().invoke(main, args, env=env)
        assert bad.exit_code != 0 and needle in bad.output


@pytest.mark.db
def test_bad_l3_writes_nothing(catalogued: Archive, tmp_path: Path) -> None:
    """An all-NaN L3 fails the job cleanly: the skycell's rows and L4 products stay as they were."""
    import roman_datamodels as rdm

    from romanarchive.catalog.job import catalog_skycell, live_l3

    with catalogued.engine.connect() as conn:
        rows = live_l3(conn, CELL)
        n_before = conn.execute(sa.text("SELECT count(*) FROM objects")).scalar_one()
        l4_before = set(conn.execute(sa.text("SELECT product_id FROM products WHERE level = 4")).scalars())
    path = Path(catalogued.store.local_path(rows[0].uri))
    saved = tmp_path / "saved.asdf"
    saved.write_bytes(path.read_bytes())
    try:
        path.chmod(0o644)
        with rdm.open(saved) as model:
            model.data[...] = np.nan
            model.save(path)
        with pytest.raises(CatalogInputError, match="all NaN"):
            catalog_skycell(catalogued, CELL)
    finally:
        path.write_bytes(saved.read_bytes())
    with catalogued.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM objects")).scalar_one() == n_before
        assert set(conn.execute(sa.text("SELECT product_id FROM products WHERE level = 4")).scalars()) == l4_before


@pytest.mark.db
def test_tap_cone_query_and_scs_on_objects(catalogued: Archive) -> None:
    import requests
    from astropy.io.votable import parse_single_table
    from support.server import live_server

    from romanarchive.tap import scs

    obj = _objects(catalogued)
    ra0, dec0, r = float(np.median(obj["ra"])), float(np.median(obj["dec"])), 0.004
    d = SkyCoord(obj["ra"] * u.deg, obj["dec"] * u.deg).separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).deg
    expected = set(np.asarray(obj["source_id"])[d <= r].tolist())
    assert expected
    query = (f"SELECT source_id, ra, dec, psf_f158_flux, is_extended FROM roman.objects WHERE "
             f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0}, {dec0}, {r}))")
    previous = scs.cone_table()
    scs.configure("roman.objects", "source_id", "ra", "dec")
    try:
        with live_server(catalogued) as base:
            resp = requests.post(base + "/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query},
                                 timeout=60)
            assert resp.status_code == 200, resp.text[:500]
            table = parse_single_table(io.BytesIO(resp.content)).to_table()
            assert set(np.asarray(table["source_id"]).tolist()) == expected
            assert table["psf_f158_flux"].unit == u.nJy
            cols = requests.post(base + "/tap/sync", data={
                "REQUEST": "doQuery", "LANG": "ADQL",
                "QUERY": "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns WHERE table_name = 'roman.objects'"},
                timeout=60)
            meta = parse_single_table(io.BytesIO(cols.content)).to_table()
            assert {"source_id", "aper04_f087_flux", "photoz_low68", "kron_radius", "is_extended_f158"} <= set(
                meta["column_name"])
            units = dict(zip(meta["column_name"], meta["unit"], strict=True))
            assert units["aper_bkg_f158_flux"] == "nJy.arcsec**-2" and units["segment_area"] == "arcsec**2"
            cone = requests.get(base + "/scs", params={"RA": ra0, "DEC": dec0, "SR": r, "VERB": 1}, timeout=60)
            assert cone.status_code == 200
            assert set(np.asarray(parse_single_table(io.BytesIO(cone.content)).to_table()["source_id"])
                       .tolist()) == expected
    finally:
        scs.configure(previous.table, previous.id_column, previous.ra_column, previous.dec_column)


@pytest.mark.db
def test_load_copies_pos_nulls_text_in_source_id_order(archive: Archive) -> None:
    from romanarchive.catalog.load import replace_skycell

    ra = np.array([10.0, 359.99999999, 150.5, 0.0, 220.25])
    dec = np.array([-30.0, 1.0, 2.5, 90.0, -89.5])
    det_snr = np.array([5.0, np.nan, 7.0, 8.0, np.nan])  # a float32 (real) column: NaN -> NULL
    with archive.engine.begin() as conn:
        ids = replace_skycell(conn, "cellA", {"ra": ra, "dec": dec, "psf_f158_flux": det_snr,
                                              "is_extended": np.array([1.0, 0.0, np.nan, 0.0, 1.0])})
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT source_id, release, skycell, psf_f158_flux AS det_snr, is_extended, "
            "pos = spoint(radians(ra), radians(dec)) AS same, "
            "degrees(long(pos)) AS lng, degrees(lat(pos)) AS lat FROM objects ORDER BY ctid")).all()
    assert [r.source_id for r in rows] == sorted(ids.tolist())  # written in HEALPix (source_id) order
    by_id = {r.source_id: r for r in rows}
    for i, sid in enumerate(ids.tolist()):
        r = by_id[sid]
        assert (r.release, r.skycell, r.same) == ("live", "cellA", True)
        assert (r.det_snr is None) == bool(np.isnan(det_snr[i]))
        assert r.is_extended is {0: True, 1: False, 2: None, 3: False, 4: True}[i]
        assert abs(r.lat - dec[i]) < 1e-9
        if abs(dec[i]) < 90:
            assert abs((r.lng - ra[i] + 180) % 360 - 180) < 1e-8


def test_halo_keeps_point_sources_and_peaked_galaxies_not_spike_pieces() -> None:
    """Inside a bright star's halo a point source and a galaxy with a peak stay; a flat, elongated detection (a
    piece of a ring or spike) is dropped; outside the halo a flat detection stays (it is not the star's)."""
    from dataclasses import dataclass as _dc

    from astropy.table import Table

    from romanarchive.catalog.select import select_objects
    from romanarchive.sky.skycells import tan_gwcs

    shape = (800, 800)
    usable = np.ones(shape, bool)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    usable[(xx - 200) ** 2 + (yy - 200) ** 2 <= 8**2] = False  # saturated core: mask 80 px (4.4"), halo 240 px
    data = np.where(usable, 0.0, np.nan)
    gw = tan_gwcs((271.8, 66.7), (400.5, 400.5), 0.055 / 3600, shape)

    @_dc
    class Band:
        band: str
        data: np.ndarray
        err: np.ndarray
        wcs: object

    img = Band("F158", data, np.where(usable, 1.0, np.nan), gw)
    # point source, peaked galaxy, spike piece (all in the halo), flat detection far outside it
    x = np.array([300.0, 200.0, 200.0, 700.0])
    y = np.array([200.0, 330.0, 50.0, 700.0])
    ext = np.array([0, 1, 1, 1])
    conc = np.array([0.6, 0.42, 0.29, 0.29])
    ellip = np.array([0.05, 0.3, 0.85, 0.85])
    ra, dec = (np.asarray(v, float) for v in gw(x, y))
    n = len(x)
    t = Table({"label": np.arange(1, n + 1), "x_centroid": x, "y_centroid": y, "ra_centroid": ra,
               "dec_centroid": dec, "psf_f158_flux": np.full(n, 1e4), "psf_f158_flux_err": np.full(n, 10.0),
               "psf_flags_f158": np.zeros(n, int), "psf_gof_f158": np.ones(n), "is_extended_f158": ext,
               "ra_psf_f158": ra, "dec_psf_f158": dec, "aper04_f158_flux": np.full(n, 8e3),
               "aper04_f158_flux_err": np.full(n, 10.0), "aper02_f158_flux": 8e3 * conc,
               "ellipticity": ellip, "fwhm": np.full(n, 0.2)})
    segm = np.zeros(shape, np.uint32)
    for i in range(n):
        segm[int(y[i]) - 2:int(y[i]) + 3, int(x[i]) - 2:int(x[i]) + 3] = i + 1
    res = select_objects(t, segm, [img], CatalogConfig(), None)
    kept = set(np.asarray(res.columns["label"], int)) - {0}
    assert kept >= {1, 2, 4} and 3 not in kept
