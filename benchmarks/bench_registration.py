"""Registration rate: 10,000 synthetic products (metadata only) through the archive's register().

Peer, same run, same server: PostgreSQL's own binary COPY of the same exposure and product rows into bare
copies of the tables (no conflict handling, no ids returned, no jobs) — the ceiling for loading these rows.
Goal: >= 1,000 products/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_archive  # noqa: E402

from romanarchive.ingest.inspect import Description  # noqa: E402
from romanarchive.ingest.register import register  # noqa: E402
from romanarchive.sky.footprint import centre_and_fov, healpix29, spoly_literal  # noqa: E402
from romanarchive.store.objectstore import StoredObject  # noqa: E402


def synthetic(n: int, seed: int = 1) -> list[tuple[Description, StoredObject, str]]:
    """n L1-like products with distinct identities and footprints over a 10-degree field."""
    rng = np.random.default_rng(seed)
    ra = 260 + 10 * rng.random(n)
    dec = 60 + 10 * rng.random(n)
    hpx = healpix29(ra, dec)
    start = dt.datetime(2027, 1, 1)
    items = []
    d = 0.0625  # ~0.125 deg detector
    for i in range(n):
        corners = [(ra[i] - d, dec[i] - d), (ra[i] + d, dec[i] - d), (ra[i] + d, dec[i] + d), (ra[i] - d, dec[i] + d)]
        _, _, fov = centre_and_fov(corners)
        t0 = start + dt.timedelta(minutes=3 * i)
        foot = {"s_region": spoly_literal(corners), "s_ra": float(ra[i]), "s_dec": float(dec[i]), "hpx": int(hpx[i])}
        exposure = {
            "program": 1, "execution_plan": 1, "pass": 1 + i // 100_000, "segment": 1, "observation": 1 + i // 1000,
            "visit": 1 + (i // 18) % 1000, "visit_file_group": 1, "visit_file_sequence": 1,
            "visit_file_activity": "01", "observation_exposure": 1 + i % 1000, "detector": f"WFI{1 + i % 18:02d}",
            "optical_element": "F158", "exposure_start_time": t0, "exposure_end_time": t0 + dt.timedelta(seconds=139),
            "exposure_time": 139.0, "ma_table_number": 4, "mjd_start": 61000 + i / 480, "mjd_end": 61000 + i / 480,
            **foot,
        }
        product = {"obs_id": f"synthetic_{i}", "filter": "F158", "detector": exposure["detector"], "t_min": 61000.0,
                   "t_max": 61000.001, "t_exptime": 139.0, "em_min": 1.31e-6, "em_max": 1.865e-6, "s_xel1": 4088,
                   "s_xel2": 4088, "s_fov": fov, **foot}
        sha = f"{i:064x}"
        items.append((Description("product", 1, "wfi_l1", exposure, product),
                      StoredObject(f"l1/{sha[:2]}/{sha}/f{i}.asdf", 300_000_000, sha, True), f"f{i}_uncal.asdf"))
    return items


def run_ours(archive, items, batch: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for k in range(0, len(items), batch):
        with archive.engine.begin() as conn:
            register(conn, items[k:k + batch])
    return time.perf_counter() - t0


def run_copy(archive, items) -> float:  # type: ignore[no-untyped-def]
    """Binary COPY of the same exposure and product rows into bare copies of the tables."""
    import psycopg

    from romanarchive.db.engine import libpq_url

    exp_cols = list(items[0][0].exposure)
    prod_cols = list(items[0][0].product)
    with psycopg.connect(libpq_url(archive.url)) as conn:
        conn.execute("CREATE TEMP TABLE e AS SELECT * FROM exposures WITH NO DATA")
        conn.execute("CREATE TEMP TABLE p AS SELECT * FROM products WITH NO DATA")
        t0 = time.perf_counter()
        with conn.cursor().copy(f"COPY e ({', '.join(exp_cols)}) FROM STDIN") as cp:
            for d, _, _ in items:
                cp.write_row([d.exposure[c] for c in exp_cols])
        with conn.cursor().copy(f"COPY p (level, product_type, file_id, {', '.join(prod_cols)}) FROM STDIN") as cp:
            for i, (d, _, _) in enumerate(items):
                cp.write_row([1, "wfi_l1", i, *(d.product[c] for c in prod_cols)])
        conn.commit()
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    items = synthetic(args.n)
    with scratch_archive() as archive:
        ours = run_ours(archive, items, args.batch)
        peer = run_copy(archive, items)
        with archive.engine.connect() as conn:
            n_prod = conn.execute(sa.text("SELECT count(*) FROM products")).scalar_one()
            n_jobs = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()
    assert n_prod == args.n and n_jobs == args.n
    print(f"registration of {args.n} products (files + exposures + products + calibration jobs, batches of "
          f"{args.batch}):")
    print(f"  romanarchive register(): {ours:7.2f} s  {args.n / ours:9.0f} products/s   (goal >= 1000/s)")
    print(f"  peer: PostgreSQL binary COPY of the same exposure+product rows: {peer:7.2f} s  "
          f"{args.n / peer:9.0f} rows-pairs/s")
    print(f"  ratio ours/peer wall time: {ours / peer:.2f}x")


if __name__ == "__main__":
    main()
