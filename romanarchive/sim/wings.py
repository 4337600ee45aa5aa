"""Bright point sources drawn with the PSF's full extent, across the whole image.

romanisim draws every source with ``final.drawImage(center=..., wcs=...)``, so galsim picks the stamp
size from the profile's folding threshold (~99.5 % of the flux), and its default Roman PSF
(``pupil_bin=8``) is itself only ~±25" wide.  For a faint source that is invisible; for a saturated
Gaia star (~1e9 e⁻) the wing at the stamp border is still ~10³ e⁻ per pixel, so the star comes out
as a hard-edged square ~24" across that source finders split into dozens of spurious detections.

:func:`wide_wings` wraps romanisim's ``image.add_objects_to_image`` for the duration of one
simulation: point sources brighter than :data:`WIDE_PSF_ELECTRONS` are drawn here, with a PSF whose
pupil is sampled finely enough to reach ~±80" (``pupil_bin=2``), into a stamp covering the whole
image; every other source is handed to romanisim unchanged, so faint sources' pixels do not change.
Beyond a few arcsec the star is drawn in broad-band light (:func:`broadband_wing`): galsim's PSF is
monochromatic, and its rings and beaded spikes would otherwise be found as dozens of sources.
The wide PSF and its broad-band wing are built once per detector, filter and image size in a process
(~2.5 s together) and each bright star then costs ~0.2 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["WIDE_PSF_ELECTRONS", "WIDE_PUPIL_BIN", "draw_wide", "wide_psf", "wide_wings"]

#: Point sources with more electrons than this in the exposure are drawn with :func:`wide_psf` over the
#: whole image.  At 1e6 e⁻ (F158 ≈ 16.7 AB in 139 s) romanisim's truncated wing is already below
#: ~0.5 e⁻ per pixel at its stamp border, far under the sky noise, so fainter sources are left to it.
WIDE_PSF_ELECTRONS = 1.0e6

#: Pupil-plane binning of the wide PSF.  The PSF's field of view is lambda / (pupil pixel): galsim's
#: default for romanisim (8) reaches ~±25", 4 ~±45" and 2 ~±80" (enough for a star anywhere on a 512²
#: image to reach the far corner) at ~1.3 s to build; 1 (the full pupil) costs ~6.5 s.
WIDE_PUPIL_BIN = 2

#: Far wings are drawn smoothed by a Gaussian of this sigma (arcsec), blended in over this range of radii.
WING_SMOOTHING_ARCSEC = 0.25
WING_BLEND_ARCSEC = (3.0, 6.0)
_WING_WAVELENGTHS = 12  # copies across the band: beads ~4" apart need < ~2 % dilation steps

# folding_threshold: the drawing FFT must hold the whole PSF, or its far wing wraps back into the
# image (doubling the level beyond 20"); maxk_threshold: with the default 1e-3 the k-space cut rings
# at ~1e-8 of the peak, i.e. negative pixels tens of e⁻ deep around a 1e9 e⁻ star.
_GSPARAMS = {"folding_threshold": 1e-3, "maxk_threshold": 1e-5, "maximum_fft_size": 16384}

_PATCH_LOCK = threading.RLock()


@lru_cache(maxsize=16)
def wide_psf(sca: int, bandpass: str, size: int) -> Any:
    """galsim's Roman PSF of one detector with a wide field of view, in arcsec along the SCA axes.

    Evaluated at the centre of the (``size``-pixel) image, as the ePSF reference file is
    (:mod:`romanarchive.sim.references`): the PSF varies negligibly across a cut-out.

    Parameters
    ----------
    sca
        Detector number 1..18.
    bandpass
        Roman filter name (``F158``).
    size
        Science pixels along each side of the image.

    Returns
    -------
    galsim.GSObject
        Unit-flux PSF (not yet convolved with the pixel), oriented like romanisim's ``wcs=None`` PSFs.
    """
    import galsim
    from romanisim.psf import make_one_psf_galsim

    centre = (size - 1) / 2
    psf = make_one_psf_galsim(
        sca, bandpass, pix=(centre, centre), pupil_bin=WIDE_PUPIL_BIN, gsparams=galsim.GSParams(**_GSPARAMS)
    )
    # Draw once so the (lazily computed) optical PSF image is built here, inside the cache.
    psf.drawImage(nx=64, ny=64, scale=0.11)
    return psf


def _is_bright_point(obj: Any, filter_name: str | None, factor: float) -> bool:
    import galsim

    if filter_name is None or obj.flux is None or not isinstance(obj.profile, galsim.DeltaFunction):
        return False
    return bool(obj.flux[filter_name] * factor > WIDE_PSF_ELECTRONS)


def draw_wide(image: Any, obj: Any, x: float, y: float, psf_sca: Any, factor: float, filter_name: str) -> float:
    """Add one point source to ``image`` with ``psf_sca`` over the whole image.

    Parameters
    ----------
    image
        galsim image (romanisim's, or any with the same pixel grid); updated in place.
    obj
        romanisim ``CatalogObject`` with a ``DeltaFunction`` profile.
    x, y
        Position in ``image``'s pixel coordinates.
    psf_sca
        PSF from :func:`wide_psf`.
    factor
        Flux-to-counts factor (counts per unit of ``obj.flux``).
    filter_name
        Key of ``obj.flux``.

    Returns
    -------
    float
        Counts added to the image.
    """
    import galsim
    from romanisim.models.parameters import pixel_scale

    # romanisim draws wcs.toWorld(PixelScale(pixel_scale).toImage(psf), image_pos) with the local WCS at
    # the source, i.e. the PSF in image coordinates is ~PixelScale(pixel_scale).toImage(psf): draw that
    # directly (a rotated profile makes galsim's FFT ~7x slower).  A DeltaFunction has no shape to map.
    star = obj.profile.withFlux(obj.flux[filter_name] * factor)
    centre = galsim.PositionD(x, y)
    sharp = galsim.ImageF(image.bounds, scale=pixel_scale)
    galsim.Convolve(star, psf_sca).drawImage(image=sharp, center=centre)
    # galsim's PSF is monochromatic (the band's effective wavelength): far out, its rings alias into a
    # moire of arcs and its spikes break into beads every ~4" (the struts' own diffraction), which source
    # finders pick up as dozens of objects.  In broad-band light both blur out, as their radii scale with
    # wavelength: blend to broadband_wing from WING_BLEND_ARCSEC outwards.
    b = image.bounds
    shape = (b.ymax - b.ymin + 1, b.xmax - b.xmin + 1)
    soft = _shifted_wing(psf_sca, filter_name, x - b.xmin, y - b.ymin, shape)
    soft *= obj.flux[filter_name] * factor
    yy, xx = np.mgrid[b.ymin:b.ymax + 1, b.xmin:b.xmax + 1]
    r = np.hypot(xx - x, yy - y) * pixel_scale
    t = np.clip((r - WING_BLEND_ARCSEC[0]) / (WING_BLEND_ARCSEC[1] - WING_BLEND_ARCSEC[0]), 0.0, 1.0)
    w = t * t * (3.0 - 2.0 * t)  # smoothstep: no kink at either end
    stamp = (1.0 - w) * sharp.array + w * soft
    image.array[...] += stamp
    return float(stamp.sum())


def broadband_wing(psf: Any, bandpass: str) -> Any:
    """The far wing of ``psf`` as broad-band light shows it: rings and spike beads blurred.

    A diffraction pattern scales with wavelength, so the band's PSF is close to a throughput-weighted
    sum of copies of the effective-wavelength one dilated by lambda / lambda_eff (aberrations, given in
    waves, are not rescaled: a far-wing approximation).  It is then smoothed by a Gaussian of
    ``WING_SMOOTHING_ARCSEC`` for the rings, which the finite number of copies cannot average out.
    Use only beyond a few arcsec: the core is blurred too.

    Parameters
    ----------
    psf
        PSF at the band's effective wavelength (e.g. :func:`wide_psf`).
    bandpass
        Roman filter name.
    """
    import galsim
    from galsim.roman import getBandpasses
    from romanisim.psf import roman2galsim_bandpass

    band = getBandpasses(AB_zeropoint=True)[roman2galsim_bandpass[bandpass]]
    edges = np.linspace(band.blue_limit, band.red_limit, _WING_WAVELENGTHS + 1)
    waves = (edges[1:] + edges[:-1]) / 2
    weights = np.array([band(w) for w in waves]) / waves  # photons per unit wavelength for a flat f_nu
    weights /= weights.sum()
    copies = [psf.dilate(w / band.effective_wavelength) * float(k) for w, k in zip(waves, weights, strict=True)
              if k > 0]
    return galsim.Convolve(galsim.Sum(copies), galsim.Gaussian(sigma=WING_SMOOTHING_ARCSEC))


@lru_cache(maxsize=16)
def _wing_image(psf: Any, bandpass: str, half: int) -> np.ndarray:
    """Unit-flux :func:`broadband_wing` (pixel response included) on a ``2 half + 1`` square, centred."""
    from romanisim.models.parameters import pixel_scale

    n = 2 * half + 1
    return broadband_wing(psf, bandpass).drawImage(nx=n, ny=n, scale=pixel_scale).array.astype(np.float64)


def _shifted_wing(psf: Any, bandpass: str, x: float, y: float, shape: tuple[int, int]) -> np.ndarray:
    """The unit-flux broad-band wing of a star at 0-based (x, y) on a ``shape`` array.

    The wing is smooth (no structure below ~0.25"), so one rendering per PSF, shifted by a cubic spline
    to each star's sub-pixel position, replaces an FFT of the whole band per star (~0.7 s).
    """
    from scipy.ndimage import shift

    half = int(max(shape)) + 16  # reaches every pixel from a star up to 16 pixels off the image
    image = _wing_image(psf, bandpass, half)
    ix, iy = int(np.floor(x)), int(np.floor(y))
    out = np.zeros(shape)
    # Rows/columns of `out` and of `image` (star at its centre pixel `half`) that overlap, plus a
    # 2-pixel apron so the spline has its neighbours.
    r0, r1 = max(0, iy - half + 2), min(shape[0], iy + half - 2)
    c0, c1 = max(0, ix - half + 2), min(shape[1], ix + half - 2)
    if r0 >= r1 or c0 >= c1:
        return out
    cut = image[half + r0 - iy - 2:half + r1 - iy + 2, half + c0 - ix - 2:half + c1 - ix + 2]
    moved = shift(cut, (y - iy, x - ix), order=3, mode="nearest")
    out[r0:r1, c0:c1] = moved[2:-2, 2:-2]
    return out


@contextmanager
def wide_wings(sca: int, bandpass: str, size: int) -> Iterator[None]:
    """Make romanisim draw bright point sources with the wide PSF over the whole image (see module doc).

    Patches ``romanisim.image.add_objects_to_image`` (process-wide, so regions are serialised) and
    restores it on exit.  Only achromatic rendering with a scalar flux-to-counts factor is redirected;
    anything else goes to romanisim untouched.

    Parameters
    ----------
    sca, bandpass, size
        Detector number, filter and image size of the exposure being simulated.
    """
    import romanisim.image as rimage

    original = rimage.add_objects_to_image
    filt = bandpass  # the wrapper's own ``bandpass`` argument is romanisim's (chromatic) galsim bandpass

    def add_objects_to_image(image: Any, objlist: list[Any], xpos: Any, ypos: Any, psf: Any,
                             flux_to_counts_factor: Any, outputunit_to_electrons: Any = None,
                             bandpass: Any = None, filter_name: str | None = None, **kw: Any) -> np.ndarray:
        def passthrough() -> np.ndarray:
            return original(image, objlist, xpos, ypos, psf, flux_to_counts_factor,
                            outputunit_to_electrons=outputunit_to_electrons, bandpass=bandpass,
                            filter_name=filter_name, **kw)

        if (outputunit_to_electrons is not None or isinstance(flux_to_counts_factor, list) or kw.get("add_noise")
                or len(objlist) == 0 or objlist[0].profile.spectral):
            return passthrough()
        factor = float(flux_to_counts_factor)
        bright = np.array([_is_bright_point(o, filter_name, factor) for o in objlist], dtype=bool)
        if not bright.any():
            return passthrough()
        assert filter_name is not None  # _is_bright_point is False without one
        xpos, ypos = np.asarray(xpos, float), np.asarray(ypos, float)
        rest = np.flatnonzero(~bright)
        info = np.zeros(len(objlist), dtype=[("counts", "f4"), ("time", "f4")])
        info[rest] = original(image, [objlist[i] for i in rest], xpos[rest], ypos[rest], psf, factor,
                              bandpass=bandpass, filter_name=filter_name, **kw)
        psf_sca = wide_psf(sca, filt, size)
        for i in np.flatnonzero(bright):
            t0 = time.perf_counter()
            counts = draw_wide(image, objlist[i], float(xpos[i]), float(ypos[i]), psf_sca, factor, filter_name)
            info[i] = (counts, time.perf_counter() - t0)
        return info

    with _PATCH_LOCK:
        rimage.add_objects_to_image = add_objects_to_image
        try:
            yield
        finally:
            rimage.add_objects_to_image = original
