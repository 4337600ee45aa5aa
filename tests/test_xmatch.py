"""Cross-matching: the HEALPix sort-merge, ``romanarchive xmatch`` (files, tables, cached copies, match tables),
ADQL positional joins with TAP uploads (plan and results), and bad inputs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from astropy.table import Table
from click.testing import CliRunner

from romanarchive.archive import Archive
from romanarchive.cli import main
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database
from romanarchive.tap.adql import Catalog, translate
from romanarchive.tap.schema import catalog, find
from romanarchive.tap.upload import load_uploads
from romanarchive.xmatch.healpix import healpix_nested
from romanarchive.xmatch.match import crossmatch, sindist
from romanarchive.xmatch.refcat import load_refcat, read_hipparcos2

RADIUS = 1.0 / 3600  # degrees


def _sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def _offset(rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray,
                                                                                                       np.ndarray]:
    """Positions at a random separation in [lo, hi] degrees and random direction (small-angle)."""
    r = rng.uniform(lo, hi, len(ra))
    pa = rng.uniform(0, 2 * np.pi, len(ra))
    dec2 = dec + r * np.cos(pa)
    return (ra + r * np.sin(pa) / np.cos(np.radians(dec))) % 360.0, np.clip(dec2, -90, 90)


def make_left(seed: int = 7) -> Table:
    """Sources near Hipparcos stars (within 0.75") and elsewhere, none within 0.8"–1.25" of a star.

    The margin keeps the pair sets of every route independent of rounding at the radius.
    """
    rng = np.random.default_rng(seed)
    hip = read_hipparcos2()
    pick = rng.choice(len(hip["ra"]), 1500, replace=False)
    near_ra, near_dec = _offset(rng, hip["ra"][pick], hip["dec"][pick], 0.05 / 3600, 0.75 / 3600)
    far_ra, far_dec = _sky(rng, 800)
    ra, dec = np.concatenate([near_ra, near_ra[:40], far_ra]), np.concatenate([near_dec, near_dec[:40], far_dec])
    wide = crossmatch(ra, dec, hip["ra"], hip["dec"], 1.25 * RADIUS)
    ambiguous = np.unique(wide.left[wide.sep_arcsec > 0.8])
    keep = np.setdiff1d(np.arange(len(ra)), ambiguous)
    t = Table({"id": np.arange(len(keep), dtype=np.int64) + 1000, "ra": ra[keep], "dec": dec[keep]})
    t["ra"].meta["ucd"] = "pos.eq.ra;meta.main"
    t["dec"].meta["ucd"] = "pos.eq.dec;meta.main"
    t["ra"].unit = t["dec"].unit = "deg"
    return t


def brute_force(left: Table, right_ra: np.ndarray, right_dec: np.ndarray, right_id: np.ndarray,
                radius: float) -> set[tuple[int, int]]:
    limit = np.sin(np.radians(radius) / 2) ** 2
    out = set()
    for i, (a, d) in enumerate(zip(left["ra"], left["dec"], strict=True)):
        j = np.nonzero(sindist(a, d, right_ra, right_dec) < limit)[0]
        out |= {(int(left["id"][i]), int(right_id[k])) for k in j}
    return out


@pytest.fixture(scope="module")
def env(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An archive with Hipparcos 2 loaded and a VOTable of sources to match against it."""
    tmp = tmp_path_factory.mktemp("xmatch")
    url = create_database(pg_server, "ra_xmatch")
    upgrade(url)
    (tmp / "home").mkdir()
    archive = Archive(Settings(home=tmp / "home", database_url=url, store=str(tmp / "store")))
    load_refcat(archive.engine, "hipparcos2")
    left = make_left()
    path = tmp / "sources.vot"
    left.write(path, format="votable")
    hip = read_hipparcos2()
    truth = brute_force(left, hip["ra"], hip["dec"], hip["hip"], RADIUS)
    yield {"archive": archive, "tmp": tmp, "left": left, "path": path, "truth": truth, "url": url,
           "cli": {"ROMANARCHIVE_HOME": str(tmp / "home"), "ROMANARCHIVE_DATABASE_URL": url}}
    drop_database(pg_server, url)


def _cli(env: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=env["cli"])


def _pairs(archive: Archive, table: str) -> set[tuple[int, int]]:
    with archive.engine.connect() as conn:
        return {(int(a), int(b)) for a, b in conn.execute(sa.text(f"SELECT left_id, right_id FROM {table}"))}


# ------------------------------------------------------------------------------------------------- sort-merge
@pytest.mark.parametrize("radius", [0.5 / 3600, 0.01, 0.7])
def test_sort_merge_equals_brute_force_everywhere(radius: float) -> None:
    rng = np.random.default_rng(3)
    ra2, dec2 = _sky(rng, 30_000)
    ra2[:40], dec2[:40] = rng.uniform(0, 360, 40), rng.uniform(89.9, 90, 40)  # the pole
    ra2[40:80], dec2[40:80] = rng.uniform(-1e-3, 1e-3, 40) % 360, rng.uniform(-1, 1, 40)  # RA 0/360
    k = rng.integers(0, len(ra2), 600)
    ra1, dec1 = _offset(rng, ra2[k], dec2[k], 0, 1.3 * radius)
    left = Table({"id": np.arange(len(ra1)), "ra": ra1, "dec": dec1})
    truth = brute_force(left, ra2, dec2, np.arange(len(ra2)), radius)
    pairs = crossmatch(ra1, dec1, ra2, dec2, radius)
    assert set(zip(pairs.left.tolist(), pairs.right.tolist(), strict=True)) == truth
    near = crossmatch(ra1, dec1, ra2, dec2, radius, nearest=True)
    assert len(near) == len({a for a, _ in truth}) and np.all(np.diff(near.left) > 0)
    best = {a: pairs.sep_arcsec[pairs.left == a].min() for a in near.left[:50].tolist()}
    assert all(best[a] == s for a, s in zip(near.left[:50].tolist(), near.sep_arcsec[:50], strict=True))


# ------------------------------------------------------------------------------------------------- the CLI
@pytest.mark.db
def test_xmatch_into_a_published_table_and_cached_copies(env: dict[str, Any]) -> None:
    archive = env["archive"]
    res = _cli(env, "xmatch", str(env["path"]), "refcat.hipparcos2", "--radius", "1arcsec", "--into", "src_hip")
    assert res.exit_code == 0, res.output
    assert "inputs: file, refreshed" in res.output
    assert _pairs(archive, "xmatch.src_hip") == env["truth"] and len(env["truth"]) > 1000
    with archive.engine.connect() as conn:
        reg = conn.execute(sa.text("SELECT left_source, right_source, radius_arcsec, mode, n_pairs "
                                   "FROM xmatch_tables WHERE name = 'src_hip'")).one()
        sep = conn.execute(sa.text("SELECT max(sep_arcsec), bool_and(sep_arcsec >= 0) FROM xmatch.src_hip")).one()
        ts = conn.execute(sa.text("SELECT count(*) FROM tap_schema.columns WHERE table_name = 'xmatch.src_hip' "
                                  "AND unit IS NOT NULL")).scalar_one()
    assert reg == ("sources.vot", "refcat.hipparcos2", 1.0, "all", len(env["truth"]))
    assert sep[0] < 0.8 and sep[1] and ts == 5
    assert find("xmatch.src_hip") is not None  # published dynamically
    # A second run reuses the cached Parquet copy; a change to the table refreshes it.
    cache = Path(env["cli"]["ROMANARCHIVE_HOME"]) / "xmatch" / "cache" / "refcat.hipparcos2.parquet"
    assert pq.read_table(cache).num_rows == 117_955
    res = _cli(env, "xmatch", str(env["path"]), "refcat.hipparcos2", "--nearest", "--out", str(env["tmp"] / "n.csv"))
    assert res.exit_code == 0 and "inputs: file, cache" in res.output, res.output
    nearest = Table.read(env["tmp"] / "n.csv", format="ascii.csv")
    assert len(nearest) == len({a for a, _ in env["truth"]}) and set(nearest.colnames) >= {"sep_arcsec", "right_id"}
    hip_id = min(b for _, b in env["truth"])
    with archive.engine.begin() as conn:
        conn.execute(sa.text("UPDATE refcat.hipparcos2 SET ra = ra + 1 WHERE hip = :h"), {"h": hip_id})
    res = _cli(env, "xmatch", str(env["path"]), "refcat.hipparcos2", "--into", "src_hip2")
    assert res.exit_code == 0 and "inputs: file, refreshed" in res.output, res.output
    assert _pairs(archive, "xmatch.src_hip2") == {p for p in env["truth"] if p[1] != hip_id}
    with archive.engine.begin() as conn:
        conn.execute(sa.text("UPDATE refcat.hipparcos2 SET ra = ra - 1 WHERE hip = :h"), {"h": hip_id})
    # Replacing and file formats.
    for suffix in ("parquet", "fits", "vot"):
        out = env["tmp"] / f"all.{suffix}"
        res = _cli(env, "xmatch", str(env["path"]), "refcat.hipparcos2", "--out", str(out))
        assert res.exit_code == 0, res.output
        t = Table.read(out)
        assert {(int(a), int(b)) for a, b in zip(t["left_id"], t["right_id"], strict=True)} == env["truth"]
    res = _cli(env, "xmatch", str(env["path"]), "refcat.hipparcos2", "--into", "src_hip")
    assert res.exit_code != 0 and "exists" in res.output


@pytest.mark.db
def test_table_against_table_and_file_against_file(env: dict[str, Any], tmp_path: Path) -> None:
    archive = env["archive"]
    res = _cli(env, "xmatch", "refcat.hipparcos2", "hipparcos2", "--radius", "0.5arcsec", "--into", "self")
    assert res.exit_code == 0, res.output
    with archive.engine.connect() as conn:
        n, same = conn.execute(sa.text("SELECT count(*), count(*) FILTER (WHERE left_id = right_id) "
                                       "FROM xmatch.self")).one()
    assert same == 117_955 and n >= same  # every star matches itself
    # Files: clusters give several right rows per left row; ids from an integer id column, else row numbers.
    rng = np.random.default_rng(5)
    ra, dec = _sky(rng, 500)
    r_ra, r_dec = _offset(rng, np.repeat(ra, 3), np.repeat(dec, 3), 0, 2 / 3600)
    Table({"ra": ra, "dec": dec}).write(tmp_path / "l.csv")
    Table({"x": r_ra, "y": r_dec}).write(tmp_path / "r.parquet")
    truth = brute_force(Table({"id": np.arange(500), "ra": ra, "dec": dec}), r_ra, r_dec, np.arange(1500), RADIUS)
    res = _cli(env, "xmatch", str(tmp_path / "l.csv"), str(tmp_path / "r.parquet"), "--right-cols", "x,y",
               "--out", str(tmp_path / "m.ecsv"))
    assert res.exit_code == 0, res.output
    t = Table.read(tmp_path / "m.ecsv")
    assert {(int(a), int(b)) for a, b in zip(t["left_id"], t["right_id"], strict=True)} == truth
    assert t["sep_arcsec"].unit == "arcsec" and t.meta["radius_arcsec"] == 1.0
    assert len(truth) > len({a for a, _ in truth})  # several partners per source


@pytest.mark.db
@pytest.mark.parametrize(("args", "message"), [
    (["LEFT", "roman.nowhere", "--into", "bad"], "unknown table 'roman.nowhere'"),
    (["NOPOS", "refcat.hipparcos2", "--into", "bad"], "no RA/Dec columns"),
    (["OUTSIDE", "refcat.hipparcos2", "--into", "bad"], "out of range"),
    (["NAN", "refcat.hipparcos2", "--into", "bad"], "no finite RA/Dec"),
    (["LEFT", "refcat.hipparcos2", "--radius", "0arcsec", "--into", "bad"], "radius must be positive"),
    (["LEFT", "refcat.hipparcos2", "--radius", "-1arcsec", "--into", "bad"], "radius must be positive"),
    (["LEFT", "refcat.hipparcos2", "--radius", "2deg", "--into", "bad"], "too large"),
    (["LEFT", "refcat.hipparcos2", "--radius", "3kg", "--into", "bad"], "not an angle"),
    (["LEFT", "refcat.hipparcos2", "--into", "Bad-Name"], "invalid match table name"),
    (["LEFT", "refcat.hipparcos2"], "--into TABLE or --out FILE"),
    (["MISSING", "refcat.hipparcos2", "--into", "bad"], "no such file"),
    (["LEFT", "refcat.hipparcos2", "--out", "OUT.txt"], "cannot write"),
])
def test_bad_inputs_fail_clearly_and_write_nothing(env: dict[str, Any], tmp_path: Path, args: list[str],
                                                   message: str) -> None:
    Table({"x": [1.0], "y": [2.0]}).write(tmp_path / "nopos.csv")
    Table({"ra": [1.0, 2.0], "dec": [2.0, 95.0]}).write(tmp_path / "outside.csv")
    Table({"ra": [1.0, np.nan], "dec": [2.0, 3.0]}).write(tmp_path / "nan.csv")
    files = {"LEFT": str(env["path"]), "NOPOS": str(tmp_path / "nopos.csv"), "OUTSIDE": str(tmp_path / "outside.csv"),
             "NAN": str(tmp_path / "nan.csv"), "MISSING": str(tmp_path / "missing.csv"),
             "OUT.txt": str(tmp_path / "out.txt")}
    res = _cli(env, "xmatch", *[files.get(a, a) for a in args])
    assert res.exit_code != 0 and message in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "out.txt").exists()
    with env["archive"].engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM xmatch_tables WHERE name = 'bad'")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT to_regclass('xmatch.bad')")).scalar_one() is None


# ------------------------------------------------------------------------------------------------- ADQL joins
def _votable_bytes(t: Table) -> bytes:
    buf = io.BytesIO()
    t.write(buf, format="votable")
    return buf.getvalue()


@pytest.mark.db
def test_upload_join_plan_uses_the_catalog_index(env: dict[str, Any]) -> None:
    """The upload is HEALPix-sorted and indexed; the join scans it and probes Hipparcos' q3c index."""
    data = _votable_bytes(env["left"])
    libpq = env["url"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as conn:
        (info,) = load_uploads(conn, [("src", "param:src")], lambda ref: io.BytesIO(data), 10_000_000)
        assert info.rows == len(env["left"])
        rows = conn.execute('SELECT ra, dec FROM pg_temp."tap_upload_src"').fetchall()  # physical order
        hpx = healpix_nested(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))
        assert np.all(np.diff(hpx) >= 0)
        cat = catalog()
        both = Catalog(dict(cat.tables))
        both.add(info)
        for on in ("DISTANCE(POINT(s.ra, s.dec), POINT(h.ra, h.dec)) < 1.0/3600",
                   "CONTAINS(POINT(s.ra, s.dec), CIRCLE(h.ra, h.dec, 1.0/3600)) = 1",
                   "CONTAINS(POINT(h.ra, h.dec), CIRCLE(s.ra, s.dec, 1.0/3600)) = 1"):
            sql = translate(f"SELECT s.id, h.hip FROM TAP_UPLOAD.src AS s JOIN refcat.hipparcos2 AS h ON {on}",
                            both).sql
            assert "q3c_join" in sql
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql).fetchall())
            assert "hipparcos2_q3c" in plan and "Seq Scan on hipparcos2" not in plan, plan
            got = {(int(a), int(b)) for a, b in conn.execute(sql).fetchall()}
            assert got == env["truth"]
        conn.rollback()


# ------------------------------------------------------------------------------------- composite keys, provenance
@pytest.mark.db
def test_objects_keyed_by_release_and_provenance(env: dict[str, Any]) -> None:
    """objects is keyed by (source_id, release): a match reads one release (live unless --release), records the
    full key, and every match table's registry row carries its provenance."""
    from romanarchive.catalog.load import replace_skycell

    archive = env["archive"]
    hip = read_hipparcos2()
    sel = np.flatnonzero((np.abs(hip["ra"] - 150) < 4) & (np.abs(hip["dec"] - 20) < 4))
    assert len(sel) > 20
    live, dr1 = sel[::2], sel[1::2]
    with archive.engine.begin() as conn:
        ids_live = replace_skycell(conn, "cellK", {"ra": hip["ra"][live], "dec": hip["dec"][live]})
        # The same skycell frozen in release dr1 holds other stars: source ids may repeat across releases.
        ids_dr1 = replace_skycell(conn, "cellK", {"ra": hip["ra"][dr1], "dec": hip["dec"][dr1]}, release="dr1")
    expect_live = {(int(a), int(b)) for a, b in zip(ids_live, hip["hip"][live], strict=True)}
    expect_dr1 = {(int(a), int(b)) for a, b in zip(ids_dr1, hip["hip"][dr1], strict=True)}
    res = _cli(env, "xmatch", "roman.objects", "refcat.hipparcos2", "--radius", "0.1arcsec", "--into", "obj_live")
    assert res.exit_code == 0, res.output
    assert _pairs(archive, "xmatch.obj_live") == expect_live
    res = _cli(env, "xmatch", "roman.objects", "refcat.hipparcos2", "--radius", "0.1arcsec", "--release", "dr1",
               "--into", "obj_dr1")
    assert res.exit_code == 0, res.output
    assert _pairs(archive, "xmatch.obj_dr1") == expect_dr1
    with archive.engine.connect() as conn:
        reg = {r["name"]: r for r in conn.execute(sa.text("SELECT * FROM xmatch_tables")).mappings()}
        hip_version = conn.execute(sa.text("SELECT version FROM xmatch_versions WHERE relation = "
                                           "'refcat.hipparcos2'")).scalar_one()
        obj_version = conn.execute(sa.text("SELECT version FROM xmatch_versions WHERE relation = "
                                           "'public.objects'")).scalar_one()
    assert reg["obj_live"]["left_key"] == {"id": "source_id", "fixed": {"release": "live"}}
    assert reg["obj_dr1"]["left_key"] == {"id": "source_id", "fixed": {"release": "dr1"}}
    assert reg["obj_dr1"]["right_key"] == {"id": "hip", "fixed": {}}
    from romanarchive.xmatch.hats import read_frame

    frame, _, _ = read_frame(archive.engine, "roman.objects")  # the HATS export reads the live release too
    assert set(frame["release"]) == {"live"} and sorted(frame["source_id"]) == sorted(ids_live.tolist())
    # --release on inputs without a release key is refused, and nothing is written.
    res = _cli(env, "xmatch", str(env["path"]), "refcat.hipparcos2", "--release", "dr1", "--into", "bad_rel")
    assert res.exit_code != 0 and "release" in res.output and "bad_rel" not in _names(archive)
    # Provenance: step, software, parameters, inputs with their write counters or sha256, wall time, host.
    for name in ("obj_live", "obj_dr1"):
        r = reg[name]
        assert r["step"] == "romanarchive.xmatch.bulk" and r["host"] and r["wall_time_s"] > 0
        assert "numpy" in r["software"] and "romanarchive" in r["software"]
        assert r["parameters"]["radius_arcsec"] == pytest.approx(0.1) and r["parameters"]["mode"] == "all"
        tables = {i["table"]: i for i in r["inputs"]}
        assert tables["refcat.hipparcos2"]["version"] == hip_version
        assert tables["roman.objects"]["version"] == obj_version
    assert reg["obj_dr1"]["parameters"]["release"] == "dr1"
    src = reg["src_hip"]["inputs"][0] if "src_hip" in reg else None
    if src is not None:  # written by the CLI test above: a file input is identified by its sha256
        import hashlib

        assert src["sha256"] == hashlib.sha256(Path(env["path"]).read_bytes()).hexdigest()


def _names(archive: Archive) -> set[str]:
    with archive.engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT name FROM xmatch_tables")).scalars())
