"""Typed configuration of the catalog step (serialised into provenance)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CatalogConfig(BaseModel):
    """Parameters of :func:`romanarchive.catalog.measure.measure`; defaults suit Roman WFI L2 and L3 images."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bkg_box_px: int = Field(default=64, ge=8, description="Background2D mesh size (pixels)")
    bkg_filter_px: int = Field(default=3, ge=1, description="Median filter over the background mesh (cells)")
    kernel_fwhm_arcsec: float = Field(default=0.17, gt=0, description="FWHM of the Gaussian detection kernel")
    snr_threshold: float = Field(default=3.0, gt=0,
                                 description="Per-pixel S/N in the filtered detection image to be part of a source")
    n_pixels: int = Field(default=5, ge=1, description="Connected pixels above threshold to make a source")
    deblend_levels: int = Field(default=32, ge=1, description="Multi-threshold levels of the deblending")
    deblend_contrast: float = Field(default=0.005, ge=0, le=1,
                                    description="Flux fraction a branch needs to be an object")
    aperture_radius_arcsec: float = Field(default=0.25, gt=0, description="Radius of the photometry aperture")
    local_bkg_width_px: int = Field(default=12, ge=0, description="Width of the local-background annulus (0: none)")
    concentration_radii_px: tuple[float, float] = Field(default=(1.5, 4.0),
                                                        description="Apertures of the concentration")
    class_tolerance: float = Field(default=0.06, ge=0, description="How far below the PSF's concentration a point "
                                   "source may lie (plus twice its noise)")
    class_min_snr: float = Field(default=5.0, ge=0, description="Below this detection S/N nothing is point-like")
    n_workers: int = Field(default=2, ge=1, description="Processes measuring objects (forked; 1: in-process)")
    sca: int = Field(default=1, ge=1, le=18, description="Detector whose galsim.roman PSF models the bands")
