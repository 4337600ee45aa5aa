"""Per-image (L2) source catalogs: romancal's SourceCatalogStep on the science survey's L2s against truth, loading,
re-runs, the catalog product and its provenance, TAP, and inputs that give no rows or are refused."""

from __future__ import annotations

import io
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import sqlalchemy as sa
from astropy.coordinates import SkyCoord
from astropy.table import Table
from click.testing import CliRunner
from conftest import unreferenced_objects

from romanarchive.archive import Archive
from romanarchive.catalog import l2_job
from romanarchive.catalog.l2_step import L2CatalogStep
from romanarchive.catalog.select import CatalogInputError
from romanarchive.catalog.step import load_image
from romanarchive.cli.main import main
from romanarchive.db import product_types
from romanarchive.ingest.service import ingest_paths
from romanarchive.jobs import worker

NJY_PER_MAGGIE = 3631e9
IMAGES = ("r0000101001001001001_0002_wfi01_f158_cal.asdf", "r0000101001001001001_0001_wfi01_f087_cal.asdf")


def _ingest(archive: Archive, survey: Path, names: tuple[str, ...], refs: bool = True) -> None:
    paths = [survey / "l2" / n for n in names]
    if refs:
        paths = sorted((survey / "refs").rglob("*_apcorr_*.asdf")) + sorted(
            (survey / "refs").rglob("*_epsf_*.asdf")) + paths
    results = list(ingest_paths(archive, paths))
    assert all(hasattr(r, "product_id") or hasattr(r, "ref_id") for r in results), results


def _l2_ids(archive: Archive) -> dict[str, int]:
    with archive.engine.connect() as conn:
        return {str(f): int(p) for p, f in conn.execute(sa.text(
            "SELECT product_id, filter FROM products WHERE product_type = 'wfi_l2'")).all()}


def _rows(archive: Archive, pid: int) -> Table:
    with archive.engine.connect() as conn:
        res = conn.execute(sa.text("SELECT label, ra, dec, psf_flux, aper04_flux, kron_flux, is_extended, "
                                   "pos::text AS pos FROM l2_sources WHERE product_id = :p ORDER BY label"), {"p": pid})
        names, rows = list(res.keys()), res.all()
    return Table(rows=rows, names=names) if rows else Table(names=names)


@pytest.mark.db
@pytest.mark.slow
def test_l2_catalog_job_against_truth_rerun_and_tap(archive: Archive, science_survey: Path) -> None:
    import requests
    from astropy.io.votable import parse_single_table
    from support.server import live_server

    _ingest(archive, science_survey, IMAGES)
    ids = _l2_ids(archive)
    with archive.engine.connect() as conn:
        queued = set(conn.execute(sa.text("SELECT product_id FROM jobs WHERE kind = 'l2_catalog'")).scalars())
    assert queued == set(ids.values())  # the rule queued one job per new L2
    t0 = time.perf_counter()
    ran = 0
    while worker.run_one(archive, kinds=(l2_job.KIND,)) is not None:
        ran += 1
    per_image = (time.perf_counter() - t0) / ran
    assert ran == 2
    with archive.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM jobs WHERE kind = 'l2_catalog' AND state <> 'done'")
                            ).scalar_one() == 0
        prov = conn.execute(sa.text(
            "SELECT p.product_id, p.level, p.exposure_id = l2.exposure_id, v.step, v.inputs, v.reference_files, "
            "v.parameters, v.software FROM products p JOIN provenance v ON v.product_id = p.product_id "
            "JOIN products l2 ON l2.product_id = :l2 WHERE p.product_type = :t AND p.filter = 'F158'"),
            {"l2": ids["F158"], "t": product_types.L2_CATALOG}).one()
    cat_pid, level, same_exposure, step, inputs, refs, params, software = prov
    with archive.engine.connect() as conn:
        params_wall = conn.execute(sa.text("SELECT wall_time_s FROM provenance WHERE product_id = :p"),
                                   {"p": cat_pid}).scalar_one()
    assert level == 2 and same_exposure and step == "romancal.SourceCatalogStep"
    assert [i["product_id"] for i in inputs] == [ids["F158"]]
    assert set(refs) == {"apcorr", "epsf"} and "_f158_" in refs["epsf"]
    assert params["fit_psf"] and params["flux_calibrated_input"] and "romancal" in software
    with archive.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT dataproduct_type, calib_level FROM ivoa.obscore WHERE product_id = :p"),
                            {"p": cat_pid}).one() == ("measurements", 2)

    # Against truth: the stars of this exposure, positions and PSF fluxes (nJy).
    rows = _rows(archive, ids["F158"])
    truth = Table.read(science_survey / "truth" / "exposure_truth.ecsv")
    truth = truth[(truth["exposure"] == IMAGES[0].replace("_cal", "_uncal"))
                  & np.isin(truth["kind"], ["star", "variable"]) & (truth["mag"] < 21.5)]
    assert len(truth) >= 10
    idx, d2, _ = SkyCoord(truth["ra"] * u.deg, truth["dec"] * u.deg).match_to_catalog_sky(
        SkyCoord(rows["ra"] * u.deg, rows["dec"] * u.deg))
    found = d2.to_value(u.mas) < 100
    ratio = np.asarray(rows["psf_flux"], float)[idx[found]] / (np.asarray(truth["flux"])[found] * NJY_PER_MAGGIE)
    sep = d2.to_value(u.mas)[found]
    print(f"\n[l2-catalog] F158 L2: {len(rows)} rows; {found.sum()}/{len(truth)} truth stars < 21.5 mag matched; "
          f"offset median {np.median(sep):.1f} mas, max {sep.max():.1f} mas; PSF flux / truth median "
          f"{np.median(ratio):.3f} (aper04 {np.median(np.asarray(rows['aper04_flux'])[idx[found]] / (np.asarray(truth['flux'])[found] * NJY_PER_MAGGIE)):.3f}); "  # noqa: E501
          f"{per_image:.1f} s per image (job), step {params_wall:.1f} s")
    assert found.mean() >= 0.8
    assert np.median(sep) < 40 and sep.max() < 100
    assert 0.93 < np.median(ratio) < 1.07
    assert not np.asarray(rows["is_extended"])[idx[found]].mean() > 0.2

    # Re-running replaces the rows and the catalog product (one live per exposure), leaving no orphaned objects.
    with archive.engine.connect() as conn:
        n_jobs = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()
    env = {"ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
           "ROMANARCHIVE_STORE": archive.settings.store_url}
    res = CliRunner().invoke(main, ["l2-catalog", "--product", str(ids["F158"])], env=env)
    assert res.exit_code == 0, res.output
    assert f"1 image(s) catalogued, {len(rows)} sources, 0 error(s)" in res.output
    with archive.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT product_id FROM products WHERE product_type = :t AND filter = 'F158'"),
                            {"t": product_types.L2_CATALOG}).scalar_one() != cat_pid
        assert conn.execute(sa.text("SELECT count(*) FROM l2_sources WHERE product_id = :p"),
                            {"p": ids["F158"]}).scalar_one() == len(rows)
        assert conn.execute(sa.text("SELECT count(*) FROM products WHERE product_type = :t"),
                            {"t": product_types.L2_CATALOG}).scalar_one() == 2
        # Only L2 images trigger co-adds, the ePSF library and light curves: a catalog product queues nothing.
        assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one() == n_jobs
    assert unreferenced_objects(archive) == []

    # Published through TAP: a cone on the pgsphere position, units from the column registry.
    ra0, dec0, r = float(np.median(rows["ra"])), float(np.median(rows["dec"])), 0.003
    d = SkyCoord(rows["ra"] * u.deg, rows["dec"] * u.deg).separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).deg
    expected = set(np.asarray(rows["label"])[d <= r].tolist())
    assert expected
    query = (f"SELECT product_id, label, ra, dec, psf_flux, filter FROM roman.l2_sources WHERE product_id = "
             f"{ids['F158']} AND 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0}, {dec0}, {r}))")
    with live_server(archive, workers=0) as base:
        resp = requests.post(base + "/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query},
                             timeout=60)
        assert resp.status_code == 200, resp.text[:500]
        table = parse_single_table(io.BytesIO(resp.content)).to_table()
    assert set(np.asarray(table["label"]).tolist()) == expected
    assert table["psf_flux"].unit == u.nJy and set(np.asarray(table["filter"]).astype(str)) == {"F158"}


@pytest.mark.db
def test_l2_catalog_refuses_before_writing_and_empty_image(archive: Archive, science_survey: Path) -> None:
    # Without reference files the job fails with a clear error before anything is written.
    _ingest(archive, science_survey, IMAGES[:1], refs=False)
    pid = _l2_ids(archive)["F158"]
    with pytest.raises(CatalogInputError, match="no apcorr reference file for F158"):
        l2_job.catalog_l2(archive, pid)
    with archive.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM l2_sources")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM products WHERE product_type = :t"),
                            {"t": product_types.L2_CATALOG}).scalar_one() == 0
    assert unreferenced_objects(archive) == []
    env = {"ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
           "ROMANARCHIVE_STORE": archive.settings.store_url}
    res = CliRunner().invoke(main, ["l2-catalog", "--all"], env=env)
    assert res.exit_code == 1 and "error: L2" in res.output and "no apcorr reference file" in res.output
    assert CliRunner().invoke(main, ["l2-catalog"], env=env).exit_code == 2
    res = CliRunner().invoke(main, ["l2-catalog", "--product", str(pid + 1000)], env=env)
    assert res.exit_code == 1 and "not a live L2 image" in res.output
    # An image that is no longer live (re-calibrated meanwhile) is skipped.
    assert l2_job.catalog_l2(archive, pid + 1000).catalog_product_id is None

    # No usable pixel: romancal's own empty catalog (zero rows), not a failure.
    refs = {t: next((science_survey / "refs").rglob(f"*_f158_{t}_*.asdf")) for t in ("apcorr", "epsf")}
    image = load_image(science_survey / "l2" / IMAGES[0])
    image.model.data[...] = np.nan
    result = L2CatalogStep(references=refs).run(image)
    assert len(result.table) == 0
    wire = l2_job.wire_columns(result.table, l2_job.L2Image(1, None, None, "F158", "WFI01", 61000.0, None, None,
                                                            "", ""))
    assert all(len(v) == 0 for v in wire.values())
    # An image without a WCS is refused by name.
    bad = load_image(science_survey / "l2" / IMAGES[0]).model
    del bad.meta["wcs"]
    with pytest.raises(CatalogInputError, match="no WCS"):
        load_image(bad)
