"""What the MAST mission and portal services share: errors, product URIs, STC-S footprints and position parsing."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

#: Largest search radius accepted, degrees (a cone larger than this is a whole-sky scan, not a search).
MAX_RADIUS_DEG = 30.0
COLLECTION = "ROMAN"
#: Portal ``dataURI`` prefix; the rest is ``<product_id>/<filename>``.
URI_PREFIX = "mast:ROMAN/product/"


class MastError(Exception):
    """A request the MAST services refuse; ``status`` is the HTTP status (400 bad input, 404 unknown thing)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def product_uri(product_id: int, filename: str) -> str:
    """Mission-search product URI (``retrieve_product?product_name=``): ``<product_id>/<filename>``."""
    return f"{product_id}/{filename}"


def parse_product_uri(uri: str) -> int:
    """Product id of a mission URI or portal ``dataURI``.

    Raises
    ------
    MastError
        Not a URI of this archive (404).
    """
    rest = uri[len(URI_PREFIX):] if uri.startswith(URI_PREFIX) else uri
    head = rest.split("/", 1)[0]
    if not head.isdigit():
        raise MastError(f"unknown product {uri!r}: expected '<product_id>/<filename>' or '{URI_PREFIX}...'", 404)
    return int(head)


def parse_position(text: str) -> tuple[float, float]:
    """``"ra dec"`` or ``"ra, dec"`` in decimal degrees.

    Raises
    ------
    MastError
        Not two numbers, or out of range.
    """
    parts = [p for p in re.split(r"[\s,]+", str(text).strip()) if p]
    try:
        ra, dec = (float(p) for p in parts)
    except ValueError:
        raise MastError(f"malformed position {text!r}: expected 'ra dec' in decimal degrees") from None
    check_position(ra, dec)
    return ra % 360.0, dec


def check_position(ra: float, dec: float) -> None:
    """Raise `MastError` unless ``ra`` and ``dec`` are finite and ``-90 <= dec <= 90``."""
    if not (math.isfinite(ra) and math.isfinite(dec)) or not -90.0 <= dec <= 90.0:
        raise MastError(f"malformed position ({ra}, {dec}): dec must lie in [-90, 90] and both must be finite")


def check_radius(radius_deg: float) -> float:
    """The radius if ``0 < radius <= MAX_RADIUS_DEG``, else `MastError`."""
    if not math.isfinite(radius_deg) or not 0.0 < radius_deg <= MAX_RADIUS_DEG:
        raise MastError(f"radius out of range: {radius_deg} deg (must be > 0 and <= {MAX_RADIUS_DEG} deg)")
    return radius_deg


_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*(d?)\s*,\s*([-+0-9.eE]+)\s*d?\s*\)")


def spoly_stcs(text: str | None) -> str:
    """STC-S ``POLYGON ICRS ...`` (degrees) of a pgsphere polygon's text output (radians, or degrees with ``d``)."""
    if not text:
        return ""
    pts = _POINT.findall(text)
    vals = [(float(a), float(b)) if d else (float(np.degrees(float(a))), float(np.degrees(float(b))))
            for a, d, b in pts]  # fmt: skip
    return "POLYGON ICRS " + " ".join(f"{ra:.7f} {dec:.7f}" for ra, dec in vals)


def jsonable(value: Any) -> Any:
    """A database value as JSON (NaN and infinities become null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
