"""Difference imaging of one L3-like image pair (4088 x 4088 by default): ours against SFFT on the same pair.

The pair is built cheaply rather than simulated exposure by exposure: 40,000 point sources (18-26 mag, a dense
high-latitude field) drawn with the galsim.roman F158 PSF at 0.11"/pix and added with numpy; the template gets half
the science noise (a deeper co-add); the science image is broadened by a 0.6-pixel Gaussian (so PSF matching is
needed), has 200 sources that vary by +-30 % and 100 injected transients (21-24 mag). With ``--size N`` the pair is
N x N with the source, variable and transient counts scaled by area (same density).

Two arms run in the same process on the same pair, one after the other:

* **ours**: :func:`romanarchive.timeseries.dia.difference_image` (background, PSF-width measurement, a constant 7x7
  delta-basis kernel plus constant background fitted on bright stars, subtraction, matched-filter detection,
  real/bogus cuts, measurement). Timed as one call.
* **SFFT** (``sfft`` from PyPI, Hu et al. 2022), NumPy/CPU backend (pyFFTW + numba, ``os.cpu_count()`` threads):
  ``sfft.CustomizedPacket.Customized_Packet.CP`` with the reference (template) convolved (``ForceConv='REF'``), the
  same 7x7 kernel (``GKerHW=3``), kernel and differential-background polynomial orders 0 by default (spatially
  constant, the model ours fits and the one that generated the pair; ``--sfft-orders`` changes them), constant
  photometric ratio. Its masked images are the images themselves: SFFT's crowded-field flavour only masks
  saturated stars, and this pair has none (``Easy_CrowdedPacket`` itself needs a ``sex``/``sextractor`` binary for
  that step); like ours, it is not told where the variables are. ``CP`` reads FITS files, so the pair is written
  to a temporary directory first. Timed: the FITS write, the whole ``CP`` call, and within it SFFT's own reports
  of its numba compilation (cached by numba in the installed package: the first run after installing compiles for
  ~30 s, later ones load in ~1 s) and of the subtraction.
  SFFT gives only a difference image ``D``; detection and measurement on it are ours, unchanged:
  ``difference_image(S, err_S, S - D, err_T, psf)`` with PSF matching switched off, so the image it subtracts is
  exactly ``S - (S - D) = D`` (``S - D`` is SFFT's convolved template plus its background) and the template-flux
  residual term still sees the template. That detection is timed separately; the comparison is of the subtraction.

Scored the same way for both, against the truth: purity (fraction of detections within 1.5 px of a variable or
transient, i.e. a source whose true flux change is non-zero), completeness of the transients (a positive detection
within 1.5 px) and of the variables, and flux accuracy: median of measured / true difference flux minus 1 over the
matched detections with |S/N| > 20, and its robust (1.4826 MAD) scatter. Both differences carry the science PSF
(F158 broadened by the 0.6-pixel Gaussian) and both are measured with it. Peak RSS of each arm is the process's
high-water mark (``VmHWM``, reset before each arm through ``/proc/self/clear_refs``; it includes the
pair held in memory).

Memory: SFFT's NumPy backend holds of order (Fij + Fpq)^2 complex128 images of the pair's size while it builds its
linear system (Fij, Fpq: the numbers of kernel and background polynomial terms; 1 and 1 at orders 0, 6 and 6 at its
default orders 2 and 2). Measured on a 2-core, 24 GB machine: orders 0/0 at 4088^2 peak at ~8.7 GB RSS; orders 2/2
peak at ~19 GB already at 2048^2 (~4x that at 4088^2, which does not fit), so higher orders need ``--size``.

Run: ``nice python benchmarks/bench_dia.py [--size 4088] [--sfft-orders 0 0] [--no-sfft]``; writes
``benchmarks/out/bench_dia.json``. Needs ``pip install sfft`` for the peer (skipped, and said so, without it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FULL = 4088
MATCH_PX = 1.5
FLUX_SNR = 20.0
BRIGHT_TEMPLATE_SNR = 1000.0  # a bogus detection on a template star this bright (PSF-flux S/N) is its residual


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> bool:
    """Reset the process's RSS high-water mark (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    """The RSS high-water mark since the last reset (VmHWM), else the process's peak RSS."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return _rss_mb()


def make_pair(size: int) -> dict[str, Any]:
    """The synthetic science/template pair and its truth (the full-size pair is the same for every run)."""
    from scipy.ndimage import gaussian_filter

    from romanarchive.imaging.psf import psf_image

    shape = (size, size)
    area = (size / FULL) ** 2
    rng = np.random.default_rng(5)
    psf = psf_image("F158", 0.11, size=21)
    h = psf.shape[0] // 2
    n, n_var, n_tr = round(40_000 * area), max(1, round(200 * area)), max(1, round(100 * area))
    x = rng.integers(h, shape[1] - h, n)
    y = rng.integers(h, shape[0] - h, n)
    flux = 10 ** (-0.4 * (rng.uniform(18, 26, n) - 26.0))  # DN/s, zero point 26
    tmpl = np.zeros(shape, np.float32)
    sci = np.zeros(shape, np.float32)
    factor = np.ones(n)
    factor[:n_var] = 1 + rng.choice([-0.3, 0.3], n_var)
    for k in range(n):
        tmpl[y[k] - h:y[k] + h + 1, x[k] - h:x[k] + h + 1] += psf * flux[k]
        sci[y[k] - h:y[k] + h + 1, x[k] - h:x[k] + h + 1] += psf * flux[k] * factor[k]
    tx = rng.integers(50, shape[1] - 50, n_tr)
    ty = rng.integers(50, shape[0] - 50, n_tr)
    tflux = 10 ** (-0.4 * (rng.uniform(21, 24, n_tr) - 26.0))
    for k in range(n_tr):
        sci[ty[k] - h:ty[k] + h + 1, tx[k] - h:tx[k] + h + 1] += psf * tflux[k]
    sci = gaussian_filter(sci, 0.6).astype(np.float32)
    sig = 0.02
    sci += rng.normal(0, sig, shape).astype(np.float32)
    tmpl += rng.normal(0, sig / 2, shape).astype(np.float32)
    # The true difference flux of every source that changes: variables, then transients.
    truth = {"x": np.concatenate([x[:n_var], tx]).astype(float), "y": np.concatenate([y[:n_var], ty]).astype(float),
             "dflux": np.concatenate([flux[:n_var] * (factor[:n_var] - 1), tflux]),
             "transient": np.concatenate([np.zeros(n_var, bool), np.ones(n_tr, bool)])}
    # Both differences have the science PSF (F158 broadened by the same Gaussian): that is the PSF they are
    # measured with, as the DIA step passes the broader image's PSF.
    broad = gaussian_filter(psf.astype(float), 0.6, mode="constant")
    broad *= psf.sum() / broad.sum()
    return {"shape": shape, "sci": sci, "sci_err": np.full(shape, sig, np.float32), "tmpl": tmpl,
            "tmpl_err": np.full(shape, sig / 2, np.float32), "psf": broad.astype(np.float32), "n": n,
            "n_var": n_var, "n_tr": n_tr, "truth": truth}


def score(res: Any, truth: dict[str, np.ndarray]) -> dict[str, Any]:
    """Purity, completeness and flux accuracy of a :class:`~romanarchive.timeseries.dia.DiaResult` against the
    truth."""
    from scipy.spatial import cKDTree

    n_det = len(res.x)
    tree = cKDTree(np.column_stack([truth["x"], truth["y"]]))
    det = np.column_stack([res.x, res.y]) if n_det else np.zeros((0, 2))
    d, idx = tree.query(det) if n_det else (np.zeros(0), np.zeros(0, int))
    real = d < MATCH_PX
    # Completeness: a true source is found by a detection of the right sign within MATCH_PX.
    found = np.zeros(len(truth["x"]), bool)
    for sign in (1, -1):
        sel = (np.sign(res.snr) == sign) if n_det else np.zeros(0, bool)
        if sel.any():
            dd, _ = cKDTree(det[sel]).query(np.column_stack([truth["x"], truth["y"]]))
            found |= (dd < MATCH_PX) & (np.sign(truth["dflux"]) == sign)
    tr = truth["transient"]
    bright = real & (np.abs(res.snr) > FLUX_SNR)
    ratio = res.flux[bright] / truth["dflux"][idx[bright]]
    med = float(np.median(ratio)) if ratio.size else float("nan")
    scatter = float(1.4826 * np.median(np.abs(ratio - med))) if ratio.size else float("nan")
    bogus = ~real
    with np.errstate(invalid="ignore", divide="ignore"):
        on_bright = np.abs(res.flux_template / res.flux_err) > BRIGHT_TEMPLATE_SNR
    return {"detections": n_det, "real": int(real.sum()), "bogus": int(bogus.sum()),
            "bogus_negative": int((bogus & (res.snr < 0)).sum()),
            "bogus_on_bright_star": int((bogus & on_bright).sum()),
            "purity": float(real.mean()) if n_det else float("nan"),
            "transients_found": int(found[tr].sum()), "transient_completeness": float(found[tr].mean()),
            "variables_found": int(found[~tr].sum()), "variable_completeness": float(found[~tr].mean()),
            "flux_n": int(ratio.size), "flux_bias": med - 1, "flux_scatter": scatter,
            "threshold": res.threshold, "noise_scale": res.noise_scale, "residual_frac": res.residual_frac,
            "rejected": res.rejected}


def run_sfft(sci: np.ndarray, tmpl: np.ndarray, orders: tuple[int, int], ker_hw: int,
             threads: int) -> tuple[np.ndarray, dict[str, Any]]:
    """SFFT's customised subtraction (template convolved) on the NumPy backend; the difference and timings."""
    from astropy.io import fits
    from sfft.CustomizedPacket import Customized_Packet
    from sfft.utils.SFFTSolutionReader import Realize_FluxScaling

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dia-sfft-") as tmp:
        ref_path, sci_path = os.path.join(tmp, "ref.fits"), os.path.join(tmp, "sci.fits")
        t0 = time.perf_counter()
        fits.PrimaryHDU(tmpl).writeto(ref_path)
        fits.PrimaryHDU(sci).writeto(sci_path)
        out["fits_write_s"] = time.perf_counter() - t0
        log = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(log):
            # No saturated pixels: the masked images (what the kernel is fitted on) are the images themselves.
            solution, diff = Customized_Packet.CP(FITS_REF=ref_path, FITS_SCI=sci_path, FITS_mREF=ref_path,
                                                  FITS_mSCI=sci_path, ForceConv="REF", GKerHW=ker_hw,
                                                  KerPolyOrder=orders[0], BGPolyOrder=orders[1],
                                                  ConstPhotRatio=True, BACKEND_4SUBTRACT="Numpy",
                                                  NUM_CPU_THREADS_4SUBTRACT=threads, VERBOSE_LEVEL=1)
        out["cp_call_s"] = time.perf_counter() - t0
    # The photometric ratio SFFT fitted (the kernel's sum; the truth is 1), at the image centre.
    n0, n1 = tmpl.shape[1], tmpl.shape[0]  # CP's axes are (x, y)
    out["flux_scaling"] = float(Realize_FluxScaling(XY_q=np.array([[n0 / 2 + 0.5, n1 / 2 + 0.5]])).FromArray(
        Solution=solution, N0=n0, N1=n1, L0=2 * ker_hw + 1, L1=2 * ker_hw + 1, DK=orders[0],
        Fpq=(orders[1] + 1) * (orders[1] + 2) // 2)[0])
    text = log.getvalue()
    comp = re.search(r"Function Compilations of SFFT-SUBTRACTION TAKES \[([\d.]+) s\]", text)
    sub = re.search(r"Report: SFFT-SUBTRACTION TAKES \[([\d.]+) s\]", text)
    out["compile_s"] = float(comp.group(1)) if comp else None
    out["subtraction_s"] = float(sub.group(1)) if sub else None
    # CP works on the transposed FITS array (x first); back to numpy's (y, x).
    return np.ascontiguousarray(np.asarray(diff).T), out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=FULL, help="side of the square pair (default 4088)")
    ap.add_argument("--sfft-orders", type=int, nargs=2, default=(0, 0), metavar=("KER", "BG"),
                    help="SFFT's kernel and background polynomial orders (default 0 0: spatially constant)")
    ap.add_argument("--sfft-kernel-hw", type=int, default=3, help="SFFT's kernel half-width (default 3: 7x7)")
    ap.add_argument("--no-sfft", action="store_true", help="run ours only")
    args = ap.parse_args(argv)

    from romanarchive.timeseries.dia import DiaParams, difference_image

    pair = make_pair(args.size)
    shape, truth = pair["shape"], pair["truth"]
    sci, sci_err, tmpl, tmpl_err, psf = (pair[k] for k in ("sci", "sci_err", "tmpl", "tmpl_err", "psf"))
    size_note = "" if args.size == FULL else f" (reduced from {FULL}x{FULL}: --size {args.size})"
    out: dict[str, Any] = {"shape": list(shape), "full_size": args.size == FULL, "sources": pair["n"],
                           "transients": pair["n_tr"], "variables": pair["n_var"], "match_px": MATCH_PX,
                           "flux_min_snr": FLUX_SNR,
                           "peak_rss_before_mb": _peak_mb(), "cpu_count": os.cpu_count()}

    peak_ok = _reset_peak()
    t0 = time.perf_counter()
    res = difference_image(sci, sci_err, tmpl, tmpl_err, psf)
    ours = {"wall_s": time.perf_counter() - t0, "peak_rss_mb": _peak_mb() if peak_ok else _rss_mb(),
            "psf_matched": res.convolved, "psf_widths_px": list(res.widths), **score(res, truth)}
    out["ours"] = ours

    peer: dict[str, Any] | None = None
    if args.no_sfft:
        out["sfft"] = "not run (--no-sfft)"
    else:
        try:
            import sfft
        except ImportError:
            out["sfft"] = "not run: sfft is not installed (pip install sfft)"
        else:
            threads = os.cpu_count() or 1
            peak_ok = _reset_peak()
            diff, peer = run_sfft(sci, tmpl, tuple(args.sfft_orders), args.sfft_kernel_hw, threads)
            peer["peak_rss_mb"] = _peak_mb() if peak_ok else _rss_mb()
            # Our detection and measurement on SFFT's difference: subtracting S - D from S gives back D.
            _reset_peak()
            t0 = time.perf_counter()
            det = difference_image(sci, sci_err, sci - diff, tmpl_err, psf, DiaParams(match_tolerance=np.inf))
            peer["detection_s"] = time.perf_counter() - t0
            peer["detection_peak_rss_mb"] = _peak_mb()
            peer["wall_s"] = peer["fits_write_s"] + peer["cp_call_s"] + peer["detection_s"]
            peer.update(version=sfft.__version__, mode="Customized_Packet.CP, ForceConv='REF', crowded "
                        "(masked images = images: no saturation)", backend="Numpy", threads=threads,
                        kernel_hw=args.sfft_kernel_hw, ker_poly_order=args.sfft_orders[0],
                        bg_poly_order=args.sfft_orders[1], detection_psf_matched=det.convolved,
                        **score(det, truth))
            out["sfft"] = peer
            sub = peer["subtraction_s"] or peer["cp_call_s"]
            out["ratios"] = {"sfft_total_over_ours": peer["wall_s"] / ours["wall_s"],
                             "sfft_cp_call_over_ours": peer["cp_call_s"] / ours["wall_s"],
                             "sfft_subtraction_plus_detection_over_ours": (sub + peer["detection_s"]) / ours["wall_s"]}

    def line(name: str, r: dict[str, Any]) -> str:
        return (f"  {name:<5} {r['detections']:>5} detections, purity {r['purity']:.3f} ({r['bogus']} bogus), "
                f"transients {r['transients_found']}/{pair['n_tr']}, variables {r['variables_found']}/"
                f"{pair['n_var']}, flux (|S/N| > {FLUX_SNR:.0f}, n = {r['flux_n']}) measured/true - 1 = "
                f"{r['flux_bias']:+.4f} +- {r['flux_scatter']:.4f}; bogus: {r['bogus_negative']} negative, "
                f"{r['bogus_on_bright_star']} on "
                f"template stars of S/N > {BRIGHT_TEMPLATE_SNR:.0f}")

    print(f"difference imaging of one {shape[0]}x{shape[1]} pair{size_note}, {pair['n']} sources, "
          f"{pair['n_var']} variables, {pair['n_tr']} transients")
    print(f"  ours: {ours['wall_s']:.2f} s wall, peak RSS {ours['peak_rss_mb']:.0f} MB, PSF matched: "
          f"{ours['psf_matched']} (widths {res.widths[0]:.2f} / {res.widths[1]:.2f} px)")
    if peer is not None:
        comp = f"{peer['compile_s']:.2f}" if peer["compile_s"] is not None else "?"
        sub_s = f"{peer['subtraction_s']:.2f}" if peer["subtraction_s"] is not None else "?"
        print(f"  SFFT {peer['version']} ({peer['backend']} backend, {peer['threads']} threads, kernel "
              f"{2 * peer['kernel_hw'] + 1}x{2 * peer['kernel_hw'] + 1}, orders {peer['ker_poly_order']}/"
              f"{peer['bg_poly_order']}): {peer['wall_s']:.2f} s wall = FITS write {peer['fits_write_s']:.2f} s + "
              f"CP call {peer['cp_call_s']:.2f} s (numba compile {comp} s, subtraction {sub_s} s) + our detection "
              f"on its difference {peer['detection_s']:.2f} s; peak RSS {peer['peak_rss_mb']:.0f} MB; fitted "
              f"photometric ratio {peer['flux_scaling']:.5f} (true 1)")
        r = out["ratios"]
        print(f"  time ratio SFFT / ours: {r['sfft_total_over_ours']:.2f} (everything), "
              f"{r['sfft_cp_call_over_ours']:.2f} (SFFT's CP call alone, no detection), "
              f"{r['sfft_subtraction_plus_detection_over_ours']:.2f} (subtraction + detection, no compile or I/O)")
    else:
        print(f"  SFFT: {out['sfft']}")
    print(line("ours", ours))
    if peer is not None:
        print(line("SFFT", peer))
    dest = Path(__file__).parent / "out" / "bench_dia.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
