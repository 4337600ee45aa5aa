"""Square stamps around many pixel positions at once (fancy indexing, no copy of the image).

Used by forced photometry (:mod:`romanarchive.timeseries.photometry`) and by centroiding for the astrometric
checks (:mod:`romanarchive.xmatch.astrometry`).
"""

from __future__ import annotations

import numpy as np


def stamp_index(shape: tuple[int, int], ix: np.ndarray, iy: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Row and column indices (clipped into the image) of ``size`` x ``size`` stamps centred on (ix, iy), and the
    mask of stamp pixels that fall inside the image; no copy of the image is made."""
    h = size // 2
    off = np.arange(size) - h
    rows = np.asarray(iy)[:, None, None] + off[None, :, None]
    cols = np.asarray(ix)[:, None, None] + off[None, None, :]
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    return np.clip(rows, 0, shape[0] - 1), np.clip(cols, 0, shape[1] - 1), inside


def cut_stamps(image: np.ndarray, ix: np.ndarray, iy: np.ndarray, size: int, fill: float = np.nan) -> np.ndarray:
    """Cut ``size`` x ``size`` stamps centred on integer pixels (ix, iy), filling outside the image.

    Returns
    -------
    numpy.ndarray
        (N, size, size) stamps.
    """
    rows, cols, inside = stamp_index(image.shape, ix, iy, size)
    out = image[rows, cols]
    if not inside.all():
        out = np.where(inside, out, fill)
    return out
