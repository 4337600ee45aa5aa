"""Reading Roman L2 ``ImageModel`` files into arrays: co-add inputs and the photometric conversion to nJy.

Shared by the co-add (:mod:`romanarchive.mosaic`), forced photometry and difference imaging
(:mod:`romanarchive.timeseries`), which all start from the same calibrated images.

Units: the archive's L2s are flux-calibrated by romancal's FluxStep (``meta.cal_step.flux`` COMPLETE), so pixel
values are surface brightness in MJy/sr. :func:`load_l2` gives co-add inputs in MJy/sr whatever the file holds (an
L2 still in DN/s is scaled by ``meta.photometry.conversion_megajanskys``, as romancal's MosaicPipeline runs FluxStep
first). A flux in nJy is a sum of MJy/sr values times the pixel area of the grid they were summed on, in sr, times
1e15 (:func:`njy_factor` for an L2, :func:`grid_njy_factor` for a co-add grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from romanarchive.imaging.coadd import CoaddInput, MosaicError

#: nJy per MJy.
NJY_PER_MJY = 1e15


@dataclass
class L2Input:
    """An L2 image read for co-adding, with the metadata the L3 needs."""

    arrays: CoaddInput
    filter: str | None
    t_start: float | None
    t_end: float | None
    exptime: float
    filename: str
    product_id: int | None = None
    conversion_rel_err: float | None = None  # relative uncertainty of the DN/s -> MJy/sr conversion, if known
    pixel_area: float | None = None  # nominal L2 pixel area, sr (meta.photometry.pixel_area)

    def njy_per_pixel(self) -> float:
        """nJy per (MJy/sr x L2 pixel): a sum of :attr:`arrays` data values times this is a flux in nJy."""
        if not self.pixel_area or self.pixel_area <= 0:
            raise MosaicError(f"{self.filename}: no pixel area in meta.photometry")
        return self.pixel_area * NJY_PER_MJY


def _mjd(value: Any) -> float | None:
    try:
        from astropy.time import Time

        return float(Time(value).mjd)
    except Exception:
        return None


def flux_calibrated(meta: Any) -> bool:
    """Whether an L2's pixels are MJy/sr (romancal's FluxStep ran: ``meta.cal_step.flux`` COMPLETE)."""
    try:
        return str(meta.cal_step.flux) == "COMPLETE"
    except (AttributeError, KeyError):
        return False


def to_mjy_sr(meta: Any) -> float:
    """Factor that turns an L2's pixel values into MJy/sr: 1 once flux-calibrated, else ``conversion_megajanskys``.

    Parameters
    ----------
    meta
        The ``meta`` node of an open L2 ``ImageModel``.
    """
    if flux_calibrated(meta):
        return 1.0
    conv = float(meta.photometry.conversion_megajanskys)
    if not conv > 0:
        raise MosaicError(f"{getattr(meta, 'filename', 'L2')}: in DN/s without a photometric conversion "
                          f"(meta.photometry.conversion_megajanskys = {conv})")
    return conv


def grid_njy_factor(pixel_scale_arcsec: float) -> float:
    """nJy per (MJy/sr x pixel) on a grid of square pixels of ``pixel_scale_arcsec`` (e.g. a skycell's 0.055")."""
    return float(np.radians(pixel_scale_arcsec / 3600.0) ** 2) * NJY_PER_MJY


def load_l2(source: str | Path | Any, product_id: int | None = None) -> L2Input:
    """Read an L2 ``ImageModel`` (a path or an open model) into arrays.

    Parameters
    ----------
    source
        Path of an L2 ASDF file, or an open ``roman_datamodels`` ``ImageModel``.
    product_id
        The archive's product id of the image, carried along for provenance.

    Returns
    -------
    L2Input
        The co-add input (``data``/``err`` in MJy/sr, ``var_poisson`` in (MJy/sr)^2) and the image's filter,
        exposure times and file name.

    Raises
    ------
    MosaicError
        When it cannot be read or is not an L2 image.
    """
    import roman_datamodels.datamodels as rdm

    name = Path(source).name if isinstance(source, (str, Path)) else str(getattr(source.meta, "filename", "model"))
    try:
        model = rdm.open(source) if isinstance(source, (str, Path)) else source
    except Exception as exc:
        raise MosaicError(f"{name}: cannot be read as a Roman datamodel ({type(exc).__name__})") from None
    if type(model).__name__ != "ImageModel":
        raise MosaicError(f"{name}: is a {type(model).__name__}, the mosaic step co-adds L2 ImageModels")
    meta = model.meta
    wcs = meta.get("wcs") if hasattr(meta, "get") else getattr(meta, "wcs", None)
    exp = meta.exposure
    exptime = float(exp.get("effective_exposure_time") or exp.get("exposure_time") or 1.0)
    conv = to_mjy_sr(meta)

    def sb(values: Any, power: int = 1) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float32)
        return arr if conv == 1.0 else (arr * np.float32(conv**power)).astype(np.float32)

    arrays = CoaddInput(
        data=sb(model.data), err=sb(model.err), wcs=wcs, dq=np.asarray(model.dq) if "dq" in model else None,
        var_poisson=sb(model.var_poisson, 2) if "var_poisson" in model else None, exptime=exptime, name=name,
        pixel_area=_pixel_area(meta),
    )
    return L2Input(arrays, str(meta.instrument.optical_element), _mjd(exp.start_time), _mjd(exp.end_time),
                   exptime, name, product_id, _conversion_rel_err(meta), _pixel_area(meta))


def _pixel_area(meta: Any) -> float | None:
    try:
        area = float(meta.photometry.pixel_area)
    except (AttributeError, KeyError, TypeError):
        return None
    return area if area > 0 else None


def _conversion_rel_err(meta: Any) -> float | None:
    try:
        conv = float(meta.photometry.conversion_megajanskys)
        unc = float(meta.photometry.conversion_megajanskys_uncertainty)
    except (AttributeError, KeyError, TypeError):
        return None
    return unc / conv if conv > 0 and unc >= 0 else None


def njy_factor(meta: Any) -> float:
    """nJy per pixel value of an L2 image (DN/s, or MJy/sr once flux-calibrated), from its ``meta.photometry``.

    Parameters
    ----------
    meta
        The ``meta`` node of an open L2 ``ImageModel``.
    """
    conv = 1.0 if flux_calibrated(meta) else float(meta.photometry.conversion_megajanskys)
    return conv * float(meta.photometry.pixel_area) * NJY_PER_MJY


def read_njy_factor(path: str | Path) -> float:
    """:func:`njy_factor` of an L2 file."""
    import roman_datamodels.datamodels as rdm

    with rdm.open(path) as model:
        return njy_factor(model.meta)
