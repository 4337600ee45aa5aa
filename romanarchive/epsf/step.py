"""The ePSF step: dithered L2 images of one detector, filter and time window -> a grid of ePSFs in one ASDF file.

A thin step over the pure functions: :func:`romanarchive.epsf.stars.select_stars` on each image, then
:func:`romanarchive.epsf.build.fit_epsf` on each cell of an ``n`` x ``n`` grid over the detector. The file is a
roman_datamodels ``EpsfRefModel`` (``psf[focus, spectral type, position, y, x]``, ``meta.pixel_x`` / ``pixel_y``,
``meta.oversample``), so romancal can take it through ``override_epsf``; the stars used, the fit residuals and
the inputs are written next to the model under the tree's ``romanarchive_epsf`` key, and go to the product's
provenance row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from romanarchive.epsf.build import EpsfBuildError, EpsfFit, fit_epsf, grid_regions, model_anchor
from romanarchive.epsf.config import EpsfConfig
from romanarchive.epsf.stars import StarField, select_stars
from romanarchive.software import package_versions

STEP = "romanarchive.EpsfStep"
#: Spectral types of the file: romancal reads index 1 (G2V); all three hold the same empirical ePSF.
SPECTRAL_TYPES = ["A0V", "G2V", "M6V"]


@dataclass
class EpsfInput:
    """One L2 image as the step reads it."""

    name: str
    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray | None
    wcs: Any
    detector: str
    filter: str
    mjd: float
    product_id: int | None = None
    extended_xy: tuple[np.ndarray, np.ndarray] | None = None  # pixel positions of known extended objects


def read_input(path: str | Path, product_id: int | None = None) -> EpsfInput:
    """Read an L2 ``ImageModel`` for the step."""
    import roman_datamodels.datamodels as rdm
    from astropy.time import Time

    with rdm.open(path) as m:
        meta = m.meta
        start, end = Time(meta.exposure.start_time).mjd, Time(meta.exposure.end_time).mjd
        return EpsfInput(Path(path).name, np.asarray(m.data, np.float32), np.asarray(m.err, np.float32),
                         np.asarray(m.dq) if "dq" in m else None, meta.wcs, str(meta.instrument.detector).upper(),
                         str(meta.instrument.optical_element).upper(), 0.5 * (start + end), product_id)


@dataclass
class EpsfResult:
    """The ePSFs of one detector, filter and window, with what they were made from."""

    detector: str
    filter: str
    t_min: float
    t_max: float
    fits: list[EpsfFit]
    v2v3: list[tuple[float | None, float | None]]
    inputs: list[dict[str, Any]]
    parameters: dict[str, Any]
    rejected: dict[str, int] = field(default_factory=dict)
    software: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0

    def write(self, path: Path) -> Path:
        """Write the ``EpsfRefModel`` ASDF (and the provenance under ``romanarchive_epsf``)."""
        import asdf
        import roman_datamodels.datamodels as rdm
        from astropy.time import Time

        m = rdm.EpsfRefModel.create_fake_data()
        stack = np.stack([f.stamp for f in self.fits]).astype(np.float32)
        m.psf = np.stack([np.stack([stack] * len(SPECTRAL_TYPES))])
        meta = m.meta
        meta.oversample = int(self.fits[0].oversample)
        meta.spectral_type = list(SPECTRAL_TYPES)
        meta.defocus = [0]
        meta.pixel_x = [float(f.x) for f in self.fits]
        meta.pixel_y = [float(f.y) for f in self.fits]
        # No jitter is added beyond what the stars had: romancal re-convolves only when an image's jitter differs.
        meta.jitter_major, meta.jitter_minor, meta.jitter_position_angle = 8.0, 8.0, 0.0
        meta.reftype = "EPSF"
        meta.instrument.detector = self.detector
        meta.instrument.optical_element = self.filter
        meta.useafter = Time(self.t_min, format="mjd")
        meta.author = "romanarchive"
        meta.pedigree = "INFLIGHT"
        meta.origin = "romanarchive ePSF library"
        meta.description = (f"Empirical PSF from {sum(f.n_stars for f in self.fits)} star images on "
                            f"{len(self.inputs)} L2 images, MJD {self.t_min:g}-{self.t_max:g}")
        m.save(path)
        with asdf.open(path, mode="rw") as af:
            af.tree["romanarchive_epsf"] = self.provenance()
            af.update()
        return path

    def provenance(self) -> dict[str, Any]:
        """Inputs, stars used and fit figures per grid point (JSON-safe)."""
        return {
            "inputs": self.inputs, "rejected": self.rejected, "parameters": self.parameters,
            "positions": [{"x": f.x, "y": f.y, "n_stars": f.n_stars, "n_rejected": f.n_rejected, "snr": f.snr,
                           "fwhm": f.fwhm, "residual_rms": f.residual_rms, "norm_fraction": f.norm_fraction,
                           "stars": f.stars} for f in self.fits],
        }


def _v2v3(wcs: Any, x: float, y: float) -> tuple[float | None, float | None]:
    """Field position (V2, V3 arcsec) of a detector pixel through the image's gWCS, when it has that frame."""
    try:
        v2, v3 = wcs.get_transform("detector", "v2v3")(x, y)
        return float(v2), float(v3)
    except Exception:  # a WCS without the telescope frame: the field position stays unknown
        return None, None


class EpsfStep:
    """Build the ePSFs of one detector, filter and window (typed configuration :class:`EpsfConfig`)."""

    def __init__(self, config: EpsfConfig | None = None) -> None:
        self.config = config or EpsfConfig()

    def run(self, images: Sequence[EpsfInput], window: tuple[float, float]) -> EpsfResult:
        """Select stars on every image and fit each grid cell's ePSF.

        Raises
        ------
        EpsfBuildError
            No images, images of several detectors or filters, or too few usable stars in some cell.
        """
        t0 = time.perf_counter()
        cfg = self.config
        if not images:
            raise EpsfBuildError("no L2 images of this detector, filter and time window")
        keys = {(im.detector, im.filter) for im in images}
        if len(keys) != 1:
            raise EpsfBuildError(f"an ePSF is built from one detector and filter, not {sorted(keys)}")
        detector, band = keys.pop()
        shapes = {im.data.shape for im in images}
        if len(shapes) != 1:
            raise EpsfBuildError(f"the images differ in size: {sorted(shapes)}")
        ny, nx = shapes.pop()
        fields: list[StarField] = [select_stars(im.name, im.data, im.err, im.dq, cfg, im.extended_xy)
                                   for im in images]
        rejected: dict[str, int] = {}
        for f in fields:
            for k, v in f.rejected.items():
                rejected[k] = rejected.get(k, 0) + v
        if sum(len(f.x) for f in fields) == 0 and rejected.get("saturated", 0) > 0:
            raise EpsfBuildError(f"no usable stars on {len(images)} image(s): every bright candidate is saturated "
                                 f"({rejected})")
        sca = int(detector[3:]) if detector[3:].isdigit() else 1
        anchor = model_anchor(band, sca, cfg.stamp, cfg.oversample)
        fits = [fit_epsf(fields, cfg, anchor, pos, region) for pos, region in grid_regions(nx, ny, cfg.grid_points(nx))]
        centre = images[len(images) // 2].wcs
        return EpsfResult(
            detector, band, float(window[0]), float(window[1]), fits, [_v2v3(centre, f.x, f.y) for f in fits],
            [{"product_id": im.product_id, "filename": im.name, "mjd": im.mjd,
              "n_candidates": int(len(f.x))} for im, f in zip(images, fields, strict=True)],
            cfg.model_dump(), rejected, package_versions(("photutils", "galsim", "roman_datamodels", "numpy", "scipy")),
            time.perf_counter() - t0)
