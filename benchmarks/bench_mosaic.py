"""Co-add the science survey's F158 L2 images onto one skycell: romanarchive's MosaicStep against SWarp.

Peer: SWarp (Debian ``SWarp``), single-threaded like the step, on the same inputs converted to FITS with an
astropy SIP approximation of each L2 gwcs (conversion not timed) and inverse-variance weight maps, onto the same
output grid (the skycell's WCS as ``.head``). Two pairings: plain weighted co-adds (our step without outlier
rejection vs SWarp ``COMBINE_TYPE=WEIGHTED``), and co-adds with outlier rejection (our median/blot rejection vs
SWarp ``COMBINE_TYPE=CLIPPED``). Both subtract/match backgrounds. A third pairing times romancal's own L3 steps
(SkyMatchStep -> OutlierDetectionStep -> ResampleStep onto the skycell gwcs, ``resample_on_skycell=False``, in a
``ModelLibrary``; inputs opened and pixel-area corrected outside the timer) against SWarp ``CLIPPED``: the archive
would co-add with romancal if that stayed within 1.2x of SWarp. Prints wall times and ratios, and writes
``benchmarks/out/bench_mosaic.json``.

Run: ``ROMANARCHIVE_SIM_CACHE=/work/cache/sim python benchmarks/bench_mosaic.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def _fits_inputs(inputs: list, folder: Path) -> list[Path]:
    from astropy.io import fits

    out = []
    for k, inp in enumerate(inputs):
        a = inp.arrays
        header = a.wcs.to_fits_sip(bounding_box=((-0.5, a.data.shape[1] - 0.5), (-0.5, a.data.shape[0] - 0.5)),
                                   max_pix_error=0.01, degree=None)
        good = a.good()
        data = np.where(good, a.data, 0.0).astype(np.float32)
        weight = np.where(good, 1.0 / np.median(a.err[good].astype(np.float64) ** 2), 0.0).astype(np.float32)
        path = folder / f"in{k}.fits"
        fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
        fits.PrimaryHDU(weight, header=header).writeto(folder / f"in{k}.weight.fits", overwrite=True)
        out.append(path)
    return out


def _swarp(paths: list[Path], cell: object, folder: Path, combine: str) -> float:
    header = cell.wcs.to_header()  # type: ignore[attr-defined]
    header["NAXIS"] = 2
    header["NAXIS1"], header["NAXIS2"] = cell.shape[1], cell.shape[0]  # type: ignore[attr-defined]
    out = folder / f"swarp_{combine.lower()}.fits"
    (folder / f"swarp_{combine.lower()}.head").write_text(header.tostring(sep="\n") + "\nEND\n")
    cmd = ["SWarp", *map(str, paths), "-IMAGEOUT_NAME", str(out), "-WEIGHTOUT_NAME", str(out) + ".weight.fits",
           "-WEIGHT_TYPE", "MAP_WEIGHT", "-WEIGHT_SUFFIX", ".weight.fits", "-COMBINE_TYPE", combine,
           "-RESAMPLING_TYPE", "LANCZOS3", "-SUBTRACT_BACK", "Y", "-NTHREADS", "1", "-VERBOSE_TYPE", "QUIET",
           "-WRITE_XML", "N", "-RESAMPLE_DIR", str(folder), "-FSCALASTRO_TYPE", "NONE", "-COPY_KEYWORDS", ""]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=folder, capture_output=True)
    wall = time.perf_counter() - t0
    from astropy.io import fits

    with fits.open(out) as hdul, fits.open(str(out) + ".weight.fits") as wh:
        # Same grid as ours, and actually co-added (not an empty frame).
        assert hdul[0].data.shape == cell.shape, hdul[0].data.shape  # type: ignore[attr-defined]
        assert np.count_nonzero(wh[0].data > 0) > 0.1 * hdul[0].data.size
    return wall


def _romancal_models(paths: list[Path]) -> list:
    """Open L2s as romancal would take them, with the archive co-add's pixel-area correction (not timed)."""
    import roman_datamodels.datamodels as rdm

    from romanarchive.imaging.coadd import pixel_area_map

    models = []
    for p in paths:
        m = rdm.open(p)
        scale = (m.meta.photometry.pixel_area / pixel_area_map(m.meta.wcs, m.data.shape)).astype(np.float32)
        m.data = (m.data * scale).astype(np.float32)
        m.err = (m.err * scale).astype(m.err.dtype)
        m.var_poisson = (m.var_poisson * scale**2).astype(m.var_poisson.dtype)
        models.append(m)
    return models


def _romancal(paths: list[Path], wcs_file: Path) -> float:
    """Wall time of romancal's SkyMatch -> OutlierDetection -> Resample on the L2s onto the skycell grid."""
    from romancal.datamodels import ModelLibrary
    from romancal.outlier_detection import OutlierDetectionStep
    from romancal.resample import ResampleStep
    from romancal.skymatch import SkyMatchStep

    models = _romancal_models(paths)
    t0 = time.perf_counter()
    lib = SkyMatchStep.call(ModelLibrary(models))
    lib = OutlierDetectionStep.call(lib, resample_on_skycell=False, in_memory=True)
    out = ResampleStep.call(lib, output_wcs=str(wcs_file), resample_on_skycell=False)
    wall = time.perf_counter() - t0
    assert out.data.shape == tuple(asdf_shape(wcs_file)) and np.count_nonzero(out.weight > 0) > 0.1 * out.data.size
    return wall


def asdf_shape(wcs_file: Path) -> tuple[int, int]:
    import asdf

    with asdf.open(wcs_file) as af:
        return tuple(int(n) for n in af["shape"])  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--filter", default="F158")
    args = parser.parse_args()
    if shutil.which("SWarp") is None:
        raise SystemExit("SWarp is not installed (apt-get install swarp)")

    from romanarchive.mosaic.step import MosaicConfig, MosaicStep, load_l2
    from romanarchive.sim.calibrated import calibrated_survey, l2_files, science_config
    from romanarchive.sky.skycells import home_skycells

    folder = calibrated_survey(science_config(), out_dir=Path(tempfile.mkdtemp(prefix="bench-mosaic-")))
    paths = [p for p in l2_files(folder) if f"_{args.filter.lower()}_" in p.name]
    inputs = [load_l2(p) for p in paths]
    cell = home_skycells(*inputs[0].arrays.wcs.pixel_to_world_values(255.5, 255.5))[0]
    work = Path(tempfile.mkdtemp(prefix="bench-swarp-"))
    try:
        fits_paths = _fits_inputs(inputs, work)
        results: dict[str, dict[str, float]] = {}
        import asdf

        from romanarchive.crds_offline import configure_offline

        configure_offline(work / "crds")
        wcs_file = work / "skycell_wcs.asdf"
        asdf.AsdfFile({"wcs": cell.gwcs, "shape": list(cell.shape)}).write_to(wcs_file)
        rc, peer = [], []
        for _ in range(args.repeat):
            rc.append(_romancal(paths, wcs_file))
            peer.append(_swarp(fits_paths, cell, work, "CLIPPED"))
        results["romancal_steps"] = {"romancal_s": min(rc), "swarp_s": min(peer), "ratio": min(rc) / min(peer)}
        print(f"{'romancal_steps':18s} romancal L3 steps      {min(rc):6.2f} s   SWarp (CLIPPED) {min(peer):6.2f} s   "
              f"ratio {min(rc) / min(peer):5.2f}x   (SkyMatch -> OutlierDetection -> Resample)")
        pairs = {"weighted": (MosaicConfig(outlier_detection=False), "WEIGHTED"),
                 "outlier_rejection": (MosaicConfig(), "CLIPPED")}
        for name, (cfg, combine) in pairs.items():
            ours, peer = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                MosaicStep(cfg).run(inputs, cell)
                ours.append(time.perf_counter() - t0)
                peer.append(_swarp(fits_paths, cell, work, combine))
            results[name] = {"romanarchive_s": min(ours), "swarp_s": min(peer), "ratio": min(ours) / min(peer)}
            print(f"{name:18s} romanarchive MosaicStep {min(ours):6.2f} s   SWarp ({combine}) {min(peer):6.2f} s   "
                  f"ratio {min(ours) / min(peer):5.2f}x   ({len(inputs)} x 512^2 -> {cell.shape} {cell.name})")
        out = Path(__file__).parent / "out"
        out.mkdir(exist_ok=True)
        (out / "bench_mosaic.json").write_text(json.dumps({"inputs": len(inputs), "skycell": cell.name,
                                                           "results": results}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
