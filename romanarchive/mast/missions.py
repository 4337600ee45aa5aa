"""MAST mission search API for ``roman`` (``/search/roman/api/v0.1/...``), as astroquery's ``MastMissions`` calls it.

One result row per archived product (any level), the dataset id (``fileSetName``) being the observation id shared by
all levels of one exposure, or ``product_<id>`` for products without one (mosaics, catalogs). A cone selects the
products whose footprint overlaps it (the GiST index on ``products.s_region``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from romanarchive.db.registry import TableSpec
from romanarchive.db.tables import FILES, PRODUCTS
from romanarchive.db.types import column_type
from romanarchive.mast.common import MastError, check_radius, jsonable, parse_position, product_uri

MISSION = "roman"
DATASET_KW = "fileSetName"
_DATASET_SQL = "COALESCE(p.obs_id, 'product_' || p.product_id)"


@dataclass(frozen=True)
class MissionColumn:
    """A searchable column: its name, SQL expression over ``products p JOIN files f``, MAST type and description."""

    name: str
    sql: str
    qual_type: str  # string, integer, float
    description: str


def _from_registry(name: str, table: TableSpec, column: str, alias: str) -> MissionColumn:
    """A mission column that is a registry column: its description and type are the registry's."""
    spec = table.column(column)
    kind = column_type(spec.type).adql
    qual = {"SMALLINT": "integer", "INTEGER": "integer", "BIGINT": "integer", "REAL": "float", "DOUBLE": "float"}
    qual_type = qual.get(kind, "string")
    unit = f" [{spec.unit}]" if spec.unit else ""
    return MissionColumn(name, f"{alias}.{column}", qual_type, spec.description + unit)


COLUMNS: tuple[MissionColumn, ...] = (
    MissionColumn(DATASET_KW, _DATASET_SQL, "string", "Dataset id: observation id shared by every level of one "
                  "exposure, or product_<id>"),
    *(_from_registry(name, PRODUCTS, column, "p") for name, column in (
        ("product_id", "product_id"), ("level", "level"), ("product_type", "product_type"), ("obs_id", "obs_id"),
        ("optical_element", "filter"), ("detector", "detector"), ("ra", "s_ra"), ("dec", "s_dec"),
        ("mjd_start", "t_min"), ("mjd_end", "t_max"), ("exposure_time", "t_exptime"), ("fov", "s_fov"),
        ("release", "release"))),
    _from_registry("filename", FILES, "filename", "f"),
    _from_registry("file_size", FILES, "size", "f"),
)
BY_NAME = {c.name: c for c in COLUMNS}
DEFAULT_SELECT = tuple(c.name for c in COLUMNS)
_FROM = "products p JOIN files f ON f.file_id = p.file_id"
_UNITS = {"arcseconds": 1 / 3600, "arcsec": 1 / 3600, "arcminutes": 1 / 60, "arcmin": 1 / 60, "degrees": 1.0,
          "deg": 1.0}  # fmt: skip


def check_mission(mission: str) -> None:
    """Raise `MastError` (404) unless ``mission`` is served here."""
    if mission.lower() != MISSION:
        raise MastError(f"unknown mission {mission!r}: this archive serves only {MISSION!r}", 404)


def column_list(mission: str) -> list[dict[str, str]]:
    """``column_list?mission=``: searchable columns."""
    check_mission(mission)
    return [{"column_name": c.name, "qual_type": c.qual_type, "description": c.description} for c in COLUMNS]


@dataclass
class Query:
    """A mission search compiled to SQL."""

    sql: str
    params: dict[str, Any]
    names: list[str]


def _condition(col: MissionColumn, value: Any, params: dict[str, Any]) -> str:
    """SQL for one condition: comma-separated alternatives (OR); numbers take ``>x``, ``<=x``, ``a..b``; text
    takes ``*`` wildcards; a leading ``!`` negates an alternative (ANDed with the rest)."""
    alts = [v.strip() for v in str(value).split(",") if v.strip()] if not isinstance(value, bool) else [str(value)]
    if not alts:
        raise MastError(f"empty condition on {col.name!r}")
    pos: list[str] = []
    neg: list[str] = []
    for alt in alts:
        negate = alt.startswith("!")
        alt = alt[1:] if negate else alt
        key = f"p{len(params)}"
        if col.qual_type == "string":
            if "*" in alt or "%" in alt:
                params[key] = alt.replace("*", "%")
                expr = f"{col.sql} ILIKE :{key}"
            else:
                params[key] = alt
                expr = f"{col.sql} = :{key}"
        else:
            conv = int if col.qual_type == "integer" else float
            try:
                if m := re.fullmatch(r"(>=|<=|>|<)\s*(.+)", alt):
                    params[key] = conv(m.group(2))
                    expr = f"{col.sql} {m.group(1)} :{key}"
                elif ".." in alt:
                    lo, hi = alt.split("..", 1)
                    params[key], params[key + "b"] = conv(lo), conv(hi)
                    expr = f"{col.sql} BETWEEN :{key} AND :{key}b"
                else:
                    params[key] = conv(alt)
                    expr = f"{col.sql} = :{key}"
            except ValueError:
                raise MastError(f"bad value {alt!r} for {col.qual_type} column {col.name!r}") from None
        (neg if negate else pos).append(f"NOT ({expr})" if negate else expr)
    parts = ([f"({' OR '.join(pos)})"] if pos else []) + neg
    return " AND ".join(parts)


def _column(name: Any, what: str) -> MissionColumn:
    col = BY_NAME.get(str(name))
    if col is None:
        raise MastError(f"unknown {what} {name!r}; see /search/util/api/v0.1/column_list?mission={MISSION}")
    return col


def _int(body: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    try:
        value = int(body.get(key, default) if body.get(key) is not None else default)
    except (TypeError, ValueError):
        raise MastError(f"{key} must be an integer") from None
    if not lo <= value <= hi:
        raise MastError(f"{key} must lie in [{lo}, {hi}]")
    return value


def compile_search(body: dict[str, Any], max_limit: int = 50_000) -> Query:
    """Compile a search request body (``target``, ``radius``, ``radius_units``, ``conditions``, ``select_cols``,
    ``sort_by``, ``sort_desc``, ``limit``, ``offset``) to SQL.

    Raises
    ------
    MastError
        Any malformed part, with a message saying which.
    """
    if not isinstance(body, dict):
        raise MastError("the search request body must be a JSON object")
    params: dict[str, Any] = {}
    where: list[str] = []
    select = [c for c in (body.get("select_cols") or DEFAULT_SELECT) if c is not None]
    cols = [_column(c, "column in select_cols") for c in dict.fromkeys(select)]
    if DATASET_KW not in [c.name for c in cols]:
        cols.insert(0, BY_NAME[DATASET_KW])
    exprs = [f"{c.sql} AS \"{c.name}\"" for c in cols]
    names = [c.name for c in cols]
    order: list[str] = []
    target = body.get("target")
    if target:
        if isinstance(target, list):
            if len(target) != 1:
                raise MastError("target must hold exactly one position 'ra dec'")
            target = target[0]
        ra, dec = parse_position(target)
        units = str(body.get("radius_units") or "arcminutes").lower()
        if units not in _UNITS:
            raise MastError(f"unknown radius_units {units!r}; use one of {sorted(_UNITS)}")
        try:
            radius = float(body.get("radius", 3.0)) * _UNITS[units]
        except (TypeError, ValueError):
            raise MastError(f"radius must be a number, not {body.get('radius')!r}") from None
        check_radius(radius)
        params.update(ra=ra, dec=dec, r=radius)
        where.append("p.s_region && scircle(spoint(radians(:ra), radians(:dec)), radians(:r))")
        exprs.append("degrees(spoint(radians(p.s_ra), radians(p.s_dec)) <-> spoint(radians(:ra), radians(:dec)))"
                     " * 60 AS ang_sep")
        names.append("ang_sep")
        order.append("ang_sep")
    conditions = body.get("conditions") or []
    if isinstance(conditions, dict):
        conditions = [conditions]
    for cond in conditions:
        if not isinstance(cond, dict):
            raise MastError("conditions must be a list of {column: value} objects")
        for name, value in cond.items():
            where.append(_condition(_column(name, "condition column"), value, params))
    sort_by = body.get("sort_by") or []
    sort_by = [sort_by] if isinstance(sort_by, str) else sort_by
    desc = body.get("sort_desc") or []
    desc = [desc] if isinstance(desc, bool) else desc
    keyed = [f"\"{_column(s, 'sort column').name}\"{' DESC' if i < len(desc) and desc[i] else ''}"
             for i, s in enumerate(sort_by)]  # fmt: skip
    order = keyed + order + ["p.product_id"]
    limit = _int(body, "limit", 5000, 0, max_limit)
    offset = _int(body, "offset", 0, 0, 1 << 40)
    sql = (f"SELECT {', '.join(exprs)} FROM {_FROM}" + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" ORDER BY {', '.join(order)} LIMIT {limit} OFFSET {offset}")
    return Query(sql, params, names)


def _types(names: list[str]) -> list[dict[str, str]]:
    return [{"name": n, "type": BY_NAME[n].qual_type if n in BY_NAME else "float"} for n in names]


def search(engine: sa.Engine, mission: str, body: dict[str, Any]) -> dict[str, Any]:
    """Run a mission search: ``{"info": [{name, type}], "results": [{...}]}`` (astroquery warns when a page is full)."""
    check_mission(mission)
    q = compile_search(body)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(q.sql), q.params).all()
    results = [{n: jsonable(v) for n, v in zip(q.names, r, strict=True)} for r in rows]
    return {"info": _types(q.names), "results": results}


def list_products(engine: sa.Engine, mission: str, body: dict[str, Any]) -> dict[str, Any]:
    """``post_list_products`` for ``{"dataset_ids": [...]}``: every product file of those datasets.

    Raises
    ------
    MastError
        No dataset ids, or none of them known (404).
    """
    check_mission(mission)
    ids = body.get("dataset_ids") if isinstance(body, dict) else None
    if isinstance(ids, str):
        ids = [ids]
    if not ids or not all(isinstance(i, str) for i in ids):
        raise MastError("dataset_ids must be a non-empty list of dataset ids")
    pids = [int(i[8:]) for i in ids if i.startswith("product_") and i[8:].isdigit()]
    sql = sa.text(
        f"SELECT {_DATASET_SQL} AS dataset, p.product_id, p.level, p.product_type, f.filename, f.size, "
        "f.media_type, f.sha256, p.filter FROM products p JOIN files f ON f.file_id = p.file_id "
        "WHERE p.obs_id = ANY(:ids) OR p.product_id = ANY(:pids) ORDER BY dataset, p.level, p.product_id"
    )
    with engine.connect() as conn:
        rows = conn.execute(sql, {"ids": list(ids), "pids": pids}).mappings().all()
    if not rows:
        raise MastError(f"unknown dataset(s): {', '.join(ids[:5])}", 404)
    products = [
        {"dataset": r["dataset"], "filename": r["filename"], "uri": product_uri(r["product_id"], r["filename"]),
         "product_id": r["product_id"], "level": r["level"], "type": r["product_type"], "category": "science",
         "file_suffix": r["filename"].rsplit("_", 1)[-1].split(".")[0].upper(), "size": r["size"],
         "access": "PUBLIC", "media_type": r["media_type"], "sha256": r["sha256"]}
        for r in rows
    ]  # fmt: skip
    return {"products": products}
