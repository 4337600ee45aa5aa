"""Difference imaging of one full-size (4088 x 4088) L3-like image pair: wall time and peak RSS.

The images are built cheaply rather than simulated exposure by exposure: 40,000 point sources (18-26 mag, a dense
high-latitude field) drawn with the galsim.roman F158 PSF at 0.11"/pix and added with numpy; the template gets half
the science noise (a deeper co-add); the science image is broadened by a 0.6-pixel Gaussian (so the PSF-matching
branch runs), has 200 sources that vary by +-30 % and 100 injected transients (21-24 mag). Timed:
:func:`romanarchive.timeseries.dia.difference_image` (background, PSF-width measurement and matching, subtraction,
matched-filter detection, measurement). Peak RSS is the process's, sampled before and after. There is no peer run
in the same process (HOTPANTS/SFFT are not installed here).

Run: ``nice python benchmarks/bench_dia.py``; writes ``benchmarks/out/bench_dia.json``.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np

SHAPE = (4088, 4088)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from scipy.ndimage import gaussian_filter

    from romanarchive.imaging.psf import psf_image
    from romanarchive.timeseries.dia import DIA_NEGATIVE, difference_image

    rng = np.random.default_rng(5)
    psf = psf_image("F158", 0.11, size=21)
    h = psf.shape[0] // 2
    n, n_var, n_tr = 40_000, 200, 100
    x = rng.integers(h, SHAPE[1] - h, n)
    y = rng.integers(h, SHAPE[0] - h, n)
    flux = 10 ** (-0.4 * (rng.uniform(18, 26, n) - 26.0))  # DN/s, zero point 26
    tmpl = np.zeros(SHAPE, np.float32)
    sci = np.zeros(SHAPE, np.float32)
    factor = np.ones(n)
    factor[:n_var] = 1 + rng.choice([-0.3, 0.3], n_var)
    for k in range(n):
        tmpl[y[k] - h:y[k] + h + 1, x[k] - h:x[k] + h + 1] += psf * flux[k]
        sci[y[k] - h:y[k] + h + 1, x[k] - h:x[k] + h + 1] += psf * flux[k] * factor[k]
    tx = rng.integers(50, SHAPE[1] - 50, n_tr)
    ty = rng.integers(50, SHAPE[0] - 50, n_tr)
    tflux = 10 ** (-0.4 * (rng.uniform(21, 24, n_tr) - 26.0))
    for k in range(n_tr):
        sci[ty[k] - h:ty[k] + h + 1, tx[k] - h:tx[k] + h + 1] += psf * tflux[k]
    sci = gaussian_filter(sci, 0.6).astype(np.float32)
    sig = 0.02
    sci_err = np.full(SHAPE, sig, np.float32)
    tmpl_err = np.full(SHAPE, sig / 2, np.float32)
    sci += rng.normal(0, sig, SHAPE).astype(np.float32)
    tmpl += rng.normal(0, sig / 2, SHAPE).astype(np.float32)

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    res = difference_image(sci, sci_err, tmpl, tmpl_err, psf)
    wall = time.perf_counter() - t0
    rss1 = _rss_mb()
    pos = (res.flags & DIA_NEGATIVE) == 0
    d = np.hypot(res.x[pos][None, :] - tx[:, None], res.y[pos][None, :] - ty[:, None])
    found = int(np.sum(d.min(axis=1) < 1.5)) if pos.any() else 0
    out = {"shape": list(SHAPE), "sources": n, "transients": n_tr, "variables": n_var, "wall_s": wall,
           "peak_rss_mb": rss1, "peak_rss_before_mb": rss0, "detections": len(res.x),
           "transients_found": found, "psf_matched": res.convolved, "psf_widths_px": list(res.widths),
           "noise_scale": res.noise_scale}
    print(f"difference imaging of {SHAPE[0]}x{SHAPE[1]}: {wall:.2f} s wall, peak RSS {rss1:.0f} MB "
          f"({rss0:.0f} MB holding the inputs); {len(res.x)} detections, {found}/{n_tr} transients recovered, "
          f"PSF matched: {res.convolved} (widths {res.widths[0]:.2f} / {res.widths[1]:.2f} px)")
    dest = Path(__file__).parent / "out" / "bench_dia.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
