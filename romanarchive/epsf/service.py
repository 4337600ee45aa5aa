"""The ePSF selection service behind ``GET /epsf`` and ``romanarchive epsf get``: parameters -> an ASDF or FITS file.

Parameters (DALI style, case-insensitive names): ``DETECTOR`` and ``FILTER`` (required), ``X`` and ``Y`` (detector
pixel, 0-based; default the centre of the library product's grid), ``TIME`` (MJD, or an ISO date; default: any
time), ``MODE`` (``interpolate``, the default, or ``nearest``), ``JITTER`` (extra Gaussian jitter RMS per axis, mas;
default 0) and ``FORMAT`` (``asdf``, the default, or ``fits``). The selection rule is
:mod:`romanarchive.ingest.epsf_library`'s.

The answer holds the oversampled stamp (romancal's ``epsf`` convention: scaled by ``oversample**2``, sums to the
flux share inside it) and how it was chosen: library product, grid weights, window, oversampling.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from romanarchive.archive import Archive
from romanarchive.imaging.epsf import convolve_jitter
from romanarchive.ingest.epsf_library import MODES, Selection, select

FORMATS = {"asdf": "application/asdf", "fits": "application/fits"}


class EpsfError(Exception):
    """A refused ePSF request: ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.fault = "UsageFault" if status == 400 else "NotFoundFault"


@dataclass(frozen=True)
class EpsfRequest:
    """A parsed ePSF request."""

    detector: str
    filter: str
    x: float | None = None
    y: float | None = None
    mjd: float | None = None
    mode: str = "interpolate"
    jitter_mas: float = 0.0
    format: str = "asdf"


def _float(values: dict[str, list[str]], name: str) -> float | None:
    v = values.get(name)
    if not v or not v[-1].strip():
        return None
    try:
        out = float(v[-1])
    except ValueError:
        raise EpsfError(f"{name.upper()} must be a number, not {v[-1]!r}") from None
    if not np.isfinite(out):
        raise EpsfError(f"{name.upper()} must be finite")
    return out


def _time(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        pass
    from astropy.time import Time

    try:
        return float(Time(value.strip()).mjd)
    except ValueError:
        raise EpsfError(f"TIME must be an MJD or an ISO date, not {value!r}") from None


def parse_request(values: dict[str, list[str]]) -> EpsfRequest:
    """An :class:`EpsfRequest` from lower-cased parameter names -> values; raises :class:`EpsfError`."""
    def one(name: str) -> str | None:
        v = values.get(name)
        return v[-1].strip() if v else None

    detector, band = one("detector"), one("filter")
    if not detector or not band:
        raise EpsfError("DETECTOR and FILTER are required, e.g. DETECTOR=WFI01&FILTER=F158")
    x, y = _float(values, "x"), _float(values, "y")
    if (x is None) != (y is None):
        raise EpsfError("give both X and Y, or neither (the centre of the grid)")
    mode = (one("mode") or "interpolate").lower()
    if mode not in MODES:
        raise EpsfError(f"MODE must be one of {', '.join(MODES)}, not {mode!r}")
    jitter = _float(values, "jitter") or 0.0
    if jitter < 0 or jitter > 1000:
        raise EpsfError("JITTER must be within 0..1000 mas")
    fmt = (one("format") or one("responseformat") or "asdf").lower()
    fmt = {"application/asdf": "asdf", "application/fits": "fits", "image/fits": "fits"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise EpsfError(f"FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return EpsfRequest(detector.upper(), band.upper(), x, y, _time(one("time")), mode, jitter, fmt)


def resolve(archive: Archive, req: EpsfRequest) -> tuple[Selection, np.ndarray]:
    """The selected ePSF and its stamp (jitter applied); :class:`EpsfError` (404) when the library has none."""
    found = select(archive, req.detector, req.filter, req.x, req.y, req.mjd, req.mode)
    if found is None:
        raise EpsfError(f"the ePSF library has no {req.detector} {req.filter} ePSF", 404)
    stamp = convolve_jitter(found.stamp, found.oversample, req.jitter_mas) if req.jitter_mas else found.stamp
    return found, np.asarray(stamp, np.float32)


def _meta(sel: Selection, req: EpsfRequest) -> dict[str, Any]:
    return {"product_id": sel.product_id, "filename": sel.filename, "detector": sel.detector, "filter": sel.filter,
            "x": sel.x, "y": sel.y, "t_min": sel.t_min, "t_max": sel.t_max, "oversample": sel.oversample,
            "mode": req.mode, "jitter_mas": req.jitter_mas,
            "weights": {str(k): float(v) for k, v in sorted(sel.weights.items())}}


def epsf_document(archive: Archive, req: EpsfRequest) -> tuple[bytes, str, str]:
    """(body, media type, file name) of the answer to ``req``."""
    sel, stamp = resolve(archive, req)
    meta = _meta(sel, req)
    name = f"epsf_{sel.detector.lower()}_{sel.filter.lower()}_{sel.x:.0f}_{sel.y:.0f}.{req.format}"
    buf = io.BytesIO()
    if req.format == "asdf":
        import asdf

        asdf.AsdfFile({"epsf": {"psf": stamp, **meta}}).write_to(buf)
    else:
        from astropy.io import fits

        hdu = fits.PrimaryHDU(stamp)
        for key, card in (("PRODID", "product_id"), ("DETECTOR", "detector"), ("FILTER", "filter"), ("X", "x"),
                          ("Y", "y"), ("TMIN", "t_min"), ("TMAX", "t_max"), ("OVERSAMP", "oversample"),
                          ("MODE", "mode"), ("JITTER", "jitter_mas")):
            hdu.header[key] = meta[card]
        hdu.header["WEIGHTS"] = ",".join(f"{k}:{v:.4f}" for k, v in meta["weights"].items())
        hdu.header["LIBFILE"] = sel.filename
        hdu.writeto(buf)
    return buf.getvalue(), FORMATS[req.format], name
