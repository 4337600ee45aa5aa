"""TAP_UPLOAD: user VOTables loaded into temporary tables of the query's own session.

``UPLOAD=name,param:part`` names a multipart part holding a VOTable; its first table becomes ``TAP_UPLOAD.name``,
a ``pg_temp`` table that disappears when the query's transaction ends. Rows with a position are stored in HEALPix
order with a q3c index, so joins against catalogs use the index; geometry columns (DALI xtypes) become pgsphere values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import psycopg

from romanarchive.tap.adql import ColumnInfo, TableInfo

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_GEOMETRY_PG = {"point": "spoint", "circle": "scircle", "polygon": "spoly"}
# VOTable datatype -> (PostgreSQL type, ADQL datatype)
_TYPES = {
    "boolean": ("boolean", "BOOLEAN"), "bit": ("boolean", "BOOLEAN"), "unsignedByte": ("smallint", "SMALLINT"),
    "short": ("smallint", "SMALLINT"), "int": ("integer", "INTEGER"), "long": ("bigint", "BIGINT"),
    "float": ("real", "REAL"), "double": ("double precision", "DOUBLE"),
    "char": ("text", "VARCHAR"), "unicodeChar": ("text", "VARCHAR"),
}  # fmt: skip


class UploadError(ValueError):
    """An UPLOAD parameter or table that cannot be used."""


def parse_upload_param(value: str) -> list[tuple[str, str]]:
    """Split ``name,ref[;name,ref...]`` into (table name, reference) pairs.

    Raises
    ------
    romanarchive.tap.service.TapError
        A malformed value or table name.
    """
    from romanarchive.tap.service import TapError

    out = []
    for item in value.split(";"):
        if not item.strip():
            continue
        name, sep, ref = item.partition(",")
        name, ref = name.strip(), ref.strip()
        if not sep or not ref:
            raise TapError(f"UPLOAD must be 'table_name,param:part' or 'table_name,URL', not {item!r}")
        if not _NAME.match(name):
            raise TapError(f"invalid upload table name {name!r}: use letters, digits and underscores")
        if not (ref.startswith("param:") or ref.startswith(("http://", "https://"))):
            raise TapError(f"unsupported upload reference {ref!r}: use param:<part> (inline) or an http(s) URL")
        out.append((name, ref))
    return out


@dataclass
class _Column:
    name: str
    pg: str
    info: ColumnInfo
    convert: Callable[[Any], Any]


def fetch_url(ref: str) -> IO[bytes]:
    """Open an ``http(s)://`` upload reference (TAPRegExt upload-http/https)."""
    import urllib.error
    import urllib.request

    from romanarchive.tap.service import TapError

    if not ref.startswith(("http://", "https://")):
        raise TapError(f"unsupported upload reference {ref!r}")
    try:
        return urllib.request.urlopen(ref, timeout=60)  # type: ignore[no-any-return]
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TapError(f"cannot read upload {ref}: {exc}") from None


def _text_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _geometry_text(kind: str) -> Callable[[Any], Any]:
    def conv(v: Any) -> Any:
        vals = [float(x) for x in np.asarray(v, float).ravel()]
        if any(x != x for x in vals):
            return None
        if kind == "point":
            return f"({vals[0]!r}d,{vals[1]!r}d)"
        if kind == "circle":
            return f"<({vals[0]!r}d,{vals[1]!r}d),{vals[2]!r}d>"
        return "{" + ",".join(f"({a!r}d,{b!r}d)" for a, b in zip(vals[::2], vals[1::2], strict=True)) + "}"

    return conv


def _columns(fields: Sequence[Any]) -> list[_Column]:
    from romanarchive.tap.service import TapError

    cols = []
    seen: set[str] = set()
    for f in fields:
        name = str(f.name)
        if name.casefold() in seen:
            raise TapError(f"upload has two columns named {name!r}")
        seen.add(name.casefold())
        datatype = str(f.datatype)
        xtype = (f.xtype or "").lower() or None
        arraysize = f.arraysize
        meta = {"unit": str(f.unit or ""), "ucd": f.ucd or "", "utype": f.utype or "",
                "description": str(f.description or "")}  # fmt: skip
        if xtype in _GEOMETRY_PG and datatype in ("double", "float"):
            cols.append(_Column(name, _GEOMETRY_PG[xtype],
                                ColumnInfo(name, xtype.upper(), xtype=xtype, arraysize=arraysize, **meta),
                                _geometry_text(xtype)))  # fmt: skip
        elif xtype == "timestamp" and datatype in ("char", "unicodeChar"):
            cols.append(_Column(name, "timestamp", ColumnInfo(name, "TIMESTAMP", xtype="timestamp", arraysize="*",
                                                                **meta), _text_value))  # fmt: skip
        elif datatype in ("char", "unicodeChar"):
            cols.append(_Column(name, "text", ColumnInfo(name, "VARCHAR", arraysize="*", **meta), _text_value))
        elif datatype in _TYPES and (arraysize in (None, "", "1")):
            pg, adql = _TYPES[datatype]
            conv: Callable[[Any], Any] = bool if pg == "boolean" else (int if adql in ("SMALLINT", "INTEGER",
                                                                                      "BIGINT") else float)
            cols.append(_Column(name, pg, ColumnInfo(name, adql, **meta), conv))
        else:
            raise TapError(f"upload column {name!r}: unsupported type {datatype}[{arraysize or ''}]"
                           f"{' xtype ' + xtype if xtype else ''}")
    return cols


def _radec(cols: list[_Column]) -> tuple[int, int] | None:
    """Indexes of the main (ra, dec) columns, by UCD first, then by name."""
    def pick(ucd: str, names: tuple[str, ...]) -> int | None:
        nums = [i for i, c in enumerate(cols) if c.pg in ("double precision", "real")]
        for i in nums:
            if (cols[i].info.ucd or "").lower().startswith(ucd) and "meta.main" in cols[i].info.ucd.lower():
                return i
        for i in nums:
            if (cols[i].info.ucd or "").lower().split(";")[0] == ucd:
                return i
        for i in nums:
            if cols[i].name.lower() in names:
                return i
        return None

    ra, dec = pick("pos.eq.ra", ("ra", "raj2000", "ra_icrs", "s_ra")), pick("pos.eq.dec", ("dec", "dej2000",
                                                                                            "de_icrs", "s_dec"))
    return (ra, dec) if ra is not None and dec is not None else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_uploads(conn: psycopg.Connection[Any], uploads: list[tuple[str, str]], opener: Callable[[str], IO[bytes]],
                 limit_bytes: int) -> list[TableInfo]:
    """Create and fill one temporary table per upload inside the connection's current transaction.

    Parameters
    ----------
    conn
        The query's connection, in its (still writable) transaction, already as the query role.
    uploads
        (name, reference) pairs from the UPLOAD parameter.
    opener
        Opens a reference's VOTable.
    limit_bytes
        Largest accepted upload.

    Returns
    -------
    list of TableInfo
        The ``TAP_UPLOAD.<name>`` tables for the translator.
    """
    from astropy.io.votable import parse

    from romanarchive.tap.service import TapError

    tables = []
    for name, ref in uploads:
        with opener(ref) as fh:
            data = fh.read(limit_bytes + 1)
        if len(data) > limit_bytes:
            raise TapError(f"upload {name} is larger than the limit of {limit_bytes} bytes", 413)
        try:
            import io
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                vot = parse(io.BytesIO(data), verify="ignore")
            table = vot.get_first_table()
        except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
            raise TapError(f"upload {name} is not a readable VOTable: {exc}") from None
        cols = _columns(table.fields)
        if not cols:
            raise TapError(f"upload {name} has no columns")
        sql_name = f"tap_upload_{name.lower()}"
        ddl = ", ".join(f"{_quote(c.name)} {c.pg}" for c in cols)
        conn.execute(f"CREATE TEMP TABLE {sql_name} ({ddl}) ON COMMIT DROP")
        arr = table.array
        n = len(arr)
        order = np.arange(n)
        radec = _radec(cols)
        if radec is not None and n:
            order = _healpix_order(arr, cols[radec[0]].name, cols[radec[1]].name)
        columns = []
        for c in cols:
            col = arr[c.name]
            mask: Any = np.ma.getmaskarray(col)
            if mask.ndim > 1:
                mask = mask.all(axis=tuple(range(1, mask.ndim)))
            values = np.ma.getdata(col)
            columns.append((values, mask, c.convert))
        with conn.cursor().copy(f"COPY {sql_name} ({', '.join(_quote(c.name) for c in cols)}) FROM STDIN") as cp:
            for i in order:
                cp.write_row([None if m[i] else conv(v[i]) for v, m, conv in columns])
        q3c: list[tuple[str, str]] = []
        if radec is not None:
            ra, dec = _quote(cols[radec[0]].name), _quote(cols[radec[1]].name)
            conn.execute(f"CREATE INDEX ON {sql_name} (q3c_ang2ipix({ra}, {dec}))")
            q3c = [(cols[radec[0]].name, cols[radec[1]].name)]
        conn.execute(f"ANALYZE {sql_name}")
        regions = [c.name for c in cols if c.pg == "spoly"]
        # rows: a join of the upload with an indexed archive table scans the upload and probes the archive's index.
        tables.append(TableInfo(f"TAP_UPLOAD.{name}", f'pg_temp."{sql_name}"', [c.info for c in cols], q3c=q3c,
                                region_columns=regions, rows=n))  # fmt: skip
    return tables


def _healpix_order(arr: Any, ra: str, dec: str) -> np.ndarray:
    """Row order by HEALPix (nested, order 29) of the position; rows without one go last."""
    import astropy.units as u
    import cdshealpix

    lon: np.ndarray = np.ma.filled(np.ma.asarray(arr[ra], float), np.nan)
    lat: np.ndarray = np.ma.filled(np.ma.asarray(arr[dec], float), np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90)
    idx = np.full(len(lon), np.iinfo(np.uint64).max, np.uint64)
    if ok.any():
        idx[ok] = cdshealpix.lonlat_to_healpix(lon[ok] % 360 * u.deg, lat[ok] * u.deg, 29).astype(np.uint64)
    return np.argsort(idx, kind="stable")
