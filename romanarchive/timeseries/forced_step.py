"""The forced-photometry step: sky positions x one L2 image -> fluxes in nJy and centroid shifts in mas.

What the job (:mod:`romanarchive.timeseries.forced_job`) runs on each image, between its queries and its writes:

1. the positions' pixel coordinates from the image's gWCS (one vectorised inverse transform);
2. :func:`romanarchive.timeseries.photometry.forced_photometry` on all of them at once, with the PSF of the
   image's ``epsf`` reference file (:func:`image_psf`; the one romancal's L4 PSF photometry uses, so light curves
   and catalog agree) or, without one, galsim.roman's;
3. corrections to physical units: MJy/sr (the flux-calibrated L2) -> nJy with the image's ``meta.photometry``
   (:func:`romanarchive.imaging.l2.njy_factor`: pixel area x 1e15; an L2 still in DN/s is also multiplied by
   conversion_megajanskys). PSF fluxes are total fluxes (the PSF is normalised to its total); aperture
   fluxes carry the PSF's aperture correction. Centroid shifts become sky offsets (mas) through the same gWCS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from romanarchive.db.tables_catalog import LIVE
from romanarchive.imaging.l2 import NJY_PER_MJY, njy_factor
from romanarchive.timeseries.photometry import ForcedParams, ForcedResult, forced_photometry
from romanarchive.timeseries.psf import PsfGrid, epsf_grid, psf_grid

__all__ = ["NJY_PER_MJY", "ForcedPhotConfig", "ImageArrays", "image_psf", "measure_image", "read_epsf", "read_l2"]


class ForcedPhotConfig(pydantic.BaseModel):
    """Configuration of the forced-photometry step."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    release: str = LIVE
    point_like_only: bool = pydantic.Field(
        default=False, description="Measure point-like objects only (else all; extended ones get aperture fluxes)")
    home_core_only: bool = pydantic.Field(
        default=True, description="Measure only objects inside the core of the skycell that catalogued them")
    stamp_size: int = pydantic.Field(default=11, ge=5, le=31, description="PSF-fit stamp side, pixels (odd)")
    n_phase: int = pydantic.Field(default=16, ge=1, le=32, description="Tabulated sub-pixel PSF phases per axis")
    use_epsf: bool = pydantic.Field(
        default=True, description="Fit an ePSF (the library's, else the epsf reference file's) where the archive "
        "holds one, else galsim.roman's model PSF")
    use_library: bool = pydantic.Field(
        default=True, description="Prefer the empirical PSF library's ePSF (at the image centre) to the reference "
        "file's")
    library_min_stars: int = pydantic.Field(
        default=300, ge=0, description="Use a library ePSF only when built from at least this many star images: "
        "from ~75 (the science survey) its core is still off by ~2 % and PSF fluxes by up to 5 %")
    ap_radius: float = pydantic.Field(default=2.5, gt=0, description="Aperture radius, pixels")
    shift_snr: float = pydantic.Field(default=5.0, gt=0)
    centroid_min_snr: float = pydantic.Field(default=5.0, gt=0)
    shift_floor_pix: float = pydantic.Field(default=0.03, ge=0)
    moving_dchi2: float = pydantic.Field(default=25.0, gt=0)

    def params(self) -> ForcedParams:
        """Parameters of the pure photometry function."""
        return ForcedParams(shift_snr=self.shift_snr, centroid_min_snr=self.centroid_min_snr,
                            shift_floor_pix=self.shift_floor_pix)


@dataclass
class ImageArrays:
    """What forced photometry needs from one L2 image."""

    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray | None
    wcs: Any
    filter: str
    to_njy: float
    sca: int = 1


def read_l2(path: str | Path | Any) -> ImageArrays:
    """Read an L2 ``ImageModel`` (path or open model) into arrays and its MJy/sr (or DN/s) -> nJy factor."""
    import roman_datamodels.datamodels as rdm

    model = rdm.open(path) if isinstance(path, (str, Path)) else path
    meta = model.meta
    det = str(meta.instrument.detector)
    sca = int(det[3:]) if det.upper().startswith("WFI") and det[3:].isdigit() else 1
    return ImageArrays(np.asarray(model.data, dtype=np.float32), np.asarray(model.err, dtype=np.float32),
                       np.asarray(model.dq) if "dq" in model else None, meta.wcs,
                       str(meta.instrument.optical_element).upper(), njy_factor(meta), sca)


@dataclass(frozen=True)
class Epsf:
    """The oversampled ePSF stamps of one ``epsf`` reference file (focus 0, the middle spectral type)."""

    stamps: np.ndarray  # (n_positions, n, n)
    x: np.ndarray  # detector pixel positions of the stamps
    y: np.ndarray
    oversample: int
    filename: str

    def nearest(self, x: float, y: float) -> int:
        """Index of the stamp nearest the detector pixel (x, y)."""
        return int(np.argmin(np.hypot(self.x - x, self.y - y)))


def read_epsf(path: str | Path) -> Epsf:
    """Read an ``epsf`` reference file (rad ``EpsfRefModel``)."""
    import roman_datamodels.datamodels as rdm

    with rdm.open(path) as m:
        psf = np.asarray(m.psf, dtype=np.float32)
        if psf.ndim != 5:
            raise ValueError(f"{path}: ePSF array has shape {psf.shape}; expected (focus, type, position, y, x)")
        stamps = psf[0, psf.shape[1] // 2]
        return Epsf(stamps, np.asarray(m.meta.pixel_x, float), np.asarray(m.meta.pixel_y, float),
                    int(m.meta.oversample), Path(str(path)).name)


def image_psf(img: ImageArrays, config: ForcedPhotConfig | None = None, epsf: Epsf | None = None) -> PsfGrid:
    """The PSF table forced photometry fits on ``img``.

    From ``epsf`` (its stamp nearest the image centre; the PSF is taken as constant over one image) when given and
    ``config.use_epsf``, else galsim.roman's PSF of the image's filter and detector.
    """
    cfg = config or ForcedPhotConfig()
    if epsf is not None and cfg.use_epsf:
        ny, nx = img.data.shape
        k = epsf.nearest((nx - 1) / 2, (ny - 1) / 2)
        return _epsf_table(epsf, k, cfg.n_phase, cfg.stamp_size, cfg.ap_radius)
    return psf_grid(img.filter, cfg.n_phase, cfg.stamp_size, cfg.ap_radius, img.sca)


_TABLES: dict[tuple[str, int, int, int, float], PsfGrid] = {}


def _epsf_table(epsf: Epsf, k: int, n_phase: int, size: int, ap_radius: float) -> PsfGrid:
    key = (epsf.filename, k, n_phase, size, ap_radius)
    if key not in _TABLES:  # one per reference file and position in a worker process
        _TABLES[key] = epsf_grid(epsf.stamps[k], epsf.oversample, n_phase, size, ap_radius)
    return _TABLES[key]


def measure_image(img: ImageArrays, ra: np.ndarray, dec: np.ndarray, config: ForcedPhotConfig | None = None,
                  grid: PsfGrid | None = None, offset: tuple[float, float] | None = None
                  ) -> tuple[np.ndarray, ForcedResult, dict[str, np.ndarray]]:
    """Forced photometry of sky positions on one image, in nJy and mas.

    ``grid`` is the PSF to fit (:func:`image_psf`); by default galsim.roman's for the image's filter. ``offset``
    (pixels) is a catalog-to-image registration found before, applied instead of registering these positions on
    themselves (forced-photometry targets take the registration of the image's catalog objects).

    Returns
    -------
    inside, result, extra
        Mask of the positions that fall on the image; the photometry of those (fluxes in nJy; ``offset`` is the
        catalog-to-image registration shift in pixels); ``x``, ``y`` (catalog positions) and the centroid shifts
        ``dra``, ``ddec``, ``shift_err`` (mas, from the registered position) of those.
    """
    cfg = config or ForcedPhotConfig()
    x, y = img.wcs.invert(np.asarray(ra, float), np.asarray(dec, float), with_bounding_box=False)
    x, y = np.asarray(x, float), np.asarray(y, float)
    inside = on_image(img.data.shape, x, y)
    x, y = x[inside], y[inside]
    grid = grid or image_psf(img, cfg)
    if offset is None:
        res = forced_photometry(img.data, img.err, img.dq, x, y, grid, cfg.params())
    else:
        res = forced_photometry(img.data, img.err, img.dq, x + offset[0], y + offset[1], grid,
                                replace(cfg.params(), register=False))
        res.offset = (float(offset[0]), float(offset[1]))
    for name in ("flux", "flux_err", "flux_ap", "flux_ap_err", "flux_shifted", "flux_shifted_err"):
        setattr(res, name, getattr(res, name) * img.to_njy)
    # Shifts are relative to the registered position (catalog position + the image's common offset).
    dra, ddec, shift_err = sky_offsets(img.wcs, x + res.offset[0], y + res.offset[1], res.dx, res.dy, res.shift_err)
    return inside, res, {"x": x, "y": y, "dra": dra, "ddec": ddec, "shift_err": shift_err}


def on_image(shape: tuple[int, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which 0-based pixel positions fall on an image of ``shape`` (ny, nx)."""
    ny, nx = shape[-2:]
    return np.isfinite(x) & np.isfinite(y) & (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)


def sky_offsets(wcs: Any, x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray,
                shift_err: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid shifts ``(dx, dy)`` (pixels) from positions ``(x, y)`` as sky offsets (mas: east, north) and
    ``shift_err`` in mas; NaN where ``dx`` is."""
    dra, ddec, err = (np.full(len(x), np.nan) for _ in range(3))
    k = np.flatnonzero(np.isfinite(dx))
    if len(k):
        ra1, dec1 = (np.asarray(v, float) for v in wcs(x[k], y[k], with_bounding_box=False))
        ra2, dec2 = (np.asarray(v, float) for v in wcs(x[k] + dx[k], y[k] + dy[k], with_bounding_box=False))
        dra[k] = ((ra2 - ra1 + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec1)) * 3.6e6
        ddec[k] = (dec2 - dec1) * 3.6e6
        # Local pixel scale (mas/pix) from the shift itself, or the nominal one for tiny shifts.
        shift = np.hypot(dx[k], dy[k])
        scale = np.where(shift > 1e-3, np.hypot(dra[k], ddec[k]) / np.maximum(shift, 1e-12), 110.0)
        err[k] = shift_err[k] * scale
    return dra, ddec, err
