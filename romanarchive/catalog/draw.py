"""Drawing sources with known fluxes into WFI-like images (galsim), for source injection.

Stars are the galsim.roman PSF; galaxies are PSF-convolved Sérsic profiles, in MJy/sr on a gnomonic (TAN) astropy
WCS. :func:`mosaic_model` wraps such arrays as an L3 ``MosaicModel`` (what the catalog step measures). Test images
made from them live in the test suite (``tests/support/synthetic.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Table

from romanarchive.catalog.select import AB_ZP_NJY, NJY_PER_MJY
from romanarchive.imaging.psf import psf_object
from romanarchive.sky.skycells import tan_gwcs

#: The WFI detector pixel, arcsec.
L2_PIXEL_ARCSEC = 0.11


def tan_wcs(shape: tuple[int, int], ra: float, dec: float, scale_arcsec: float) -> Any:
    """astropy TAN WCS centred on (ra, dec) with north up and east left."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    return w


def mosaic_model(data: np.ndarray, err: np.ndarray, wcs: Any, band: str, pixfrac: float = 1.0,
                 exptime: float = 100.0) -> Any:
    """An L3 ``MosaicModel`` holding ``data``/``err`` (MJy/sr) on the TAN grid of an astropy ``wcs``.

    Weight is inverse variance, context one image, the variances split as all read noise; ``meta.wcs`` is the
    equivalent gwcs, ``meta.wcsinfo`` and ``meta.resample`` what romancal's L3 PSF model reads.
    """
    import roman_datamodels.datamodels as rdm

    shape = data.shape
    scale_deg = float(abs(wcs.wcs.cdelt[1]))
    m = rdm.MosaicModel.create_fake_data(shape=shape)
    m.data = np.asarray(data, np.float32)
    m.err = np.asarray(err, np.float32)
    with np.errstate(divide="ignore"):
        m.weight = np.where(err > 0, 1.0 / np.asarray(err, np.float32) ** 2, 0.0).astype(np.float32)
    m.context = np.ones((1, *shape), np.uint32)
    m.var_poisson = np.zeros(shape, np.float32)
    m.var_rnoise = (np.asarray(err, np.float32) ** 2).astype(np.float32)
    m.meta.wcs = tan_gwcs((float(wcs.wcs.crval[0]), float(wcs.wcs.crval[1])),
                          (float(wcs.wcs.crpix[0]), float(wcs.wcs.crpix[1])), scale_deg, shape)
    m.meta.instrument.optical_element = band.upper()
    m.meta.wcsinfo.pixel_scale = m.meta.wcsinfo.pixel_scale_ref = scale_deg
    m.meta.wcsinfo.skycell_name = ""
    m.meta.resample.pixfrac = pixfrac
    m.meta.coadd_info.exposure_time = exptime
    m.meta.filename = f"synthetic_{band.lower()}_i2d.asdf"
    return m


def mag_to_njy(mag: np.ndarray | float) -> np.ndarray:
    """AB magnitude -> nJy."""
    return np.asarray(10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - AB_ZP_NJY)))


@dataclass
class SyntheticImage:
    """A rendered image, its uncertainty, WCS and the truth table of what was drawn."""

    data: np.ndarray
    err: np.ndarray
    wcs: Any
    truth: Table
    band: str
    scale: float


def draw_sources(data: np.ndarray, wcs: Any, band: str, truth: Table, scale: float, sca: int = 1,
                 rng: np.random.Generator | None = None, gain: float | None = None,
                 l3_pixfrac: float | None = None) -> None:
    """Add the sources of ``truth`` (columns ra, dec, mag, kind, sersic_n, r_half, ellipticity, beta) to ``data``.

    ``data`` is in MJy/sr on ``wcs`` with pixel scale ``scale`` arcsec (the local pixel is taken as square). With
    ``gain`` (counts per MJy/sr per pixel) the sources' own Poisson noise is added too. With ``l3_pixfrac`` the
    profiles are drawn as a drizzled L3 sees them: the optical PSF convolved with the 0.11" detector pixel and the
    drizzle drop (``pixfrac`` x 0.11"), then integrated over the output pixel — what romancal's L3 PSF model
    assumes; without it, as an L2 at ``scale`` sees them.
    """
    import galsim

    psf = psf_object(band, sca)
    if l3_pixfrac is not None:
        psf = galsim.Convolve(psf, galsim.Pixel(L2_PIXEL_ARCSEC), galsim.Pixel(l3_pixfrac * L2_PIXEL_ARCSEC))
    x, y = (np.asarray(v, dtype=float) for v in wcs.world_to_pixel_values(np.asarray(truth["ra"]),
                                                                          np.asarray(truth["dec"])))
    njy_to_sb = 1.0 / (np.radians(scale / 3600.0) ** 2 * NJY_PER_MJY)  # nJy in one pixel -> MJy/sr
    bounds = galsim.BoundsI(1, data.shape[1], 1, data.shape[0])
    image = galsim.ImageD(data, xmin=1, ymin=1, copy=False)
    for i in range(len(truth)):
        flux = float(mag_to_njy(truth["mag"][i])) * njy_to_sb
        if truth["kind"][i] == "point":
            prof = psf.withFlux(flux)  # type: ignore[attr-defined]
        else:
            gal = galsim.Sersic(n=float(truth["sersic_n"][i]), half_light_radius=float(truth["r_half"][i]),
                                flux=flux)
            q = 1.0 - float(truth["ellipticity"][i])
            gal = gal.shear(q=q, beta=float(truth["beta"][i]) * galsim.degrees)
            prof = galsim.Convolve(gal, psf)
        # Point sources out to 4.5" (PSF wings beyond hold < 0.5 % of the flux).
        stamp_size = int(2 * np.ceil(4.5 / scale) + 1) if truth["kind"][i] == "point" else int(
            min(257, 2 * int(6 * float(truth["r_half"][i]) / scale) + 2 * np.ceil(2.5 / scale) + 1))
        pos = galsim.PositionD(x[i] + 1.0, y[i] + 1.0)
        stamp = prof.drawImage(nx=stamp_size, ny=stamp_size, scale=scale, center=pos)
        overlap = stamp.bounds & bounds
        if overlap.isDefined():
            if gain is not None and rng is not None:
                counts = np.clip(stamp[overlap].array * gain, 0, None)
                image[overlap] += rng.poisson(counts) / gain
            else:
                image[overlap] += stamp[overlap]
