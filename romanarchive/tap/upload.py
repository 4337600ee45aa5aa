"""TAP_UPLOAD: user VOTables loaded into temporary tables of the query's own session.

``UPLOAD=name,param:part`` names a multipart part holding a VOTable; its first table becomes ``TAP_UPLOAD.name``,
a ``pg_temp`` table that disappears when the query's transaction ends. Rows with a position are stored in HEALPix
order with a q3c index, so joins against catalogs use the index; geometry columns (DALI xtypes) become pgsphere values.
"""

from __future__ import annotations

import io
import re
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import psycopg

from romanarchive.db.registry import ColumnSpec, TableSpec, create_index_ddl, create_table_ddl
from romanarchive.db.types import GEOMETRY, TYPES, from_votable
from romanarchive.tap.adql import ColumnInfo, TableInfo
from romanarchive.tap.errors import TapError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class UploadError(ValueError):
    """An UPLOAD parameter or table that cannot be used."""


def parse_upload_param(value: str) -> list[tuple[str, str]]:
    """Split ``name,ref[;name,ref...]`` into (table name, reference) pairs.

    Raises
    ------
    romanarchive.tap.errors.TapError
        A malformed value or table name.
    """
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
    spec: ColumnSpec
    info: ColumnInfo
    convert: Callable[[Any], Any]

    @property
    def name(self) -> str:
        return self.spec.name


def fetch_url(ref: str) -> IO[bytes]:
    """Open an ``http(s)://`` upload reference (TAPRegExt upload-http/https)."""
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


def _converter(logical: str) -> Callable[[Any], Any]:
    """Turns an uploaded value (numpy scalar or array) into what COPY writes for the column's type."""
    t = TYPES[logical]
    if logical in GEOMETRY:
        return _geometry_text(str(t.xtype))
    if logical == "boolean":
        return bool
    if t.is_integer:
        return int
    if t.numpy is not None:
        return float
    return _text_value


def _columns(fields: Sequence[Any]) -> list[_Column]:
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
        logical = from_votable(datatype, arraysize, xtype)
        if logical is None:
            raise TapError(f"upload column {name!r}: unsupported type {datatype}[{arraysize or ''}]"
                           f"{' xtype ' + xtype if xtype else ''}")
        t = TYPES[logical]
        spec = ColumnSpec(name, logical, str(f.description or ""), unit=str(f.unit or ""), ucd=f.ucd or "",
                          utype=f.utype or "")
        # A geometry keeps the arraysize the upload declared.
        info = ColumnInfo(name, t.adql, spec.unit, spec.ucd, spec.utype, spec.description, t.xtype,
                          arraysize if logical in GEOMETRY else t.arraysize)
        cols.append(_Column(spec, info, _converter(logical)))
    return cols


def _radec(cols: list[_Column]) -> tuple[int, int] | None:
    """Indexes of the main (ra, dec) columns, by UCD first, then by name."""
    def pick(ucd: str, names: tuple[str, ...]) -> int | None:
        nums = [i for i, c in enumerate(cols) if c.spec.type in ("double", "real")]
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
    from astropy.io.votable import parse  # heavy: only when a query carries an upload

    tables = []
    for name, ref in uploads:
        with opener(ref) as fh:
            data = fh.read(limit_bytes + 1)
        if len(data) > limit_bytes:
            raise TapError(f"upload {name} is larger than the limit of {limit_bytes} bytes", 413)
        try:
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
        radec = _radec(cols)
        spec = TableSpec(sql_name, f"TAP_UPLOAD.{name}", tuple(c.spec for c in cols),
                         q3c=((cols[radec[0]].name, cols[radec[1]].name),) if radec is not None else ())
        for ddl in create_table_ddl(spec, temporary=True, indexes=False, comments=False):
            conn.execute(ddl)
        arr = table.array
        n = len(arr)
        order = np.arange(n)
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
        for ddl in create_index_ddl(spec):  # after the load: one index build instead of per-row maintenance
            conn.execute(ddl)
        conn.execute(f"ANALYZE {sql_name}")
        q3c = list(spec.q3c)
        regions = [c.name for c in cols if c.spec.type == "polygon"]
        # rows: a join of the upload with an indexed archive table scans the upload and probes the archive's index.
        tables.append(TableInfo(f"TAP_UPLOAD.{name}", f'pg_temp."{sql_name}"', [c.info for c in cols], q3c=q3c,
                                region_columns=regions, rows=n))  # fmt: skip
    return tables


def _healpix_order(arr: Any, ra: str, dec: str) -> np.ndarray:
    """Row order by HEALPix (nested, order 29) of the position; rows without one go last."""
    import astropy.units as u  # heavy: only when an upload has positions
    import cdshealpix

    lon: np.ndarray = np.ma.filled(np.ma.asarray(arr[ra], float), np.nan)
    lat: np.ndarray = np.ma.filled(np.ma.asarray(arr[dec], float), np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90)
    idx = np.full(len(lon), np.iinfo(np.uint64).max, np.uint64)
    if ok.any():
        idx[ok] = cdshealpix.lonlat_to_healpix(lon[ok] % 360 * u.deg, lat[ok] * u.deg, 29).astype(np.uint64)
    return np.argsort(idx, kind="stable")
