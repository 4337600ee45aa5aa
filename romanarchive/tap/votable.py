"""Streaming VOTable 1.4 writer (BINARY2 and TABLEDATA) and the column model shared by every output format.

Rows arrive in batches (a DB cursor's ``fetchmany``) and each batch is encoded and emitted before the next is read,
so memory stays bounded by one batch. BINARY2 batches are encoded column-wise with numpy: a batch whose columns are
all fixed-width becomes one structured array; otherwise each column is turned into a list of per-row byte strings
and the rows are joined in C (``map(b"".join, zip(...))``).
"""

from __future__ import annotations

import binascii
import logging
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

from romanarchive.db.types import ARRAYS, GEOMETRY, TYPES, from_adql, votable_type

__all__ = ["ARRAYS", "FIXED", "GEOMETRY", "Column", "ColumnLike", "normalise", "write_votable"]

log = logging.getLogger(__name__)

NAMESPACE = "http://www.ivoa.net/xml/VOTable/v1.3"
#: Set by the server around a request: (column name, function of that FIELD's ID returning service-descriptor
#: RESOURCEs). A result holding the column gets ``ID`` on its FIELD and the descriptors after the results RESOURCE,
#: so clients find e.g. DataLink (DataLink 1.1 section 4). Unset: documents are unchanged.
SERVICE_DESCRIPTORS: ContextVar[tuple[str, Callable[[str], str]] | None] = ContextVar("service_descriptors",
                                                                                      default=None)


@runtime_checkable
class ColumnLike(Protocol):
    """What the serialisers need to know about an output column (matches ``adql.ColumnInfo``)."""

    name: str
    datatype: str
    unit: str
    ucd: str
    utype: str
    description: str
    xtype: str | None
    arraysize: str | None


# Output columns are written by output type (`romanarchive.db.types`): their "kind" is that type's name.
#: Fixed-width output types: big-endian numpy dtype (as BINARY2 and FITS want) and element count.
FIXED: dict[str, tuple[str, int]] = {t.name: (t.numpy, t.size) for t in TYPES.values() if t.output and t.numpy}
#: NULL cells of fixed-width columns are encoded as this value (and flagged).
_FILL: dict[str, Any] = {
    k: (np.nan,) * n if n > 1 else np.nan if np.dtype(d).kind == "f" else False if k == "boolean" else 0
    for k, (d, n) in FIXED.items()
}
#: Integer output types (TABLEDATA writes them as integers, FITS needs a NULL sentinel).
INTEGERS = frozenset(t.name for t in TYPES.values() if t.output and t.is_integer)
#: Scalar floating-point output types.
FLOATS = frozenset(k for k, (d, n) in FIXED.items() if n == 1 and np.dtype(d).kind == "f")


@dataclass(frozen=True)
class Column:
    """A normalised output column; ``kind`` is its output type (a `romanarchive.db.types.TYPES` name)."""

    name: str
    kind: str
    unit: str
    ucd: str
    utype: str
    description: str
    xtype: str | None


def normalise(columns: Sequence[ColumnLike]) -> list[Column]:
    """Map caller column descriptions onto output types (`romanarchive.db.types.from_adql`)."""
    out = []
    for c in columns:
        kind = from_adql(c.datatype, getattr(c, "arraysize", None))
        unit = getattr(c, "unit", "") or ("deg" if kind in GEOMETRY else "")
        xtype = TYPES[kind].xtype or getattr(c, "xtype", None) or None
        out.append(
            Column(str(c.name), kind, unit, getattr(c, "ucd", "") or "", getattr(c, "utype", "") or "",
                   getattr(c, "description", "") or "", xtype)
        )  # fmt: skip
    return out


def iso(value: Any) -> str:
    """DALI timestamp text: ISO 8601, aware datetimes converted to UTC (DALI timestamps are UTC, no zone)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def text(value: Any) -> str:
    """Text for a string column: bytes are decoded as UTF-8, other objects use ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def fixed_array(kind: str, col: Sequence[Any], n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert one fixed-width column of a batch to a big-endian array.

    Returns
    -------
    tuple
        (array of shape (n,) or (n, k), null mask or None when the column has no NULL).
    """
    mask = None
    if None in col:
        mask = np.fromiter((v is None for v in col), bool, n)
        fill = _FILL[kind]
        col = [fill if v is None else v for v in col]
    if kind in ARRAYS:
        col = [array_values(v) for v in col]
    dtype, size = FIXED[kind]
    if kind == "boolean":
        arr = np.where(np.array(col, bool), np.uint8(84), np.uint8(70)).astype("u1")  # 'T' / 'F'
        if mask is not None:
            arr[mask] = 63  # '?': the BINARY2 boolean null
        return arr, mask
    if size > 1:
        return np.array(col, dtype).reshape(n, size), mask
    try:
        return np.fromiter(col, dtype, n), mask  # faster than np.array for a sequence of Python scalars
    except (TypeError, ValueError):  # e.g. Decimal: np.array converts through int()/float()
        return np.array(col, dtype), mask


def array_values(value: Sequence[Any]) -> Sequence[Any]:
    """The elements of an `ARRAYS` value, a NULL element as NaN."""
    return [np.nan if x is None else x for x in value] if None in value else value


# --------------------------------------------------------------------------------------------------------------- XML
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """Escape character data; characters XML cannot carry become U+FFFD."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _ILLEGAL_XML.sub("\ufffd", value)


def xml_attr(value: str) -> str:
    """Escape an attribute value (double-quoted); newlines and tabs survive attribute normalisation."""
    value = xml_text(value).replace('"', "&quot;")
    return value.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")


def _info(name: str, value: str, content: str | None = None) -> str:
    if content is None:
        return f'<INFO name="{xml_attr(name)}" value="{xml_attr(value)}"/>\n'
    return f'<INFO name="{xml_attr(name)}" value="{xml_attr(value)}">{xml_text(content)}</INFO>\n'


def _field(c: Column, with_id: bool = False) -> str:
    datatype, arraysize, _ = votable_type(c.kind)
    attrs = [("ID", c.name if with_id else None), ("name", c.name), ("datatype", datatype), ("arraysize", arraysize),
             ("unit", c.unit), ("ucd", c.ucd), ("utype", c.utype), ("xtype", c.xtype)]  # fmt: skip
    text_ = " ".join(f'{k}="{xml_attr(v)}"' for k, v in attrs if v)
    if c.description:
        return f"<FIELD {text_}>\n  <DESCRIPTION>{xml_text(c.description)}</DESCRIPTION>\n</FIELD>\n"
    return f"<FIELD {text_}/>\n"


_PROLOGUE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<VOTABLE version="1.4" xmlns="{NAMESPACE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    f' xsi:schemaLocation="{NAMESPACE} http://www.ivoa.net/xml/VOTable/VOTable-1.4.xsd">\n'
    '<RESOURCE type="results">\n'
)


def _head(infos: Sequence[tuple[str, str]]) -> str:
    return _PROLOGUE + _info("QUERY_STATUS", "OK") + "".join(_info(k, v) for k, v in infos)


def error_votable(message: str, *, infos: Sequence[tuple[str, str]] = ()) -> bytes:
    """A DALI error document: one ``QUERY_STATUS=ERROR`` INFO holding the message, and no TABLE.

    Parameters
    ----------
    message
        Human-readable error text.
    infos
        Extra (name, value) INFOs written after the status (names other than QUERY_STATUS).
    """
    doc = (
        _PROLOGUE
        + _info("QUERY_STATUS", "ERROR", message)
        + "".join(_info(k, v) for k, v in infos if k != "QUERY_STATUS")
        + "</RESOURCE>\n</VOTABLE>\n"
    )
    return doc.encode("utf-8")


# ----------------------------------------------------------------------------------------------------------- BINARY2
_U32 = struct.Struct(">I")
_EMPTY = _U32.pack(0)


def _var_bytes(kind: str, col: Sequence[Any]) -> list[bytes]:
    """Per-row BINARY2 encodings of a variable-length column (a NULL is an empty array)."""
    if kind == "text":
        out = []
        for v in col:
            if v is None:
                out.append(_EMPTY)
            else:
                e = text(v).encode("utf_16_be", "surrogatepass")  # UTF-16 code units: astropy decodes utf_16_be
                out.append(_U32.pack(len(e) >> 1) + e)
        return out
    if kind == "timestamp":
        return [_EMPTY if v is None else _U32.pack(len(s := iso(v).encode("ascii", "replace"))) + s for v in col]
    # polygon: element count then big-endian doubles
    return [_EMPTY if v is None else _U32.pack(len(v)) + np.asarray(v, ">f8").tobytes() for v in col]


class Binary2Encoder:
    """Encode batches of rows as BINARY2 records (null-flag bitmap + fields)."""

    def __init__(self, columns: Sequence[Column]):
        self.kinds = [c.kind for c in columns]
        self.nflag = (len(columns) + 7) // 8
        self.all_fixed = all(k in FIXED for k in self.kinds)
        fields: list[tuple[Any, ...]] = [("flags", "u1", (self.nflag,))]
        for i, k in enumerate(self.kinds):
            if k in FIXED:
                dtype, size = FIXED[k]
                fields.append((f"c{i}", dtype, (size,)) if size > 1 else (f"c{i}", dtype))
        self.dtype = np.dtype(fields)

    def encode(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """Encode one batch."""
        n = len(rows)
        cols = list(zip(*rows, strict=True))
        masks = np.zeros((n, len(self.kinds)), bool)
        if self.all_fixed:
            rec = np.zeros(n, self.dtype)  # flags all clear
            nulls = False
            for i, k in enumerate(self.kinds):
                arr, m = fixed_array(k, cols[i], n)
                rec[f"c{i}"] = arr
                if m is not None:
                    masks[:, i] = m
                    nulls = True
            if nulls:
                rec["flags"] = np.packbits(masks, axis=1)  # MSB first = first field, as BINARY2 wants
            return rec.tobytes()
        parts: list[Sequence[bytes]] = [[]]
        for i, k in enumerate(self.kinds):
            if k in FIXED:
                arr, m = fixed_array(k, cols[i], n)
                arr = np.ascontiguousarray(arr)
                parts.append(arr.view(f"V{arr.itemsize * FIXED[k][1]}").reshape(n).tolist())
            else:
                parts.append(_var_bytes(k, cols[i]))
                m = np.fromiter((v is None for v in cols[i]), bool, n) if None in cols[i] else None
            if m is not None:
                masks[:, i] = m
        parts[0] = np.packbits(masks, axis=1).view(f"V{self.nflag}").reshape(n).tolist()
        return b"".join(map(b"".join, zip(*parts, strict=True)))


# --------------------------------------------------------------------------------------------------------- TABLEDATA
def _float_text(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (np.inf, -np.inf):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _td_formatter(kind: str) -> Callable[[Any], str]:
    if kind in INTEGERS:
        return lambda v: str(int(v))
    if kind in FLOATS:
        return _float_text
    if kind == "boolean":
        return lambda v: "T" if v else "F"
    if kind in GEOMETRY:
        return lambda v: " ".join(map(_float_text, v))
    if kind in ARRAYS:
        return lambda v: " ".join(map(_float_text, array_values(v)))
    if kind == "timestamp":
        return lambda v: xml_text(iso(v))
    return lambda v: xml_text(text(v))


def _tabledata(formatters: Sequence[Callable[[Any], str]], nulls: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cols = []
    for f, null, col in zip(formatters, nulls, zip(*rows, strict=True), strict=True):
        cols.append([null if v is None else f"<TD>{f(v)}</TD>" for v in col])
    return "".join(f"<TR>{''.join(r)}</TR>\n" for r in zip(*cols, strict=True))


# ------------------------------------------------------------------------------------------------------------ stream
def write_votable(
    columns: Sequence[Column],
    batches: Iterable[Sequence[Sequence[Any]]],
    overflowed: Callable[[], bool],
    *,
    binary2: bool = True,
    infos: Sequence[tuple[str, str]] = (),
    table_name: str = "result",
) -> Iterator[bytes]:
    """Yield a VOTable document, one piece per batch.

    Parameters
    ----------
    columns
        Normalised output columns.
    batches
        Row batches, already limited to what should be written.
    overflowed
        Called once the batches are exhausted: whether to mark the result as truncated.
    binary2
        BINARY2 serialisation if true, else TABLEDATA.
    infos
        (name, value) INFOs written after ``QUERY_STATUS=OK``.
    table_name
        The TABLE's name.

    Notes
    -----
    An exception raised while reading ``batches`` (the database failing mid-stream) ends the table and is reported
    as a trailing ``QUERY_STATUS=ERROR`` INFO, as DALI asks once output has begun; it is logged, not re-raised.
    """
    hook = SERVICE_DESCRIPTORS.get()
    ref = hook[0] if hook is not None and any(c.name == hook[0] for c in columns) else None
    head = (_head(infos) + f'<TABLE name="{xml_attr(table_name)}">\n'
            + "".join(_field(c, c.name == ref) for c in columns))  # fmt: skip
    trailer = hook[1](ref) if hook is not None and ref is not None else ""
    status = ""
    if binary2:
        yield (head + '<DATA><BINARY2><STREAM encoding="base64">\n').encode("utf-8")
        enc = Binary2Encoder(columns)
        carry = b""  # base64 needs 3-byte groups: the tail of one batch is encoded with the next
        try:
            for rows in batches:
                data = carry + enc.encode(rows)
                cut = len(data) - len(data) % 3
                carry = data[cut:]
                if cut:
                    yield binascii.b2a_base64(memoryview(data)[:cut])
        except Exception as exc:  # noqa: BLE001 - reported in the document, see Notes
            log.exception("query failed while streaming")
            status = _info("QUERY_STATUS", "ERROR", f"query failed while streaming: {exc}")
        tail = (binascii.b2a_base64(carry) if carry else b"") + b"</STREAM></BINARY2></DATA>\n"
    else:
        yield (head + "<DATA><TABLEDATA>\n").encode("utf-8")
        formatters = [_td_formatter(c.kind) for c in columns]
        # Empty TD is NULL; fixed-size geometry gets NaNs instead, which votlint (3.4) also accepts for xtype point
        sizes = {**GEOMETRY, **ARRAYS}
        nulls = ["<TD>" + " ".join(["NaN"] * n) + "</TD>" if (n := sizes.get(c.kind)) else "<TD/>" for c in columns]
        try:
            for rows in batches:
                yield _tabledata(formatters, nulls, rows).encode("utf-8")
        except Exception as exc:  # noqa: BLE001 - reported in the document, see Notes
            log.exception("query failed while streaming")
            status = _info("QUERY_STATUS", "ERROR", f"query failed while streaming: {exc}")
        tail = b"</TABLEDATA></DATA>\n"
    if not status and overflowed():
        status = _info("QUERY_STATUS", "OVERFLOW")
    yield tail + ("</TABLE>\n" + status + "</RESOURCE>\n" + trailer + "</VOTABLE>\n").encode("utf-8")
