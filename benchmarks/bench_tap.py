"""TAP and cone-search service benchmarks on a 10M-row HEALPix-ordered synthetic catalog.

1. Cone r = 1' around 200 random centres: p50/p95 end to end via ``/scs`` and via TAP sync ADQL ``CONTAINS``,
   next to the in-database time of the same search (pgsphere ``spoint @ scircle`` on a GiST index, and the q3c form
   the ADQL translator emits), measured from Python in the same run. Goal: end-to-end overhead <= 3 ms at p50.
2. 16 concurrent clients for 60 s of TAP sync cones: queries/s and errors. Goal: 0 errors.
3. A 1M-row result as VOTable BINARY2 and as CSV: rows/s and the server's peak RSS. Goal: >= 500k rows/s, < 500 MB.

The server runs in its own process (``romanarchive.server.app.serve``), as in production; clients use ``requests``.
The benchmark table lives in a scratch database's ``bench`` schema and is built from a registry TableSpec.
"""

from __future__ import annotations

import argparse
import http.client as http_client
import multiprocessing as mp
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import psutil
import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_archive  # noqa: E402

from romanarchive.config import Settings  # noqa: E402
from romanarchive.db.bulk import copy_arrays  # noqa: E402
from romanarchive.db.engine import libpq_url  # noqa: E402
from romanarchive.db.registry import ColumnSpec, TableSpec  # noqa: E402
from romanarchive.db.scratch import free_port  # noqa: E402
from romanarchive.sky.footprint import healpix29  # noqa: E402

C = ColumnSpec
BENCH = TableSpec(
    "catalog", "Synthetic HEALPix-ordered catalog for benchmarks (uniform over the sky)",
    (
        C("source_id", "bigint", "Source identifier", ucd="meta.id;meta.main", principal=True, primary_key=True),
        C("ra", "double", "Right ascension (ICRS)", unit="deg", ucd="pos.eq.ra;meta.main", principal=True),
        C("dec", "double", "Declination (ICRS)", unit="deg", ucd="pos.eq.dec;meta.main", principal=True),
        C("mag", "real", "Magnitude", unit="mag", ucd="phot.mag", principal=True),
        C("hpx", "bigint", "HEALPix nested index, order 29", ucd="pos.healpix"),
    ),
    schema="bench",
)
R_DEG = 1 / 60


def build_catalog(url: str, n: int, seed: int = 7) -> dict[str, float]:
    """Create and load bench.catalog (sorted by hpx), with q3c and pgsphere GiST indexes."""
    import sqlalchemy as sa

    from romanarchive.db.registry import build_table

    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    ra = rng.random(n) * 360.0
    dec = np.degrees(np.arcsin(2 * rng.random(n) - 1))
    hpx = healpix29(ra, dec)
    order = np.argsort(hpx, kind="stable")
    cols = {"source_id": np.arange(n, dtype=np.int64), "ra": ra[order], "dec": dec[order],
            "mag": (14 + 8 * rng.random(n)).astype(np.float32), "hpx": hpx[order]}
    gen = time.perf_counter() - t
    table = build_table(BENCH, sa.MetaData())
    ddl = str(sa.schema.CreateTable(table).compile(dialect=sa.dialects.postgresql.dialect()))
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("CREATE SCHEMA bench")
        conn.execute(ddl)
        t = time.perf_counter()
        copy_arrays(conn, "bench.catalog", cols)
        conn.commit()
        load = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("CREATE INDEX catalog_q3c ON bench.catalog (q3c_ang2ipix(ra, dec))")
        conn.commit()
        q3c = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("CREATE INDEX catalog_pos ON bench.catalog USING gist (spoint(radians(ra), radians(dec)))")
        conn.commit()
        gist = time.perf_counter() - t
        conn.execute("ANALYZE bench.catalog")
        conn.commit()
    return {"generate_s": gen, "copy_s": load, "q3c_index_s": q3c, "gist_index_s": gist}


def _serve(settings: Settings, port: int) -> None:
    """Server process: publish the benchmark table, point /scs at it, serve."""
    from romanarchive.archive import Archive
    from romanarchive.server.app import serve
    from romanarchive.tap import scs
    from romanarchive.tap.schema import publish

    publish(BENCH, q3c=[("ra", "dec")])
    scs.configure("bench.catalog", "source_id", "ra", "dec")
    serve(Archive(settings), port=port, workers=1)


def _pct(xs: list[float]) -> tuple[float, float]:
    return float(np.percentile(xs, 50)), float(np.percentile(xs, 95))


def cones(url: str, base: str, centres: np.ndarray) -> dict[str, tuple[float, float]]:
    """Latency (ms) of the same 200 cones: in database (pgsphere, q3c), /scs, TAP sync."""
    out: dict[str, list[float]] = {"db_pgsphere": [], "db_q3c": [], "scs": [], "tap_sync": []}
    counts = []
    with psycopg.connect(libpq_url(url)) as conn:
        for a, b in centres:
            t = time.perf_counter()
            rows = conn.execute(
                "SELECT source_id, ra, dec, mag FROM bench.catalog WHERE spoint(radians(ra), radians(dec)) "
                "@ scircle(spoint(radians(%s), radians(%s)), radians(%s))", (a, b, R_DEG)).fetchall()
            out["db_pgsphere"].append(1e3 * (time.perf_counter() - t))
            t = time.perf_counter()
            rows2 = conn.execute(
                "SELECT source_id, ra, dec, mag FROM bench.catalog WHERE q3c_join(%s, %s, ra, dec, %s)",
                (a, b, R_DEG)).fetchall()
            out["db_q3c"].append(1e3 * (time.perf_counter() - t))
            assert len(rows) == len(rows2)
            counts.append(len(rows))
    # A lean keep-alive client, so the figures are the service's: requests (pyvo's client) adds ~1 ms per call here.
    host, port = base.removeprefix("http://").split(":")
    http = http_client.HTTPConnection(host, int(port))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for a, b in centres:
        t = time.perf_counter()
        http.request("GET", "/scs?" + urlencode({"RA": a, "DEC": b, "SR": R_DEG}))
        r = http.getresponse()
        body = r.read()
        out["scs"].append(1e3 * (time.perf_counter() - t))
        assert r.status == 200 and b'value="ERROR"' not in body, body[:300]
        q = ("SELECT source_id, ra, dec, mag FROM bench.catalog "
             f"WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {a}, {b}, {R_DEG})) = 1")
        t = time.perf_counter()
        http.request("POST", "/tap/sync", urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": q}), form)
        r = http.getresponse()
        body = r.read()
        out["tap_sync"].append(1e3 * (time.perf_counter() - t))
        assert r.status == 200 and b'value="ERROR"' not in body, body[:300]
    s = requests.Session()
    for a, b in centres[:50]:
        q = ("SELECT source_id, ra, dec, mag FROM bench.catalog "
             f"WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {a}, {b}, {R_DEG})) = 1")
        t = time.perf_counter()
        s.post(f"{base}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": q}).raise_for_status()
        out.setdefault("tap_sync_requests", []).append(1e3 * (time.perf_counter() - t))
    print(f"  rows per cone: mean {np.mean(counts):.2f}, max {max(counts)}")
    return {k: _pct(v) for k, v in out.items()}


def concurrent(base: str, clients: int, seconds: float, seed: int = 11) -> tuple[int, int, float]:
    """``clients`` threads issuing TAP sync cones for ``seconds``; returns (ok, errors, elapsed)."""
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    tally = {"ok": 0, "err": 0}

    def client(i: int) -> None:
        rng = np.random.default_rng(seed + i)
        s = requests.Session()
        while time.monotonic() < deadline:
            a, b = rng.random() * 360, np.degrees(np.arcsin(2 * rng.random() - 1))
            q = f"SELECT source_id, ra, dec, mag FROM bench.catalog WHERE DISTANCE(ra, dec, {a}, {b}) < {R_DEG}"
            try:
                r = s.post(f"{base}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": q}, timeout=60)
                good = r.status_code == 200 and b'value="ERROR"' not in r.content
            except requests.RequestException:
                good = False
            with lock:
                tally["ok" if good else "err"] += 1

    t = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return tally["ok"], tally["err"], time.monotonic() - t


def big_result(base: str, server_pid: int, fmt: str, n: int) -> tuple[float, float, int]:
    """Stream an n-row result; returns (rows/s, server peak RSS MB, bytes)."""
    proc = psutil.Process(server_pid)
    peak = [proc.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], proc.memory_info().rss)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    q = f"SELECT TOP {n} source_id, ra, dec, mag, hpx FROM bench.catalog"
    t = time.perf_counter()
    nbytes = 0
    with requests.post(f"{base}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": q, "MAXREC": n,
                                                   "RESPONSEFORMAT": fmt}, stream=True, timeout=600) as r:
        r.raise_for_status()
        for chunk in r.iter_content(1 << 20):
            nbytes += len(chunk)
    wall = time.perf_counter() - t
    done.set()
    th.join()
    return n / wall, peak[0] / 2**20, nbytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--cones", type=int, default=200)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--result-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    with scratch_archive() as archive:
        build = build_catalog(archive.url, args.rows)
        print(f"catalog of {args.rows:,} rows: generate+HEALPix {build['generate_s']:.1f} s, binary COPY "
              f"{build['copy_s']:.1f} s ({args.rows / build['copy_s'] / 1e6:.2f}M rows/s), q3c index "
              f"{build['q3c_index_s']:.1f} s, pgsphere GiST {build['gist_index_s']:.1f} s")
        port = free_port()
        ctx = mp.get_context("spawn")
        server = ctx.Process(target=_serve, args=(archive.settings, port), daemon=True)
        server.start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/tap/availability", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or not server.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.3)
        try:
            rng = np.random.default_rng(5)
            centres = np.column_stack([rng.random(args.cones) * 360,
                                       np.degrees(np.arcsin(2 * rng.random(args.cones) - 1))])
            lat = cones(archive.url, base, centres)
            print(f"cone r=1' x {args.cones} (ms, p50 / p95):")
            for k, (p50, p95) in lat.items():
                print(f"  {k:12s} {p50:7.2f} / {p95:7.2f}")
            ref = lat["db_pgsphere"][0]
            for k in ("scs", "tap_sync"):
                print(f"  {k} end-to-end overhead over in-database pgsphere at p50: {lat[k][0] - ref:+.2f} ms "
                      f"(ratio {lat[k][0] / ref:.1f}x; goal <= 3 ms)")
            ok, err, wall = concurrent(base, args.clients, args.seconds)
            print(f"{args.clients} concurrent clients for {wall:.0f} s: {ok / wall:.0f} queries/s, {err} errors "
                  f"(goal 0)")
            for fmt in ("votable", "csv"):
                rate, peak, nbytes = big_result(base, server.pid, fmt, args.result_rows)
                print(f"{args.result_rows:,}-row result as {fmt}: {rate:,.0f} rows/s, {nbytes / 2**20:.0f} MiB, "
                      f"server peak RSS {peak:.0f} MB (goals >= 500k rows/s, < 500 MB)")
        finally:
            server.terminate()
            server.join(10)


if __name__ == "__main__":
    main()
