"""SODA 1.0 synchronous cutouts of calibrated images (L2 exposures, L3 mosaics): CIRCLE, POLYGON, BAND, ID.

Only the pixels needed are read: the file is opened lazily (asdf ``lazy_load`` + ``memmap``), each image-grid
array is sliced on its own and its block released before the next is read, so an uncompressed block is paged in
just for the cutout rows and a compressed one is held one array at a time. The cutout's WCS is the parent's gwcs
with a pixel shift prepended (ASDF, a valid roman_datamodels model) or a FITS-SIP fit of it (FITS).
"""

from __future__ import annotations

import copy
import io
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from romanarchive.dal.products import DalError, Product

FORMATS = {"application/x-asdf": "asdf", "asdf": "asdf", "application/asdf": "asdf", "application/fits": "fits",
           "image/fits": "fits", "fits": "fits"}  # fmt: skip
MEDIA = {"asdf": "application/x-asdf", "fits": "application/fits"}
#: Points sampled along a circle's edge to find its pixel bounding box.
_EDGE = 72


@dataclass(frozen=True)
class Region:
    """A sky region: sample points on its boundary (ICRS degrees) and its centre."""

    ra: np.ndarray
    dec: np.ndarray


def _numbers(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise DalError(f"{what} must be numbers, not {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise DalError(f"{what} must be finite numbers, not {text!r}")
    return values


def circle(text: str) -> Region:
    """SODA ``CIRCLE ra dec radius`` (degrees) as boundary points."""
    v = _numbers(text, "CIRCLE")
    if len(v) != 3 or not -90 <= v[1] <= 90 or not 0 < v[2] <= 10:
        raise DalError(f"CIRCLE must be 'ra dec radius' with -90 <= dec <= 90 and 0 < radius <= 10 deg, not {text!r}")
    ra0, dec0, r = np.radians(v)
    az = np.linspace(0, 2 * np.pi, _EDGE, endpoint=False)
    # Points at angular distance r from the centre, bearing az (spherical direct problem).
    dec = np.arcsin(np.sin(dec0) * np.cos(r) + np.cos(dec0) * np.sin(r) * np.cos(az))
    ra = ra0 + np.arctan2(np.sin(az) * np.sin(r) * np.cos(dec0), np.cos(r) - np.sin(dec0) * np.sin(dec))
    return Region(np.degrees(ra) % 360, np.degrees(dec))


def polygon(text: str) -> Region:
    """SODA ``POLYGON ra1 dec1 ra2 dec2 ...`` (degrees): vertices plus points along the edges."""
    v = _numbers(text, "POLYGON")
    if len(v) < 6 or len(v) % 2 or not all(-90 <= d <= 90 for d in v[1::2]):
        raise DalError(f"POLYGON must be at least 3 'ra dec' vertex pairs with -90 <= dec <= 90, not {text!r}")
    ra, dec = np.array(v[0::2]), np.array(v[1::2])
    # Edges sampled (in a local plane; fine for cutout-sized polygons) so curved pixel edges are covered.
    t = np.linspace(0, 1, 16, endpoint=False)
    dra = (np.roll(ra, -1) - ra + 180) % 360 - 180
    pr = (ra[:, None] + dra[:, None] * t).ravel() % 360
    pd = (dec[:, None] + (np.roll(dec, -1) - dec)[:, None] * t).ravel()
    return Region(pr, pd)


def band(text: str) -> tuple[float, float]:
    """SODA ``BAND lo hi`` (metres; a single value is a point)."""
    v = [float(x) for x in text.split()] if text.strip() else []
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or not all(not math.isnan(x) for x in v) or v[0] > v[1]:
        raise DalError(f"BAND must be 'lo hi' in metres with lo <= hi, not {text!r}")
    return v[0], v[1]


def check_band(product: Product, interval: tuple[float, float]) -> None:
    """Raise unless the product's bandpass overlaps ``interval`` (SODA: no overlap is a usage error)."""
    if product.em_min is None or product.em_max is None:
        return
    if interval[1] < product.em_min or interval[0] > product.em_max:
        raise DalError(f"BAND {interval[0]:g} {interval[1]:g} m does not overlap the product's bandpass "
                       f"{product.em_min:g}-{product.em_max:g} m")  # fmt: skip


def pixel_box(wcs: Any, shape: tuple[int, int], regions: list[Region]) -> tuple[int, int, int, int]:
    """Pixel slice bounds (x0, x1, y0, y1), clipped to the image, of the intersection of ``regions``.

    Raises
    ------
    DalError
        The regions do not overlap the image.
    """
    ny, nx = shape
    x0, x1, y0, y1 = 0, nx, 0, ny
    for reg in regions:
        with np.errstate(invalid="ignore"):
            x, y = wcs.invert(reg.ra, reg.dec, with_bounding_box=False)
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            raise DalError("the cutout region does not overlap the image")
        x0 = max(x0, math.floor(x[ok].min() + 0.5))
        x1 = min(x1, math.floor(x[ok].max() + 0.5) + 1)
        y0 = max(y0, math.floor(y[ok].min() + 0.5))
        y1 = min(y1, math.floor(y[ok].max() + 0.5) + 1)
    if x1 <= x0 or y1 <= y0:
        raise DalError("the cutout region does not overlap the image")
    return x0, x1, y0, y1


def shifted_wcs(wcs: Any, x0: int, y0: int, nx: int, ny: int) -> Any:
    """The parent gwcs seen from a cutout starting at pixel (x0, y0): ``Shift(x0) & Shift(y0)`` prepended."""
    from astropy.modeling.models import Shift

    out = copy.deepcopy(wcs)
    out.insert_transform(out.input_frame, Shift(x0) & Shift(y0), after=True)
    out.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    out.pixel_shape = (nx, ny)
    out.array_shape = (ny, nx)
    return out


def cutout_name(product: Product, fmt: str) -> str:
    """File name of a cutout of ``product`` (also its ASDF ``meta.filename``)."""
    return f"cutout_{product.product_id}_{Path(product.filename).stem}.{fmt}"


def _slice_release(nd: Any, sl: tuple[Any, ...]) -> np.ndarray:
    """Copy ``nd[sl]`` and drop the decompressed block asdf caches (so arrays are held one at a time)."""
    out = np.array(nd[sl])
    callback = getattr(nd, "_data_callback", None)
    if callback is not None:
        try:
            callback(_attr="close")()  # ReadBlock.close(): forget the cached (decompressed) block
            nd._array = None
        except Exception:  # noqa: BLE001, S110 - releasing early is an optimisation; the file close frees it anyway
            pass
    return out


def cutout(path: str | Path, product: Product, regions: list[Region], fmt: str = "asdf") -> bytes:
    """Cut the regions' bounding box out of a calibrated image file.

    Parameters
    ----------
    path
        Local path of the product's ASDF file.
    product
        The product (for messages).
    regions
        Sky regions; the cutout covers their intersection's pixel bounding box.
    fmt
        ``asdf`` (roman_datamodels model of the parent's type) or ``fits`` (SCI/ERR/DQ with a FITS-SIP WCS).
    """
    import roman_datamodels as rdm

    with rdm.open(path, memmap=True) as model:
        node = model._instance
        if not hasattr(node.get("data"), "shape") or len(node["data"].shape) != 2:
            raise DalError(f"product {product.product_id} ({type(model).__name__}) has no 2-D image to cut", 422)
        shape = tuple(node["data"].shape[-2:])
        wcs = getattr(model.meta, "wcs", None)
        if wcs is None:
            raise DalError(f"product {product.product_id} has no WCS", 422)
        x0, x1, y0, y1 = pixel_box(wcs, shape, regions) if regions else (0, shape[1], 0, shape[0])
        sl = (slice(y0, y1), slice(x0, x1))
        new_wcs = shifted_wcs(wcs, x0, y0, x1 - x0, y1 - y0)
        arrays: dict[str, np.ndarray] = {}
        for key in list(node.keys()):
            value = node[key]
            if key != "meta" and hasattr(value, "shape") and tuple(value.shape[-2:]) == shape:
                arrays[key] = _slice_release(value, (Ellipsis, *sl))
        if fmt == "fits":
            return _fits(arrays, new_wcs, product, (x0, y0))
        out = copy.copy(node)
        for key in list(out.keys()):
            value = out[key]
            if key in arrays:
                out[key] = arrays[key]
            elif key != "meta" and hasattr(value, "shape"):
                # Arrays off the science grid (reference pixels, amp33, jump lists) belong to the whole detector.
                out[key] = np.zeros((0,) * len(value.shape), value.dtype)
        out["meta"] = copy.deepcopy(node["meta"])
        out["meta"]["wcs"] = new_wcs
        out["meta"]["filename"] = cutout_name(product, "asdf")
        cut_model = type(model)(out)
        with tempfile.TemporaryDirectory(prefix="soda-") as tmp:
            dest = Path(tmp) / out["meta"]["filename"]
            cut_model.to_asdf(dest)
            return dest.read_bytes()


def _fits(arrays: dict[str, np.ndarray], wcs: Any, product: Product, origin: tuple[int, int]) -> bytes:
    from astropy.io import fits

    ny, nx = arrays["data"].shape
    header = wcs.to_fits_sip(bounding_box=((-0.5, nx - 0.5), (-0.5, ny - 0.5)), max_pix_error=0.005, degree=None,
                             max_inv_pix_error=0.005)  # fmt: skip
    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = "romanarchive SODA"
    primary.header["PRODID"] = (product.product_id, "parent product id")
    primary.header["PARENT"] = (product.filename, "parent file")
    primary.header["LTV1"] = (-origin[0], "parent x = cutout x + LTV1 offset, 0-based")
    primary.header["LTV2"] = (-origin[1], "parent y = cutout y + LTV2 offset, 0-based")
    hdus: list[Any] = [primary]
    for key, name in (("data", "SCI"), ("err", "ERR"), ("dq", "DQ")):
        if key in arrays:
            arr = np.asarray(arrays[key])
            if arr.dtype == np.float16:  # FITS has no half floats
                arr = arr.astype(np.float32)
            hdus.append(fits.ImageHDU(arr, header=header, name=name))
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()
