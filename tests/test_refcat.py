"""Reference catalogs: loading from the installed packages, table layout, indexes, and epoch propagation in ADQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from romanarchive.archive import Archive
from romanarchive.cli import main
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database
from romanarchive.db.tables_xmatch import GAIA_DR3_BRIGHT, HIPPARCOS2
from romanarchive.sim.truth import read_gaia
from romanarchive.tap.adql import translate
from romanarchive.tap.schema import catalog
from romanarchive.xmatch.healpix import healpix_nested
from romanarchive.xmatch.refcat import read_hipparcos2

pytestmark = pytest.mark.db

BARNARD_HIP = 87937
BARNARD_GAIA = 4472832130942575872


@pytest.fixture(scope="module")
def loaded(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Archive, dict[str, str]]]:
    """An archive with both reference catalogs loaded through the CLI."""
    tmp = tmp_path_factory.mktemp("refcat")
    url = create_database(pg_server, "ra_refcat")
    upgrade(url)
    (tmp / "home").mkdir()
    archive = Archive(Settings(home=tmp / "home", database_url=url, store=str(tmp / "store")))
    env = {"ROMANARCHIVE_HOME": str(tmp / "home"), "ROMANARCHIVE_DATABASE_URL": url}
    res = CliRunner().invoke(main, ["refcat", "load", "--all"], env=env)
    assert res.exit_code == 0, res.output
    yield archive, env
    drop_database(pg_server, url)


def test_rows_come_from_the_packages_in_healpix_order(loaded: tuple[Archive, dict[str, str]]) -> None:
    archive, env = loaded
    gaia, hip = read_gaia(), read_hipparcos2()
    with archive.engine.connect() as conn:
        for spec, n in ((GAIA_DR3_BRIGHT, len(gaia)), (HIPPARCOS2, len(hip["ra"]))):
            rows = conn.execute(sa.text(f"SELECT ra, dec, hpx, degrees(long(pos)), degrees(lat(pos)) "
                                        f"FROM {spec.qualified_name}")).all()  # physical (heap) order
            arr = np.array(rows, float)
            assert len(arr) == n > 100_000
            hpx = np.array([r[2] for r in rows], np.int64)
            assert np.all(np.diff(hpx) >= 0), "rows are stored in HEALPix order"
            assert np.array_equal(hpx, healpix_nested(arr[:, 0], arr[:, 1]))
            assert np.allclose(arr[:, 3], arr[:, 0], atol=1e-9) and np.allclose(arr[:, 4], arr[:, 1], atol=1e-9)
        g = conn.execute(sa.text("SELECT phot_g_mean_mag, phot_bp_mean_mag, phot_rp_mean_mag, ref_epoch "
                                 "FROM refcat.gaia_dr3_bright WHERE source_id = :s"), {"s": BARNARD_GAIA}).one()
        assert g == pytest.approx((8.194, 9.792, 6.958, 2016.0), abs=1e-3)  # DR3: G, BP, RP of Barnard's star
        n_null = conn.execute(sa.text("SELECT count(*) FROM refcat.gaia_dr3_bright WHERE phot_bp_mean_mag IS NULL"))
        assert 0 < n_null.scalar_one() == int(np.sum(gaia["bp"] == 0))
        h = conn.execute(sa.text("SELECT parallax, pmra, pmdec, ref_epoch, radial_velocity FROM refcat.hipparcos2 "
                                 "WHERE hip = :h"), {"h": BARNARD_HIP}).one()
        assert h[0] == pytest.approx(548.31, abs=0.01) and h[2] == pytest.approx(10328.12, abs=0.01)  # I/311
        assert h[3] == 1991.25 and h[4] is None
    res = CliRunner().invoke(main, ["refcat", "list"], env=env)
    assert res.exit_code == 0 and f"{len(gaia):>9d} rows" in res.output and "refcat.hipparcos2" in res.output


def test_tables_match_the_registry_and_carry_the_sky_indexes(loaded: tuple[Archive, dict[str, str]]) -> None:
    # alembic check compares public tables only: the refcat schema is checked here.
    archive, _ = loaded
    with archive.engine.connect() as conn:
        insp = sa.inspect(conn)
        for spec in (GAIA_DR3_BRIGHT, HIPPARCOS2):
            cols = insp.get_columns(spec.name, schema="refcat")
            assert [c["name"] for c in cols] == [c.name for c in spec.columns]
            assert [c["nullable"] for c in cols] == [c.nullable and not c.primary_key for c in spec.columns]
            assert [c["comment"] for c in cols] == [c.description for c in spec.columns]
            defs = {r[0]: r[1] for r in conn.execute(sa.text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'refcat' AND tablename = :t"),
                {"t": spec.name})}  # fmt: skip
            assert 'q3c_ang2ipix(ra, "dec")' in defs[f"{spec.name}_q3c"]
            assert "USING gist (pos)" in defs[f"ix_{spec.name}_pos"] and f"ix_{spec.name}_hpx" in defs
        unsafe = conn.execute(sa.text(
            "SELECT count(*) FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e' "
            "JOIN pg_extension e ON e.oid = d.refobjid WHERE e.extname = 'q3c' AND p.proparallel <> 's'"))
        assert unsafe.scalar_one() == 0


def test_reload_replaces_rows_and_counts_a_change(loaded: tuple[Archive, dict[str, str]]) -> None:
    archive, env = loaded
    with archive.engine.connect() as conn:
        before = conn.execute(sa.text("SELECT version FROM xmatch_versions WHERE relation = 'refcat.hipparcos2'"))
        v0 = before.scalar_one()
    res = CliRunner().invoke(main, ["refcat", "load", "hipparcos2"], env=env)
    assert res.exit_code == 0, res.output
    with archive.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM refcat.hipparcos2")).scalar_one() == 117_955
        v1 = conn.execute(sa.text("SELECT version FROM xmatch_versions WHERE relation = 'refcat.hipparcos2'"))
        assert v1.scalar_one() > v0
    bad = CliRunner().invoke(main, ["refcat", "load", "tycho2"], env=env)
    assert bad.exit_code != 0 and "unknown reference catalog 'tycho2'" in bad.output


def test_epoch_propagation_in_adql_brings_hipparcos_onto_gaia(loaded: tuple[Archive, dict[str, str]]) -> None:
    """Barnard's star (10 arcsec/yr): Hipparcos at J1991.25 propagated to J2016.0 lands on Gaia DR3."""
    archive, _ = loaded
    query = ("SELECT g.source_id, DISTANCE(IVO_EPOCH_PROP_POS(h.ra, h.dec, h.parallax, h.pmra, h.pmdec, "
             "h.radial_velocity, h.ref_epoch, g.ref_epoch), POINT(g.ra, g.dec)) * 3600 AS moved, "
             "DISTANCE(IVO_EPOCH_PROP_POS(h.ra, h.dec, h.parallax, h.pmra, h.pmdec, "
             "-110.51, h.ref_epoch, g.ref_epoch), POINT(g.ra, g.dec)) * 3600 AS moved_rv, "
             "DISTANCE(POINT(h.ra, h.dec), POINT(g.ra, g.dec)) * 3600 AS unmoved "
             "FROM refcat.hipparcos2 AS h JOIN refcat.gaia_dr3_bright AS g "
             "ON DISTANCE(POINT(g.ra, g.dec), POINT(h.ra, h.dec)) < 0.1 "
             f"WHERE h.hip = {BARNARD_HIP}")
    sql = translate(query, catalog()).sql
    assert "q3c_join" in sql
    with archive.engine.connect() as conn:
        rows = conn.execute(sa.text(sql)).all()
        epoch = conn.execute(sa.text(translate(
            "SELECT IVO_EPOCH_PROP(ra, dec, parallax, pmra, pmdec, radial_velocity, ref_epoch, 2016.0) AS p "
            f"FROM refcat.hipparcos2 WHERE hip = {BARNARD_HIP}", catalog()).sql)).scalar_one()  # fmt: skip
    assert [r[0] for r in rows] == [BARNARD_GAIA]
    moved, moved_rv, unmoved = rows[0][1:]
    # 257" of motion in 24.75 yr. Without a radial velocity (Hipparcos has none) the perspective acceleration is
    # missed (~0.4"); with Gaia DR3's -110.51 km/s the propagated position agrees within 100 mas.
    assert unmoved > 250 and 0.2 < moved < 1.0 and moved_rv < 0.1
    assert len(epoch) == 6


def test_package_data_only(tmp_path: Path) -> None:
    """The readers need nothing but the installed packages (no network)."""
    hip = read_hipparcos2()
    assert len(hip["hip"]) == 117_955 and np.all(np.abs(hip["dec"]) <= 90)
    assert set(np.unique(hip["solution_type"])) <= {0, 1, 3, 5, 7, 9}
