"""Forced-photometry targets: positions an operator or a Level 5 catalog asks for, on the science survey.

The archive is the one of ``tests/test_timeseries.py`` (epochs 0-2 ingested, one skycell co-added and catalogued by
the real pipeline, every L2 force-photometered). A target at a truth star's position must measure what the star's
catalog object measures on the same images; a target in empty sky must measure zero within its errors. Run with
``-s`` to see the figures.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.table import Table
from click.testing import CliRunner

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database
from romanarchive.db.tables_timeseries import FLAG_LOW_SNR
from romanarchive.jobs import worker
from romanarchive.timeseries import forced_job, forced_step, targets
from tests.conftest import catalogue_one_skycell

# As in test_timeseries: every object measured, the home-core selection off (one skycell of five is catalogued).
CONFIG = forced_step.ForcedPhotConfig(point_like_only=False, home_core_only=False)
SKY_CLEARANCE_ARCSEC = 4.0


def _l2(survey: Path, epochs: set[int]) -> list[Path]:
    # File names r0000101<pass>001001001_<exp>_wfi01_<filter>_cal.asdf: the pass (3 digits) is epoch + 1.
    return sorted(p for p in (survey / "l2").glob("*_cal.asdf") if int(p.name[8:11]) - 1 in epochs)


def _sep_arcsec(ra: Any, dec: Any, ra0: float, dec0: float) -> np.ndarray:
    return np.hypot((np.asarray(ra, float) - ra0) * np.cos(np.radians(dec0)), np.asarray(dec, float) - dec0) * 3600


@pytest.fixture(scope="module")
def survey_archive(pg_server: str, science_survey: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Archive with epochs 0-2 catalogued and force-photometered; the positions of a star and of empty sky."""
    tmp = tmp_path_factory.mktemp("targets")
    url = create_database(pg_server, "ra_tg")
    upgrade(url)
    (tmp / "home").mkdir()
    archive = Archive(Settings(home=tmp / "home", database_url=url, store=str(tmp / "store"), lease_seconds=30))
    catalogue_one_skycell(archive, _l2(science_survey, {0, 1, 2}))
    forced_job.run_all(archive, CONFIG)
    truth = Table.read(science_survey / "truth" / "truth.ecsv")
    with archive.engine.connect() as conn:
        objs = conn.execute(sa.text("SELECT source_id, ra, dec FROM objects WHERE release = 'live'")).all()
        stats = {int(r[0]): r[1:] for r in conn.execute(sa.text(
            "SELECT source_id, count(*), max(flags), min(flux / flux_err) FROM forced_phot GROUP BY 1")).all()}
        n_l2 = conn.execute(sa.text("SELECT count(*) FROM products WHERE level = 2")).scalar_one()
        regions = conn.execute(sa.text("SELECT s_region::text FROM products WHERE level = 2")).scalars().all()
    ora, odec = np.array([o[1] for o in objs]), np.array([o[2] for o in objs])
    # The star: the best-measured truth star whose catalog object lies within 0.1" and is measured cleanly (no
    # flags) on every L2.
    best = None
    for row in truth[truth["kind"] == "star"]:
        d = _sep_arcsec(ora, odec, float(row["ra"]), float(row["dec"]))
        i = int(np.argmin(d))
        sid = int(objs[i][0])
        n, flags, snr = stats.get(sid, (0, 1, 0.0))
        if d[i] < 0.1 and n == n_l2 and flags == 0 and (best is None or snr > best[3]):
            best = (float(row["ra"]), float(row["dec"]), sid, float(snr), int(row["id"]),
                    {f: 3631e9 * 10 ** (-0.4 * float(row[f"mag_{f}"])) for f in ("F087", "F158")})
    assert best is not None
    # Empty sky: on a grid over the footprints, among the points that the most L2s cover and that lie at least
    # SKY_CLEARANCE_ARCSEC from every simulated source and catalog object, the farthest from the two bright (Gaia)
    # stars' halos.
    from romanarchive.sky.skycells import parse_spoly

    corners = np.array([c for r in regions for c in parse_spoly(r)])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    gra, gdec = (v.ravel() for v in np.meshgrid(np.linspace(lo[0], hi[0], 41), np.linspace(lo[1], hi[1], 41)))
    with archive.engine.connect() as conn:
        n_cover = np.array(conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM products p WHERE p.level = 2 AND spoint(radians(g.ra), radians(g.dec)) "
            "@ p.s_region) FROM unnest(CAST(:ra AS float8[]), CAST(:dec AS float8[])) WITH ORDINALITY "
            "AS g(ra, dec, i) ORDER BY g.i"), {"ra": gra.tolist(), "dec": gdec.tolist()}).scalars().all())
    clear = np.array([min(_sep_arcsec(truth["ra"], truth["dec"], a, b).min(), _sep_arcsec(ora, odec, a, b).min())
                      for a, b in zip(gra, gdec, strict=True)])
    bright = truth[truth["kind"] == "gaia"]
    halo = np.array([_sep_arcsec(bright["ra"], bright["dec"], a, b).min() for a, b in zip(gra, gdec, strict=True)])
    ok = np.flatnonzero((clear > SKY_CLEARANCE_ARCSEC) & (n_cover == n_cover.max()))
    assert len(ok)
    k = ok[int(np.argmax(halo[ok]))]
    sky = (float(gra[k]), float(gdec[k]), float(clear[k]), float(halo[k]))
    yield archive, best, sky
    archive.engine.dispose()
    drop_database(pg_server, url)


def _covering(conn: sa.Connection, ra: float, dec: float) -> set[int]:
    return set(conn.execute(sa.text(
        "SELECT product_id FROM products WHERE level = 2 AND release = 'live' "
        "AND spoint(radians(:ra), radians(:dec)) @ s_region"), {"ra": ra, "dec": dec}).scalars())


def _run_queued(archive: Archive) -> int:
    """Run the queued forced_phot jobs with the tests' configuration (as test_timeseries does)."""
    with archive.engine.begin() as conn:
        conn.execute(sa.text("UPDATE jobs SET params = CAST(:p AS jsonb) WHERE kind = 'forced_phot' "
                             "AND state = 'queued'"), {"p": json.dumps(CONFIG.model_dump(exclude_defaults=True))})
    n = 0
    while worker.run_one(archive, kinds=("forced_phot",)) is not None:
        n += 1
    with archive.engine.connect() as conn:
        failed = conn.execute(sa.text("SELECT error FROM jobs WHERE kind = 'forced_phot' AND state <> 'done'"
                                      )).scalars().all()
    assert not failed, failed
    return n


def _rows(conn: sa.Connection, target_id: int) -> dict[int, sa.RowMapping]:
    return {int(r["product_id"]): r for r in conn.execute(sa.text(
        "SELECT * FROM target_phot WHERE target_id = :t"), {"t": target_id}).mappings()}


def _env(archive: Archive) -> dict[str, str]:
    return {"ROMANARCHIVE_HOME": str(archive.settings.home), "ROMANARCHIVE_DATABASE_URL": archive.url,
            "ROMANARCHIVE_STORE": archive.settings.store_url}


@pytest.mark.db
@pytest.mark.slow
def test_star_and_empty_sky_targets_on_every_covering_l2(survey_archive: Any) -> None:
    archive, (sra, sdec, sid, snr, tid, truth_njy), (kra, kdec, clear, halo) = survey_archive
    added = targets.add_and_queue(archive, ["star", "sky"], [sra, kra], [sdec, kdec])
    assert (added.new, added.moved, added.unchanged) == (2, 0, 0)
    with archive.engine.connect() as conn:
        cover_star, cover_sky = _covering(conn, sra, sdec), _covering(conn, kra, kdec)
        queued = set(conn.execute(sa.text("SELECT product_id FROM jobs WHERE kind = 'forced_phot' "
                                          "AND state = 'queued'")).scalars())
    assert cover_star and cover_sky
    assert set(added.products) == queued == cover_star | cover_sky and added.jobs_queued == len(queued)
    n_jobs = _run_queued(archive)
    star_id, sky_id = added.target_ids
    with archive.engine.connect() as conn:
        star, sky = _rows(conn, star_id), _rows(conn, sky_id)
        forced = {int(r["product_id"]): r for r in conn.execute(sa.text(
            "SELECT * FROM forced_phot WHERE source_id = :s"), {"s": sid}).mappings()}
        runs = conn.execute(sa.text("SELECT count(*) FROM target_phot f LEFT JOIN timeseries_runs r USING (run_id) "
                                    "WHERE r.step = 'romanarchive.ForcedPhotStep'")).scalar_one()
    assert set(star) == cover_star and set(sky) == cover_sky  # one row per covering L2
    assert runs == len(star) + len(sky)  # every row points at the run of its image's job
    ratio = np.array([star[p]["flux"] / forced[p]["flux"] for p in star])
    ratio_ap = np.array([star[p]["flux_ap"] / forced[p]["flux_ap"] for p in star])
    # The difference in units of the measurement error: the two positions differ by the catalog's astrometric error.
    dsig = np.array([(star[p]["flux"] - forced[p]["flux"]) / forced[p]["flux_err"] for p in star])
    # Against the simulated flux, per filter: the target sits at the true position, the catalog object 5 mas off it.
    vs_truth = {f: (np.array([star[p]["flux"] / truth_njy[f] for p in star if star[p]["filter"] == f]),
                    np.array([forced[p]["flux"] / truth_njy[f] for p in star if star[p]["filter"] == f]))
                for f in truth_njy}
    pull = np.array([sky[p]["flux"] / sky[p]["flux_err"] for p in sky])
    pull_ap = np.array([sky[p]["flux_ap"] / sky[p]["flux_ap_err"] for p in sky])
    print(f"\n[targets] {n_jobs} jobs; star (truth id {tid}, S/N >= {snr:.0f}) on {len(star)} L2: PSF flux / "
          f"forced_phot's: median {np.median(ratio):.4f} (range {ratio.min():.4f}-{ratio.max():.4f}), aperture "
          f"{np.median(ratio_ap):.4f} (range {ratio_ap.min():.4f}-{ratio_ap.max():.4f}); |difference| <= "
          f"{np.abs(dsig).max():.1f} sigma")
    for f, (t, o) in vs_truth.items():
        print(f"[targets] {f} flux / simulated: target {np.median(t):.4f} (scatter {np.std(t):.4f}), catalog object "
              f"{np.median(o):.4f} (scatter {np.std(o):.4f})")
    print(f"[targets] empty sky ({clear:.1f}\" from any source, {halo:.0f}\" from a bright star) on {len(sky)} L2: "
          f"PSF flux pull mean {pull.mean():+.2f}, max |pull| {np.abs(pull).max():.2f}; aperture max |pull| "
          f"{np.abs(pull_ap).max():.2f}")
    # A few per cent per image: on the undersampled F087 PSF the 5 mas between the two positions is worth up to
    # 4 % at some sub-pixel phases; across the images the two agree within 1 %.
    assert np.all(np.abs(ratio - 1) < 0.05) and abs(np.median(ratio) - 1) < 0.01
    assert np.all(np.abs(ratio_ap - 1) < 0.05) and abs(np.median(ratio_ap) - 1) < 0.01
    assert all(abs(np.median(t) - 1) < 0.03 for t, _ in vs_truth.values())
    assert all(star[p]["filter"] == forced[p]["filter"] and star[p]["mjd"] == forced[p]["mjd"] for p in star)
    assert np.all(np.abs(pull) < 5) and np.all(np.abs(pull_ap) < 5)
    assert all(r["flags"] & FLAG_LOW_SNR and r["dra"] is None for r in sky.values())  # no centroid


@pytest.mark.db
@pytest.mark.slow
def test_adding_again_updates_in_place(survey_archive: Any) -> None:
    archive, (sra, sdec, *_), (kra, kdec, *_) = survey_archive
    with archive.engine.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT name, target_id FROM forced_targets WHERE origin = 'operator'")).all())
        n_star = len(_rows(conn, ids["star"]))
    # The same position: nothing changes, nothing is queued.
    again = targets.add_and_queue(archive, ["star"], [sra], [sdec])
    assert (again.target_ids, again.unchanged, again.jobs_queued) == ([ids["star"]], 1, 0)
    # The sky target moves 1.5" north: the same target, its old measurements gone, its images re-opened.
    moved_dec = kdec + 1.5 / 3600
    assert targets.add_targets(archive, ["sky", "star"], [kra, sra], [moved_dec, sdec]) == [ids["sky"], ids["star"]]
    with archive.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT ra, dec, pos = spoint(radians(ra), radians(dec)) FROM forced_targets "
                                   "WHERE target_id = :t"), {"t": ids["sky"]}).one()
        assert tuple(row) == (kra, moved_dec, True)
        assert not _rows(conn, ids["sky"]) and len(_rows(conn, ids["star"])) == n_star
        cover = _covering(conn, kra, moved_dec)
        n_targets = conn.execute(sa.text("SELECT count(*) FROM forced_targets")).scalar_one()
    assert n_targets == 2
    assert _run_queued(archive) == len(cover)
    with archive.engine.connect() as conn:
        assert set(_rows(conn, ids["sky"])) == cover


@pytest.mark.db
@pytest.mark.slow
def test_cli_add_file_errors_list_and_remove(survey_archive: Any, tmp_path: Path) -> None:
    from romanarchive.cli import main

    archive = survey_archive[0]
    env, runner = _env(archive), CliRunner()

    def count() -> int:
        with archive.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM forced_targets")).scalar_one())

    before = count()
    bad_column = tmp_path / "bad_column.csv"
    bad_column.write_text("name,ra,declination\na,10.0,20.0\nb,11.0,21.0\n")
    res = runner.invoke(main, ["targets", "add", "--file", str(bad_column)], env=env)
    assert res.exit_code == 1 and "missing column dec" in res.output and "declination" in res.output, res.output
    out_of_range = tmp_path / "out_of_range.csv"
    out_of_range.write_text("name,ra,dec\na,10.0,20.0\nb,11.0,95.0\nc,-1,0\n")
    res = runner.invoke(main, ["targets", "add", "--file", str(out_of_range)], env=env)
    assert res.exit_code == 1 and "Dec outside [-90, 90] deg at row 2" in res.output, res.output
    assert "RA outside [0, 360) deg at row 3" in res.output
    assert count() == before  # nothing half-inserted
    # A valid file (ECSV with units) far from the survey, a negative declination on the command line, a list.
    good = tmp_path / "far.ecsv"
    Table({"Name": ["far1", "far2"], "RA": [10.0, 11.0], "Dec": [-45.0, -46.0]},
          units={"RA": "deg", "Dec": "deg"}).write(good)
    res = runner.invoke(main, ["targets", "add", "--file", str(good)], env=env)
    assert res.exit_code == 0 and "2 new" in res.output and "no live L2 image covers them" in res.output, res.output
    res = runner.invoke(main, ["targets", "add", "south", "12.5", "-30.25"], env=env)
    assert res.exit_code == 0 and "1 new" in res.output, res.output
    res = runner.invoke(main, ["targets", "list", "--json"], env=env)
    listed = {r["name"]: r for r in json.loads(res.output)}
    assert {"star", "sky", "far1", "far2", "south"} <= set(listed) and listed["south"]["dec"] == -30.25
    assert listed["star"]["n_measurements"] > 0 and listed["far1"]["n_measurements"] == 0
    res = runner.invoke(main, ["targets", "remove", "far1", "far2", "south"], env=env)
    assert res.exit_code == 0 and "removed 3 target(s)" in res.output, res.output
    res = runner.invoke(main, ["targets", "remove", "nosuch"], env=env)
    assert res.exit_code == 1 and "no target nosuch" in res.output
    usage = runner.invoke(main, ["targets", "add", "x", "1.0"], env=env)
    assert usage.exit_code == 2 and "NAME RA DEC" in usage.output
    assert count() == before


@pytest.mark.db
@pytest.mark.slow
def test_level5_catalog_becomes_targets(survey_archive: Any, tmp_path: Path) -> None:
    """A published Level 5 catalog's rows, named by its primary key, measured in-process with --now."""
    sys.path.insert(0, str(Path(__file__).parent / "level5_corpus"))
    import make_corpus as mc

    from romanarchive.cli import main
    from romanarchive.level5 import service
    from romanarchive.level5.targets import level5_positions

    archive, (sra, sdec, *_), (kra, kdec, *_) = survey_archive
    token = service.create_token(archive, "tdomain")
    cols = mc.columns(n=2)
    cols["ra"], cols["dec"] = np.array([sra, kra]), np.array([sdec, kdec])
    files = mc.catalog(tmp_path / "l5", mc.declaration("my_targets"), cols)
    status, body = service.submit(archive, token, [(p.name, io.BytesIO(p.read_bytes())) for p in files])
    assert status == 201, body
    env, runner = _env(archive), CliRunner()
    res = runner.invoke(main, ["targets", "add", "--from-level5", "nosuch"], env=env)
    assert res.exit_code == 1 and "no Level 5 product 'nosuch'" in res.output
    res = runner.invoke(main, ["targets", "add", "--from-level5", "my_targets", "--now"], env=env)
    assert res.exit_code == 0, res.output
    assert "level5.my_targets_v1: 2 row(s), named by object_id" in res.output and "2 new" in res.output
    with archive.engine.connect() as conn:
        got = dict(conn.execute(sa.text("SELECT name, target_id FROM forced_targets WHERE origin = :o"),
                                {"o": "level5:my_targets"}).all())
        assert set(got) == {"1", "2"}
        ops = dict(conn.execute(sa.text("SELECT name, target_id FROM forced_targets WHERE origin = 'operator'")).all())
        l5_star, op_star = _rows(conn, got["1"]), _rows(conn, ops["star"])
        queued = conn.execute(sa.text("SELECT count(*) FROM jobs WHERE state <> 'done'")).scalar_one()
    assert set(l5_star) == set(op_star) and queued == 0  # --now ran the queued jobs and marked them done
    # The same position on the same images, registered by the same objects (the re-opened jobs keep their
    # parameters): the same flux.
    ratio = np.array([l5_star[p]["flux"] / op_star[p]["flux"] for p in op_star])
    print(f"\n[targets] Level 5 target at the star: flux / operator target's {np.median(ratio):.4f}")
    assert np.all(np.abs(ratio - 1) < 0.01)
    # The catalog is found by product id and by name/version too; adding it again changes nothing.
    with archive.engine.connect() as conn:
        for ident in (str(body["product_id"]), "my_targets/v1", "my_targets_v1"):
            pos = level5_positions(conn, ident)
            assert pos.names == ["1", "2"] and pos.ra.tolist() == [sra, kra], ident
    res = runner.invoke(main, ["targets", "add", "--from-level5", "my_targets"], env=env)
    assert res.exit_code == 0 and "2 unchanged" in res.output and "nothing new to measure" in res.output
    assert targets.remove_targets(archive, None, "level5:my_targets") == ["1", "2"]
    with archive.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM target_phot WHERE target_id = ANY(:t)"),
                            {"t": list(got.values())}).scalar_one()
    assert left == 0  # measurements go with their targets


@pytest.mark.db
@pytest.mark.slow
def test_target_tables_are_published_through_tap(survey_archive: Any) -> None:
    from romanarchive.tap.service import QueryParams, QueryRunner

    archive = survey_archive[0]
    runner = QueryRunner(archive)
    try:
        def query(adql: str) -> list[tuple[Any, ...]]:
            q = runner.open(QueryParams(adql, "ADQL", 1000, "votable"), 30)
            return [tuple(r) for b in q.batches for r in b]

        tables = {r[0] for r in query("SELECT table_name FROM TAP_SCHEMA.tables")}
        assert {"roman.forced_targets", "roman.target_phot"} <= tables
        cols = {r[0]: r[1:] for r in query("SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns "
                                           "WHERE table_name = 'roman.target_phot'")}
        assert cols["flux"] == ("nJy", "phot.flux;em.IR") and cols["dra"][0] == "mas" and cols["mjd"][0] == "d"
        keys = query("SELECT from_table, target_table FROM TAP_SCHEMA.keys")
        assert ("roman.target_phot", "roman.forced_targets") in keys
        rows = query("SELECT t.name, COUNT(*) AS n FROM roman.target_phot AS p JOIN roman.forced_targets AS t "
                     "ON t.target_id = p.target_id WHERE t.origin = 'operator' GROUP BY t.name")
        near = query("SELECT name FROM roman.forced_targets WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
                     f"CIRCLE('ICRS', {survey_archive[1][0]}, {survey_archive[1][1]}, 0.0003))")
    finally:
        runner.close()
    assert dict(rows).keys() == {"star", "sky"} and min(dict(rows).values()) > 0
    assert [r[0] for r in near] == ["star"]


def test_check_targets_reports_rows() -> None:
    names, ra, dec = targets.check_targets([" a ", "b"], [0.0, 359.5], [-90, 90])
    assert names == ["a", "b"] and ra.dtype == float
    with pytest.raises(targets.TargetError, match=r"duplicate name at row 3"):
        targets.check_targets(["a", "b", "a"], [1, 2, 3], [0, 0, 0])
    with pytest.raises(targets.TargetError, match=r"RA outside \[0, 360\) deg at rows 1, 2"):
        targets.check_targets(["a", "b"], [360.0, float("nan")], [0, 0])
    with pytest.raises(targets.TargetError, match="origin must be"):
        targets.check_origin("someone")
