"""Open a file, check it is a valid Roman datamodel, and describe it for the registry.

Every failure becomes an :class:`IngestError` with one line naming the file and the reason, raised before anything
is stored or written.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from romanarchive.db.rad_columns import RAD_EXPOSURE_COLUMNS
from romanarchive.sky.footprint import centre_and_fov, healpix29, spoly_literal, wcs_corners

ASDF_MAGIC = b"#ASDF"
PIXEL_SCALE_ARCSEC = 0.11  # WFI nominal plate scale, used only for the approximate L1 footprint
MEDIA_TYPE = "application/asdf"

# Datamodel class name -> (level, product type).
PRODUCT_KINDS = {
    "ScienceRawModel": (1, "wfi_l1"),
    "ImageModel": (2, "wfi_l2"),
}


class IngestError(ValueError):
    """A file cannot be ingested; the message is one line naming the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self) -> tuple[type[IngestError], tuple[str, str]]:
        # Exceptions pickle their args; ours has two, so say how (ingest --workers sends them between processes).
        return (IngestError, (self.path, self.reason))


@dataclass
class Description:
    """What the registry needs to know about one file.

    Attributes
    ----------
    kind
        ``product`` or ``reference``.
    level, product_type
        Roman data level and product type (products only).
    exposure
        Exposure-table values (L1/L2).
    product
        Product-table values besides ids.
    reference
        Reference-file values (references only).
    """

    kind: str
    level: int | None = None
    product_type: str | None = None
    exposure: dict[str, Any] = field(default_factory=dict)
    product: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """Make metadata values storable (astropy Time, numpy scalars, tagged strings)."""
    if value is None:
        return None
    if hasattr(value, "to_datetime"):
        return value.to_datetime()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool | dt.datetime):
        return value if not isinstance(value, str) else str(value)
    return str(value)


def _get(model: Any, dotted: str) -> Any:
    node = model
    for part in dotted.split("."):
        try:
            node = node[part] if not hasattr(node, part) else getattr(node, part)
        except (KeyError, AttributeError, TypeError):
            return None
    return node


@lru_cache(maxsize=16)
def bandpass_limits(optical_element: str) -> tuple[float | None, float | None]:
    """Wavelength limits in metres of a WFI filter, from galsim's Roman bandpasses."""
    from galsim import roman

    bp = roman.getBandpasses().get(_galsim_name(optical_element))
    if bp is None:
        return None, None
    return float(bp.blue_limit) * 1e-9, float(bp.red_limit) * 1e-9


def _galsim_name(optical_element: str) -> str:
    # galsim names the filters R062, Z087, Y106, J129, W146, H158, F184, K213.
    mapping = {"F062": "R062", "F087": "Z087", "F106": "Y106", "F129": "J129", "F146": "W146",
               "F158": "H158", "F184": "F184", "F213": "K213"}
    return mapping.get(optical_element.upper(), optical_element)


def _approx_l1_corners(model: Any, shape: tuple[int, int]) -> list[tuple[float, float]] | None:
    """Tangent-plane square from ``meta.wcsinfo``: L1 files carry no gWCS, L2 gives the exact footprint."""
    wi = model.meta.wcsinfo
    ra0, dec0, roll = (_plain(_get(wi, k)) for k in ("ra_ref", "dec_ref", "roll_ref"))
    if ra0 is None or dec0 is None:
        return None
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    theta = math.radians(roll or 0.0)
    w.wcs.cd = scale * np.array([[-math.cos(theta), math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return wcs_corners(w, shape)


def _footprint(corners: list[tuple[float, float]] | None) -> dict[str, Any]:
    if not corners:
        return {}
    ra, dec, fov = centre_and_fov(corners)
    return {"s_region": spoly_literal(corners), "s_ra": ra, "s_dec": dec, "s_fov": fov,
            "hpx": int(healpix29(ra, dec)[0])}


def _mjd(value: Any) -> float | None:
    return float(value.mjd) if hasattr(value, "mjd") else None


def describe(path: str | Path) -> Description:
    """Validate a file and describe it.

    Parameters
    ----------
    path
        An ASDF file holding a Roman datamodel (L1, L2) or a calibration reference file.

    Returns
    -------
    Description
        Values for the registry.

    Raises
    ------
    IngestError
        When the file is missing, not ASDF, corrupt or truncated, fails schema validation, or holds a model the
        archive does not take.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "no such file")
    if path.stat().st_size == 0:
        raise IngestError(path, "file is empty")
    with path.open("rb") as fh:
        if fh.read(len(ASDF_MAGIC)) != ASDF_MAGIC:
            raise IngestError(path, "not an ASDF file (missing #ASDF header)")
    import roman_datamodels.datamodels as rdm

    try:
        # lazy_load=False reads every block now, so a truncated or corrupt file fails here, not half-way later.
        model = rdm.open(path, lazy_tree=False, lazy_load=False)
    except Exception as exc:  # asdf/yaml/jsonschema raise many types; all mean "unreadable or invalid"
        hint = " (truncated or corrupt data block?)" if "buffer" in str(exc) or "block" in str(exc).lower() else ""
        raise IngestError(path, f"cannot be read as a Roman datamodel{hint} ({type(exc).__name__}: "
                                f"{_first_line(exc)})") from None
    try:
        return _describe_model(path, model)
    finally:
        model.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _describe_model(path: Path, model: Any) -> Description:
    name = type(model).__name__
    try:
        model.validate()
    except Exception as exc:
        raise IngestError(path, f"{name} fails schema validation: {_first_line(exc)}") from None
    if name.endswith("RefModel"):
        return _describe_reference(path, model)
    if name not in PRODUCT_KINDS:
        raise IngestError(path, f"{name} is not a product the archive ingests "
                                f"(expected one of {', '.join(sorted(PRODUCT_KINDS))} or a reference file)")
    level, product_type = PRODUCT_KINDS[name]
    try:
        data = model.data
        shape = (int(data.shape[-2]), int(data.shape[-1]))
    except Exception as exc:
        raise IngestError(path, f"data array unreadable (truncated?): {_first_line(exc)}") from None
    exposure = {c["name"]: _plain(_get(model, c["source"])) for c in RAD_EXPOSURE_COLUMNS}
    missing = [k for k in ("program", "detector", "observation_exposure") if exposure.get(k) is None]
    if missing:
        raise IngestError(path, f"metadata lacks {', '.join(missing)}")
    start, end = _get(model, "meta.exposure.start_time"), _get(model, "meta.exposure.end_time")
    exposure["mjd_start"], exposure["mjd_end"] = _mjd(start), _mjd(end)
    if level == 1:
        n_ref = 4  # L1 arrays include the 4-pixel reference border
        corners = _approx_l1_corners(model, (shape[0] - 2 * n_ref, shape[1] - 2 * n_ref))
        science_shape = (shape[0] - 2 * n_ref, shape[1] - 2 * n_ref)
    else:
        wcs = _get(model, "meta.wcs")
        if wcs is None:
            raise IngestError(path, "L2 image has no meta.wcs")
        corners, science_shape = wcs_corners(wcs, shape), shape
    foot = _footprint(corners)
    exposure.update({k: v for k, v in foot.items() if k != "s_fov"})
    em_min, em_max = bandpass_limits(str(exposure.get("optical_element") or ""))
    product = {
        "obs_id": f"{exposure.get('observation_id') or ''}_{exposure['detector']}".lower().lstrip("_"),
        "filter": exposure.get("optical_element"), "detector": exposure.get("detector"),
        "t_min": exposure["mjd_start"], "t_max": exposure["mjd_end"],
        "t_exptime": exposure.get("exposure_time"), "em_min": em_min, "em_max": em_max,
        "s_xel1": science_shape[1], "s_xel2": science_shape[0], **foot,
    }
    return Description("product", level, product_type, exposure, product)


def _describe_reference(path: Path, model: Any) -> Description:
    reftype = _plain(_get(model, "meta.reftype"))
    detector = _plain(_get(model, "meta.instrument.detector"))
    useafter = _get(model, "meta.useafter")
    if not reftype or not detector or useafter is None:
        raise IngestError(path, "reference file lacks meta.reftype, meta.instrument.detector or meta.useafter")
    element = _plain(_get(model, "meta.instrument.optical_element")) or "ANY"
    return Description("reference", reference={
        "reftype": str(reftype).lower(), "detector": str(detector).upper(), "optical_element": str(element).upper(),
        "useafter": _plain(useafter), "description": _plain(_get(model, "meta.description")),
    })
