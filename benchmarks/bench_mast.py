"""MAST mission search and SODA cutout benchmarks.

1. ``MastMissions(mission="roman").query_region`` (unmodified astroquery, default 3' radius) over an archive of
   100,000 synthetic products (files + products rows loaded with binary COPY, WFI-detector-sized footprints spread
   over a 10 x 10 deg patch): p50/p95 end to end, next to the same search (the SQL the service compiles) run directly
   in the database from Python in the same run.
2. SODA cutout of 200 x 200 pixels from a full-size (4088 x 4088) L2 image: wall time and peak RSS, each operation in
   a fresh process, next to reading the whole file with roman_datamodels. The full-size image is built cheaply: the
   arrays of a science-survey L2 tiled 8 x 8, its gwcs shifted to the centre of the full detector (same distortion,
   same pixel scale), written once lz4-compressed (as the pipeline writes) and once uncompressed (memory-mappable).

Results go to ``benchmarks/out/bench_mast.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_archive  # noqa: E402

from romanarchive.db.bulk import copy_arrays  # noqa: E402
from romanarchive.db.engine import libpq_url  # noqa: E402
from romanarchive.db.scratch import free_port  # noqa: E402
from romanarchive.sky.footprint import healpix29  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
PATCH = (265.0, 275.0, 60.0, 70.0)  # ra0, ra1, dec0, dec1
SIDE = 4088 * 0.11 / 3600  # WFI detector side, degrees


def load_products(url: str, n: int, seed: int = 3) -> float:
    """COPY ``n`` synthetic L2 products (and their files rows) into the archive; returns seconds."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    dec0, dec1 = np.radians(PATCH[2]), np.radians(PATCH[3])
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(dec0), np.sin(dec1), n)))
    ra = rng.uniform(PATCH[0], PATCH[1], n)
    pa = rng.uniform(0, 2 * np.pi, n)
    corners = {}
    for k, (dx, dy) in enumerate(((-1, -1), (1, -1), (1, 1), (-1, 1))):
        x = SIDE / 2 * (dx * np.cos(pa) - dy * np.sin(pa))
        y = SIDE / 2 * (dx * np.sin(pa) + dy * np.cos(pa))
        corners[f"ra{k}"] = ra + x / np.cos(np.radians(dec))
        corners[f"dec{k}"] = dec + y
    cols = {"i": np.arange(1, n + 1, dtype=np.int64), "ra": ra, "dec": dec, "hpx": healpix29(ra, dec),
            "t_min": rng.uniform(61000, 62000, n), "filt": rng.integers(0, 4, n).astype(np.int16),
            "size": rng.integers(50_000_000, 70_000_000, n).astype(np.int64), **corners}  # fmt: skip
    filters = "ARRAY['F062','F087','F158','F213']"
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("CREATE TEMP TABLE stage (i bigint, ra double precision, dec double precision, hpx bigint, "
                     "t_min double precision, filt smallint, size bigint, "
                     + ", ".join(f"{c} double precision" for c in corners) + ")")  # fmt: skip
        copy_arrays(conn, "stage", cols)
        conn.execute("INSERT INTO files (file_id, uri, filename, size, sha256, media_type) SELECT i, "
                     "'bench/' || i || '_cal.asdf', 'r' || lpad(i::text, 9, '0') || '_cal.asdf', size, "
                     "encode(sha256(i::text::bytea), 'hex'), 'application/asdf' FROM stage")  # fmt: skip
        poly = ("format('{(%sd,%sd),(%sd,%sd),(%sd,%sd),(%sd,%sd)}', ra0, dec0, ra1, dec1, ra2, dec2, ra3, dec3)"
                "::spoly")
        conn.execute(
            "INSERT INTO products (product_id, level, product_type, file_id, obs_id, filter, detector, t_min, t_max, "
            "t_exptime, em_min, em_max, s_fov, s_xel1, s_xel2, s_region, s_ra, s_dec, hpx) "
            f"SELECT i, 2, 'wfi_l2', i, 'bench' || lpad(i::text, 9, '0') || '_wfi01', ({filters})[filt + 1], "
            f"'WFI01', t_min, t_min + 0.0016, 139.1, 1e-6, 1.2e-6, {SIDE * 1.4142}, 4088, 4088, {poly}, ra, dec, hpx "
            "FROM stage ORDER BY hpx")  # fmt: skip
        conn.execute("SELECT setval(pg_get_serial_sequence('products', 'product_id'), %s)", (n,))
        conn.execute("SELECT setval(pg_get_serial_sequence('files', 'file_id'), %s)", (n,))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE files")
        conn.execute("VACUUM ANALYZE products")
    return time.perf_counter() - t0


def _serve(settings_json: str, port: int) -> None:
    from romanarchive.archive import Archive
    from romanarchive.config import Settings
    from romanarchive.server.app import serve

    serve(Archive(Settings.model_validate_json(settings_json)), port=port, workers=0)


def bench_search(n: int, queries: int) -> dict[str, float]:
    """p50/p95 of astroquery MastMissions.query_region and of the same SQL from Python."""
    import requests
    import sqlalchemy as sa

    from romanarchive.mast import missions

    with scratch_archive() as archive:
        load_s = load_products(archive.url, n)
        port = free_port()
        proc = mp.get_context("spawn").Process(target=_serve, args=(archive.settings.model_dump_json(), port),
                                               daemon=True)  # fmt: skip
        proc.start()
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    requests.get(base + "/tap/availability", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            cfg = Path(tempfile.mkdtemp(prefix="bench-mast-")) / "astropy"
            cfg.mkdir(parents=True)
            (cfg / "astroquery.cfg").write_text(f"[mast]\nserver = {base}\n")
            os.environ["XDG_CONFIG_HOME"] = str(cfg.parent)  # astroquery reads it when first imported
            import astropy.units as u
            from astropy.coordinates import SkyCoord
            from astroquery.mast import MastMissions

            mm = MastMissions(mission="roman")
            rng = np.random.default_rng(11)
            centres = np.column_stack([rng.uniform(PATCH[0] + 1, PATCH[1] - 1, queries),
                                       rng.uniform(PATCH[2] + 1, PATCH[3] - 1, queries)])  # fmt: skip
            coords = [SkyCoord(a, d, unit="deg") for a, d in centres]
            mm.query_region(coords[0], radius=3 * u.arcmin)  # warm: column list, connections
            api, rows = [], []
            for c in coords:
                t = time.perf_counter()
                res = mm.query_region(c, radius=3 * u.arcmin)
                api.append(time.perf_counter() - t)
                rows.append(len(res))
            db = []
            engine = archive.engine
            with engine.connect() as conn:
                for a, d in centres:
                    q = missions.compile_search({"target": [f"{a} {d}"], "radius": 180, "radius_units": "arcseconds",
                                                 "limit": 5000, "offset": 0, "select_cols": None})  # fmt: skip
                    t = time.perf_counter()
                    conn.execute(sa.text(q.sql), q.params).all()
                    db.append(time.perf_counter() - t)
        finally:
            proc.terminate()
            proc.join(10)
    ms = lambda xs, p: float(np.percentile(xs, p) * 1000)  # noqa: E731
    return {"products": n, "load_s": load_s, "queries": queries, "rows_mean": float(np.mean(rows)),
            "api_p50_ms": ms(api, 50), "api_p95_ms": ms(api, 95), "db_p50_ms": ms(db, 50), "db_p95_ms": ms(db, 95),
            "ratio_p50": ms(api, 50) / ms(db, 50)}  # fmt: skip


def make_full_size(template: Path, out_dir: Path) -> dict[str, Path]:
    """Full-size L2-like ImageModels (lz4 and uncompressed) from a 512x512 science-survey L2."""
    import roman_datamodels as rdm

    from romanarchive.dal.soda import shifted_wcs

    m = rdm.open(template)
    ny, nx = m.data.shape
    reps = (int(np.ceil(4088 / ny)), int(np.ceil(4088 / nx)))
    for key in ("data", "dq", "err", "var_poisson", "chisq", "dumo"):
        if key in m._instance:
            m._instance[key] = np.ascontiguousarray(np.tile(np.asarray(m[key]), reps)[:4088, :4088])
    off = (4088 - nx) / 2  # centre the template's pixel grid on the full detector
    m.meta.wcs = shifted_wcs(m.meta.wcs, -off, -off, 4088, 4088)
    out = {}
    for kind, comp in (("lz4", "lz4"), ("raw", None)):
        path = out_dir / f"full_{kind}_cal.asdf"
        m.meta.filename = path.name
        m.to_asdf(path, all_array_compression=comp)
        out[kind] = path
    return out


_CHILD = """
import json, sys, threading, time
from pathlib import Path
import numpy as np
import psutil
import roman_datamodels as rdm
from romanarchive.dal import soda
from romanarchive.dal.products import Product
mode, path = sys.argv[1], sys.argv[2]
me = psutil.Process()
if mode == "cutout":
    with rdm.open(path) as m:  # cut around the detector centre
        ra, dec = m.meta.wcs(2043.5, 2043.5)
    p = Product(1, 2, "wfi_l2", None, None, None, None, "", Path(path).name, 0, "application/asdf")
before = me.memory_info().rss
peak = [before]
done = threading.Event()
def sample():  # ru_maxrss cannot be reset after the imports: sample the RSS instead
    while not done.is_set():
        peak[0] = max(peak[0], me.memory_info().rss)
        time.sleep(0.002)
th = threading.Thread(target=sample, daemon=True)
th.start()
t = time.perf_counter()
if mode == "cutout":
    out = soda.cutout(path, p, [soda.circle(f"{ra} {dec} {100 * 0.11 / 3600}")], "asdf")
    info = {"bytes": len(out)}
else:
    with rdm.open(path) as m:
        total = sum(float(np.asarray(m[k]).sum(dtype=np.float64)) for k in m._instance if hasattr(m[k], "shape"))
    info = {"checksum": total}
wall = time.perf_counter() - t
done.set()
th.join()
peak[0] = max(peak[0], me.memory_info().rss)
print("RESULT" + json.dumps({"wall_s": wall, "peak_rss_mb": peak[0] / 2**20, "rss_before_mb": before / 2**20,
                             "peak_delta_mb": (peak[0] - before) / 2**20, **info}))
"""


def _child(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path)], capture_output=True, text=True, check=True)
    return json.loads([s for s in out.stdout.splitlines() if s.startswith("RESULT")][-1][6:])  # type: ignore[no-any-return]


def bench_cutout(template: Path) -> dict[str, object]:
    """Wall time and peak RSS: 200x200 cutout vs whole-file read, for lz4 and uncompressed full-size L2s."""
    with tempfile.TemporaryDirectory(prefix="bench-soda-") as tmp:
        t = time.perf_counter()
        files = make_full_size(template, Path(tmp))
        res: dict[str, object] = {"build_s": time.perf_counter() - t}
        for kind, path in files.items():
            cut = _child("cutout", path)
            full = _child("read", path)
            res[kind] = {"file_mb": path.stat().st_size / 2**20, "cutout": cut, "full_read": full,
                         "wall_ratio": cut["wall_s"] / full["wall_s"],
                         "rss_delta_ratio": cut["peak_delta_mb"] / full["peak_delta_mb"]}  # fmt: skip
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--template", type=Path, help="a science-survey L2 (default: from the calibrated survey cache)")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-cutout", action="store_true")
    args = ap.parse_args()
    results: dict[str, object] = {}
    if not args.skip_search:
        s = bench_search(args.products, args.queries)
        results["search"] = s
        print(f"MastMissions.query_region over {s['products']:,} products ({s['queries']} cones of 3', "
              f"{s['rows_mean']:.1f} rows each): p50 {s['api_p50_ms']:.1f} ms, p95 {s['api_p95_ms']:.1f} ms; "
              f"peer (same SQL from Python) p50 {s['db_p50_ms']:.2f} ms, p95 {s['db_p95_ms']:.2f} ms; "
              f"ratio p50 {s['ratio_p50']:.1f}x")  # fmt: skip
    if not args.skip_cutout:
        template = args.template
        if template is None:
            from romanarchive.sim.calibrated import calibrated_survey, science_config

            survey = calibrated_survey(science_config(), out_dir=Path(tempfile.mkdtemp(prefix="bench-survey-")))
            template = sorted((survey / "l2").glob("*_cal.asdf"))[0]
        c = bench_cutout(template)
        results["cutout"] = c
        for kind in ("lz4", "raw"):
            r = c[kind]
            assert isinstance(r, dict)
            print(f"SODA 200x200 cutout of a 4088^2 L2 ({kind}, {r['file_mb']:.0f} MB): "
                  f"{r['cutout']['wall_s']:.2f} s, peak RSS {r['cutout']['peak_rss_mb']:.0f} MB "
                  f"(+{r['cutout']['peak_delta_mb']:.0f} MB over the process before the call); peer (whole file with "
                  f"roman_datamodels) {r['full_read']['wall_s']:.2f} s, {r['full_read']['peak_rss_mb']:.0f} MB "
                  f"(+{r['full_read']['peak_delta_mb']:.0f} MB); ratios time {r['wall_ratio']:.2f}, "
                  f"added RSS {r['rss_delta_ratio']:.2f}")  # fmt: skip
    OUT.mkdir(exist_ok=True)
    dest = OUT / "bench_mast.json"
    previous = json.loads(dest.read_text()) if dest.exists() else {}
    dest.write_text(json.dumps({**previous, **results}, indent=2))  # a --skip-* run keeps the other part


if __name__ == "__main__":
    main()
