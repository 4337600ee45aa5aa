"""Cross-match benchmarks: ``romanarchive xmatch`` against ``q3c_join`` in the same run, and a TAP upload join.

1. 1M x 10M synthetic positions (each of the 1M within 0.9" of one of the 10M, uniform over the sky), radius 1":
   the bulk route (``run_xmatch``, as the CLI: read inputs, HEALPix sort-merge, write the published match table with
   binary COPY), cold (Parquet copies built from the tables with binary COPY) and warm (copies current), against
   ``CREATE TABLE ... AS SELECT ... WHERE q3c_join(...)`` serial (max_parallel_workers_per_gather = 0) and with
   PostgreSQL's default parallel plan. The pair sets are compared. Goal: warm bulk <= 0.5x q3c_join serial.
2. TAP sync with a 100,000-row VOTable upload joined against the 10M table (DISTANCE < 1"): end-to-end wall time.

The 10M table is built in a scratch database's ``bench`` schema and dropped at the end. Run under ``nice``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test support: live servers, images
from _common import scratch_archive  # noqa: E402

from romanarchive.db.bulk import copy_arrays  # noqa: E402
from romanarchive.db.engine import libpq_url  # noqa: E402
from romanarchive.db.registry import ColumnSpec, TableSpec  # noqa: E402
from romanarchive.xmatch.healpix import healpix_nested  # noqa: E402

C = ColumnSpec
RADIUS = 1.0 / 3600


def _spec(name: str, description: str) -> TableSpec:
    return TableSpec(name, description, (
        C("id", "bigint", "Row identifier", ucd="meta.id;meta.main", primary_key=True),
        C("ra", "double", "Right ascension", unit="deg", ucd="pos.eq.ra;meta.main"),
        C("dec", "double", "Declination", unit="deg", ucd="pos.eq.dec;meta.main"),
        C("hpx", "bigint", "HEALPix order 29", ucd="pos.healpix"),
    ), schema="bench")


BIG, SMALL = _spec("big", "10M uniform positions"), _spec("small", "1M positions near big ones")


def make_positions(n_big: int, n_small: int, seed: int = 1) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    ra = rng.random(n_big) * 360.0
    dec = np.degrees(np.arcsin(2 * rng.random(n_big) - 1))
    k = rng.choice(n_big, n_small, replace=False)
    r = rng.uniform(0, 0.9 / 3600, n_small)
    pa = rng.uniform(0, 2 * np.pi, n_small)
    sdec = np.clip(dec[k] + r * np.cos(pa), -90, 90)
    sra = (ra[k] + r * np.sin(pa) / np.maximum(np.cos(np.radians(dec[k])), 1e-6)) % 360.0
    out = []
    for a, d in ((ra, dec), (sra, sdec)):
        h = healpix_nested(a, d)
        o = np.argsort(h, kind="stable")
        out.append({"id": np.arange(len(a), dtype=np.int64)[o], "ra": a[o], "dec": d[o], "hpx": h[o]})
    return out[0], out[1]


def build(url: str, big: dict[str, np.ndarray], small: dict[str, np.ndarray]) -> dict[str, float]:
    t0 = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        for spec, cols in ((BIG, big), (SMALL, small)):
            conn.execute(f"CREATE TABLE {spec.qualified_name} (id bigint PRIMARY KEY, ra double precision NOT NULL, "
                         "dec double precision NOT NULL, hpx bigint NOT NULL)")
            copy_arrays(conn, spec.qualified_name, cols)
            conn.execute(f"CREATE INDEX ON {spec.qualified_name} (q3c_ang2ipix(ra, dec))")
            conn.execute(f"CREATE INDEX ON {spec.qualified_name} (hpx)")
        conn.commit()
        conn.execute("ANALYZE bench.big")
        conn.execute("ANALYZE bench.small")
        conn.commit()
    return {"build_s": time.perf_counter() - t0}


def q3c_join(url: str, parallel: bool) -> tuple[float, np.ndarray]:
    """CREATE TABLE of the q3c_join pairs; returns the time and the sorted (left, right) keys."""
    with psycopg.connect(libpq_url(url)) as conn:
        if not parallel:
            conn.execute("SET max_parallel_workers_per_gather = 0")
        conn.execute("DROP TABLE IF EXISTS bench.q3c_pairs")
        t = time.perf_counter()
        conn.execute("CREATE TABLE bench.q3c_pairs AS SELECT s.id AS left_id, b.id AS right_id, "
                     "q3c_dist(s.ra, s.dec, b.ra, b.dec) * 3600 AS sep_arcsec FROM bench.small s JOIN bench.big b "
                     f"ON q3c_join(s.ra, s.dec, b.ra, b.dec, {RADIUS!r})")
        conn.commit()
        dt = time.perf_counter() - t
        rows = conn.execute("SELECT left_id, right_id FROM bench.q3c_pairs").fetchall()
    keys = np.array(rows, np.int64).reshape(-1, 2)
    return dt, keys[np.lexsort((keys[:, 1], keys[:, 0]))]


def bulk(archive, name: str) -> tuple[float, dict[str, float], np.ndarray, dict[str, str]]:  # type: ignore[no-untyped-def]
    from romanarchive.xmatch.bulk import run_xmatch

    t = time.perf_counter()
    res = run_xmatch("bench.small", "bench.big", RADIUS, engine=archive.engine, home=archive.settings.home,
                     into=name, replace=True, progress=False)
    dt = time.perf_counter() - t
    keys = np.stack([res.left.ids[res.pairs.left], res.right.ids[res.pairs.right]], axis=1)
    return dt, res.seconds, keys[np.lexsort((keys[:, 1], keys[:, 0]))], res.how


def upload_join(archive, small: dict[str, np.ndarray], n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from astropy.table import Table
    from support.server import live_server

    from romanarchive.tap.service import TapConfig

    t = Table({"uid": small["id"][:n], "ra": small["ra"][:n], "dec": small["dec"][:n]})
    buf = io.BytesIO()
    t.write(buf, format="votable", tabledata_format="binary2")
    data = buf.getvalue()
    q = ("SELECT u.uid, b.id FROM TAP_UPLOAD.src AS u JOIN bench.big AS b "
         f"ON DISTANCE(POINT(u.ra, u.dec), POINT(b.ra, b.dec)) < {RADIUS!r}")
    with live_server(archive, TapConfig(default_maxrec=10_000_000, sync_timeout_s=600,
                                        upload_limit_bytes=200_000_000)) as base:
        t0 = time.perf_counter()
        r = requests.post(base + "/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": q,
                                                    "UPLOAD": "src,param:src", "MAXREC": "10000000",
                                                    "RESPONSEFORMAT": "csv"},
                          files={"src": ("src.vot", data, "application/x-votable+xml")}, timeout=600)
        dt = time.perf_counter() - t0
    assert r.status_code == 200, r.text[:500]
    rows = r.text.count("\n") - 1
    return {"upload_rows": n, "upload_bytes": len(data), "wall_s": dt, "result_rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big", type=int, default=10_000_000)
    ap.add_argument("--small", type=int, default=1_000_000)
    ap.add_argument("--upload", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "bench_xmatch.json")
    args = ap.parse_args()
    from romanarchive.tap.schema import publish

    report: dict[str, object] = {"big": args.big, "small": args.small, "radius_arcsec": RADIUS * 3600}
    with scratch_archive() as archive:
        t = time.perf_counter()
        big, small = make_positions(args.big, args.small)
        report["generate_s"] = time.perf_counter() - t
        report.update(build(archive.url, big, small))
        for spec in (BIG, SMALL):
            publish(spec, q3c=[("ra", "dec")])
        print(f"built {args.big:,} + {args.small:,} rows in {report['build_s']:.1f} s", flush=True)
        q3c_serial, keys_q3c = q3c_join(archive.url, parallel=False)
        print(f"q3c_join serial: {q3c_serial:.2f} s, {len(keys_q3c):,} pairs", flush=True)
        q3c_par, keys_par = q3c_join(archive.url, parallel=True)
        print(f"q3c_join parallel: {q3c_par:.2f} s", flush=True)
        cold, cold_parts, keys_cold, how_cold = bulk(archive, "bench_cold")
        print(f"xmatch cold: {cold:.2f} s {cold_parts} {how_cold}", flush=True)
        warm, warm_parts, keys_warm, how_warm = bulk(archive, "bench_warm")
        print(f"xmatch warm: {warm:.2f} s {warm_parts} {how_warm}", flush=True)
        same = bool(np.array_equal(keys_q3c, keys_cold) and np.array_equal(keys_q3c, keys_warm)
                    and np.array_equal(keys_q3c, keys_par))
        report["xmatch"] = {
            "pairs": len(keys_q3c), "identical_pairs": same, "q3c_join_serial_s": q3c_serial,
            "q3c_join_parallel_s": q3c_par, "xmatch_cold_s": cold, "xmatch_cold_parts_s": cold_parts,
            "xmatch_warm_s": warm, "xmatch_warm_parts_s": warm_parts, "inputs_cold": how_cold,
            "inputs_warm": how_warm, "ratio_warm_vs_q3c_serial": warm / q3c_serial,
            "ratio_cold_vs_q3c_serial": cold / q3c_serial,
        }
        print(f"identical pairs: {same}; warm/q3c serial = {warm / q3c_serial:.2f}, cold/q3c serial = "
              f"{cold / q3c_serial:.2f}", flush=True)
        report["tap_upload"] = upload_join(archive, small, args.upload)
        print(f"TAP upload join: {report['tap_upload']}", flush=True)
        with psycopg.connect(libpq_url(archive.url)) as conn:
            conn.execute("DROP SCHEMA bench CASCADE")
            conn.commit()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
