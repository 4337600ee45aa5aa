"""Typed configuration of the catalog step (serialised into provenance)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CatalogConfig(BaseModel):
    """romancal ``MultibandCatalogStep`` parameters plus the archive's selection of what becomes a catalog row.

    The first group is passed to romancal (the detection area converted to pixels of the image's grid); the second
    is :mod:`romanarchive.catalog.select`'s.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # romancal MultibandCatalogStep
    bkg_boxsize: int = Field(default=50, ge=8, description="Background mesh size (pixels)")
    kernel_fwhms: tuple[float, ...] = Field(default=(2.0,), description="FWHMs (pixels) of the Gaussian kernels "
                                            "that filter the detection image")
    snr_threshold: float = Field(default=5.0, gt=0, description="Per-pixel S/N above the background to be part of "
                                 "a source (romancal's default)")
    min_area_arcsec2: float = Field(default=0.0756, gt=0, description="Connected area above threshold to make a "
                                    "source, passed to romancal as npixels on each image's grid (romancal's default "
                                    "of 25 pixels on the 0.055\" L3 grid; ~6 L2 pixels)")
    deblend: bool = Field(default=True, description="Deblend overlapping sources (photutils multi-thresholding)")
    fit_psf: bool = Field(default=True, description="Fit the L3 PSF model (positions, PSF fluxes, is_extended)")
    # archive selection
    crop_to_data: bool = Field(default=True, description="Catalogue only the bounding box of pixels with data "
                               "(most of a skycell is empty until the survey fills it)")
    min_snr: float = Field(default=5.0, ge=0, description="Objects need this PSF-flux S/N (Kron without a PSF fit) "
                           "in at least one band")
    home_only: bool = Field(default=True, description="Keep only objects whose home skycell is this one, so "
                            "objects in skycell overlaps are measured once")
    saturated_min_px: int = Field(default=24, ge=1, description="Holes of unusable pixels (saturated cores) inside "
                                  "the data at least this large (about six L2 pixels) mark a bright star")
    mask_radius_per_hole_px: float = Field(default=10.0, gt=0, description="Bright-star mask radius per pixel of "
                                           "the saturated core's equivalent radius")
    mask_min_radius_arcsec: float = Field(default=3.0, gt=0, description="Smallest bright-star mask radius")
    mask_max_radius_arcsec: float = Field(default=20.0, gt=0, description="Largest bright-star mask radius")
    halo_radius_per_hole_px: float = Field(default=30.0, gt=0, description="Bright-star halo radius per pixel of "
                                           "the saturated core's equivalent radius (only point sources kept inside)")
    halo_max_radius_arcsec: float = Field(default=45.0, gt=0, description="Largest bright-star halo radius")
    halo_min_concentration: float = Field(default=0.325, gt=0.25, lt=1.0, description="An extended detection in a "
                                          "halo stays (a galaxy, not the star's light) with at least this aper02 / "
                                          "aper04 flux ratio: 1.3 times a flat patch's (0.2/0.4)^2 = 0.25")
    halo_max_ellipticity: float = Field(default=0.7, gt=0, le=1.0, description="... and at most this ellipticity "
                                        "(a diffraction spike's piece is long and thin)")
    photoz_min_bands: int = Field(default=3, ge=2, description="Bands a photometric redshift needs (with two the "
                                  "fit is degenerate: one colour, two unknowns)")
