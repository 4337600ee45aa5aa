"""Ingest: simulate -> ingest -> calibrate -> L2 with provenance and footprint; idempotency; bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import asdf
import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from romanarchive.archive import Archive
from romanarchive.db.tables import exposures, products, provenance
from romanarchive.ingest.inspect import IngestError
from romanarchive.ingest.service import ingest_file, ingest_paths
from romanarchive.jobs.worker import drain
from tests.conftest import archive_counts, l1_files, unreferenced_objects

pytestmark = [pytest.mark.db, pytest.mark.slow]

CALIBRATE = ("calibrate",)  # L2 registration also queues co-adds; these tests count calibrations


def _ingest_all(archive: Archive, survey: Path) -> list[object]:
    return list(ingest_paths(archive, [survey / "refs", survey / "l1"]))


def test_simulate_ingest_calibrate(archive: Archive, tiny_survey: Path, tmp_path: Path) -> None:
    results = _ingest_all(archive, tiny_survey)
    assert not [r for r in results if isinstance(r, IngestError)]
    counts = archive_counts(archive)
    assert counts["products"] == 2 and counts["jobs"] == 2 and counts["reference_files"] >= 10

    assert drain(archive.settings, kinds=CALIBRATE) == 2
    with archive.engine.connect() as conn:
        l2 = conn.execute(sa.select(products).where(products.c.level == 2)).mappings().all()
        prov = conn.execute(sa.select(provenance)).mappings().all()
        states = conn.execute(sa.text("SELECT state, count(*) FROM jobs WHERE kind = 'calibrate' GROUP BY state")).all()
        follow_on = dict(conn.execute(sa.text(
            "SELECT kind, count(*) FROM jobs WHERE kind <> 'calibrate' AND state = 'queued' GROUP BY kind")).all())
        obscore = conn.execute(sa.text("SELECT calib_level, count(*) FROM ivoa.obscore GROUP BY 1 ORDER BY 1")).all()
        # The L2 footprint (exact gWCS) and the L1 one (approximate, from wcsinfo) cover the same sky.
        overlap = conn.execute(sa.text(
            "SELECT bool_and(a.s_region && b.s_region) FROM products a JOIN products b USING (exposure_id) "
            "WHERE a.level = 1 AND b.level = 2")).scalar_one()
        exp = conn.execute(sa.select(exposures)).mappings().first()
    assert states == [("done", 2)]
    assert follow_on.get("mosaic", 0) >= 1  # each new L2 queues the co-adds of the skycells it touches
    assert len(l2) == 2 and all(r["s_region"] and r["hpx"] and r["s_fov"] > 0 for r in l2)
    assert overlap is True
    assert obscore == [(1, 2), (2, 2)]
    assert exp["detector"] == "WFI01" and exp["optical_element"] == "F158" and exp["mjd_start"] > 60000
    assert len(prov) == 2
    for p in prov:
        assert p["step"] == "romancal.ExposurePipeline"
        assert p["software"]["romancal"] == "1.1.0"
        assert p["inputs"][0]["filename"].endswith("_uncal.asdf")
        assert set(p["reference_files"]) >= {"dark", "flat", "gain", "readnoise"}
        assert p["wall_time_s"] > 0 and p["peak_rss_mb"] > 0
    assert unreferenced_objects(archive) == []

    # The archived L2 equals a bare romancal ExposurePipeline call on the same file with the same references.
    from romanarchive.calib.pipeline import bare_pipeline_call

    first = next(r for r in l2 if r["t_min"] == min(x["t_min"] for x in l2))
    with archive.engine.connect() as conn:
        key = conn.execute(sa.text("SELECT uri FROM files WHERE file_id = :f"), {"f": first["file_id"]}).scalar_one()
        names = next(p["reference_files"] for p in prov if p["product_id"] == first["product_id"])
    refs = {t: next((tiny_survey / "refs").rglob(n)) for t, n in names.items() if n != "N/A"}
    bare = bare_pipeline_call(l1_files(tiny_survey)[0], refs, tmp_path / "bare")
    ours = archive.store.local_path(key)
    with asdf.open(bare, lazy_load=False) as a, asdf.open(ours, lazy_load=False) as b:
        for arr in ("data", "dq", "err"):
            np.testing.assert_array_equal(np.asarray(a["roman"][arr]), np.asarray(b["roman"][arr]))


def test_reingest_is_a_noop(archive: Archive, tiny_survey: Path) -> None:
    _ingest_all(archive, tiny_survey)
    before, keys = archive_counts(archive), archive.store.list_keys()
    again = _ingest_all(archive, tiny_survey)
    assert {r.status for r in again} == {"unchanged"}  # type: ignore[union-attr]
    assert archive_counts(archive) == before and archive.store.list_keys() == keys


def _modified_copy(src: Path, dst: Path) -> Path:
    """Same exposure identity, different content."""
    import roman_datamodels.datamodels as rdm

    with rdm.open(src) as model:
        model.data[0, 10, 10] += 1
        model.save(dst)
    return dst


def test_same_exposure_different_file_needs_replace(archive: Archive, tiny_survey: Path, tmp_path: Path) -> None:
    _ingest_all(archive, tiny_survey)
    src = l1_files(tiny_survey)[0]
    other = _modified_copy(src, tmp_path / src.name)
    with pytest.raises(IngestError, match="--replace"):
        ingest_file(archive, other)
    assert archive_counts(archive)["products"] == 2
    res = ingest_file(archive, other, replace=True)
    assert res.status == "replaced" and res.job_id is not None
    assert archive_counts(archive)["products"] == 2
    assert unreferenced_objects(archive) == []


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _corrupt(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    start = data.index(b"\xd3BLK")  # first ASDF binary block
    data[start:start + 64] = b"\x00" * 64
    dst.write_bytes(bytes(data))
    return dst


def _not_roman(src: Path, dst: Path) -> Path:
    asdf.AsdfFile({"hello": np.arange(3)}).write_to(dst)
    return dst


def _schema_invalid(src: Path, dst: Path) -> Path:
    # Edit the YAML tree in place, keeping its length so the binary blocks stay where the index says.
    data = src.read_bytes()
    head = data.index(b"ma_table_number: ")
    end = data.index(b"\n", head)
    value = data[head + len(b"ma_table_number: "):end]
    dst.write_bytes(data[:head] + b"ma_table_number: " + b"x" * len(value) + data[end:])
    return dst


BAD = {
    "missing": (lambda s, d: d, "no such file"),
    "empty": (lambda s, d: (d.write_bytes(b""), d)[1], "empty"),
    "not asdf": (lambda s, d: (d.write_text("SIMPLE  = T\n"), d)[1], "not an ASDF file"),
    "truncated": (_truncated, "cannot be read|unreadable|truncated"),
    "corrupt block": (_corrupt, "cannot be read|unreadable"),
    "not a roman model": (_not_roman, "cannot be read as a Roman datamodel|not a product"),
    "schema invalid": (_schema_invalid, "cannot be read|validation"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_leaves_nothing(case: str, archive: Archive, tiny_survey: Path,
                                                 tmp_path: Path) -> None:
    make, pattern = BAD[case]
    bad = make(l1_files(tiny_survey)[0], tmp_path / "bad_uncal.asdf")
    with pytest.raises(IngestError, match=pattern) as info:
        ingest_file(archive, bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    assert all(n == 0 for n in archive_counts(archive).values())
    assert archive.store.list_keys() == []


def test_cli_reports_bad_file_and_exits_nonzero(archive: Archive, tiny_survey: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from romanarchive.cli import main

    monkeypatch.setenv("ROMANARCHIVE_HOME", str(archive.settings.home))
    monkeypatch.setenv("ROMANARCHIVE_DATABASE_URL", archive.url)
    monkeypatch.setenv("ROMANARCHIVE_STORE", archive.settings.store_url)
    bad = tmp_path / "junk.asdf"
    bad.write_text("not asdf")
    good = tmp_path / "good"
    shutil.copytree(tiny_survey / "refs", good)
    result = CliRunner().invoke(main, ["ingest", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: not an ASDF file" in result.output
    result = CliRunner().invoke(main, ["ingest", str(good)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["status", "--json"])
    import json

    st = json.loads(result.output)
    assert set(st["levels"]) == {"0", "1", "2", "3", "4", "5"} and st["reference_files"] > 0
    assert isinstance(st["jobs"], dict)


def test_parallel_ingest_reports_errors_and_shares_identical_files(archive: Archive, tiny_survey: Path,
                                                                   tmp_path: Path) -> None:
    """Two worker processes; the same reference content in two folders; one bad file among them."""
    first, second = tmp_path / "a" / "refs", tmp_path / "b" / "refs"
    shutil.copytree(tiny_survey / "refs", first)
    shutil.copytree(tiny_survey / "refs", second)
    (first / "junk.asdf").write_text("not asdf")
    results = list(ingest_paths(archive, [first, second], workers=2))
    errors = [r for r in results if isinstance(r, IngestError)]
    assert len(errors) == 1 and "not an ASDF file" in str(errors[0]) and errors[0].path.endswith("junk.asdf")
    ok = [r for r in results if not isinstance(r, IngestError)]
    n_refs = len(list((tiny_survey / "refs").rglob("*.asdf")))
    assert len(ok) == 2 * n_refs and sum(r.status == "ingested" for r in ok) == n_refs
    assert archive_counts(archive)["reference_files"] == n_refs
    assert unreferenced_objects(archive) == [] and len(archive.store.list_keys()) == n_refs
