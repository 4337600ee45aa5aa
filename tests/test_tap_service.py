"""TAP over HTTP on a live server: TAP_SCHEMA, sync, async (UWS), uploads, cone search, downloads, security."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import sqlalchemy as sa
from astropy.io.votable import parse_single_table
from astropy.table import Table
from support.server import live_server

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database
from romanarchive.tap import scs
from romanarchive.tap.schema import QUERY_ROLE, published
from romanarchive.tap.service import TapConfig

pytestmark = pytest.mark.db

CONFIG = TapConfig(default_maxrec=50, hard_maxrec=500, sync_timeout_s=2.0, batch_rows=7)
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
N = 40


def _fill(archive: Archive, tmp: Path) -> None:
    payload = tmp / "payload.asdf"
    payload.write_bytes(b"#ASDF 1.0.0\n" + bytes(range(256)) * 10)
    key = archive.store.put_file(payload, "l2").key
    rng = np.random.default_rng(1)
    ra, dec = rng.uniform(9, 11, N), rng.uniform(19, 21, N)
    with archive.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO files (file_id, uri, filename, size, sha256, media_type) "
                             "VALUES (1, :k, 'payload.asdf', :s, repeat('a', 64), 'application/asdf')"),
                     {"k": key, "s": payload.stat().st_size})
        for i in range(N):
            conn.execute(sa.text(
                "INSERT INTO products (product_id, level, product_type, file_id, obs_id, filter, s_ra, s_dec, s_fov, "
                "s_region, t_min) VALUES (:i, 2, 'wfi_l2', 1, :o, 'F158', :ra, :dec, 0.1, "
                "CAST(:poly AS spoly), 61000 + :i)"),
                {"i": i + 1, "o": f"obs{i:03d}", "ra": ra[i], "dec": dec[i],
                 "poly": f"{{({ra[i] - .05}d,{dec[i] - .05}d),({ra[i] + .05}d,{dec[i] - .05}d),"
                         f"({ra[i] + .05}d,{dec[i] + .05}d),({ra[i] - .05}d,{dec[i] + .05}d)}}"})


@pytest.fixture(scope="module")
def served(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Archive, str]]:
    """An archive with N synthetic L2 products, served on a free port."""
    tmp = tmp_path_factory.mktemp("tap")
    url = create_database(pg_server, "ra_tap")
    upgrade(url)
    (tmp / "home").mkdir()
    archive = Archive(Settings(home=tmp / "home", database_url=url, store=str(tmp / "store"), lease_seconds=5))
    _fill(archive, tmp)
    with live_server(archive, CONFIG) as base:
        yield archive, base
    drop_database(pg_server, url)


def _sync(base: str, query: str, method: str = "post", **params: str) -> requests.Response:
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    if method == "get":
        return requests.get(base + "/tap/sync", params=data, timeout=30)
    return requests.post(base + "/tap/sync", data=data, timeout=30)


def _status(resp: requests.Response) -> list[tuple[str, str]]:
    root = ET.fromstring(resp.content)
    return [(i.get("value") or "", i.text or "") for i in root.iter("{http://www.ivoa.net/xml/VOTable/v1.3}INFO")
            if i.get("name") == "QUERY_STATUS"]


def _table(resp: requests.Response) -> Table:
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def _healthy(base: str) -> None:
    resp = _sync(base, "SELECT COUNT(*) AS n FROM ivoa.obscore")
    assert resp.status_code == 200 and _table(resp)["n"][0] == N


def test_tap_schema_lists_published_tables_only(served: tuple[Archive, str]) -> None:
    archive, base = served
    resp = _sync(base, "SELECT table_name FROM TAP_SCHEMA.tables ORDER BY table_name")
    names = set(_table(resp)["table_name"])
    assert names == {e.name for e in published()}
    assert {"ivoa.obscore", "roman.exposures", "roman.products", "TAP_SCHEMA.columns"} <= names
    cols = _table(_sync(base, "SELECT column_name, datatype, xtype, unit, ucd, indexed, principal, std "
                              "FROM TAP_SCHEMA.columns WHERE table_name = 'ivoa.obscore'"))
    s_region = cols[list(cols["column_name"]).index("s_region")]
    assert (s_region["datatype"], s_region["xtype"], s_region["indexed"]) == ("unicodeChar", "adql:REGION", 1)
    assert '"level"' in set(cols["column_name"])  # ADQL reserved words are listed delimited
    assert int(np.sum(cols["std"])) == 30  # the ObsCore 1.1 columns
    keys = _table(_sync(base, "SELECT from_table, target_table FROM TAP_SCHEMA.keys"))
    assert ("roman.products", "roman.exposures") in {(r["from_table"], r["target_table"]) for r in keys}


def test_sync_get_post_case_insensitive_formats(served: tuple[Archive, str]) -> None:
    _, base = served
    q = "SELECT TOP 3 obs_id, s_ra, s_region FROM ivoa.obscore ORDER BY obs_id"
    via_get = _table(_sync(base, q, "get"))
    resp = requests.post(base + "/tap/sync", data={"reQuest": "doQuery", "lang": "ADQL", "query": q}, timeout=30)
    via_post = _table(resp)
    assert list(via_get["obs_id"]) == list(via_post["obs_id"]) == ["obs000", "obs001", "obs002"]
    poly = via_post["s_region"][0].split()  # STC-S in degrees
    assert poly[:2] == ["Polygon", "ICRS"] and len(poly) == 10
    assert abs(float(poly[2]) - (via_post["s_ra"][0] - 0.05)) < 1e-9
    point = _table(_sync(base, "SELECT TOP 1 POINT(s_ra, s_dec) AS p, s_ra, s_dec FROM ivoa.obscore"))
    assert tuple(point["p"][0]) == pytest.approx((point["s_ra"][0], point["s_dec"][0]), abs=1e-11)  # DALI
    csv = _sync(base, q, responseformat="csv")
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines()[1].startswith('"obs000"')
    td = _sync(base, q, RESPONSEFORMAT="votable/td")
    assert b"<TABLEDATA>" in td.content
    bad = _sync(base, q, RESPONSEFORMAT="application/x-nonsense")
    assert bad.status_code == 400 and _status(bad)[0][0] == "ERROR"


def test_maxrec_overflow_and_limits(served: tuple[Archive, str]) -> None:
    _, base = served
    q = "SELECT obs_id FROM ivoa.obscore"
    resp = _sync(base, q, MAXREC="10")
    assert len(_table(resp)) == 10 and [s for s, _ in _status(resp)] == ["OK", "OVERFLOW"]
    default = _sync(base, q)
    assert len(_table(default)) == N and [s for s, _ in _status(default)] == ["OK"]  # N < default MAXREC
    meta = _sync(base, q, MAXREC="0")
    assert len(_table(meta)) == 0 and "OVERFLOW" in [s for s, _ in _status(meta)]
    top = _sync(base, "SELECT TOP 5 obs_id FROM ivoa.obscore", MAXREC="5")
    assert len(_table(top)) == 5 and [s for s, _ in _status(top)] == ["OK"]


@pytest.mark.parametrize(("query", "needle"), [
    ("DUFF QUERY", "syntax"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("SELECT pg_sleep(30)", "pg_sleep"),
    ("SELECT TOP 1 obs_id FROM ivoa.obscore; DROP TABLE products", "single statement"),
    ("SELECT TOP 1 obs_id FROM ivoa.obscore /* */ WHERE 1=1", "/"),
    ("SELECT TOP 1 obs_id FROM ivoa.obscore -- ; DELETE FROM products\n; SELECT 1", "single statement"),
    ("SELECT * FROM pg_catalog.pg_authid", "not published"),
    ("SELECT * FROM information_schema.tables", "not published"),
    ("SELECT * FROM files", "not published"),
    ("SELECT * FROM public.jobs", "not published"),
    ("SELECT * FROM uws_jobs", "not published"),
    ("SELECT current_setting('data_directory') FROM ivoa.obscore", "current_setting"),
    ("SELECT 1 AS x FROM ivoa.obscore WHERE obs_id = '" + "x" * (1 << 20) + "'", "too long"),
    ("SELECT " + "(" * 5000 + "1" + ")" * 5000 + " AS x FROM ivoa.obscore", "deep"),
    ("SELECT " + " + ".join(["1"] * 20000) + " AS x FROM ivoa.obscore", ""),
])
def test_hostile_queries_are_refused_and_harmless(served: tuple[Archive, str], query: str, needle: str) -> None:
    _, base = served
    resp = _sync(base, query)
    status = _status(resp)
    assert resp.status_code in (400, 413) and len(status) == 1 and status[0][0] == "ERROR", resp.text[:500]
    assert needle.lower() in status[0][1].lower()
    _healthy(base)


def test_lang_and_request_errors(served: tuple[Archive, str]) -> None:
    _, base = served
    resp = requests.get(base + "/tap/sync", params={"LANG": "OOBLECK", "QUERY": "SELECT 1"}, timeout=10)
    assert resp.status_code == 400 and _status(resp)[0][0] == "ERROR" and "OOBLECK" in _status(resp)[0][1]
    resp = requests.get(base + "/tap/sync", params={"LANG": "ADQL"}, timeout=10)
    assert _status(resp)[0] == ("ERROR", "missing QUERY parameter")
    resp = requests.get(base + "/tap/nowhere", timeout=10)
    assert resp.status_code == 404 and _status(resp)[0][0] == "ERROR"


def test_statement_timeout(served: tuple[Archive, str]) -> None:
    _, base = served
    q = ("SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c, "
         "TAP_SCHEMA.columns AS d")
    t0 = time.monotonic()
    resp = _sync(base, q)
    assert resp.status_code == 400 and "time limit" in _status(resp)[0][1]
    assert time.monotonic() - t0 < 15
    _healthy(base)


def test_query_role_reads_published_relations_only(served: tuple[Archive, str]) -> None:
    archive, _ = served
    with archive.engine.connect() as conn:
        conn.execute(sa.text(f"SET ROLE {QUERY_ROLE}"))
        assert conn.execute(sa.text("SELECT count(*) FROM ivoa.obscore")).scalar_one() == N
        for relation in ("files", "jobs", "uws_jobs", "archive_settings", "provenance"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), conn.begin_nested():
                conn.execute(sa.text(f"SELECT * FROM {relation}"))
        conn.rollback()


def test_upload_join(served: tuple[Archive, str]) -> None:
    _, base = served
    mine = Table({"name": ["a", "b", "c"], "ra": [10.0, 200.0, 9.5], "dec": [20.0, -30.0, 19.5]})
    buf = io.BytesIO()
    mine.write(buf, format="votable")
    q = ("SELECT m.name, o.obs_id FROM TAP_UPLOAD.mine AS m JOIN ivoa.obscore AS o "
         "ON 1 = CONTAINS(POINT(o.s_ra, o.s_dec), CIRCLE(m.ra, m.dec, 0.3)) ORDER BY o.obs_id")
    resp = requests.post(base + "/tap/sync", data={"LANG": "ADQL", "QUERY": q, "UPLOAD": "mine,param:t1"},
                         files={"t1": ("t1.vot", buf.getvalue(), "application/x-votable+xml")}, timeout=30)
    got = _table(resp)
    assert resp.status_code == 200 and len(got) > 0 and set(got["name"]) <= {"a", "c"}
    echo = requests.post(base + "/tap/sync", data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.mine",
                                                   "UPLOAD": "mine,param:t1"},
                         files={"t1": ("t1.vot", buf.getvalue())}, timeout=30)
    assert sorted(_table(echo)["name"]) == ["a", "b", "c"]
    missing = requests.post(base + "/tap/sync", data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.mine",
                                                      "UPLOAD": "mine,param:nothere"}, timeout=30)
    assert missing.status_code == 400 and "nothere" in _status(missing)[0][1]


def _job(base: str, **params: str) -> str:
    resp = requests.post(base + "/tap/async", data={"LANG": "ADQL", **params}, allow_redirects=False, timeout=30)
    assert resp.status_code == 303
    return resp.headers["location"]


def _final(job: str, wait_s: float = 30.0) -> ET.Element:
    """The job document once it leaves the active phases: UWS WAIT returns at *any* phase change (QUEUED ->
    EXECUTING too), so one blocking GET is not enough."""
    deadline = time.monotonic() + wait_s
    while True:
        doc = ET.fromstring(requests.get(job, params={"WAIT": "10"}, timeout=30).content)
        if doc.findtext(f"{UWS}phase") not in ("QUEUED", "EXECUTING") or time.monotonic() > deadline:
            return doc


def test_async_lifecycle(served: tuple[Archive, str]) -> None:
    _, base = served
    job = _job(base, QUERY="SELECT obs_id FROM ivoa.obscore ORDER BY obs_id", MAXREC="5", RUNID="r-1")
    assert requests.get(job + "/phase", timeout=10).text == "PENDING"
    assert requests.get(job + "/runId", timeout=10).text == "r-1"
    resp = requests.post(job + "/destruction", data={"DESTRUCTION": "2099-01-01T00:00:00Z"}, allow_redirects=False,
                         timeout=10)
    assert resp.status_code == 303 and requests.get(job + "/destruction", timeout=10).text.startswith("2099-01-01T00")
    requests.post(job + "/executionduration", data={"EXECUTIONDURATION": "30"}, timeout=10)
    assert requests.get(job + "/executionduration", timeout=10).text == "30"
    assert requests.post(job + "/phase", data={"PHASE": "RUN"}, allow_redirects=False, timeout=10).status_code == 303
    doc = _final(job)
    assert doc.findtext(f"{UWS}phase") == "COMPLETED" and doc.findtext(f"{UWS}runId") == "r-1"
    result = requests.get(job + "/results/result", timeout=30)
    assert list(_table(result)["obs_id"]) == [f"obs{i:03d}" for i in range(5)]
    assert "OVERFLOW" in [s for s, _ in _status(result)]

    listing = ET.fromstring(requests.get(base + "/tap/async", params={"PHASE": "COMPLETED"}, timeout=10).content)
    assert job.rsplit("/", 1)[1] in [r.get("id") for r in listing.iter(f"{UWS}jobref")]
    last = ET.fromstring(requests.get(base + "/tap/async", params={"LAST": "1"}, timeout=10).content)
    assert len(list(last.iter(f"{UWS}jobref"))) == 1
    after = ET.fromstring(requests.get(base + "/tap/async", params={"AFTER": "2099-01-01T00:00:00"},
                                       timeout=10).content)
    assert list(after.iter(f"{UWS}jobref")) == []

    resp = requests.delete(job, allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and requests.get(job, timeout=10).status_code == 404


def test_async_error_abort_and_post_delete(served: tuple[Archive, str]) -> None:
    _, base = served
    bad = _job(base, QUERY="SELECT nonsense FROM ivoa.obscore", PHASE="RUN")
    doc = _final(bad)
    assert doc.findtext(f"{UWS}phase") == "ERROR"
    err = requests.get(bad + "/error", timeout=10)
    assert _status(err)[0][0] == "ERROR" and "nonsense" in _status(err)[0][1]
    pending = _job(base, QUERY="SELECT TOP 1 obs_id FROM ivoa.obscore")
    requests.post(pending + "/phase", data={"PHASE": "ABORT"}, timeout=10)
    assert requests.get(pending + "/phase", timeout=10).text == "ABORTED"
    resp = requests.post(pending, data={"ACTION": "DELETE"}, allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and requests.get(pending + "/phase", timeout=10).status_code == 404


def test_async_jobs_survive_a_restart(served: tuple[Archive, str]) -> None:
    archive, _ = served
    with live_server(archive, CONFIG, workers=0) as base:  # no workers: the job stays queued
        job_id = _job(base, QUERY="SELECT COUNT(*) AS n FROM ivoa.obscore", PHASE="RUN").rsplit("/", 1)[1]
        assert requests.get(f"{base}/tap/async/{job_id}/phase", timeout=10).text == "QUEUED"
    with live_server(archive, CONFIG, workers=1) as base:
        doc = _final(f"{base}/tap/async/{job_id}", wait_s=60)
        assert doc.findtext(f"{UWS}phase") == "COMPLETED"
        assert _table(requests.get(f"{base}/tap/async/{job_id}/results/result", timeout=10))["n"][0] == N


def test_cone_search_and_errors(served: tuple[Archive, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, base = served
    monkeypatch.setattr(scs, "_CONE", scs.OBSCORE)  # /scs serves roman.objects by default; this archive has none
    resp = requests.get(base + "/scs", params={"RA": "10", "DEC": "20", "SR": "0.5", "VERB": "1"}, timeout=30)
    t = parse_single_table(io.BytesIO(resp.content))
    assert [f.ucd for f in t.fields] == ["ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"]
    arr = t.to_table()
    assert len(arr) > 0
    d = np.degrees(np.arccos(np.clip(np.sin(np.radians(20)) * np.sin(np.radians(arr["s_dec"]))
                                     + np.cos(np.radians(20)) * np.cos(np.radians(arr["s_dec"]))
                                     * np.cos(np.radians(arr["s_ra"] - 10)), -1, 1)))
    assert (d <= 0.5 + 1e-9).all()
    for params in ({"RA": "10", "DEC": "20"}, {"RA": "x", "DEC": "20", "SR": "1"}, {"RA": "10", "DEC": "95",
                                                                                   "SR": "1"}):
        resp = requests.get(base + "/scs", params=params, timeout=10)
        root = ET.fromstring(resp.content)
        names = [i.get("name") for i in root.iter("{http://www.ivoa.net/xml/VOTable/v1.3}INFO")]
        assert "Error" in names and "QUERY_STATUS" in names


def test_download_streams_the_product(served: tuple[Archive, str]) -> None:
    archive, base = served
    url = _table(_sync(base, "SELECT access_url FROM ivoa.obscore WHERE product_id = 1"))["access_url"][0]
    assert url.endswith("/files/1")  # on the base URL of the last server started on this database
    resp = requests.get(base + "/files/1", timeout=10)
    assert resp.status_code == 200 and resp.content.startswith(b"#ASDF") and len(resp.content) == 12 + 2560
    assert requests.get(base + "/files/999", timeout=10).status_code == 404


def test_vosi_documents(served: tuple[Archive, str]) -> None:
    _, base = served
    caps = requests.get(base + "/tap/capabilities", timeout=10)
    assert caps.status_code == 200 and b"ivo://ivoa.net/std/ADQL#v2.1" in caps.content
    assert b"ivo://ivoa.net/std/ConeSearch" in caps.content and b"ObsCore#core-1.1" in caps.content
    assert b"<vosi:available>true</vosi:available>" in requests.get(base + "/tap/availability", timeout=10).content
    mini = requests.get(base + "/tap/tables", params={"detail": "min"}, timeout=10).content
    assert b"<column>" not in mini and b"ivoa.obscore" in mini
    one = requests.get(base + "/tap/tables/ivoa.obscore", timeout=10).content
    assert one.count(b"<column>") == 35 and b'extendedType="adql:REGION"' in one


def test_adql_cli_check_and_translate() -> None:
    from click.testing import CliRunner

    from romanarchive.cli import main

    runner = CliRunner()
    ok = runner.invoke(main, ["adql", "check"], input="SELECT TOP 1 obs_id FROM ivoa.obscore\n")
    assert ok.exit_code == 0
    bad = runner.invoke(main, ["adql", "check"], input="SELECT obs_id\nFROM WHERE x = 1\n")
    assert bad.exit_code == 1 and "2:6" in bad.output
    sql = runner.invoke(main, ["adql", "translate"],
                        input="SELECT obs_id FROM ivoa.obscore WHERE 1 = CONTAINS(POINT(s_ra, s_dec), "
                              "CIRCLE(10, 20, 1))")
    assert sql.exit_code == 0 and '"ivoa"."obscore"' in sql.output and "@" in sql.output
    assert runner.invoke(main, ["adql", "translate"], input="SELECT * FROM files").exit_code == 1


HEAVY = ("SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c, "
         "TAP_SCHEMA.columns AS d, TAP_SCHEMA.columns AS e")


def _wait_phase(job: str, phases: tuple[str, ...], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while (phase := requests.get(job + "/phase", timeout=10).text) not in phases and time.monotonic() < deadline:
        time.sleep(0.05)
    return phase


def test_async_abort_cancels_the_running_query(served: tuple[Archive, str]) -> None:
    archive, base = served
    job = _job(base, QUERY=HEAVY, PHASE="RUN")
    assert _wait_phase(job, ("EXECUTING",)) == "EXECUTING"
    t0 = time.monotonic()
    requests.post(job + "/phase", data={"PHASE": "ABORT"}, timeout=10)
    assert requests.get(job + "/phase", timeout=10).text == "ABORTED"
    with archive.engine.connect() as conn:  # the statement was cancelled: no backend is still computing it
        while conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%tap_query%' "
                                   "AND state = 'active' AND wait_event_type IS NULL AND pid <> pg_backend_pid()")
                           ).scalar_one():  # fmt: skip
            assert time.monotonic() - t0 < 10
            time.sleep(0.1)
    assert _wait_phase(job, ("COMPLETED", "ERROR"), timeout=1) == "ABORTED"
    _healthy(base)


def test_async_execution_duration_is_enforced(served: tuple[Archive, str]) -> None:
    _, base = served
    job = _job(base, QUERY=HEAVY, EXECUTIONDURATION="1", PHASE="RUN")
    assert _wait_phase(job, ("ERROR", "COMPLETED")) == "ERROR"
    assert "time limit" in _status(requests.get(job + "/error", timeout=10))[0][1]


def test_async_upload(served: tuple[Archive, str]) -> None:
    _, base = served
    mine = Table({"ra": [10.0], "dec": [20.0]})
    buf = io.BytesIO()
    mine.write(buf, format="votable")
    resp = requests.post(base + "/tap/async", data={"LANG": "ADQL", "QUERY": "SELECT ra, dec FROM TAP_UPLOAD.t",
                                                    "UPLOAD": "t,param:part", "PHASE": "RUN"},
                         files={"part": ("t.vot", buf.getvalue())}, allow_redirects=False, timeout=30)
    job = resp.headers["location"]
    assert _wait_phase(job, ("COMPLETED", "ERROR")) == "COMPLETED"
    got = _table(requests.get(job + "/results/result", timeout=10))
    assert (got["ra"][0], got["dec"][0]) == (10.0, 20.0)
