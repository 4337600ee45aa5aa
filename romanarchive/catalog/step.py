"""The catalog step: L2/L3 ``roman_datamodels`` images (or arrays) -> :func:`~romanarchive.catalog.measure.measure`.

The step only reads models into :class:`BandImage` arrays, checks them, times the pure function and reports the
software and configuration for provenance.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from romanarchive.catalog.config import CatalogConfig
from romanarchive.catalog.measure import BandImage, CatalogInputError, CatalogResult, measure
from romanarchive.software import package_versions

STEP_NAME = "romanarchive.CatalogStep"


@dataclass
class LoadedImage:
    """One band read from a datamodel."""

    image: BandImage
    wcs: Any
    product_id: int | None = None
    filename: str = ""


def load_image(source: str | Path | Any, product_id: int | None = None) -> LoadedImage:
    """Read ``data``, ``err``, ``meta.wcs`` and the filter of an L2 ImageModel or L3 MosaicModel.

    Raises
    ------
    CatalogInputError
        When the model has no WCS or no filter.
    """
    import roman_datamodels as rdm

    model = rdm.open(source) if isinstance(source, (str, Path)) else source
    meta = model.meta
    wcs = meta.get("wcs") if hasattr(meta, "get") else getattr(meta, "wcs", None)
    name = Path(source).name if isinstance(source, (str, Path)) else str(getattr(meta, "filename", ""))
    if wcs is None:
        raise CatalogInputError(f"{name or 'image'}: no WCS (meta.wcs is missing)")
    band = str(meta.instrument.optical_element).upper()
    data = np.asarray(getattr(model.data, "value", model.data), dtype=np.float32)
    err = np.asarray(getattr(model.err, "value", model.err), dtype=np.float32)
    ratio = _flux_conserving_ratio(model)
    if ratio != 1.0:  # back to surface brightness (MJy/sr), what the catalog measures in
        data, err = data / np.float32(ratio), err / np.float32(ratio)
    return LoadedImage(BandImage(band, data, err), wcs, product_id, name)


def _flux_conserving_ratio(model: Any) -> float:
    """Pixel-area ratio (L3 / L2 pixel) by which an L3's values were scaled, or 1.

    romanarchive's co-add (romanarchive.mosaic.coadd) keeps the L2 unit *per L2 pixel*: it rescales values by the
    pixel-area ratio so aperture sums equal the L2's. Those values are not MJy/sr on the L3 grid; dividing by the
    ratio (``meta.resample.pixel_scale_ratio`` squared) restores surface brightness.
    """
    if type(model).__name__ != "MosaicModel":
        return 1.0
    try:
        scale = float(model.meta.resample.pixel_scale_ratio)
    except (AttributeError, KeyError, TypeError, ValueError):
        return 1.0
    return scale**2 if np.isfinite(scale) and scale > 0 else 1.0


def software_versions() -> dict[str, str]:
    """Versions of the packages the catalog depends on."""
    return package_versions(("romanarchive", "photutils", "galsim", "numpy", "scipy", "astropy", "roman_datamodels"))


@dataclass
class StepResult:
    """The catalog, plus what provenance records."""

    catalog: CatalogResult
    parameters: dict[str, Any]
    software: dict[str, str]
    wall_time_s: float
    peak_rss_mb: float
    inputs: list[LoadedImage] = field(default_factory=list)


class CatalogStep:
    """Build a multiband catalog from the images of one pixel grid (a skycell's L3s, or one L2 pointing)."""

    def __init__(self, config: CatalogConfig | None = None) -> None:
        self.config = config or CatalogConfig()

    def run(self, inputs: list[LoadedImage]) -> StepResult:
        """Measure ``inputs`` (one per band, sharing the first one's WCS and shape)."""
        if not inputs:
            raise CatalogInputError("no input images")
        t0 = time.perf_counter()
        result = measure([x.image for x in inputs], inputs[0].wcs, self.config)
        wall = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return StepResult(result, self.config.model_dump(mode="json"), software_versions(), wall, rss, inputs)
