"""Run Source Extractor (the Debian ``source-extractor`` package) on the same image, as the catalog's peer.

The image goes to FITS with a celestial WCS: an astropy WCS as is, a gwcs through ``gwcs.WCS.to_fits_sip`` (a
TAN-SIP fit over the image). The ``err`` array is its RMS map (``WEIGHT_TYPE MAP_RMS``); unusable pixels get a huge
RMS. Detection settings are Source Extractor's defaults except ``DETECT_MINAREA``, set to ours (5).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

EXECUTABLE = "source-extractor"
SHARE = Path("/usr/share/source-extractor")
PARAMS = ("NUMBER", "ALPHAWIN_J2000", "DELTAWIN_J2000", "X_IMAGE", "Y_IMAGE", "FLUX_AUTO", "FLUXERR_AUTO",
          "FLUX_APER", "FLUXERR_APER", "CLASS_STAR", "FLAGS")


@dataclass
class PeerResult:
    """Source Extractor's catalog and wall time (the external process only)."""

    table: Table
    wall_time_s: float


def available() -> bool:
    """Whether the executable is installed."""
    return shutil.which(EXECUTABLE) is not None


def fits_header(wcs: Any, shape: tuple[int, int]) -> fits.Header:
    """A FITS celestial WCS header for ``wcs`` (astropy WCS, or gwcs approximated by TAN-SIP)."""
    if hasattr(wcs, "to_header"):
        return wcs.to_header()
    ny, nx = shape
    return wcs.to_fits_sip(bounding_box=((-0.5, nx - 0.5), (-0.5, ny - 0.5)), max_pix_error=0.01, degree=4)


def run_source_extractor(data: np.ndarray, err: np.ndarray, wcs: Any, aperture_diameter_px: float = 5.0,
                         workdir: str | Path | None = None, minarea: int = 5,
                         detect_thresh: float | None = None) -> PeerResult:
    """Catalogue one image with Source Extractor.

    Parameters
    ----------
    data, err
        Image and 1-sigma uncertainty (any common unit).
    wcs
        Its WCS.
    aperture_diameter_px
        Diameter of FLUX_APER.
    workdir
        Where to write the FITS files (a temporary folder when ``None``).
    minarea
        DETECT_MINAREA.
    detect_thresh
        DETECT_THRESH and ANALYSIS_THRESH in sigma (default.sex's 1.5 when ``None``).
    """
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sex-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        header = fits_header(wcs, data.shape)
        good = np.isfinite(data) & np.isfinite(err) & (err > 0)
        fits.writeto(tmp / "image.fits", np.where(good, data, 0.0).astype(np.float32), header, overwrite=True)
        rms = np.where(good, err, 1e10).astype(np.float32)
        fits.writeto(tmp / "rms.fits", rms, header, overwrite=True)
        (tmp / "cat.param").write_text("\n".join(PARAMS) + "\n")
        cmd = [EXECUTABLE, str(tmp / "image.fits"), "-c", str(SHARE / "default.sex"),
               "-PARAMETERS_NAME", str(tmp / "cat.param"), "-FILTER_NAME", str(SHARE / "default.conv"),
               "-STARNNW_NAME", str(SHARE / "default.nnw"), "-CATALOG_TYPE", "FITS_1.0",
               "-CATALOG_NAME", str(tmp / "cat.fits"), "-WEIGHT_TYPE", "MAP_RMS",
               "-WEIGHT_IMAGE", str(tmp / "rms.fits"), "-DETECT_MINAREA", str(minarea),
               "-PHOT_APERTURES", f"{aperture_diameter_px:.3f}", "-VERBOSE_TYPE", "QUIET",
               "-CHECKIMAGE_TYPE", "NONE", "-SATUR_LEVEL", "1e29"]
        if detect_thresh is not None:
            cmd += ["-DETECT_THRESH", f"{detect_thresh:g}", "-ANALYSIS_THRESH", f"{detect_thresh:g}"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=tmp)
        wall = time.perf_counter() - t0
        table = Table.read(tmp / "cat.fits", hdu=1)
        return PeerResult(table, wall)
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
