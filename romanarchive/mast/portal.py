"""MAST portal API subset (``/api/v0/invoke`` and columns configuration), as astroquery's ``Observations`` calls it.

Observations are the rows of ``ivoa.obscore`` in CAOM column names (``obsid`` = product id). Services:
``Mast.Caom.Cone`` {ra, dec, radius}, ``Mast.Caom.Filtered`` {columns, filters}, ``Mast.Caom.Filtered.Position``
{columns, filters, position: "ra, dec, radius"}, ``Mast.Caom.Products`` {obsid: "1,2"}; paged with ``page`` and
``pagesize``. Errors are answered as ``{"status": "ERROR", "msg": ...}``, which astroquery raises as
``RemoteServiceError(msg)``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from romanarchive.mast.common import (
    URI_PREFIX,
    MastError,
    check_position,
    check_radius,
    jsonable,
    spoly_stcs,
)


@dataclass(frozen=True)
class CaomColumn:
    """A CAOM observation column over ``ivoa.obscore o``: name, SQL, portal type (string/float/int) and text."""

    name: str
    sql: str
    type: str
    text: str


_C = CaomColumn
CAOM: tuple[CaomColumn, ...] = (
    _C("intentType", "'science'::text", "string", "Observation intent"),
    _C("obs_collection", "o.obs_collection", "string", "Mission"),
    _C("provenance_name", "'romanarchive'::text", "string", "Provenance name"),
    _C("instrument_name", "o.instrument_name", "string", "Instrument"),
    _C("project", "'Roman'::text", "string", "Project"),
    _C("filters", "o.filter", "string", "Filters"),
    _C("wavelength_region", "'INFRARED'::text", "string", "Waveband"),
    _C("target_name", "o.target_name", "string", "Target name"),
    _C("obs_id", "o.obs_id", "string", "Observation ID"),
    _C("s_ra", "o.s_ra", "float", "RA [deg]"),
    _C("s_dec", "o.s_dec", "float", "Dec [deg]"),
    _C("dataproduct_type", "o.dataproduct_type", "string", "Data type"),
    _C("calib_level", "o.calib_level::integer", "int", "Calibration level"),
    _C("level", "o.level::integer", "int", "Roman data level"),
    _C("t_min", "o.t_min", "float", "Start time [MJD]"),
    _C("t_max", "o.t_max", "float", "End time [MJD]"),
    _C("t_exptime", "o.t_exptime", "float", "Exposure length [s]"),
    _C("em_min", "o.em_min * 1e9", "float", "Min. wavelength [nm]"),
    _C("em_max", "o.em_max * 1e9", "float", "Max. wavelength [nm]"),
    _C("detector", "o.detector", "string", "WFI detector"),
    _C("s_region", "o.s_region::text", "string", "s_region"),
    _C("dataURL", "o.access_url", "string", "Data URL"),
    _C("dataRights", "'PUBLIC'::text", "string", "Data rights"),
    _C("obsid", "o.product_id::text", "string", "Product group ID"),
    _C("objID", "o.product_id", "int", "Object ID"),
)
CAOM_BY_NAME = {c.name.lower(): c for c in CAOM}
PRODUCT_FIELDS = (
    ("obsID", "string"), ("obs_collection", "string"), ("dataproduct_type", "string"), ("obs_id", "string"),
    ("description", "string"), ("type", "string"), ("dataURI", "string"), ("productType", "string"),
    ("productGroupDescription", "string"), ("productSubGroupDescription", "string"), ("productDocumentationURL",
    "string"), ("project", "string"), ("prvversion", "string"), ("proposal_id", "string"), ("productFilename",
    "string"), ("size", "int"), ("parent_obsid", "string"), ("dataRights", "string"), ("calib_level", "int"),
    ("filters", "string"),
)  # fmt: skip
_VOT = {"string": "char", "float": "double", "int": "int"}


def columns_config(name: str) -> dict[str, Any]:
    """``columnsconfig?colConfigId=``: per-column type and label (continuous filters are those of type double)."""
    if name in ("Mast.Caom.Cone", "Mast.Caom.Filtered", "Mast.Caom.Filtered.Position"):
        return {c.name: {"text": c.text, "type": c.type, "vot.datatype": _VOT[c.type], "vot.description": c.text}
                for c in CAOM}  # fmt: skip
    if name == "Mast.Caom.Products":
        return {n: {"text": n, "type": t, "vot.datatype": _VOT[t]} for n, t in PRODUCT_FIELDS}
    raise MastError(f"unknown columns configuration {name!r}", 404)


def _position(text: Any) -> tuple[float, float, float]:
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 3:
        raise MastError(f"malformed position {text!r}: expected 'ra, dec, radius' in degrees")
    try:
        ra, dec, r = (float(p) for p in parts)
    except ValueError:
        raise MastError(f"malformed position {text!r}: expected 'ra, dec, radius' in degrees") from None
    check_position(ra, dec)
    return ra % 360.0, dec, check_radius(r)


def _cone_params(params: dict[str, Any]) -> tuple[float, float, float]:
    try:
        ra, dec = float(params["ra"]), float(params["dec"])
    except KeyError as exc:
        raise MastError(f"Mast.Caom.Cone needs ra, dec and radius; missing {exc.args[0]}") from None
    except (TypeError, ValueError):
        raise MastError(f"malformed position ra={params.get('ra')!r} dec={params.get('dec')!r}: expected degrees")\
            from None
    check_position(ra, dec)
    try:
        r = float(params.get("radius", 0.2))
    except (TypeError, ValueError):
        raise MastError(f"radius must be a number of degrees, not {params.get('radius')!r}") from None
    return ra % 360.0, dec, check_radius(r)


def _filters(filters: Any, where: list[str], args: dict[str, Any]) -> None:
    if not isinstance(filters, list):
        raise MastError("filters must be a list of {paramName, values}")
    for f in filters:
        if not isinstance(f, dict) or "paramName" not in f:
            raise MastError("each filter needs a paramName")
        col = CAOM_BY_NAME.get(str(f["paramName"]).lower())
        if col is None:
            raise MastError(f"unknown filter column {f['paramName']!r}")
        alts = []
        for v in f.get("values") or []:
            key = f"f{len(args)}"
            if isinstance(v, dict):
                try:
                    args[key], args[key + "b"] = float(v["min"]), float(v["max"])
                except (KeyError, TypeError, ValueError):
                    raise MastError(f"filter on {col.name!r}: a range needs numeric min and max") from None
                alts.append(f"{col.sql} BETWEEN :{key} AND :{key}b")
            else:
                args[key] = str(v)
                alts.append(f"{col.sql}::text = :{key}")
        if f.get("freeText"):
            key = f"f{len(args)}"
            args[key] = str(f["freeText"])
            alts.append(f"{col.sql}::text ILIKE :{key}")
        if alts:
            where.append("(" + " OR ".join(alts) + ")")


def _page(request: dict[str, Any]) -> tuple[int, int]:
    try:
        page = max(1, int(request.get("page") or 1))
        size = max(1, min(int(request.get("pagesize") or 50_000), 50_000))
    except (TypeError, ValueError):
        raise MastError("page and pagesize must be integers") from None
    return page, size


def _observations(engine: sa.Engine, service: str, params: dict[str, Any], page: int, size: int) -> dict[str, Any]:
    where: list[str] = []
    args: dict[str, Any] = {}
    if service == "Mast.Caom.Cone":
        args["ra"], args["dec"], args["r"] = _cone_params(params)
    elif service == "Mast.Caom.Filtered.Position":
        args["ra"], args["dec"], args["r"] = _position(params.get("position"))
    if "ra" in args:
        where.append("o.s_region && scircle(spoint(radians(:ra), radians(:dec)), radians(:r))")
    if service != "Mast.Caom.Cone":
        _filters(params.get("filters", []), where, args)
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    cols = ", ".join(f'{c.sql} AS "{c.name}"' for c in CAOM)
    with engine.connect() as conn:
        total = conn.execute(sa.text(f"SELECT count(*) FROM ivoa.obscore o{cond}"), args).scalar_one()
        rows = conn.execute(sa.text(f"SELECT {cols} FROM ivoa.obscore o{cond} ORDER BY o.product_id "
                                    f"LIMIT {size} OFFSET {(page - 1) * size}"), args).mappings().all()
    data = []
    for r in rows:
        row = {k: jsonable(v) for k, v in r.items()}
        row["s_region"] = spoly_stcs(r["s_region"])
        data.append(row)
    fields = [{"name": c.name, "type": c.type} for c in CAOM]
    return _complete(fields, data, page, size, total)


def _complete(fields: list[dict[str, str]], data: list[dict[str, Any]], page: int, size: int,
              total: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / size))
    return {"status": "COMPLETE", "msg": "", "fields": fields, "data": data,
            "paging": {"page": page, "pageSize": size, "pagesFiltered": pages, "rows": len(data),
                       "rowsFiltered": total, "rowsTotal": total}}  # fmt: skip


def _products(engine: sa.Engine, params: dict[str, Any], page: int, size: int) -> dict[str, Any]:
    raw = params.get("obsid")
    ids = [s.strip() for s in str(raw if raw is not None else "").split(",") if s.strip()]
    if not ids:
        raise MastError("Mast.Caom.Products needs obsid")
    bad = [i for i in ids if not i.isdigit()]
    if bad:
        raise MastError(f"unknown obsid {bad[0]!r}: obsids of this archive are product ids (integers)")
    sql = sa.text(
        "SELECT p.product_id, p.obs_id, p.level, p.product_type, p.filter, f.filename, f.size "
        "FROM products p JOIN files f ON f.file_id = p.file_id WHERE p.product_id = ANY(:ids) ORDER BY p.product_id"
    )
    with engine.connect() as conn:
        rows = conn.execute(sql, {"ids": [int(i) for i in ids]}).mappings().all()
    found = {str(r["product_id"]) for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise MastError(f"unknown obsid {missing[0]!r}: no such product in this archive")
    data = [
        {"obsID": str(r["product_id"]), "obs_collection": "ROMAN",
         "dataproduct_type": "cube" if r["level"] <= 1 else "image",
         "obs_id": r["obs_id"] or f"product_{r['product_id']}",
         "description": f"Roman WFI level {r['level']} product ({r['product_type']})", "type": "S",
         "dataURI": f"{URI_PREFIX}{r['product_id']}/{r['filename']}", "productType": "SCIENCE",
         "productGroupDescription": "Minimum Recommended Products",
         "productSubGroupDescription": r["filename"].rsplit("_", 1)[-1].split(".")[0].upper(),
         "productDocumentationURL": "", "project": "romanarchive", "prvversion": "", "proposal_id": "",
         "productFilename": r["filename"], "size": r["size"], "parent_obsid": str(r["product_id"]),
         "dataRights": "PUBLIC", "calib_level": min(int(r["level"]), 4), "filters": r["filter"] or ""}
        for r in rows
    ]  # fmt: skip
    fields = [{"name": n, "type": t} for n, t in PRODUCT_FIELDS]
    start = (page - 1) * size
    return _complete(fields, data[start:start + size], page, size, len(data))


SERVICES = ("Mast.Caom.Cone", "Mast.Caom.Filtered", "Mast.Caom.Filtered.Position", "Mast.Caom.Products")


def invoke(engine: sa.Engine, request: dict[str, Any]) -> dict[str, Any]:
    """Answer one ``/api/v0/invoke`` request; a refused request gives ``{"status": "ERROR", "msg": ...}``."""
    try:
        if not isinstance(request, dict):
            raise MastError("request must be a JSON object")
        service = str(request.get("service", ""))
        if service not in SERVICES:
            raise MastError(f"unknown service {service!r}; this archive offers {', '.join(SERVICES)}")
        params = request.get("params") or {}
        if not isinstance(params, dict):
            raise MastError("params must be a JSON object")
        page, size = _page(request)
        if service == "Mast.Caom.Products":
            return _products(engine, params, page, size)
        return _observations(engine, service, params, page, size)
    except MastError as exc:
        return {"status": "ERROR", "msg": str(exc), "data": [], "fields": []}



def invoke_json(engine: sa.Engine, text: str) -> dict[str, Any]:
    """Answer the form field ``request=<json>`` of ``/api/v0/invoke``: `invoke` of the decoded request, or a status
    ERROR answer when it is not JSON."""
    try:
        request = json.loads(text)
    except ValueError as exc:
        return {"status": "ERROR", "msg": f"request is not JSON: {exc}", "data": [], "fields": []}
    return invoke(engine, request)
