"""ePSF library: build time of one detector + filter from N dithered L2s vs photutils' EPSFBuilder run directly, and
``GET /epsf`` latency.

Inputs: a calibrated survey folder (default: the science survey of the test cache,
``$ROMANARCHIVE_SIM_CACHE/<key>/``), one filter's L2s of one detector.

* ours: :class:`romanarchive.epsf.step.EpsfStep` (star selection on every image, two EPSFBuilder passes with outlier
  rejection, recentring and model-anchored normalisation);
* peer: ``photutils.psf.extract_stars`` on the same stars (positions from our selection, one global background per
  image) and ``EPSFBuilder`` with its defaults (quartic smoothing, 10 iterations), one pass — what a user would run.

Both are compared with the simulation's PSF (the survey's ``epsf`` reference file) on residual RMS (% of the peak,
r <= 3 pix), FWHM and core centroid. Then the library is registered on a scratch archive and ``GET /epsf`` is timed
(interpolated, N requests, after one warm-up) on a loopback server.

Run: ``nice python benchmarks/bench_epsf.py [--survey DIR] [--filter F158] [--requests 200]``; writes
``benchmarks/out/bench_epsf.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _survey(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from romanarchive.sim.calibrated import calibrated_survey, science_config

    cache = os.environ.get("ROMANARCHIVE_SIM_CACHE", str(Path(__file__).resolve().parents[1] / ".romanarchive"
                                                      / "sim-cache"))
    return calibrated_survey(science_config(), cache=cache, progress=False)


def _figures(stamp: np.ndarray, truth: np.ndarray, o: int) -> dict[str, float]:
    from romanarchive.imaging import epsf as ops

    t = ops.crop(truth, stamp.shape[0])
    scaled = stamp * (t.sum() / stamp.sum())
    c = np.subtract(ops.centroid(scaled, o), ops.centroid(t, o))
    return {"residual_pct": 100 * ops.residual_rms(scaled, t, o), "fwhm_pct": 100 * (ops.fwhm(scaled, o) /
            ops.fwhm(t, o) - 1), "centroid_dx": float(c[0]), "centroid_dy": float(c[1])}


def main() -> None:
    import roman_datamodels.datamodels as rdm
    from astropy.nddata import NDData
    from astropy.table import Table
    from photutils.psf import EPSFBuilder, EPSFStars, extract_stars

    from romanarchive.epsf.config import EpsfConfig
    from romanarchive.epsf.stars import select_stars
    from romanarchive.epsf.step import EpsfStep, read_input

    ap = argparse.ArgumentParser()
    ap.add_argument("--survey", default=None)
    ap.add_argument("--filter", default="F158")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--flux", action="store_true",
                    help="Also forced photometry of isolated truth stars with the library and the reference ePSF")
    args = ap.parse_args()
    survey = _survey(args.survey)
    band = args.filter.upper()
    paths = sorted((survey / "l2").glob(f"*_{band.lower()}_cal.asdf"))
    images = [read_input(p, k + 1) for k, p in enumerate(paths)]
    with rdm.open(next((survey / "refs").rglob(f"*_{band.lower()}_epsf_*.asdf"))) as m:
        psf = np.asarray(m.psf, float)
    truth = psf[0, 1, psf.shape[2] // 2]
    cfg = EpsfConfig()

    t0 = time.perf_counter()
    result = EpsfStep(cfg).run(images, cfg.window(images[0].mjd))
    ours_s = time.perf_counter() - t0
    ours = _figures(result.fits[0].stamp.astype(float), truth, cfg.oversample)

    # Peer: the same stars, photutils' own cut-outs and builder defaults.
    fields = [select_stars(im.name, im.data, im.err, im.dq, cfg) for im in images]
    t0 = time.perf_counter()
    stars = []
    for im, f in zip(images, fields, strict=True):
        from astropy.stats import sigma_clipped_stats

        sky = sigma_clipped_stats(im.data[np.isfinite(im.data)])[1]
        stars.extend(extract_stars(NDData(im.data - sky), Table({"x": f.x, "y": f.y}), size=cfg.stamp).all_stars)
    peer = EPSFBuilder(oversampling=cfg.oversample, progress_bar=False)(EPSFStars(stars)).epsf.data
    peer_s = time.perf_counter() - t0
    peer_fig = _figures(np.asarray(peer, float), truth, cfg.oversample)

    out: dict[str, Any] = {
        "filter": band, "images": len(images), "star_images": sum(len(f.x) for f in fields),
        "ours_s": ours_s, "peer_s": peer_s, "ratio_ours_over_peer": ours_s / peer_s, "ours": ours, "peer": peer_fig,
    }
    out["get_epsf"] = _latency(result, args.requests)
    if args.flux:
        out["flux_over_truth"] = _flux_bias(survey, band)
    print(json.dumps(out, indent=2))
    dest = Path(__file__).resolve().parent / "out"
    dest.mkdir(exist_ok=True)
    (dest / "bench_epsf.json").write_text(json.dumps(out, indent=2))
    print(f"build: ours {ours_s:.1f} s, EPSFBuilder direct {peer_s:.1f} s (ratio {ours_s / peer_s:.2f}); "
          f"residual {ours['residual_pct']:.2f} % vs {peer_fig['residual_pct']:.2f} %, FWHM "
          f"{ours['fwhm_pct']:+.2f} % vs {peer_fig['fwhm_pct']:+.2f} %; GET /epsf p50 "
          f"{out['get_epsf']['p50_ms']:.1f} ms, p95 {out['get_epsf']['p95_ms']:.1f} ms")


def _flux_bias(survey: Path, band: str) -> dict[str, float]:
    """Median forced-photometry flux / truth of isolated constant stars, library ePSF vs the reference file's."""
    import sqlalchemy as sa
    from astropy.table import Table

    from benchmarks._common import scratch_archive
    from romanarchive.epsf.job import build_window
    from romanarchive.ingest.service import ingest_paths
    from romanarchive.timeseries import forced_job, targets
    from romanarchive.timeseries.forced_step import ForcedPhotConfig

    truth = Table.read(survey / "truth" / "truth.ecsv")
    cosd = np.cos(np.radians(float(np.mean(truth["dec"]))))
    stars = []
    for row in truth[truth["kind"] == "star"]:
        d = np.hypot((truth["ra"] - row["ra"]) * cosd, truth["dec"] - row["dec"]) * 3600
        if np.sort(d)[1] > 2.0 and row[f"mag_{band}"] <= 21.5:
            stars.append(row)
    with scratch_archive() as archive:
        paths = [*sorted((survey / "refs").rglob(f"*_{band.lower()}_epsf_*.asdf")),
                 *sorted((survey / "l2").glob(f"*_{band.lower()}_cal.asdf"))]
        list(ingest_paths(archive, paths))
        with archive.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM jobs"))
            mjd = conn.execute(sa.text("SELECT min(t_min) FROM products WHERE level = 2")).scalar_one()
            l2 = conn.execute(sa.text("SELECT product_id FROM products WHERE product_type = 'wfi_l2'")).scalars().all()
        build_window(archive, "WFI01", band, float(mjd))
        tids = targets.add_targets(archive, [f"s{int(r['id'])}" for r in stars], [r["ra"] for r in stars],
                                   [r["dec"] for r in stars])
        flux = {t: 3631e9 * 10 ** (-0.4 * float(r[f"mag_{band}"])) for t, r in zip(tids, stars, strict=True)}
        out = {}
        for name, use in (("library", True), ("reference", False)):
            cfg = ForcedPhotConfig(use_library=use, library_min_stars=0)
            for pid in l2:
                forced_job.run_product(archive, pid, cfg, recompute=False)
            with archive.engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT target_id, flux FROM target_phot WHERE flags = 0")).all()
            out[name] = float(np.median([f / flux[t] for t, f in rows]))
            out[f"n_{name}"] = len(rows)
    return out


def _latency(result: Any, n: int) -> dict[str, float]:
    """Register ``result`` on a scratch archive and time ``GET /epsf`` on a loopback server."""
    import tempfile

    import requests

    from benchmarks._common import scratch_archive
    from romanarchive.epsf.job import register_result
    from tests.support.server import live_server

    with scratch_archive() as archive, tempfile.TemporaryDirectory() as tmp:
        register_result(archive, None, result, result.write(Path(tmp) / "lib.asdf"))
        with live_server(archive, workers=0) as base:
            params = {"detector": result.detector, "filter": result.filter, "x": "200", "y": "300",
                      "time": str(result.t_min + 1)}
            requests.get(base + "/epsf", params=params, timeout=60).raise_for_status()
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                requests.get(base + "/epsf", params=params, timeout=60).raise_for_status()
                times.append(1000 * (time.perf_counter() - t0))
    return {"requests": n, "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}


if __name__ == "__main__":
    main()
