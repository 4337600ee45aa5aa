"""PSF models of the Roman WFI filters (galsim.roman) and PSF-matching kernels (photutils.psf_matching).

galsim ships the Roman pupil and aberration data, so the PSFs are made locally with nothing downloaded. They are
monochromatic at each bandpass's effective wavelength, for one detector (the catalog needs shapes and widths, not
spatial variation).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Archive filter name -> galsim.roman bandpass name.
GALSIM_BAND = {"F062": "R062", "F087": "Z087", "F106": "Y106", "F129": "J129", "F146": "W146", "F158": "H158",
               "F184": "F184", "F213": "K213"}
#: Bands galsim.roman has a dedicated PSF for (others use the wavelength-only model).
_PSF_BANDS = {"Z087", "Y106", "J129", "H158", "F184"}


def galsim_band(band: str) -> str:
    """galsim.roman name of an archive filter, with a clear error for unknown ones."""
    try:
        return GALSIM_BAND[band.upper()]
    except KeyError as exc:
        raise ValueError(f"unknown Roman filter {band!r}; expected one of {sorted(GALSIM_BAND)}") from exc


@lru_cache(maxsize=16)
def psf_object(band: str, sca: int = 1) -> object:
    """galsim PSF profile (sky units, arcsec) of a filter at its effective wavelength."""
    import galsim.roman as gr

    name = galsim_band(band)
    wave = gr.getBandpasses(AB_zeropoint=True)[name].effective_wavelength
    return gr.getPSF(sca, name if name in _PSF_BANDS else None, wavelength=wave, pupil_bin=8)


@lru_cache(maxsize=32)
def psf_image(band: str, scale: float, size: int = 41, sca: int = 1) -> np.ndarray:
    """The PSF drawn on a ``size`` x ``size`` grid of ``scale`` arcsec pixels, normalised to unit sum."""
    arr = psf_object(band, sca).drawImage(nx=size, ny=size, scale=scale).array  # type: ignore[attr-defined]
    arr = np.asarray(arr, dtype=float)
    return arr / arr.sum()


@lru_cache(maxsize=32)
def coadd_psf_image(band: str, scale: float, size: int = 41, input_scale: float = 0.11, pixfrac: float = 1.0,
                    sca: int = 1) -> np.ndarray:
    """The PSF of a drizzled co-add on a grid of ``scale`` arcsec pixels, normalised to the *total* flux.

    The optical PSF convolved with the detector pixel (``input_scale``), the drizzle drop (``pixfrac`` x
    ``input_scale``) and the output pixel: the point-source profile of an L3 (or of a DIA per-epoch co-add). The
    image is not renormalised: its sum is the share of a point source's total flux inside the stamp, so a PSF fit
    with it gives total fluxes.
    """
    import galsim

    obj = galsim.Convolve(psf_object(band, sca), galsim.Pixel(input_scale), galsim.Pixel(pixfrac * input_scale))
    # method="fft" adds the output pixel on purpose (as "auto" does, without galsim's warning about the Pixels).
    return np.asarray(obj.drawImage(nx=size, ny=size, scale=scale, method="fft").array,  # type: ignore[attr-defined]
                      dtype=float)


def second_moment_width(psf: np.ndarray) -> float:
    """RMS radius sqrt((Ixx + Iyy) / 2) of an image in pixels: the PSF width used to pick the broadest one."""
    y, x = np.indices(psf.shape, dtype=float)
    w = np.clip(psf, 0, None)
    w = w / w.sum()
    cx, cy = (w * x).sum(), (w * y).sum()
    return float(np.sqrt(((w * ((x - cx) ** 2 + (y - cy) ** 2)).sum()) / 2.0))


def matching_kernel(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Kernel that turns PSF ``source`` into the broader ``target`` (photutils ``make_kernel``)."""
    from photutils.psf_matching import make_kernel

    if np.array_equal(source, target):
        k = np.zeros_like(source)
        k[source.shape[0] // 2, source.shape[1] // 2] = 1.0
        return k
    kernel = make_kernel(source, target)  # Tikhonov-regularised; windows broadened Roman's PSFs visibly
    return np.asarray(kernel / kernel.sum(), dtype=float)


def concentration_of(band: str, scale: float, r_in: float, r_out: float, sca: int = 1) -> float:
    """Mean flux ratio of circular apertures r_in / r_out pixels around a point source of ``band``.

    Averaged over a 4 x 4 grid of sub-pixel positions: a small aperture's share of a barely sampled PSF depends on
    where the star falls in its pixel.
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    size = 41
    psf = psf_object(band, sca)
    ratios = []
    for dx in np.arange(4) / 4.0:
        for dy in np.arange(4) / 4.0:
            img = psf.drawImage(nx=size, ny=size, scale=scale, offset=(dx, dy)).array  # type: ignore[attr-defined]
            c = ((size - 1) / 2.0 + dx, (size - 1) / 2.0 + dy)
            t = aperture_photometry(img, [CircularAperture(c, r_in), CircularAperture(c, r_out)])
            ratios.append(float(t["aperture_sum_0"][0] / t["aperture_sum_1"][0]))
    return float(np.mean(ratios))
