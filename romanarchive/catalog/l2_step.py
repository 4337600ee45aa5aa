"""The L2 catalog step: romancal's own ``SourceCatalogStep`` on one calibrated image (an ``ImageModel``).

romancal detects sources on the background-subtracted image convolved with a Gaussian kernel, and measures rad's
single-band ``source_catalog_columns``: centroids, shapes, aperture / Kron / segment fluxes and a PSF fit with the
``epsf`` reference file, all in nJy. The archive wraps it only to

* answer ``get_reference_file`` from the archive's own ``apcorr`` and ``epsf`` files of the image's detector and
  filter (romancal would ask CRDS);
* tell romancal that the image is already in MJy/sr: romancal 1.1.0 takes a unit-less L2 for DN/s and multiplies it
  by ``meta.photometry.conversion_megajanskys``, but the archive's L2s have been through FluxStep
  (``meta.cal_step.flux`` COMPLETE) — without this every flux would be low by that factor (~0.75 for F158);
* keep CRDS's log quiet (romancal asks it for a dust map, which fails offline: ``dust_ebv`` is NULL).
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from romanarchive.catalog.select import CatalogInputError
from romanarchive.catalog.step import LoadedImage, _ensure_offline, software_versions
from romanarchive.imaging.l2 import flux_calibrated

STEP_NAME = "romancal.SourceCatalogStep"
REFTYPES = ("apcorr", "epsf")


class L2CatalogConfig(BaseModel):
    """romancal ``SourceCatalogStep`` parameters (romancal's defaults, made for a full 4088² detector).

    On a 512² image the 1000-pixel background box is one box (a constant background), which the simulated sky is;
    on one science-survey image a 128-pixel box moved the matched stars' PSF fluxes by 2 % and found 4 more of 28
    faint truth stars.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bkg_boxsize: int = Field(default=1000, ge=8, description="Background mesh size (pixels)")
    kernel_fwhm: float = Field(default=2.0, gt=0, description="FWHM (pixels) of the Gaussian kernel that filters the "
                               "detection image")
    snr_threshold: float = Field(default=3.0, gt=0, description="Per-pixel S/N above the background to be part of "
                                 "a source")
    npixels: int = Field(default=25, ge=1, description="Connected pixels above threshold to make a source")
    deblend: bool = Field(default=False, description="Deblend overlapping sources")
    fit_psf: bool = Field(default=True, description="Fit the ePSF (PSF fluxes, positions, is_extended); about "
                          "half the step's time on a 512² image")


@dataclass
class L2StepResult:
    """One image's catalog, plus what provenance records."""

    table: Any  # astropy Table, romancal's columns (nJy)
    catalog_model: Any  # romancal's ImageSourceCatalogModel
    parameters: dict[str, Any]
    software: dict[str, str]
    wall_time_s: float
    peak_rss_mb: float
    n_without_position: int  # rows romancal gave no finite position (left out)


class _ArchiveSourceCatalogStep:
    """Factory of the romancal step subclass (romancal is imported only when a catalog is built)."""

    _cls: Any = None

    @classmethod
    def make(cls, references: Mapping[str, str | Path], **kwargs: Any) -> Any:
        if cls._cls is None:
            from romancal.source_catalog import SourceCatalogStep

            class ArchiveSourceCatalogStep(SourceCatalogStep):  # type: ignore[misc]
                """SourceCatalogStep reading its reference files from the archive."""

                archive_references: Mapping[str, str | Path] = {}

                def get_reference_file(self, model: Any, reftype: str) -> str:
                    try:
                        return str(self.archive_references[reftype])
                    except KeyError:
                        raise CatalogInputError(f"no {reftype} reference file for "
                                                f"{model.meta.instrument.optical_element}") from None

            cls._cls = ArchiveSourceCatalogStep
        step = cls._cls(**kwargs)
        step.archive_references = references
        return step


def _positions(table: Any) -> np.ndarray:
    """Fill non-finite best positions from the windowed, then the moment centroid (in place); rows still lacking
    one."""
    ok = np.isfinite(np.asarray(table["ra"], float)) & np.isfinite(np.asarray(table["dec"], float))
    for ra, dec in (("ra_centroid_win", "dec_centroid_win"), ("ra_centroid", "dec_centroid")):
        if ok.all() or ra not in table.colnames:
            break
        alt = ~ok & np.isfinite(np.asarray(table[ra], float)) & np.isfinite(np.asarray(table[dec], float))
        table["ra"][alt], table["dec"][alt] = table[ra][alt], table[dec][alt]
        ok |= alt
    return ~ok


class L2CatalogStep:
    """Build the source catalog of one L2 image with romancal's ``SourceCatalogStep``.

    Parameters
    ----------
    config
        Step configuration.
    references
        ``{"apcorr": path, "epsf": path}`` for the image's detector and filter.
    """

    def __init__(self, config: L2CatalogConfig | None = None,
                 references: Mapping[str, str | Path] | None = None) -> None:
        self.config = config or L2CatalogConfig()
        self.references = dict(references or {})

    def run(self, image: LoadedImage) -> L2StepResult:
        """Catalogue ``image`` (an L2 ``ImageModel`` opened by :func:`~romanarchive.catalog.step.load_image`).

        An image without a usable pixel or without a detection gives an empty catalog (romancal's own result).

        Raises
        ------
        CatalogInputError
            Not an L2 ``ImageModel``, or a reference file is missing.
        """
        import roman_datamodels.datamodels as rdm

        cfg = self.config
        model = image.model
        if not isinstance(model, rdm.ImageModel):
            raise CatalogInputError(f"{image.filename or 'image'}: a {type(model).__name__}, not an L2 ImageModel")
        needed = REFTYPES if cfg.fit_psf else ("apcorr",)
        missing = [t for t in needed if t not in self.references]
        if missing:
            raise CatalogInputError(f"no {' or '.join(missing)} reference file for {image.band} (ingest a reference "
                                    "set holding them)")
        _ensure_offline([image], None)
        step = _ArchiveSourceCatalogStep.make(self.references, **cfg.model_dump())
        t0 = time.perf_counter()
        photometry: Any = model.meta.photometry if "photometry" in model.meta else None
        calibrated = photometry is not None and flux_calibrated(model.meta)
        conversion = photometry.conversion_megajanskys if calibrated else None
        crds_log = logging.getLogger("CRDS")
        level = crds_log.level
        crds_log.setLevel(logging.CRITICAL)
        try:
            if calibrated:  # already MJy/sr: romancal's DN/s -> MJy/sr factor must be 1
                photometry.conversion_megajanskys = 1.0
            cat_model, _segm = step.run(model)
        finally:
            crds_log.setLevel(level)
            if calibrated:
                photometry.conversion_megajanskys = conversion
        table = cat_model.source_catalog
        lost = _positions(table) if len(table) else np.zeros(0, bool)
        if lost.any():
            table = table[~lost]
            cat_model.source_catalog = table
        wall = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        params = {**cfg.model_dump(mode="json"), "flux_calibrated_input": calibrated}
        return L2StepResult(table, cat_model, params, software_versions(), wall, rss, int(lost.sum()))
