"""The archive's column types: one table, the PostgreSQL type at the root, every other representation derived.

In the spirit of DaCHS's column types, each logical type (the ``type`` of a
:class:`~romanarchive.db.registry.ColumnSpec`, e.g. ``double`` or ``varchar(16)``) is one :class:`ColumnType` row
giving its PostgreSQL type (DDL), SQLAlchemy type, ADQL datatype, VOTable datatype / arraysize / xtype (also what
TAP_SCHEMA and VOSI declare), FITS TFORM, Arrow type and numpy element type. DDL, TAP_SCHEMA, the translator's
catalog, every output format (VOTable, CSV/TSV, FITS, Parquet), TAP uploads, Level 5 and run-time tables all read
this table; nothing else maps types.

Query results are written by *output type*: the logical types whose ``output`` flag is set (an ADQL result column's
datatype is mapped onto one by :func:`from_adql`). Stored-only types are served as one of them (``timestamptz`` as
``timestamp``, ``jsonb`` as ``text``, ``spoly`` footprints as STC-S text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.types import TypeEngine, UserDefinedType

if TYPE_CHECKING:
    import pyarrow as pa

#: xtype of footprint (``spoly``) columns: served as STC-S text (``Polygon ICRS ra1 dec1 ...``, degrees),
#: ObsCore 1.1 style.
REGION_XTYPE = "adql:REGION"
#: DALI geometry xtypes (values are flat arrays of doubles in degrees).
GEOMETRY_XTYPES = ("point", "circle", "polygon")


class SPoly(UserDefinedType[str]):
    """pgsphere spherical polygon."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "spoly"


class SPoint(UserDefinedType[str]):
    """pgsphere spherical point."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "spoint"


class SCircle(UserDefinedType[str]):
    """pgsphere spherical circle."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "scircle"


@dataclass(frozen=True)
class ColumnType:
    """One logical column type and all its representations.

    Attributes
    ----------
    name
        Logical name (a ``ColumnSpec.type``).
    sql
        PostgreSQL type, as written in DDL and CAST.
    sa
        Makes the SQLAlchemy type.
    adql
        ADQL datatype (what the translator sees).
    votable, arraysize, xtype
        VOTable FIELD datatype, arraysize and xtype; TAP_SCHEMA ``columns.datatype/arraysize/xtype`` too.
    fits
        FITS binary-table TFORM of a fixed-width value; ``None``: sized from the data (text ``nA``, polygons
        ``1PD(n)``).
    numpy
        Big-endian numpy dtype of one element of a fixed-width value (BINARY2, FITS, COPY), ``None`` otherwise.
    size
        Elements per fixed-width value (2 for a POINT).
    arrow
        Makes the Arrow type from the ``pyarrow`` module (imported only when asked, see `arrow_type`).
    output
        Whether query results are written as this type (see `from_adql`).
    index
        Index method of an indexed column: ``btree`` or ``gist`` (pgsphere).
    adql_aliases
        Other ADQL/SQL spellings read as this output type (``INT``, ``DOUBLE PRECISION``).
    votable_aliases
        Other VOTable datatypes an upload column of this type may have (``bit`` for boolean).
    """

    name: str
    sql: str
    sa: Callable[[], TypeEngine[Any]]
    adql: str
    votable: str
    arraysize: str | None = None
    xtype: str | None = None
    fits: str | None = None
    numpy: str | None = None
    size: int = 1
    arrow: Callable[[ModuleType], pa.DataType] | None = None
    output: bool = False
    index: str = "btree"
    adql_aliases: tuple[str, ...] = ()
    votable_aliases: tuple[str, ...] = ()

    @property
    def fixed(self) -> bool:
        """Whether values have a fixed width (one numpy record field)."""
        return self.numpy is not None

    @property
    def is_integer(self) -> bool:
        """Whether it is an integer type (needs a NULL sentinel in FITS)."""
        return self.numpy is not None and np.dtype(self.numpy).kind == "i"

    @property
    def null_sentinels(self) -> tuple[int, ...]:
        """FITS ``TNULL`` candidates of an integer type, best first (empty for other types).

        VOTable BINARY2 flags NULLs, FITS needs a value: the writer takes the first candidate absent from the data.
        """
        if not self.is_integer:
            return ()
        info = np.iinfo(np.dtype(self.numpy))
        lo, hi = int(info.min), int(info.max)
        return lo, hi, lo + 1, hi - 1, 0


def _f64_list(n: int | None) -> Callable[[ModuleType], pa.DataType]:
    return lambda pa: pa.list_(pa.float64(), n) if n else pa.list_(pa.float64())


_T = ColumnType


def _string(pa: ModuleType) -> pa.DataType:
    return pa.string()


#: Every logical type. Text is unicodeChar in VOTable: VOTable 1.4 ``char`` is ASCII only and astropy decodes BINARY2
#: char as ASCII, so UTF-8 there would not round-trip. Order matters for reverse look-ups: the first match wins.
TYPES: Mapping[str, ColumnType] = {t.name: t for t in (
    _T("smallint", "smallint", sa.SmallInteger, "SMALLINT", "short", fits="I", numpy=">i2",
       arrow=lambda pa: pa.int16(), output=True, votable_aliases=("unsignedByte",)),
    _T("integer", "integer", sa.Integer, "INTEGER", "int", fits="J", numpy=">i4", arrow=lambda pa: pa.int32(),
       output=True, adql_aliases=("INT",)),
    _T("bigint", "bigint", sa.BigInteger, "BIGINT", "long", fits="K", numpy=">i8", arrow=lambda pa: pa.int64(),
       output=True),
    _T("real", "real", sa.REAL, "REAL", "float", fits="E", numpy=">f4", arrow=lambda pa: pa.float32(), output=True),
    _T("double", "double precision", sa.Double, "DOUBLE", "double", fits="D", numpy=">f8",
       arrow=lambda pa: pa.float64(), output=True, adql_aliases=("DOUBLE PRECISION",)),
    _T("boolean", "boolean", sa.Boolean, "BOOLEAN", "boolean", fits="L", numpy="u1", arrow=lambda pa: pa.bool_(),
       output=True, votable_aliases=("bit",)),
    _T("text", "text", sa.Text, "VARCHAR", "unicodeChar", "*", arrow=_string, output=True,
       adql_aliases=("CHAR", "CLOB"), votable_aliases=("char",)),
    _T("timestamp", "timestamp", sa.DateTime, "TIMESTAMP", "char", "*", "timestamp",
       arrow=lambda pa: pa.timestamp("us"), output=True),
    _T("timestamptz", "timestamptz", lambda: sa.DateTime(timezone=True), "TIMESTAMP", "char", "*", "timestamp",
       arrow=lambda pa: pa.timestamp("us")),
    _T("jsonb", "jsonb", pg.JSONB, "VARCHAR", "unicodeChar", "*", arrow=_string),
    _T("varchar", "varchar", sa.String, "VARCHAR", "unicodeChar", "*", arrow=_string),
    _T("char", "char", sa.CHAR, "CHAR", "unicodeChar", "*", arrow=_string),
    # A footprint: served as STC-S text, declared as an ADQL REGION.
    _T("spoly", "spoly", SPoly, "REGION", "unicodeChar", "*", REGION_XTYPE, arrow=_string,
       index="gist"),
    _T("spoint", "spoint", SPoint, "POINT", "double", "2", "point", fits="2D", numpy=">f8", size=2,
       arrow=_f64_list(2), output=True, index="gist"),
    _T("scircle", "scircle", SCircle, "CIRCLE", "double", "3", "circle", fits="3D", numpy=">f8", size=3,
       arrow=_f64_list(3), output=True, index="gist"),
    # A DALI polygon (ADQL POLYGON results, uploaded polygons): a flat array of vertex coordinates.
    _T("polygon", "spoly", SPoly, "POLYGON", "double", "*", "polygon", arrow=_f64_list(None), output=True,
       index="gist", adql_aliases=("REGION",)),
    # ivo_epoch_prop's DOUBLE[6]: a fixed array of doubles that is not a geometry.
    _T("double6", "double precision[]", lambda: sa.ARRAY(sa.Double), "DOUBLE", "double", "6", fits="6D",
       numpy=">f8", size=6, arrow=_f64_list(6), output=True),
)}  # fmt: skip

_SIZED = re.compile(r"^(varchar|char)\((\d+)\)$")


def column_type(name: str) -> ColumnType:
    """The type of a logical name: a key of `TYPES`, ``varchar(N)`` or ``char(N)``.

    Raises
    ------
    ValueError
        An unknown name.
    """
    t = TYPES.get(name)
    if t is not None:
        return t
    m = _SIZED.match(name)
    if m is None:
        raise ValueError(f"unknown logical type {name!r}")
    base, n = TYPES[m.group(1)], int(m.group(2))
    factory = sa.String if base.name == "varchar" else sa.CHAR
    return replace(base, name=name, sql=f"{base.sql}({n})", sa=lambda: factory(n))


def sql_type(name: str) -> str:
    """PostgreSQL type of a logical type (DDL, CAST)."""
    return column_type(name).sql


def sa_type(name: str) -> TypeEngine[Any]:
    """SQLAlchemy type of a logical type."""
    return column_type(name).sa()


def adql_type(name: str) -> str:
    """ADQL datatype of a logical type."""
    return column_type(name).adql


def votable_type(name: str) -> tuple[str, str | None, str | None]:
    """(VOTable datatype, arraysize, xtype) of a logical type, as FIELDs, TAP_SCHEMA and VOSI declare it."""
    t = column_type(name)
    return t.votable, t.arraysize, t.xtype


def fits_form(name: str) -> str | None:
    """FITS TFORM of a fixed-width logical type (``None``: the writer sizes it from the data)."""
    return column_type(name).fits


def numpy_dtype(name: str, *, big_endian: bool = True) -> np.dtype[Any]:
    """numpy dtype of one element of a fixed-width logical type (big-endian, as BINARY2/FITS/COPY want, or native).

    Raises
    ------
    ValueError
        The type has no fixed width (text, timestamps, polygons).
    """
    t = column_type(name)
    if t.numpy is None:
        raise ValueError(f"logical type {name!r} has no fixed width")
    dtype = np.dtype(t.numpy)
    return dtype if big_endian else dtype.newbyteorder("=")


def arrow_type(name: str) -> pa.DataType:
    """Arrow type of a logical type (imports pyarrow)."""
    import pyarrow as pa

    t = column_type(name)
    if t.arrow is None:
        raise ValueError(f"logical type {name!r} has no Arrow type")
    return t.arrow(pa)


def from_arrow(dtype: pa.DataType) -> str | None:
    """The logical type an Arrow type is stored as (``large_string`` as ``text``), or None when none fits."""
    import pyarrow as pa

    if pa.types.is_large_string(dtype):
        dtype = pa.string()
    if pa.types.is_timestamp(dtype):
        return "timestamptz" if dtype.tz is not None else "timestamp"
    for t in TYPES.values():
        if t.arrow is not None and t.arrow(pa) == dtype:
            return t.name
    return None


def _reverse_adql() -> dict[str, str]:
    out: dict[str, str] = {}
    for t in TYPES.values():
        if t.output:
            for key in (t.adql, *t.adql_aliases):
                out.setdefault(key, t.name)
    return out


_FROM_ADQL = _reverse_adql()


def from_adql(datatype: str, arraysize: str | None = None) -> str:
    """The output type query results of an ADQL datatype are written as (unknown datatypes: ``text``).

    ``DOUBLE`` with a fixed arraysize of an array type (``DOUBLE[6]``) is that array type; a length in the datatype
    (``VARCHAR(16)``) is ignored.
    """
    base = re.sub(r"\(.*\)", "", datatype or "").strip().upper()
    name = _FROM_ADQL.get(base, "text")
    size = (arraysize or "").strip()
    if name == "double" and size:
        for t in TYPES.values():
            if t.output and t.adql == "DOUBLE" and t.xtype is None and t.arraysize == size:
                return t.name
    return name


def from_votable(datatype: str, arraysize: str | None = None, xtype: str | None = None) -> str | None:
    """The logical type an uploaded VOTable column is stored as, or None when it is not supported.

    DALI geometries (xtype point/circle/polygon on float or double arrays) become pgsphere values, timestamps
    (xtype timestamp on char) timestamps, any other char/unicodeChar text, and scalar numbers and booleans their type.
    """
    xtype = (xtype or "").lower() or None
    if xtype in GEOMETRY_XTYPES and datatype in ("double", "float"):
        return next(t.name for t in TYPES.values() if t.output and t.xtype == xtype)
    text = TYPES["text"]
    if datatype in (text.votable, *text.votable_aliases):
        return "timestamp" if xtype == "timestamp" else "text"
    if arraysize not in (None, "", "1"):
        return None
    for t in TYPES.values():
        if t.output and t.arraysize is None and datatype in (t.votable, *t.votable_aliases):
            return t.name
    return None


#: Output types whose values are DALI geometries: name -> element count (None: variable, a polygon).
GEOMETRY: dict[str, int | None] = {t.name: (t.size if t.fixed else None) for t in TYPES.values()
                                   if t.output and t.xtype in GEOMETRY_XTYPES}  # fmt: skip
#: Output types that are fixed arrays of numbers but not geometries (``double6``): name -> element count.
ARRAYS: dict[str, int] = {t.name: t.size for t in TYPES.values()
                          if t.output and t.fixed and t.size > 1 and t.xtype is None}  # fmt: skip
