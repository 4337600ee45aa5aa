"""Level 5 benchmark: validate and publish a 1M-row, 10-column Parquet catalog.

1. In-process end to end (`romanarchive.level5.service.submit`: token check, scratch copy, full validation,
   publication in one transaction — store, CREATE TABLE, binary COPY, primary key, q3c index, registry, TAP_SCHEMA):
   rows/s and peak RSS, with the validation and publication parts timed separately. Goal: >= 300,000 rows/s.
2. The same through HTTP: ``romanarchive.level5.client.submit`` to a live server (multipart upload included).
3. Peer, in the same run: a bare load of the same rows — pyarrow reads the Parquet file and
   `romanarchive.db.bulk.copy_arrays` COPYs it into an unindexed table, no validation, no index, no registry.
   The ratio says what validation, indexing and atomic publication cost on top of the fastest possible load.

The machine may be shared, so the peer and the in-process run alternate ``--repeat`` times (each run publishes a
new version) and the best and median walls are reported; ratios use the best of each. The server's ``wal_level``,
``synchronous_commit`` and ``maintenance_work_mem`` are recorded with the figures (the embedded cluster runs with
``wal_level = minimal``; set ``ROMANARCHIVE_BENCH_DATABASE_URL`` to measure another server).

Results are printed and written to ``benchmarks/out/bench_level5.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test support: live servers, images
from _common import scratch_archive  # noqa: E402

from romanarchive.archive import Archive  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"

DECL = {
    "romanarchive_level5": "1.0", "product": "bench_cat", "ccsp_schema": "ccsp_minimal-2.0.0",
    "meta": {"ccsp": {"name": "BENCH", "investigator": "B. Enchmark", "doi": "10.0/bench", "file_version": "1",
                      "data_release_id": "DR1", "license": "CC0", "license_url": "https://example.org/cc0",
                      "target_name": "Sky"}},
    "table": {
        "description": "Synthetic 10-column catalog", "primary_key": ["object_id"],
        "position": {"ra": "ra", "dec": "dec"},
        "columns": [
            {"name": "object_id", "type": "bigint", "ucd": "meta.id;meta.main", "description": "Id", "nullable": False},
            {"name": "ra", "type": "double", "unit": "deg", "ucd": "pos.eq.ra;meta.main", "description": "RA",
             "nullable": False},
            {"name": "dec", "type": "double", "unit": "deg", "ucd": "pos.eq.dec;meta.main", "description": "Dec",
             "nullable": False},
            *({"name": f"mag_{b}", "type": "real", "unit": "mag", "ucd": "phot.mag", "description": f"{b} mag"}
              for b in ("f062", "f087", "f106", "f129", "f158")),
            {"name": "z_phot", "type": "double", "ucd": "src.redshift.phot", "description": "Photo-z"},
            {"name": "n_obs", "type": "integer", "ucd": "meta.number", "description": "Observations"},
        ],
    },
}  # fmt: skip


def make_catalog(folder: Path, n: int, seed: int = 3) -> list[Path]:
    """A valid n-row Parquet catalog and its sidecar."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {"object_id": np.arange(n, dtype=np.int64),
                            "ra": rng.uniform(0, 360, n), "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n)))}
    for b in ("f062", "f087", "f106", "f129", "f158"):
        cols[f"mag_{b}"] = rng.uniform(18, 28, n).astype(np.float32)
    cols["z_phot"] = rng.uniform(0, 4, n)
    cols["n_obs"] = rng.integers(1, 50, n).astype(np.int32)
    data = folder / "bench_cat.parquet"
    pq.write_table(pa.table(cols), data)
    side = folder / "bench_cat.parquet.l5.yaml"
    side.write_text(yaml.safe_dump(DECL, sort_keys=False))
    return [data, side]


class PeakRss:
    """Samples this process's resident memory every 10 ms in a thread; ``peak_mb`` over the block."""

    def __enter__(self) -> PeakRss:
        self.proc = psutil.Process()
        self.base_mb = self.proc.memory_info().rss / 2**20
        self.peak_mb = self.base_mb
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(0.01):
            self.peak_mb = max(self.peak_mb, self.proc.memory_info().rss / 2**20)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def timed(fn: Callable[[], Any]) -> tuple[Any, float, PeakRss]:
    with PeakRss() as rss:
        t = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t
    return out, wall, rss


def bare_copy(archive: Archive, data: Path) -> int:
    """The peer: read with pyarrow, binary COPY into a plain table."""
    from romanarchive.db.bulk import copy_arrays

    table = pq.read_table(data)
    cols = {name: table.column(name).to_numpy() for name in table.column_names}
    raw = archive.engine.raw_connection()
    try:
        pg = raw.driver_connection
        assert pg is not None
        with pg.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS public.bench_peer")
            cur.execute("CREATE TABLE public.bench_peer (object_id bigint, ra double precision, dec double precision, "
                        + ", ".join(f"mag_{b} real" for b in ("f062", "f087", "f106", "f129", "f158"))
                        + ", z_phot double precision, n_obs integer)")
        n = copy_arrays(pg, "public.bench_peer", cols)
        pg.commit()
    finally:
        raw.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-http", action="store_true", help="Skip the HTTP run.")
    ap.add_argument("--repeat", type=int, default=3, help="Alternating peer / in-process runs (default 3).")
    args = ap.parse_args()
    from romanarchive.level5 import client, service
    from romanarchive.level5.validate import validate_product

    results: dict[str, Any] = {"rows": args.rows, "columns": 10}
    with tempfile.TemporaryDirectory() as tmp, scratch_archive() as archive:
        files = make_catalog(Path(tmp), args.rows)
        size_mb = files[0].stat().st_size / 2**20
        token = service.create_token(archive, "bench")
        print(f"{args.rows:,}-row, 10-column Parquet catalog ({size_mb:.1f} MiB)")

        with archive.engine.connect() as conn:
            results["server"] = {k: conn.exec_driver_sql(f"SHOW {k}").scalar_one()
                                 for k in ("server_version", "wal_level", "synchronous_commit", "maintenance_work_mem",
                                           "max_parallel_maintenance_workers")}  # fmt: skip
        print("server: " + ", ".join(f"{k} {v}" for k, v in results["server"].items()))

        v, cold_wall, _ = timed(lambda: validate_product(files))  # includes loading asdf, rad schemas, astropy
        v, val_wall, val_rss = timed(lambda: validate_product(files))
        assert v.valid, v.report()
        print(f"validation alone (romanarchive level5 validate): {val_wall:.2f} s, {args.rows / val_wall:,.0f} rows/s,"
              f" peak RSS {val_rss.peak_mb:.0f} MB (first call in a process, with imports: {cold_wall:.2f} s)")

        def run() -> tuple[int, dict[str, Any]]:
            uploads = [(p.name, io.BytesIO(p.read_bytes())) for p in files]
            return service.submit(archive, token, uploads, client="bench")

        peer_walls, walls, peer_rss_mb, rss_mb, base_mb = [], [], 0.0, 0.0, 0.0
        for i in range(args.repeat):
            peer_n, peer_wall, peer_rss = timed(lambda: bare_copy(archive, files[0]))
            (status, body), wall, rss = timed(run)
            assert status == 201, body
            peer_walls.append(peer_wall)
            walls.append(wall)
            peer_rss_mb, rss_mb, base_mb = max(peer_rss_mb, peer_rss.peak_mb), max(rss_mb, rss.peak_mb), rss.base_mb
            print(f"  run {i + 1}: peer {peer_wall:.2f} s, ours v{body['version']} {wall:.2f} s")
        peer_wall, wall = min(peer_walls), min(walls)
        peer_rate, rate = peer_n / peer_wall, args.rows / wall
        print(f"peer  bare pyarrow read + binary COPY (no validation, no index, no registry): best {peer_wall:.2f} s "
              f"(median {statistics.median(peer_walls):.2f}), {peer_rate:,.0f} rows/s, peak RSS {peer_rss_mb:.0f} MB")
        print(f"end to end in process (validate + publish): best {wall:.2f} s (median {statistics.median(walls):.2f}), "
              f"{rate:,.0f} rows/s (goal >= 300,000), peak RSS {rss_mb:.0f} MB (baseline {base_mb:.0f} MB); "
              f"ratio to the bare COPY peer {rate / peer_rate:.2f}x")
        results.update(peer_rows_per_s=peer_rate, peer_wall_s=peer_wall, peer_walls_s=peer_walls,
                       peer_peak_rss_mb=peer_rss_mb, validate_wall_s=val_wall, validate_cold_wall_s=cold_wall,
                       validate_rows_per_s=args.rows / val_wall, e2e_wall_s=wall, e2e_walls_s=walls,
                       e2e_rows_per_s=rate, e2e_median_rows_per_s=args.rows / statistics.median(walls),
                       e2e_peak_rss_mb=rss_mb, ratio_to_peer=rate / peer_rate)  # fmt: skip
        if not args.no_http:
            from support.server import live_server

            with live_server(archive, workers=0) as url, PeakRss() as hrss:
                t = time.perf_counter()
                rep = client.submit(files[0], url, token)
                hwall = time.perf_counter() - t
            assert rep["http_status"] == 201, rep
            hrate = args.rows / hwall
            print(f"end to end over HTTP (client upload, server validate + publish v{rep['version']}), one run: "
                  f"{hwall:.2f} s, "
                  f"{hrate:,.0f} rows/s, peak RSS of client+server process {hrss.peak_mb:.0f} MB; "
                  f"ratio to the peer {hrate / peer_rate:.2f}x")
            results.update(http_wall_s=hwall, http_rows_per_s=hrate, http_peak_rss_mb=hrss.peak_mb)
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_level5.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
