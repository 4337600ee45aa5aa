"""SIA 2.0 query over ``ivoa.obscore``: the parameters compiled to ADQL and run by the TAP query runner.

Repeated parameters are ORed, different ones ANDed (SIA 2.0 section 2.1). Numeric parameters are DALI intervals
``lo hi`` (either end may be ``-Inf``/``+Inf``; a single value is a point). ``POS`` takes ``CIRCLE ra dec r``,
``RANGE ra1 ra2 dec1 dec2`` (centre inside the range) and ``POLYGON ra1 dec1 ...``; spatial terms intersect the
product footprint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from romanarchive.dal.products import DalError

STANDARD_ID = "ivo://ivoa.net/std/SIA#query-2.0"
_STRINGS = {"id": "obs_publisher_did", "collection": "obs_collection", "facility": "facility_name",
            "instrument": "instrument_name", "dptype": "dataproduct_type", "target": "target_name",
            "format": "access_format"}  # fmt: skip
_RANGES = {"fov": "s_fov", "spatres": "s_resolution", "exptime": "t_exptime"}


def _num(text: str) -> float:
    t = text.strip().lower()
    if t in ("-inf", "+inf", "inf"):
        return -math.inf if t.startswith("-") else math.inf
    try:
        v = float(t)
    except ValueError:
        raise DalError(f"{text!r} is not a number") from None
    if math.isnan(v):
        raise DalError("NaN is not allowed in an interval")
    return v


def interval(value: str, name: str) -> tuple[float, float]:
    """A DALI interval ``lo hi`` (or a single value)."""
    parts = value.split()
    if len(parts) not in (1, 2):
        raise DalError(f"{name.upper()} must be 'lo hi' or one value, not {value!r}")
    lo, hi = _num(parts[0]), _num(parts[-1])
    if lo > hi:
        raise DalError(f"{name.upper()} {value!r}: lower bound above upper bound")
    return lo, hi


def _lit(x: float) -> str:
    return repr(float(x))


def _str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _between(col: str, lo: float, hi: float) -> str:
    terms = ([f"{col} >= {_lit(lo)}"] if math.isfinite(lo) else []) + ([f"{col} <= {_lit(hi)}"]
                                                                      if math.isfinite(hi) else [])  # fmt: skip
    return " AND ".join(terms) if terms else f"{col} IS NOT NULL"


def _overlap(lo_col: str, hi_col: str, lo: float, hi: float) -> str:
    terms = ([f"{hi_col} >= {_lit(lo)}"] if math.isfinite(lo) else []) + ([f"{lo_col} <= {_lit(hi)}"]
                                                                         if math.isfinite(hi) else [])  # fmt: skip
    return " AND ".join(terms) if terms else f"{lo_col} IS NOT NULL"


def pos(value: str) -> str:
    """ADQL condition of one POS value."""
    shape, _, rest = value.strip().partition(" ")
    shape = shape.upper()
    try:
        nums = [float(v) for v in rest.split()]
    except ValueError:
        raise DalError(f"malformed POS {value!r}") from None
    if not all(math.isfinite(v) or shape == "RANGE" for v in nums):
        raise DalError(f"malformed POS {value!r}")
    if shape == "CIRCLE":
        if len(nums) != 3 or not -90 <= nums[1] <= 90 or not 0 < nums[2] <= 180:
            raise DalError(f"POS CIRCLE must be 'ra dec radius' (degrees), not {value!r}")
        return f"1 = INTERSECTS(s_region, CIRCLE('ICRS', {', '.join(map(_lit, nums))}))"
    if shape == "RANGE":
        if len(nums) != 4:
            raise DalError(f"POS RANGE must be 'ra1 ra2 dec1 dec2' (degrees), not {value!r}")
        return f"({_between('s_ra', nums[0], nums[1])} AND {_between('s_dec', nums[2], nums[3])})"
    if shape == "POLYGON":
        if len(nums) < 6 or len(nums) % 2:
            raise DalError(f"POS POLYGON needs at least 3 'ra dec' pairs, not {value!r}")
        return f"1 = INTERSECTS(s_region, POLYGON('ICRS', {', '.join(map(_lit, nums))}))"
    raise DalError(f"POS shape must be CIRCLE, RANGE or POLYGON, not {shape!r}")


def _calib(value: str) -> str:
    if not value.strip().isdigit():
        raise DalError(f"CALIB must be an integer level, not {value!r}")
    return f"calib_level = {int(value)}"


def _pol(value: str) -> str:
    if not value.strip().isalpha():
        raise DalError(f"POL must be a polarization state name, not {value!r}")
    return f"pol_states LIKE {_str('%/' + value.strip().upper() + '/%')}"


def _terms() -> dict[str, Callable[[str], str]]:
    t: dict[str, Callable[[str], str]] = {
        "pos": pos,
        "band": lambda v: _overlap("em_min", "em_max", *interval(v, "band")),
        "time": lambda v: _overlap("t_min", "t_max", *interval(v, "time")),
        "calib": _calib,
        "pol": _pol,
    }
    for name, col in _RANGES.items():
        t[name] = lambda v, col=col, name=name: _between(col, *interval(v, name))  # type: ignore[misc]
    for name, col in _STRINGS.items():
        t[name] = lambda v, col=col: f"{col} = {_str(v)}"  # type: ignore[misc]
    return t


TERMS = _terms()


def adql(params: Mapping[str, list[str]]) -> str:
    """The ADQL query of lower-cased SIA parameters (unknown parameters are ignored, as DALI asks)."""
    where = []
    for name, fn in TERMS.items():
        values = [v for v in params.get(name, []) if v.strip()]
        if values:
            where.append("(" + " OR ".join(f"({fn(v)})" for v in values) + ")")
    return "SELECT * FROM ivoa.obscore" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY product_id"


def maxrec(params: Mapping[str, list[str]], default: int, hard: int) -> int:
    """MAXREC (default ``default``, at most ``hard``)."""
    raw = (params.get("maxrec") or [""])[0].strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise DalError(f"MAXREC must be a non-negative integer, not {raw!r}")
    return min(int(raw), hard)
