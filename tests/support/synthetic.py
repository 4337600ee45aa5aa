"""Synthetic images with known sources (test support): a truth table drawn with the catalog's own source drawing."""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.table import Table

from romanarchive.catalog.draw import SyntheticImage, draw_sources, mag_to_njy, tan_wcs

__all__ = ["SyntheticImage", "draw_sources", "mag_to_njy", "random_truth", "synthetic_image", "tan_wcs"]


def random_truth(n_stars: int, n_galaxies: int, wcs: Any, shape: tuple[int, int], rng: np.random.Generator,
                 mag_range: tuple[float, float] = (20.0, 27.5), margin: int = 10) -> Table:
    """Random stars and Sérsic galaxies uniformly over the image, magnitudes uniform in ``mag_range``."""
    n = n_stars + n_galaxies
    x = rng.uniform(margin, shape[1] - margin, n)
    y = rng.uniform(margin, shape[0] - margin, n)
    ra, dec = (np.asarray(v, dtype=float) for v in wcs.pixel_to_world_values(x, y))
    kind = np.array(["point"] * n_stars + ["sersic"] * n_galaxies)
    gal = kind == "sersic"
    return Table({
        "ra": ra, "dec": dec, "x": x, "y": y, "kind": kind, "mag": rng.uniform(*mag_range, n),
        "sersic_n": np.where(gal, rng.uniform(0.8, 4.0, n), np.nan),
        "r_half": np.where(gal, rng.uniform(0.15, 0.6, n), np.nan),
        "ellipticity": np.where(gal, rng.uniform(0.0, 0.5, n), 0.0),
        "beta": rng.uniform(0, 180, n),
    })


def synthetic_image(shape: tuple[int, int] = (512, 512), band: str = "F158", n_stars: int = 60,
                    n_galaxies: int = 60, seed: int = 1, scale: float = 0.11, sky_sigma: float = 0.02,
                    ra: float = 271.81, dec: float = 66.72, mag_range: tuple[float, float] = (20.0, 27.5),
                    truth: Table | None = None, l3_pixfrac: float | None = 1.0) -> SyntheticImage:
    """Render a noisy image (MJy/sr) of random stars and galaxies; see :func:`random_truth`.

    With ``l3_pixfrac`` (default) sources look as in a drizzled L3 of that drop size (what the catalog step's L3 PSF
    model assumes); ``None`` draws them as an L2 sees them.
    """
    rng = np.random.default_rng(seed)
    wcs = tan_wcs(shape, ra, dec, scale)
    if truth is None:
        truth = random_truth(n_stars, n_galaxies, wcs, shape, rng, mag_range)
    data = np.zeros(shape)
    draw_sources(data, wcs, band, truth, scale, rng=rng, gain=1.0 / sky_sigma**2 * 0.25, l3_pixfrac=l3_pixfrac)
    data += rng.normal(0.0, sky_sigma, shape) + 0.3  # a flat sky level the background step must remove
    err = np.full(shape, sky_sigma)
    return SyntheticImage(data.astype(np.float32), err.astype(np.float32), wcs, truth, band, scale)
