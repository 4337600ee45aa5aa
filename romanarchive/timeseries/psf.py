"""PSF stamps for forced photometry: the galsim.roman PSF, pixel-integrated, tabulated on sub-pixel phases.

Forced photometry needs the PSF at the sub-pixel position of every source. Drawing it per source would cost
milliseconds each, so it is drawn once per filter on an ``n_phase`` x ``n_phase`` grid of sub-pixel offsets
(galsim ``drawImage`` includes the pixel response) together with its x/y derivatives; a source uses the nearest
phase (at most 1/(2 n_phase) pixel away). Stamps are normalised to the PSF's *total* flux, so a fitted amplitude is
a total flux (no aperture correction needed for PSF fluxes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from romanarchive.imaging.psf import psf_object

#: Native WFI pixel scale, arcsec.
WFI_SCALE = 0.11


@dataclass(frozen=True)
class PsfGrid:
    """Tabulated PSF of one filter.

    Attributes
    ----------
    psf
        (n_phase, n_phase, size, size): PSF at phase (iy, ix), unit total flux (stamp sums are below 1).
    dpdx, dpdy
        Derivatives of ``psf`` with respect to the source's x and y position, per pixel.
    ap_weight
        Aperture weights (exact pixel overlap of a circle of ``ap_radius`` centred on the source), same shape.
    ap_corr
        (n_phase, n_phase): total flux over the PSF's flux inside the aperture.
    ap_radius
        Aperture radius, pixels.
    """

    psf: np.ndarray
    dpdx: np.ndarray
    dpdy: np.ndarray
    ap_weight: np.ndarray
    ap_corr: np.ndarray
    ap_radius: float

    @property
    def n_phase(self) -> int:
        """Phases per axis."""
        return int(self.psf.shape[0])

    @property
    def size(self) -> int:
        """Stamp side, pixels (odd)."""
        return int(self.psf.shape[-1])

    def phase_index(self, frac: np.ndarray) -> np.ndarray:
        """Index of the nearest phase of sub-pixel offsets ``frac`` in [-0.5, 0.5]."""
        n = self.n_phase
        return np.clip(np.floor((np.asarray(frac) + 0.5) * n).astype(np.intp), 0, n - 1)

    def phase_offset(self, idx: np.ndarray) -> np.ndarray:
        """Sub-pixel offset of phase ``idx``."""
        return (np.asarray(idx) + 0.5) / self.n_phase - 0.5


def gaussian_grid(fwhm_pix: float, n_phase: int = 8, size: int = 11, ap_radius: float = 2.5) -> PsfGrid:
    """A circular Gaussian PSF grid (for benchmarks and tests that draw Gaussian stars)."""
    import galsim

    return _tabulate(galsim.Gaussian(fwhm=fwhm_pix * WFI_SCALE), n_phase, size, ap_radius, WFI_SCALE, pixel=True)


@lru_cache(maxsize=16)
def psf_grid(band: str, n_phase: int = 8, size: int = 11, ap_radius: float = 2.5, sca: int = 1) -> PsfGrid:
    """The tabulated galsim.roman PSF of a filter (cached per process).

    Parameters
    ----------
    band
        Archive filter name (F062 ... F213).
    n_phase
        Sub-pixel phases per axis.
    size
        Stamp side in pixels (odd).
    ap_radius
        Aperture radius in pixels.
    sca
        Detector the PSF is computed for.
    """
    return _tabulate(psf_object(band.upper(), sca), n_phase, size, ap_radius, WFI_SCALE, pixel=True)


def _tabulate(profile: object, n_phase: int, size: int, ap_radius: float, scale: float, pixel: bool) -> PsfGrid:
    from photutils.aperture import CircularAperture

    if size % 2 == 0:
        raise ValueError("PSF stamp size must be odd")
    h = size // 2
    eps = 0.05  # finite-difference step, pixels
    psf = np.empty((n_phase, n_phase, size, size))
    dx = np.empty_like(psf)
    dy = np.empty_like(psf)
    ap = np.empty_like(psf)
    offsets = (np.arange(n_phase) + 0.5) / n_phase - 0.5

    def draw(ox: float, oy: float) -> np.ndarray:
        method = "auto" if pixel else "no_pixel"
        im = profile.drawImage(nx=size, ny=size, scale=scale, offset=(ox, oy), method=method)  # type: ignore[attr-defined]
        return np.asarray(im.array, dtype=float)

    for iy, oy in enumerate(offsets):
        for ix, ox in enumerate(offsets):
            psf[iy, ix] = draw(ox, oy)
            dx[iy, ix] = (draw(ox + eps, oy) - draw(ox - eps, oy)) / (2 * eps)
            dy[iy, ix] = (draw(ox, oy + eps) - draw(ox, oy - eps)) / (2 * eps)
            ap[iy, ix] = CircularAperture((h + ox, h + oy), ap_radius).to_mask(method="exact").to_image((size, size))
    ap_corr = 1.0 / np.einsum("abij,abij->ab", ap, psf)
    return PsfGrid(psf, dx, dy, ap, ap_corr, ap_radius)
