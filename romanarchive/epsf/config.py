"""Configuration of the ePSF library's build step."""

from __future__ import annotations

import pydantic

#: Start of the time-window grid (MJD): windows are ``[EPOCH0 + k w, EPOCH0 + (k + 1) w)`` for a width w.
WINDOW_EPOCH0 = 60000.0


class EpsfConfig(pydantic.BaseModel):
    """How ePSFs are built from L2 images (the ``epsf`` step's typed configuration)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    oversample: int = pydantic.Field(default=4, ge=1, le=8, description="Fine samples per native pixel")
    stamp: int = pydantic.Field(default=25, ge=9, le=61, description="Star cut-out side, native pixels (odd)")
    grid: int = pydantic.Field(
        default=0, ge=0, le=8,
        description="Grid points per detector axis (0: 1 for cut-outs under 2048 pixels, 3 for full detectors)")
    window_days: float = pydantic.Field(default=30.0, gt=0, description="Width of a time window, days")
    min_snr: float = pydantic.Field(default=100.0, gt=0, description="Smallest S/N of a star (r = 3 pix aperture)")
    detect_sigma: float = pydantic.Field(default=5.0, gt=0, description="Peak threshold of any detection, sigma")
    isolation: float = pydantic.Field(
        default=12.0, gt=0, description="No other detection within this many pixels of a star")
    bright_factor: float = pydantic.Field(
        default=6.0, ge=0, description="Avoid saturated stars out to this many core radii (plus bright_margin)")
    bright_margin: float = pydantic.Field(default=20.0, ge=0, description="See bright_factor, pixels")
    min_stars: int = pydantic.Field(default=25, ge=3, description="Fewest star images an ePSF may be built from")
    maxiters: int = pydantic.Field(default=8, ge=1, le=50, description="EPSFBuilder iterations per pass")
    smoothing: bool = pydantic.Field(
        default=False, description="EPSFBuilder's quartic smoothing kernel (broadens an undersampled PSF)")
    reject_sigma: float = pydantic.Field(
        default=4.0, gt=0, description="Reject stars whose relative fit residual is this many MADs above the median")
    min_new_images: int = pydantic.Field(
        default=4, ge=1, description="New L2s of a detector, filter and window that queue a rebuild")

    def grid_points(self, size: int) -> int:
        """Grid points per axis for a detector image of ``size`` pixels."""
        return self.grid or (1 if size < 2048 else 3)

    def window(self, mjd: float) -> tuple[float, float]:
        """The time window holding ``mjd``: (t_min, t_max), MJD."""
        k = (mjd - WINDOW_EPOCH0) // self.window_days
        return WINDOW_EPOCH0 + k * self.window_days, WINDOW_EPOCH0 + (k + 1) * self.window_days

    @pydantic.field_validator("stamp")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("stamp must be odd")
        return value
