"""Forced photometry of 10,000 sources x 20 epochs: measurements/s with 1 and 2 worker processes.

Images: 4088 x 4088 (a full WFI detector) with 10,000 stars drawn with the galsim.roman F158 PSF (pixel-integrated
stamps added with numpy, 18-25 mag), sky + read noise; each epoch is the same scene with a fresh noise realisation
and a sub-pixel pointing jitter, built inside the worker (not timed). What is timed per image is what the step does
after reading the file: the gWCS inverse transform of all 10,000 RA/Dec (one vectorised call), the registration
pass, the PSF fit, aperture flux, centroid/shift test and re-measurement of shifted sources
(:func:`romanarchive.timeseries.forced_step.measure_image`).

Peer: ``photutils.aperture.aperture_photometry`` (circular r = 2.5 pix, exact overlap, with the error array) on the
same positions of the same images, single process. The binary-COPY load of the 200,000 rows into ``forced_phot``
(through the step's staging table) is timed too, on a scratch archive.

Run: ``nice python benchmarks/bench_forced_phot.py [--sources 10000 --epochs 20]``; writes
``benchmarks/out/bench_forced_phot.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

SHAPE = (4088, 4088)
SCALE = 0.11


def _wcs(dx: float, dy: float) -> Any:
    from romanarchive.sky.skycells import tan_gwcs

    return tan_gwcs((150.0, 2.0), (2044.5 + dx, 2044.5 + dy), SCALE / 3600.0, SHAPE)


def _scene(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Star positions (ra, dec) and fluxes (DN/s) of the fixed scene."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(8, SHAPE[1] - 9, n), rng.uniform(8, SHAPE[0] - 9, n)
    ra, dec = _wcs(0.0, 0.0)(x, y)
    mag = rng.uniform(18, 25, n)
    return np.asarray(ra), np.asarray(dec), 10 ** (-0.4 * (mag - 26.0))


def _image(ra: np.ndarray, dec: np.ndarray, flux: np.ndarray, epoch: int) -> tuple[Any, Any]:
    from romanarchive.timeseries.forced_step import ImageArrays
    from romanarchive.timeseries.psf import psf_grid

    rng = np.random.default_rng(1000 + epoch)
    wcs = _wcs(*rng.uniform(-0.5, 0.5, 2))
    x, y = (np.asarray(v) for v in wcs.invert(ra, dec, with_bounding_box=False))
    grid = psf_grid("F158")
    ix, iy = np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int)
    px, py = grid.phase_index(x - ix), grid.phase_index(y - iy)
    h = grid.size // 2
    sky, rn = 1.0, 0.5
    data = np.full(SHAPE, sky, np.float32)
    stamps = grid.psf[py, px] * flux[:, None, None]
    for k in range(len(x)):  # scene building, not timed
        data[iy[k] - h:iy[k] + h + 1, ix[k] - h:ix[k] + h + 1] += stamps[k]
    var = (np.clip(data, 0, None) / 100.0 + rn**2).astype(np.float32)  # Poisson at 100 s + read noise, in DN/s
    data += rng.normal(0.0, 1.0, SHAPE).astype(np.float32) * np.sqrt(var)
    return ImageArrays(data, np.sqrt(var), np.zeros(SHAPE, np.uint32), wcs, "F158", 1.0), (x, y)


def _worker(args: tuple[int, list[int]]) -> dict[str, Any]:
    n, epochs = args
    from romanarchive.timeseries.forced_step import ForcedPhotConfig, measure_image

    ra, dec, flux = _scene(n, 1)
    cfg = ForcedPhotConfig()
    measure_image(*_image(ra, dec, flux, -1)[:1], ra[:100], dec[:100], cfg)  # PSF tabulation, imports
    timed = cpu = 0.0
    rows = 0
    for e in epochs:
        img, _ = _image(ra, dec, flux, e)
        t0, c0 = time.perf_counter(), time.process_time()
        inside, res, _ = measure_image(img, ra, dec, cfg)
        timed += time.perf_counter() - t0
        cpu += time.process_time() - c0
        rows += int(inside.sum())
    return {"seconds": timed, "cpu_seconds": cpu, "rows": rows,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run(n: int, n_epochs: int, workers: int) -> dict[str, Any]:
    parts = [list(range(n_epochs))[i::workers] for i in range(workers)]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        res = pool.map(_worker, [(n, p) for p in parts])
    wall = time.perf_counter() - t0
    rows = sum(r["rows"] for r in res)
    # Throughput from the timed sections: the slowest worker bounds the parallel time.
    busy = max(r["seconds"] for r in res)
    cpu = sum(r["cpu_seconds"] for r in res)
    # CPU time is what a shared machine cannot distort: measurements per CPU-second per worker.
    return {"workers": workers, "measurements": rows, "timed_s": busy, "wall_s_incl_scene_building": wall,
            "measurements_per_s": rows / busy, "cpu_s": cpu, "measurements_per_cpu_s": rows / cpu,
            "peak_rss_mb_per_worker": max(r["peak_rss_mb"] for r in res)}


def _peer(n: int, n_epochs: int) -> dict[str, Any]:
    from photutils.aperture import CircularAperture, aperture_photometry

    ra, dec, flux = _scene(n, 1)
    timed = 0.0
    rows = 0
    for e in range(n_epochs):
        img, (x, y) = _image(ra, dec, flux, e)
        t0 = time.perf_counter()
        xx, yy = img.wcs.invert(ra, dec, with_bounding_box=False)
        tab = aperture_photometry(img.data, CircularAperture(np.column_stack([xx, yy]), r=2.5), error=img.err,
                                  method="exact")
        timed += time.perf_counter() - t0
        rows += len(tab)
    return {"measurements": rows, "timed_s": timed, "measurements_per_s": rows / timed}


def _copy(n: int, n_epochs: int) -> dict[str, Any]:
    """Binary COPY of n x n_epochs rows through the step's staging table."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _common import scratch_archive

    from romanarchive.timeseries.forced_job import STAGE_COLUMNS, write_rows

    rng = np.random.default_rng(0)
    with scratch_archive() as archive:
        t0 = time.perf_counter()
        for e in range(n_epochs):
            cols = {c: rng.normal(size=n) for c in STAGE_COLUMNS}
            cols.update(source_id=np.arange(n, dtype=np.int64) * 7919, product_id=np.full(n, e, np.int64),
                        flags=np.zeros(n, np.int16))
            for c in ("x", "y", "dra", "ddec", "shift_err", "shift_snr"):
                cols[c] = cols[c].astype(np.float32)
            with archive.engine.begin() as conn:
                write_rows(conn, e, "F158", cols)
        dt = time.perf_counter() - t0
    return {"rows": n * n_epochs, "seconds": dt, "rows_per_s": n * n_epochs / dt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    out: dict[str, Any] = {"sources": args.sources, "epochs": args.epochs, "image": list(SHAPE)}
    for w in (1, 2):
        out[f"ours_{w}w"] = r = _run(args.sources, args.epochs, w)
        print(f"forced photometry, {w} worker(s): {r['measurements_per_s']:,.0f} measurements/s "
              f"({r['measurements']} in {r['timed_s']:.2f} s wall; {r['measurements_per_cpu_s']:,.0f} per CPU-second), "
              f"peak RSS {r['peak_rss_mb_per_worker']:.0f} MB/worker")
    out["peer_photutils_aperture_1w"] = p = _peer(args.sources, max(2, args.epochs // 5))
    print(f"peer photutils aperture_photometry, 1 process: {p['measurements_per_s']:,.0f} measurements/s")
    print(f"ratio ours(1 worker) / photutils: {out['ours_1w']['measurements_per_s'] / p['measurements_per_s']:.2f}; "
          f"2 workers / 1 worker: {out['ours_2w']['measurements_per_s'] / out['ours_1w']['measurements_per_s']:.2f}")
    out["copy"] = c = _copy(args.sources, args.epochs)
    print(f"binary COPY into forced_phot: {c['rows_per_s']:,.0f} rows/s ({c['rows']} rows in {c['seconds']:.2f} s)")
    dest = Path(__file__).parent / "out" / "bench_forced_phot.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
