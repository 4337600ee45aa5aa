"""The catalog step: romancal's ``MultibandCatalogStep`` on the L3 mosaics of one skycell, then the archive's
selection (:mod:`romanarchive.catalog.select`).

romancal detects on the inverse-variance weighted detection image, deblends, and measures every band with rad's
columns: windowed and moment centroids, aperture / Kron / segment fluxes, PSF fits with its L3 PSF model (the ePSF
reference convolved with the drizzle ``pixfrac`` and the L3 pixel), ``is_extended``, and PSF-matched photometry to
the reddest band — all in nJy from MJy/sr images. The archive wraps it only to

* give each band its own ``epsf`` and ``apcorr`` reference file (the stpipe step takes one override per type; the
  subclass below answers ``get_reference_file`` per model from the archive's own reference files);
* cut the images to the bounding box of their data first (most of a skycell is empty until the survey fills it:
  romancal's FFT convolutions cost by area), shifting pixel columns back to the skycell grid afterwards;
* choose what becomes an object row (home skycell, bright stars, photo-z).
"""

from __future__ import annotations

import copy
import logging
import os
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from romanarchive.catalog.apcorr import EncircledEnergy
from romanarchive.catalog.config import CatalogConfig
from romanarchive.catalog.select import (
    CatalogInputError,
    CatalogResult,
    noise_scale,
    pixel_scale,
    select_objects,
)
from romanarchive.crds_offline import OFFLINE_SERVER_URL, configure_offline
from romanarchive.imaging.saturation import SkyStars, merge_stars, saturated_in_l2
from romanarchive.sky.skymap import configure_skymap
from romanarchive.software import package_versions

STEP_NAME = "romancal.MultibandCatalogStep"
_PAD_PX = 32  # kept around the data's bounding box: the background mesh and Kron apertures see some sky


@dataclass
class LoadedImage:
    """One band's L3 mosaic (or L2 image), opened as a roman_datamodels model."""

    model: Any
    band: str
    product_id: int | None = None
    filename: str = ""

    @property
    def wcs(self) -> Any:
        """The image's gwcs."""
        return self.model.meta.wcs

    @property
    def data(self) -> np.ndarray:
        """Surface brightness, MJy/sr."""
        return np.asarray(self.model.data)

    @property
    def err(self) -> np.ndarray:
        """1-sigma uncertainty, MJy/sr."""
        return np.asarray(self.model.err)


def load_image(source: str | Path | Any, product_id: int | None = None) -> LoadedImage:
    """Open an L3 ``MosaicModel`` (or L2 ``ImageModel``) and check it can be catalogued.

    Raises
    ------
    CatalogInputError
        No WCS, no filter, or no usable pixel.
    """
    import roman_datamodels as rdm

    model = rdm.open(source) if isinstance(source, (str, Path)) else source
    meta = model.meta
    name = Path(source).name if isinstance(source, (str, Path)) else str(getattr(meta, "filename", ""))
    if meta.get("wcs") is None:
        raise CatalogInputError(f"{name or 'image'}: no WCS (meta.wcs is missing)")
    band = str(meta.instrument.optical_element).upper()
    if not band.startswith("F"):
        raise CatalogInputError(f"{name or 'image'}: optical element {band} is not an imaging filter")
    return LoadedImage(model, band, product_id, name)


class _ArchiveMultibandCatalogStep:
    """Factory of the romancal step subclass (romancal is imported only when a catalog is built)."""

    _cls: Any = None

    @classmethod
    def make(cls, references: Mapping[str, Mapping[str, str | Path]], **kwargs: Any) -> Any:
        if cls._cls is None:
            from romancal.multiband_catalog import MultibandCatalogStep

            class ArchiveMultibandCatalogStep(MultibandCatalogStep):  # type: ignore[misc]
                """MultibandCatalogStep reading each band's reference files from the archive."""

                archive_references: Mapping[str, Mapping[str, str | Path]] = {}

                def get_reference_file(self, model: Any, reftype: str) -> str:
                    band = str(model.meta.instrument.optical_element).upper()
                    try:
                        return str(self.archive_references[band][reftype])
                    except KeyError:
                        raise CatalogInputError(f"no {reftype} reference file for {band}: ingest a reference "
                                                "set holding one") from None

            cls._cls = ArchiveMultibandCatalogStep
        step = cls._cls(**kwargs)
        step.archive_references = references
        return step


def data_box(images: Sequence[LoadedImage], pad: int = _PAD_PX) -> tuple[slice, slice]:
    """Bounding box (rows, columns) of pixels usable in any band, padded by ``pad``."""
    usable: np.ndarray = np.zeros(images[0].data.shape, bool)
    for im in images:
        usable |= np.isfinite(im.data) & np.isfinite(im.err) & (im.err > 0)
    if not usable.any():
        raise CatalogInputError("no usable pixel in any band (all NaN or zero error)")
    rows, cols = np.flatnonzero(usable.any(axis=1)), np.flatnonzero(usable.any(axis=0))
    ny, nx = len(usable), len(usable[0])
    return (slice(max(0, rows[0] - pad), min(ny, rows[-1] + 1 + pad)),
            slice(max(0, cols[0] - pad), min(nx, cols[-1] + 1 + pad)))


_ARRAYS = ("data", "err", "weight", "context", "var_poisson", "var_rnoise", "var_flat", "dq")


def _new_model(model: Any, arrays: dict[str, np.ndarray]) -> Any:
    """A new model of ``model``'s type with a copy of its metadata and ``arrays`` (the input is never touched)."""
    import roman_datamodels.datamodels as rdm

    out = type(model).create_minimal() if isinstance(model, rdm.DataModel) else copy.copy(model)
    out.meta = model.meta.copy() if hasattr(model.meta, "copy") else copy.copy(model.meta)
    for name, arr in arrays.items():
        out[name] = arr
    return out


def with_data(image: LoadedImage, data: np.ndarray) -> LoadedImage:
    """``image`` with other science data (e.g. sources injected into a copy), everything else shared."""
    arrays = {n: np.asarray(image.model[n]) for n in _ARRAYS if n in image.model}
    arrays["data"] = np.asarray(data, dtype=np.float32)
    return LoadedImage(_new_model(image.model, arrays), image.band, image.product_id, image.filename)


def _cropped(model: Any, box: tuple[slice, slice]) -> Any:
    """A copy of ``model`` cut to ``box``, its gwcs shifted so pixel (0, 0) is the box's corner."""
    from astropy.modeling.models import Shift

    arrays = {}
    for name in _ARRAYS:
        if name in model:
            arr = np.asarray(model[name])
            # Always a copy: romancal subtracts backgrounds and converts units in place.
            arrays[name] = np.array(arr[(slice(None),) * (arr.ndim - 2) + box], copy=True, order="C")
    out = _new_model(model, arrays)
    wcs = copy.deepcopy(model.meta.wcs)
    y0, x0 = box[0].start, box[1].start
    wcs.insert_transform(wcs.input_frame, Shift(x0) & Shift(y0), after=True)
    ny, nx = box[0].stop - y0, box[1].stop - x0
    wcs.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    out.meta.wcs = wcs
    return out


def _uncrop(table: Any, x0: int, y0: int) -> None:
    """Shift pixel columns of a catalog measured on a cut-out back to the full grid (in place)."""
    for name in table.colnames:
        if name.startswith(("x_centroid", "x_psf", "bbox_x")) and not name.endswith("_err"):
            table[name] += x0
        elif name.startswith(("y_centroid", "y_psf", "bbox_y")) and not name.endswith("_err"):
            table[name] += y0


def bright_stars_of_l2(paths: Sequence[str | Path]) -> SkyStars:
    """Saturated cores in the DQ of L2 images (the inputs of a skycell's L3s), merged over images."""
    import roman_datamodels as rdm

    parts = []
    for path in paths:
        with rdm.open(path) as model:
            parts.append(saturated_in_l2(np.asarray(model.dq), model.meta.wcs))
    return merge_stars(parts)


def software_versions() -> dict[str, str]:
    """Versions of the packages that determine the catalog."""
    return package_versions(("romanarchive", "romancal", "photutils", "roman_datamodels", "rad", "numpy", "scipy",
                             "astropy", "galsim"))


@dataclass
class StepResult:
    """The catalog, plus what provenance records."""

    catalog: CatalogResult
    parameters: dict[str, Any]
    software: dict[str, str]
    wall_time_s: float
    peak_rss_mb: float
    inputs: list[LoadedImage] = field(default_factory=list)
    catalog_model: Any = None
    segmentation_model: Any = None


class CatalogStep:
    """Build the multiband catalog of the images of one pixel grid (a skycell's L3s).

    Parameters
    ----------
    config
        Step configuration.
    references
        Per band (upper case), ``{"apcorr": path, "epsf": path}``.
    """

    def __init__(self, config: CatalogConfig | None = None,
                 references: Mapping[str, Mapping[str, str | Path]] | None = None) -> None:
        self.config = config or CatalogConfig()
        self.references = dict(references or {})

    def run(self, inputs: Sequence[LoadedImage], skycell: str | None = None, bright: SkyStars | None = None
            ) -> StepResult:
        """Catalogue ``inputs`` (one per band, all on one pixel grid).

        Parameters
        ----------
        inputs
            The bands' images.
        skycell
            Name of the skycell the grid is; with ``config.home_only`` only objects at home in it are kept.
        bright
            Bright stars known from the L2 images (:func:`bright_stars_of_l2`), masked as the saturated cores
            found in ``inputs`` are.

        Raises
        ------
        CatalogInputError
            No inputs, repeated or mismatched bands, no usable pixels, or a missing reference file.
        """
        cfg = self.config
        images = list(inputs)
        _check(images)
        missing = [f"{t} for {im.band}" for im in images for t in ("apcorr", "epsf")
                   if t not in self.references.get(im.band, {})]
        if missing:
            raise CatalogInputError(f"no reference file: {', '.join(missing)} (ingest a reference set holding them)")
        _ensure_offline(images, skycell)
        from romancal.datamodels import ModelLibrary


        t0 = time.perf_counter()
        shape = images[0].data.shape
        box = data_box(images) if cfg.crop_to_data else (slice(0, shape[0]), slice(0, shape[1]))
        models = [_cropped(im.model, box) for im in images]
        err_scale = {}
        for im, model in zip(images, models, strict=True):  # honest errors for correlated (resampled) noise
            k = noise_scale(np.asarray(model.data), np.asarray(model.err))
            model.err = (np.asarray(model.err) * np.float32(k)).astype(np.asarray(model.err).dtype)
            err_scale[im.band] = round(k, 4)
        scale = pixel_scale(images[0].wcs, shape)
        npixels = max(1, int(round(cfg.min_area_arcsec2 / scale**2)))
        curves = {im.band: c for im in images
                  if (c := EncircledEnergy.from_apcorr(self.references[im.band]["apcorr"], im.band)) is not None}
        step = _ArchiveMultibandCatalogStep.make(
            self.references, bkg_boxsize=cfg.bkg_boxsize, kernel_fwhms=list(cfg.kernel_fwhms),
            snr_threshold=cfg.snr_threshold, npixels=npixels, deblend=cfg.deblend, fit_psf=cfg.fit_psf)
        # romancal asks CRDS for SFD dust maps (dust_ebv); offline that fails, is caught (dust_ebv NaN), but CRDS
        # logs a traceback per band: keep the log readable.
        crds_log = logging.getLogger("CRDS")
        level = crds_log.level
        crds_log.setLevel(logging.CRITICAL)
        try:
            cat_model, segm_model = step.run(ModelLibrary(models))
        finally:
            crds_log.setLevel(level)
        table = cat_model.source_catalog
        _uncrop(table, box[1].start, box[0].start)
        segm = np.zeros(shape, np.uint32)
        segm[box] = np.asarray(segm_model.data)
        result = select_objects(table, segm, images, cfg, skycell, bright, curves)
        result.stats["err_scale"] = err_scale
        wall = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return StepResult(result, cfg.model_dump(mode="json"), software_versions(), wall, rss, images, cat_model,
                          segm_model)


def _ensure_offline(images: Sequence[LoadedImage], skycell: str | None) -> None:
    """CRDS offline (romancal asks it for dust maps), before romancal is imported — a job has configured it with
    the archive's own CRDS folder already — and a local sky map for romancal's skycell machinery (the archive's
    tessellation in rad's ``skycells`` schema, or an official sky map named by ``$SKYMAP_PATH``)."""
    if os.environ.get("CRDS_SERVER_URL") != OFFLINE_SERVER_URL:
        configure_offline(Path(os.environ.get("ROMANARCHIVE_CRDS_PATH",
                                              Path.home() / ".cache" / "romanarchive" / "crds")))
    if skycell:
        configure_skymap(names=[skycell])
    else:
        ny, nx = images[0].data.shape
        ra, dec = (np.atleast_1d(np.asarray(v, float)) for v in
                   images[0].wcs.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0))
        configure_skymap(positions=(ra, dec))


def _check(images: Sequence[LoadedImage]) -> None:
    if not images:
        raise CatalogInputError("no input images")
    shape = images[0].data.shape
    bands = [im.band for im in images]
    if len(set(bands)) != len(bands):
        raise CatalogInputError(f"each band may appear once (got {', '.join(bands)})")
    for im in images:
        if im.data.shape != shape:
            raise CatalogInputError(f"band {im.band}: shape {im.data.shape} differs from {shape} (bands must share "
                                    "one pixel grid)")
        good = np.isfinite(im.data) & np.isfinite(im.err) & (im.err > 0)
        if not good.any():
            raise CatalogInputError(f"band {im.band}: no usable pixel (all NaN or zero error)")
        if np.ptp(im.data[good]) == 0:
            raise CatalogInputError(f"band {im.band}: empty image (constant data)")
