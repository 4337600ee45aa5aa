"""PNG previews of calibrated images (L2 exposures, L3 mosaics): block-averaged to at most ``size`` pixels,
asinh-stretched between robust percentiles, cached in ``<archive home>/cache/previews`` (keyed by product and size).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from romanarchive.dal.products import DalError, Product


class PreviewConfig(BaseModel):
    """Preview rendering parameters."""

    size: int = Field(default=1024, ge=16, le=8192, description="Largest side of the preview, pixels")
    low_percentile: float = Field(default=1.0, ge=0, le=50, description="Percentile mapped to black")
    high_percentile: float = Field(default=99.8, ge=50, le=100, description="Percentile mapped to white")
    max_sigma: float = Field(default=300.0, gt=0, description="White point at most this many sky sigmas above sky")
    softening: float = Field(default=0.05, gt=0, le=10, description="asinh softening (smaller: stronger stretch)")


def block_mean(data: np.ndarray, size: int) -> np.ndarray:
    """Average ``data`` over square blocks so neither side exceeds ``size`` (NaNs ignored)."""
    f = max(1, int(np.ceil(max(data.shape) / size)))
    if f == 1:
        return data.astype(np.float32)
    ny, nx = (data.shape[0] // f) * f, (data.shape[1] // f) * f
    blocks = data[:ny, :nx].astype(np.float32).reshape(ny // f, f, nx // f, f)
    with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as sup:
        sup.filter(RuntimeWarning)
        return np.nanmean(blocks, axis=(1, 3))


def asinh_stretch(data: np.ndarray, config: PreviewConfig) -> np.ndarray:
    """8-bit asinh stretch of ``data`` from just below the sky (median - 2 sigma, or the low percentile) to the high
    percentile or ``max_sigma`` sky sigmas, whichever is lower (NaN is black)."""
    finite = np.isfinite(data)
    valid = finite & (data != 0)  # exact zeros: no coverage (mosaic edges), kept out of the statistics
    if not valid.any():
        return np.zeros(data.shape, np.uint8)
    values = data[valid]
    med = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - med)))
    lo = max(float(np.percentile(values, config.low_percentile)), med - 2 * sigma)  # sky just above black
    # bright PSF wings can fill a few percent of a small image: cap the white point so faint sources still show
    hi = min(float(np.percentile(values, config.high_percentile)), med + config.max_sigma * sigma)
    z = np.clip((np.where(finite, data, lo) - lo) / max(hi - lo, 1e-30), 0, 1)
    y = np.arcsinh(z / config.softening) / np.arcsinh(1 / config.softening)
    return (y * 255 + 0.5).astype(np.uint8)


def render(path: str | Path, config: PreviewConfig) -> bytes:
    """PNG bytes of the ``data`` array of a roman_datamodels image file (first row at the bottom, as displayed)."""
    import asdf
    from PIL import Image

    with asdf.open(path, lazy_load=True, memmap=True) as af:
        data = np.asarray(af.tree.get("roman", {}).get("data", np.zeros(0)))
        if data.ndim != 2:
            raise DalError(f"{Path(path).name} has no 2-D image to preview", 404, "NotFoundFault")
        small = block_mean(data, config.size)
    img = Image.fromarray(asinh_stretch(small, config)[::-1], mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def cached_preview(cache_dir: Path, product: Product, local: Path, config: PreviewConfig | None = None) -> Path:
    """Path of the product's preview PNG, rendering it on first use.

    Raises
    ------
    DalError
        The product is not a calibrated image.
    """
    config = config or PreviewConfig()
    if not product.is_image:
        raise DalError(f"product {product.product_id} is not a calibrated image: no preview", 404, "NotFoundFault")
    dest = cache_dir / f"{product.product_id}_{config.size}.png"
    if not dest.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(render(local, config))
        tmp.replace(dest)  # atomic: a concurrent reader sees the old state or the whole file
    return dest
