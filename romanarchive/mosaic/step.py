"""The mosaic step: L2 files or models -> an L3 ``MosaicModel`` on a skycell (or any TAN grid).

The L3 is surface brightness in MJy/sr on the skycell's 0.055" grid (``err`` in MJy/sr, ``var_*`` in (MJy/sr)^2),
with ``meta.photometry`` saying so: ``conversion_megajanskys`` = 1 (the values are already MJy/sr) and
``pixel_area`` the L3 pixel's solid angle in sr, so a flux in nJy is a sum of pixel values x pixel_area x 1e15
(what romancal's source catalogue does with an L3). ``meta.resample.pixel_scale_ratio`` is romancal's: L3 pixel
scale over the L2's (0.5 for 0.055" from 0.11").

``MosaicStep(config).run(inputs, skycell)`` is what jobs and the CLI call; other steps (e.g. difference imaging)
that need per-epoch images or templates on a skycell call it, or :func:`romanarchive.imaging.coadd.coadd` directly,
with any list of L2 paths or models.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic

from romanarchive.imaging.coadd import CoaddParams, CoaddResult, MosaicError, coadd
from romanarchive.imaging.l2 import L2Input, grid_njy_factor, load_l2
from romanarchive.sky.skycells import Skycell
from romanarchive.software import package_versions

STEP_NAME = "romanarchive.MosaicStep"
_SOFTWARE = ("romanarchive", "drizzle", "numpy", "astropy", "gwcs", "roman_datamodels", "scipy")


class MosaicConfig(pydantic.BaseModel):
    """Configuration of the co-add (see :mod:`romanarchive.imaging.coadd` for the algorithm)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    pixfrac: float = pydantic.Field(default=1.0, gt=0.0, le=1.0, description="Drizzle drop size, in input pixels")
    kernel: Literal["square", "point", "turbo", "gaussian", "lanczos3"] = "square"
    weight_type: Literal["ivm", "exptime"] = "ivm"
    skymethod: Literal["match", "local", "none"] = "match"
    outlier_detection: bool = True
    snr: tuple[float, float] = (5.0, 4.0)
    scale: tuple[float, float] = (1.2, 0.7)
    maskpt: float = pydantic.Field(default=0.7, ge=0.0, le=1.0)
    min_inputs_for_outliers: int = pydantic.Field(default=3, ge=2)

    def params(self) -> CoaddParams:
        """The pure function's parameters."""
        return CoaddParams(**self.model_dump())


def software_versions() -> dict[str, str]:
    """Versions of the packages that determine the co-added pixels."""
    return {"python": sys.version.split()[0], **package_versions(_SOFTWARE)}


@dataclass
class MosaicResult:
    """The L3 model and what it took."""

    model: Any
    coadd: CoaddResult
    inputs: list[L2Input]
    wall_time_s: float
    peak_rss_mb: float
    software: dict[str, str]
    parameters: dict[str, Any]

    def write(self, path: str | Path) -> Path:
        """Save the L3 ASDF (validated, lz4-compressed: empty parts of a skycell compress to almost nothing)."""
        path = Path(path)
        self.model.meta.filename = path.name
        self.model.save(path, all_array_compression="lz4")
        return path


class MosaicStep:
    """Co-add L2 images of one filter onto a skycell: a thin wrapper over :func:`coadd`.

    Parameters
    ----------
    config
        Step configuration.
    """

    def __init__(self, config: MosaicConfig | None = None) -> None:
        self.config = config or MosaicConfig()

    def run(self, inputs: Sequence[str | Path | Any | L2Input], skycell: Skycell) -> MosaicResult:
        """Co-add ``inputs`` onto ``skycell`` and build the L3 ``MosaicModel``.

        Parameters
        ----------
        inputs
            L2 paths, open ImageModels or :class:`L2Input` (all of one filter).
        skycell
            The target grid.

        Raises
        ------
        MosaicError
            Empty list, mixed filters, unreadable inputs, inputs without WCS or valid pixels, or none on the cell.
        """
        t0 = time.perf_counter()
        result, used = self.resample(inputs, skycell.wcs, skycell.shape)
        model = build_model(result, used, skycell, self.config)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
        return MosaicResult(model, result, used, time.perf_counter() - t0, peak, software_versions(),
                            self.config.model_dump(mode="json"))


    def resample(self, inputs: Sequence[str | Path | Any | L2Input], target_wcs: Any,
                 shape: tuple[int, int]) -> tuple[CoaddResult, list[L2Input]]:
        """Co-add onto any grid, without building an L3 model (e.g. per-epoch images or templates on a cut-out).

        Parameters
        ----------
        inputs
            L2 paths, open ImageModels or :class:`L2Input` (all of one filter).
        target_wcs
            WCS of the grid (``Skycell.wcs``, a slice of it, or any astropy/gwcs WCS).
        shape
            Grid shape (ny, nx).

        Returns
        -------
        tuple
            The co-added arrays and the inputs that reached the grid (in context-bit order).
        """
        if not inputs:
            raise MosaicError("no input images to co-add")
        l2 = [x if isinstance(x, L2Input) else load_l2(x) for x in inputs]
        filters = sorted({x.filter or "?" for x in l2})
        if len(filters) > 1:
            raise MosaicError(f"inputs mix filters {', '.join(filters)}; co-add one filter at a time")
        result = coadd([x.arrays for x in l2], target_wcs, shape, self.config.params())
        return result, [x for x, u in zip(l2, result.used, strict=True) if u]


def photometry_meta(pixel_scale_arcsec: float, used: Sequence[L2Input]) -> dict[str, float | None]:
    """``meta.photometry`` of an L3 in MJy/sr on square pixels of ``pixel_scale_arcsec``.

    ``conversion_megajanskys`` is 1 (MJy/sr per pixel unit); its uncertainty is the inputs' mean relative one
    (``None`` when they have none); ``pixel_area`` is in sr.
    """
    rel = [x.conversion_rel_err for x in used if x.conversion_rel_err is not None]
    return {"conversion_megajanskys": 1.0,
            "conversion_megajanskys_uncertainty": float(np.mean(rel)) if rel else None,
            "pixel_area": grid_njy_factor(pixel_scale_arcsec) / 1e15}


def build_model(result: CoaddResult, used: list[L2Input], skycell: Skycell, config: MosaicConfig) -> Any:
    """The ``roman_datamodels`` MosaicModel holding a co-add on a skycell."""
    import roman_datamodels.datamodels as rdm
    from astropy.time import Time

    model = rdm.MosaicModel.create_fake_data(shape=skycell.shape)
    model.data = result.data
    model.err = result.err
    model.weight = result.weight
    model.context = result.context
    model.var_poisson = result.var_poisson
    model.var_rnoise = result.var_rnoise
    meta = model.meta
    meta.wcs = skycell.gwcs
    meta.product_type = "wfi_l3"
    meta.calibration_software_name = "romanarchive"
    meta.calibration_software_version = software_versions().get("romanarchive", "?")
    meta.file_date = Time.now()
    meta.instrument.optical_element = used[0].filter
    starts = [x.t_start for x in used if x.t_start is not None]
    ends = [x.t_end for x in used if x.t_end is not None]
    if starts and ends:
        meta.coadd_info.time_first = Time(min(starts), format="mjd", scale="utc")
        meta.coadd_info.time_last = Time(max(ends), format="mjd", scale="utc")
        meta.coadd_info.time_mean = Time(float(np.mean(starts + ends)), format="mjd", scale="utc")
    meta.coadd_info.exposure_time = float(sum(x.exptime for x in used))
    meta.cal_step.flux = "COMPLETE"  # load_l2 gives MJy/sr (FluxStep's result) whatever the L2 file holds
    meta.cal_step.skymatch = "COMPLETE" if config.skymethod != "none" else "SKIPPED"
    meta.cal_step.outlier_detection = "COMPLETE" if config.outlier_detection else "SKIPPED"
    meta.cal_step.resample = "COMPLETE"
    meta.resample.pixfrac = config.pixfrac
    meta.resample.pixel_scale_ratio = float(np.sqrt(result.pixel_area_ratio))
    meta.resample.weight_type = config.weight_type
    meta.resample.good_bits = "~DO_NOT_USE+SATURATED"
    meta.resample.pointings = len(used)
    meta.resample.members = [x.filename for x in used]
    wi = meta.wcsinfo
    ra, dec = skycell.centre()
    wi.ra, wi.dec = ra, dec
    wi.ra_ref, wi.dec_ref = skycell.tangent
    wi.x_ref, wi.y_ref = skycell.crpix[0] - 1.0, skycell.crpix[1] - 1.0
    wi.pixel_scale = wi.pixel_scale_ref = skycell.pixel_scale / 3600.0
    wi.orientation = wi.orientation_ref = 0.0
    wi.image_shape = list(skycell.shape)
    wi.skycell_name = skycell.name
    wi.s_region = "POLYGON ICRS " + " ".join(f"{a:.8f} {b:.8f}" for a, b in skycell.corners())
    wi.rotation_matrix = [[1.0, 0.0], [0.0, 1.0]]
    meta["photometry"] = photometry_meta(skycell.pixel_scale, used)
    good = np.isfinite(result.data)
    if np.any(good):
        meta.statistics.image_median = float(np.median(result.data[good]))
        meta.statistics.image_rms = float(np.std(result.data[good]))
    meta.statistics.good_pixel_fraction = float(np.mean(good))
    meta.association.name = f"{skycell.name}_{used[0].filter}".lower()
    return model
