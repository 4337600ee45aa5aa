"""Reading Roman L2 ``ImageModel`` files into arrays: co-add inputs and the photometric conversion to nJy.

Shared by the co-add (:mod:`romanarchive.mosaic`), forced photometry and difference imaging
(:mod:`romanarchive.timeseries`), which all start from the same calibrated images.
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


def _mjd(value: Any) -> float | None:
    try:
        from astropy.time import Time

        return float(Time(value).mjd)
    except Exception:
        return None


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
        The co-add input and the image's filter, exposure times and file name.

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
    arrays = CoaddInput(
        data=np.asarray(model.data, dtype=np.float32), err=np.asarray(model.err, dtype=np.float32),
        wcs=wcs, dq=np.asarray(model.dq) if "dq" in model else None,
        var_poisson=np.asarray(model.var_poisson, dtype=np.float32) if "var_poisson" in model else None,
        exptime=exptime, name=name,
    )
    return L2Input(arrays, str(meta.instrument.optical_element), _mjd(exp.start_time), _mjd(exp.end_time),
                   exptime, name, product_id)


def njy_factor(meta: Any) -> float:
    """nJy per pixel value of an L2 image (DN/s, or MJy/sr once flux-calibrated), from its ``meta.photometry``.

    Parameters
    ----------
    meta
        The ``meta`` node of an open L2 ``ImageModel``.
    """
    in_mjy = str(getattr(meta.cal_step, "flux", "")) == "COMPLETE"
    conv = 1.0 if in_mjy else float(meta.photometry.conversion_megajanskys)
    return conv * float(meta.photometry.pixel_area) * NJY_PER_MJY


def read_njy_factor(path: str | Path) -> float:
    """:func:`njy_factor` of an L2 file."""
    import roman_datamodels.datamodels as rdm

    with rdm.open(path) as model:
        return njy_factor(model.meta)
