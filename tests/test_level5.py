"""Level 5: validation (client and server share it), the malformed-submission corpus, publication and its atomicity."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.level5 import service
from romanarchive.level5.cli import level5
from romanarchive.level5.contract import Limits
from romanarchive.level5.publish import STAGES
from romanarchive.level5.validate import validate_product

sys.path.insert(0, str(Path(__file__).parent / "level5_corpus"))
import make_corpus as mc  # noqa: E402

SERVER_SIDE = list(mc.CASES)
CLIENT_SIDE = [c for c in mc.CASES if not c.server_only]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return mc.build(tmp_path_factory.mktemp("l5corpus"))


@pytest.fixture(scope="module")
def l5archive(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """One migrated archive for the module (the corpus checks it is left exactly as it was)."""
    from romanarchive.db.engine import upgrade
    from romanarchive.db.scratch import create_database, drop_database

    url = create_database(pg_server, "ra_l5")
    upgrade(url)
    root = tmp_path_factory.mktemp("l5archive")
    (root / "home").mkdir()
    yield Archive(Settings(home=root / "home", database_url=url, store=str(root / "store"), lease_seconds=5))
    drop_database(pg_server, url)


@pytest.fixture(scope="module")
def token(l5archive: Archive) -> str:
    return service.create_token(l5archive, "deep")


def trace(archive: Archive) -> dict[str, Any]:
    """Everything a submission could leave behind: registry rows, level5 tables, stored objects, scratch files."""
    with archive.engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("products", "files", "provenance", "level5_versions", "level5_columns")}
        counts["level5_tables"] = sorted(conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'level5'")).scalars())
        counts["tap_tables"] = sorted(conn.execute(sa.text("SELECT table_name FROM tap_schema.tables")).scalars())
    counts["objects"] = archive.store.list_keys()
    scratch = archive.settings.scratch / "level5"
    counts["scratch"] = sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []
    return counts


def _submit(archive: Archive, token: str | None, files: list[Path], names: dict[str, str] | None = None,
            limits: Limits | None = None, hook: Any = None) -> tuple[int, dict[str, Any]]:
    names = names or {}
    uploads = [(names.get(p.name, p.name), io.BytesIO(p.read_bytes())) for p in files]
    return service.submit(archive, token, uploads, client="test", limits=limits, hook=hook)


# ------------------------------------------------------------------------------------------------ client side
@pytest.mark.parametrize("case", CLIENT_SIDE, ids=lambda c: c.name)
def test_corpus_validate_offline(case: mc.Case, corpus: dict[str, list[Path]]) -> None:
    """Each malformed product gives its specific error code at its location, without any database."""
    limits = Limits(max_file_bytes=case.max_file_bytes) if case.max_file_bytes else Limits()
    report = validate_product(corpus[case.name], limits).report()
    assert report["valid"] is False
    hits = [e for e in report["errors"] if e["code"] == case.code]
    assert hits, report["errors"]
    assert any(case.location in e["location"] for e in hits), hits


def test_corpus_is_large_enough() -> None:
    assert len(mc.CASES) >= 30
    assert len({c.name for c in mc.CASES}) == len(mc.CASES)


def test_valid_products_validate(corpus: dict[str, list[Path]]) -> None:
    cat = validate_product(corpus["valid_catalog"])
    assert cat.valid and cat.kind == "catalog" and cat.name == "deep_photoz" and cat.n_rows == mc.N
    asdf_ = validate_product(corpus["valid_asdf"])
    assert asdf_.valid and asdf_.kind == "asdf" and asdf_.name == "deep_image"


def test_cli_validate_text_json_and_exit_codes(corpus: dict[str, list[Path]], tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(level5, ["validate", str(corpus["valid_catalog"][0])])  # sidecar found next to it
    assert ok.exit_code == 0, ok.output
    assert "valid: catalog product 'deep_photoz', 20 rows" in ok.output
    # Several different problems at once are all reported in one pass.
    decl = mc.declaration()
    del decl["meta"]["ccsp"]["doi"]
    next(c for c in decl["table"]["columns"] if c["name"] == "mag_f158")["unit"] = "magnitudes"
    cols = mc.columns()
    cols["ra"][2] = 400.0
    cols["object_id"][8] = 1
    files = mc.catalog(tmp_path / "multi", decl, cols)
    bad = runner.invoke(level5, ["validate", str(files[0]), "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["valid"] is False
    assert {e["code"] for e in report["errors"]} == {"ccsp.schema", "table.unit"}  # metadata first: data not read
    decl["meta"]["ccsp"]["doi"] = "10.1/x"
    next(c for c in decl["table"]["columns"] if c["name"] == "mag_f158")["unit"] = "mag"
    mc.write_sidecar(files[0], decl)
    report = json.loads(runner.invoke(level5, ["validate", str(files[0]), "--json"]).output)
    by_code = {e["code"]: e for e in report["errors"]}
    assert set(by_code) == {"table.coord_range", "table.duplicate_key"}
    assert by_code["table.coord_range"]["row"] == 2 and by_code["table.coord_range"]["column"] == "ra"
    assert by_code["table.duplicate_key"]["row"] == 8
    text = runner.invoke(level5, ["validate", str(files[0])])
    assert text.exit_code == 1
    line = "deep_photoz.parquet[row 2, column 'ra']: ra 400.0 is outside [0, 360) deg [table.coord_range]"
    assert line in text.output


def test_error_cap_and_summary(tmp_path: Path) -> None:
    cols = mc.columns(5000)
    cols["ra"][:] = 500.0
    files = mc.catalog(tmp_path / "cap", mc.declaration(), cols)
    report = validate_product(files, Limits(max_errors=10)).report()
    assert len(report["errors"]) == 10
    assert report["errors_not_shown"] > 0 or "more rows" in report["errors"][-1]["message"]


def test_infile_declaration_parquet(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    p = mc.write_parquet(tmp_path / "inline.parquet", mc.columns(), decl_in_file=mc.declaration("inline_cat"))
    v = validate_product([p])
    assert v.valid, v.report()
    assert v.name == "inline_cat"


# ------------------------------------------------------------------------------------------------ server side
@pytest.mark.db
@pytest.mark.parametrize("case", SERVER_SIDE, ids=lambda c: c.name)
def test_corpus_submission_rejected_and_leaves_no_trace(case: mc.Case, corpus: dict[str, list[Path]],
                                                       l5archive: Archive, token: str) -> None:
    if case.name == "other_teams_product":  # the name is taken by another team first
        other = service.create_token(l5archive, "rivals")
        files = mc.catalog(corpus[case.name][0].parent / "by_rivals", mc.declaration("owned_elsewhere"),
                           mc.columns(seed=99))
        status, body = _submit(l5archive, other, files)
        assert status == 201, body
    before = trace(l5archive)
    limits = Limits(max_file_bytes=case.max_file_bytes) if case.max_file_bytes else Limits()
    status, body = _submit(l5archive, token, corpus[case.name], case.names, limits)
    assert status in (403, 422), body
    assert body["state"] == "rejected" and body["valid"] is False
    hits = [e for e in body["errors"] if e["code"] == case.code]
    assert hits, body["errors"]
    assert any(case.location in e["location"] for e in hits), hits
    assert trace(l5archive) == before
    # The submission and its report are kept, and audited.
    code, stored = service.get_submission(l5archive, token, body["submission_id"])
    assert code == 200 and stored["state"] == "rejected" and stored["report"]["errors"] == body["errors"]
    with l5archive.engine.connect() as conn:
        outcome = conn.execute(sa.text("SELECT team, outcome FROM level5_audit WHERE submission_id = :s"),
                               {"s": body["submission_id"]}).one()
    assert tuple(outcome) == ("deep", "rejected")


@pytest.mark.db
@pytest.mark.parametrize("bad_token,code", [(None, "auth.missing"), ("l5_not-a-real-token", "auth.invalid")])
def test_wrong_or_missing_token(bad_token: str | None, code: str, corpus: dict[str, list[Path]],
                                l5archive: Archive) -> None:
    before = trace(l5archive)
    status, body = _submit(l5archive, bad_token, corpus["valid_catalog"])
    assert status == 401 and body["errors"][0]["code"] == code
    assert trace(l5archive) == before
    with l5archive.engine.connect() as conn:
        last = conn.execute(sa.text("SELECT team, outcome, detail FROM level5_audit ORDER BY audit_id DESC")).first()
    assert last is not None and last[0] is None and last[1] == "refused" and code in last[2]


@pytest.mark.db
def test_tokens_are_stored_hashed(l5archive: Archive, token: str) -> None:
    with l5archive.engine.connect() as conn:
        digests = set(conn.execute(sa.text("SELECT token_sha256 FROM level5_tokens")).scalars())
        dump = str(conn.execute(sa.text("SELECT array_agg(t::text) FROM level5_tokens t")).scalar_one())
    assert hashlib.sha256(token.encode()).hexdigest() in digests
    assert token not in dump


@pytest.mark.db
@pytest.mark.parametrize("stage", STAGES)
def test_failure_at_any_stage_leaves_no_trace(stage: str, l5archive: Archive, token: str, tmp_path: Path) -> None:
    # New content for every stage, so the store really writes objects that must then be removed.
    seed = 1000 + STAGES.index(stage)
    files = mc.catalog(tmp_path, mc.declaration(f"fail_{stage}"), mc.columns(seed=seed))
    before = trace(l5archive)

    def hook(at: str) -> None:
        if at == stage:
            raise RuntimeError(f"injected failure {at}")

    status, body = _submit(l5archive, token, files, hook=hook)
    assert status == 500 and body["state"] == "failed"
    assert body["errors"][0]["code"] == "publish.failed" and f"injected failure {stage}" in body["errors"][0]["message"]
    assert trace(l5archive) == before
    from romanarchive.tap import schema

    assert not [e for e in schema.published() if e.name.startswith(f"level5.fail_{stage}")]


@pytest.mark.db
def test_publish_catalog_versions_registry_obscore_tap(l5archive: Archive, token: str, tmp_path: Path) -> None:
    from romanarchive.tap import schema
    from romanarchive.tap.service import QueryParams, QueryRunner

    other_process = QueryRunner(l5archive)  # stands for a server process that did not publish
    assert not [t for t in other_process.catalog().tables if t.startswith("level5.pub_cat")]
    files = mc.catalog(tmp_path / "v1", mc.declaration("pub_cat"), mc.columns())
    status, body = _submit(l5archive, token, files)
    assert status == 201, body
    assert body["version"] == 1 and body["table"] == "level5.pub_cat_v1" and body["rows"] == mc.N
    with l5archive.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*), count(label), sum(is_star::int) FROM level5.pub_cat_v1")).one()
        assert rows[0] == mc.N and rows[1] == mc.N
        prod = conn.execute(sa.text("SELECT level, product_type, obs_id, s_ra, s_dec, hpx, filter FROM products "
                                    "WHERE product_id = :p"), {"p": body["product_id"]}).one()
        assert prod[:3] == (5, "l5_catalog", "pub_cat/v1") and abs(prod[3] - 270) < 0.1 and prod[5] is not None
        assert prod[6] == "F158"
        oc = conn.execute(sa.text("SELECT calib_level, level, access_format, dataproduct_type FROM ivoa.obscore "
                                  "WHERE product_id = :p"), {"p": body["product_id"]}).one()
        assert tuple(oc) == (4, 5, "application/vnd.apache.parquet", "measurements")
        cols = {r[0]: r[1:] for r in conn.execute(sa.text(
            "SELECT column_name, unit, ucd, datatype FROM tap_schema.columns WHERE table_name = 'level5.pub_cat_v1'"))}
        assert cols["ra"] == ("deg", "pos.eq.ra;meta.main", "double")
        assert cols["mag_f158"] == ("mag", "phot.mag;em.IR.H", "float")
        assert cols["label"][2] == "unicodeChar"
        stored = conn.execute(sa.text("SELECT f.uri, f.sha256 FROM files f JOIN products p USING (file_id) "
                                      "WHERE p.product_id = :p"), {"p": body["product_id"]}).one()
        assert stored[1] == hashlib.sha256(files[0].read_bytes()).hexdigest() and stored[1] in stored[0]
        assert l5archive.store.sha256(stored[0]) == stored[1]
        prov = conn.execute(sa.text("SELECT step FROM provenance WHERE product_id = :p"),
                            {"p": body["product_id"]}).scalar_one()
        assert prov == "level5.submission"
    # The publishing process's catalog has it now; another process notices the counter within a second or so.
    assert "level5.pub_cat_v1" in schema.catalog().tables
    import time

    time.sleep(1.1)
    assert "level5.pub_cat_v1" in other_process.catalog().tables
    q = other_process.open(QueryParams("SELECT COUNT(*) AS n FROM level5.pub_cat_v1 WHERE "
                                       "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 270, -30, 1)) = 1",
                                       "ADQL", 10, "votable"), 30)
    assert [r[0] for b in q.batches for r in b] == [mc.N]
    # A second submission is a new version; the first stays queryable.
    files2 = mc.catalog(tmp_path / "v2", mc.declaration("pub_cat"), mc.columns(n=30, seed=5))
    status, body2 = _submit(l5archive, token, files2)
    assert status == 201 and body2["version"] == 2 and body2["table"] == "level5.pub_cat_v2"
    with l5archive.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM level5.pub_cat_v1")).scalar_one() == mc.N
        assert conn.execute(sa.text("SELECT count(*) FROM level5.pub_cat_v2")).scalar_one() == 30
    assert {"level5.pub_cat_v1", "level5.pub_cat_v2"} <= set(schema.catalog().tables)
    versions = [(r["name"], r["version"], r["team"]) for r in service.list_versions(l5archive)]
    assert ("pub_cat", 2, "deep") in versions and ("pub_cat", 1, "deep") in versions
    other_process.close()


@pytest.mark.db
def test_unchanged_data_file_is_stored_once(l5archive: Archive, token: str, tmp_path: Path) -> None:
    """A new version with the same data file and a changed declaration reuses the stored data file."""
    cols = mc.columns(n=40, seed=11)
    decl = mc.declaration("same_data")
    files1 = mc.catalog(tmp_path / "v1", decl, cols)
    status, body1 = _submit(l5archive, token, files1)
    assert status == 201, body1
    before = trace(l5archive)
    decl["table"]["description"] = "Second version: new description, same rows"
    files2 = mc.catalog(tmp_path / "v2", decl, cols, name="renamed.parquet")  # same content under another name
    assert files2[0].read_bytes() == files1[0].read_bytes()
    status, body2 = _submit(l5archive, token, files2)
    assert status == 201 and body2["version"] == 2, body2
    after = trace(l5archive)
    assert len(after["objects"]) == len(before["objects"]) + 1  # the new sidecar only
    assert after["files"] == before["files"] + 1
    with l5archive.engine.connect() as conn:
        data_files = conn.execute(sa.text("SELECT file_ids->0 FROM level5_versions WHERE name = 'same_data' "
                                          "ORDER BY version")).scalars().all()
    assert len(data_files) == 2 and data_files[0] == data_files[1]


@pytest.mark.db
def test_publish_asdf_product(l5archive: Archive, token: str, corpus: dict[str, list[Path]]) -> None:
    status, body = _submit(l5archive, token, corpus["valid_asdf"])
    assert status == 201, body
    assert body["table"] is None and body["kind"] == "asdf"
    with l5archive.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT p.product_type, p.t_min, p.s_ra, o.access_format, o.dataproduct_type "
                                   "FROM products p "
                                   "JOIN ivoa.obscore o USING (product_id) WHERE product_id = :p"),
                           {"p": body["product_id"]}).one()
    assert row[0] == "l5_asdf" and abs(row[1] - 61314.0) < 1 and row[2] == 270.0 and row[3] == "application/asdf"
    assert row[4] == "image"


@pytest.mark.db
def test_link_to_published_table(l5archive: Archive, token: str, tmp_path: Path) -> None:
    """A catalog without positions links its rows to a published table; every linked id must exist there."""
    with l5archive.engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT product_id FROM products ORDER BY 1 LIMIT 3")).scalars())
    assert ids
    decl = mc.declaration("linked_cat")
    decl["table"].pop("position")
    decl["table"]["columns"] = [
        {"name": "row_id", "type": "integer", "ucd": "meta.id;meta.main", "description": "Row", "nullable": False},
        {"name": "product_ref", "type": "bigint", "ucd": "meta.id", "description": "Linked product"},
        {"name": "score", "type": "double", "ucd": "stat.value", "description": "Team score"},
    ]
    decl["table"]["primary_key"] = "row_id"
    decl["table"]["link"] = {"column": "product_ref", "table": "roman.products", "target_column": "product_id"}
    cols = {"row_id": np.arange(3, dtype=np.int32), "product_ref": np.array(ids, dtype=np.int64),
            "score": np.array([0.1, 0.2, 0.3])}
    status, body = _submit(l5archive, token, mc.catalog(tmp_path, decl, cols, name="linked.parquet"))
    assert status == 201, body


@pytest.mark.db
def test_nulls_text_and_nonfinite_roundtrip(l5archive: Archive, token: str, tmp_path: Path) -> None:
    """Variable-width rows (text, NULLs) go through the vectorised encoder; NaN in nullable floats becomes NULL."""
    import pyarrow as pa

    n = 1000
    cols: dict[str, Any] = mc.columns(n)
    z = cols["z_phot"].copy()
    z[::7] = np.nan
    cols["z_phot"] = z
    cols["label"] = pa.array([None if i % 5 == 0 else "é" * (i % 4) + f"x{i}" for i in range(n)])
    cols["is_star"] = pa.array([None if i % 3 == 0 else bool(i % 2) for i in range(n)])
    files = mc.catalog(tmp_path, mc.declaration("nulls_cat"), cols)
    status, body = _submit(l5archive, token, files)
    assert status == 201, body
    with l5archive.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT object_id, z_phot, label, is_star, mag_f158 FROM level5.nulls_cat_v1 "
                                    "ORDER BY object_id")).all()
    assert len(rows) == n
    for i, (oid, zp, label, star, mag) in enumerate(rows):
        assert oid == i + 1
        assert (zp is None) == (i % 7 == 0) and (zp is None or zp == z[i])
        assert label == (None if i % 5 == 0 else "é" * (i % 4) + f"x{i}")
        assert star == (None if i % 3 == 0 else bool(i % 2))
        assert mag == pytest.approx(float(cols["mag_f158"][i]))


def test_text_primary_key_duplicates(tmp_path: Path) -> None:
    decl = mc.declaration()
    decl["table"]["primary_key"] = ["label", "is_star"]
    cols = mc.columns()
    cols["label"][[3, 4]] = "same"
    cols["is_star"][[3, 4]] = True
    report = validate_product(mc.catalog(tmp_path, decl, cols)).report()
    assert [(e["code"], e["row"]) for e in report["errors"]] == [("table.duplicate_key", 4)]
    assert "('same', True)" in report["errors"][0]["message"] and "first at row 3" in report["errors"][0]["message"]


@pytest.mark.parametrize("suffix,fmt", [(".fits", "fits"), (".vot", "votable"), (".ecsv", "ascii.ecsv")])
def test_valid_catalog_in_every_format(suffix: str, fmt: str, tmp_path: Path) -> None:
    from astropy.table import Table

    t = Table(mc.columns())
    t["ra"].unit = t["dec"].unit = "deg"
    t["mag_f158"].unit = "mag"
    path = tmp_path / f"deep_photoz{suffix}"
    t.write(path, format=fmt)
    mc.write_sidecar(path, mc.declaration())
    v = validate_product([path, path.with_name(path.name + ".l5.yaml")])
    assert v.valid, v.report()
    assert v.n_rows == mc.N and v.columns["label"].to_pylist()[:2] == ["obj0", "obj1"]


@pytest.mark.db
def test_concurrent_submissions(l5archive: Archive, token: str, tmp_path: Path) -> None:
    """Simultaneous publications take turns where they must: distinct versions, a consistent TAP_SCHEMA."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [mc.catalog(tmp_path / str(i), mc.declaration(name), mc.columns(seed=200 + i))
            for i, name in enumerate(["conc_a", "conc_a", "conc_b"])]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda files: _submit(l5archive, token, files), jobs))
    assert [s for s, _ in results] == [201, 201, 201], results
    assert sorted(b["table"] for _, b in results) == ["level5.conc_a_v1", "level5.conc_a_v2", "level5.conc_b_v1"]
    with l5archive.engine.connect() as conn:
        listed = set(conn.execute(sa.text("SELECT table_name FROM tap_schema.tables")).scalars())
    assert {"level5.conc_a_v1", "level5.conc_a_v2", "level5.conc_b_v1"} <= listed
