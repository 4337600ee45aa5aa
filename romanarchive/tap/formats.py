"""Streaming serialisers for TAP query results: VOTable (BINARY2, TABLEDATA), CSV, TSV, FITS and Parquet.

Every format is produced from an iterable of row batches (a DB cursor's ``fetchmany``) without holding the whole
result: VOTable, CSV and TSV emit output as each batch arrives; FITS and Parquet, whose layouts need sizes or a
footer known only at the end, spool to a temporary file (disk beyond a small in-memory size) and stream it after.
Geometry values arrive as DALI arrays (POINT ``(ra, dec)``, CIRCLE ``(ra, dec, r)``, POLYGON flat ``(ra1, dec1,
...)``) and NULL as ``None``.
"""

from __future__ import annotations

import base64
import csv
import io
import pickle
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np

from romanarchive.db.types import arrow_type, column_type, fits_form
from romanarchive.tap.votable import (
    ARRAYS,
    FIXED,
    FLOATS,
    GEOMETRY,
    INTEGERS,
    Column,
    ColumnLike,
    array_values,
    error_votable,
    fixed_array,
    iso,
    normalise,
    text,
)
from romanarchive.tap.votable import write_votable as _write_votable

__all__ = ["FORMATS", "MEDIA_TYPES", "ColumnLike", "error_votable", "resolve_format", "stream"]

DEFAULT_FORMAT = "votable/binary2"
FORMATS: dict[str, str] = {
    "votable": DEFAULT_FORMAT,
    "application/x-votable+xml": DEFAULT_FORMAT,
    "text/xml": DEFAULT_FORMAT,
    "votable/b2": DEFAULT_FORMAT,
    "votable/binary2": DEFAULT_FORMAT,
    "application/x-votable+xml;serialization=binary2": DEFAULT_FORMAT,
    "votable/td": "votable/tabledata",
    "votable/tabledata": "votable/tabledata",
    "application/x-votable+xml;serialization=tabledata": "votable/tabledata",
    "csv": "csv",
    "text/csv": "csv",
    "tsv": "tsv",
    "text/tab-separated-values": "tsv",
    "fits": "fits",
    "application/fits": "fits",
    "parquet": "parquet",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
MEDIA_TYPES: dict[str, str] = {
    "votable/binary2": "application/x-votable+xml",
    "votable/tabledata": "application/x-votable+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "fits": "application/fits",
    "parquet": "application/vnd.apache.parquet",
}
CHUNK = 1 << 16  # output pieces are coalesced to at least this many bytes (fewer, larger writes to the socket)
SPOOL_MEMORY = 32 << 20  # FITS/Parquet spool in memory up to this size, then on disk
PARQUET_ROW_GROUP = 65536  # fetchmany batches are small; buffer them into row groups of about this many rows


def resolve_format(value: str | None) -> str:
    """Canonical format name for a RESPONSEFORMAT value (case and spaces around ``;`` ignored).

    Raises
    ------
    ValueError
        The value names no supported format.
    """
    if not value or not value.strip():
        return DEFAULT_FORMAT
    key = ";".join(part.strip() for part in value.strip().lower().split(";"))
    try:
        return FORMATS[key]
    except KeyError:
        raise ValueError(f"unsupported RESPONSEFORMAT {value!r}; supported: {', '.join(sorted(FORMATS))}") from None


class _Limit:
    """Batches truncated to ``limit`` rows; ``overflow`` tells whether any row beyond the limit existed."""

    def __init__(self, batches: Iterable[Sequence[Any]], limit: int | None):
        self.batches = batches
        self.limit = limit
        self.overflow = False

    def __iter__(self) -> Iterator[Sequence[Any]]:
        remaining = self.limit
        it = iter(self.batches)
        for rows in it:
            if not len(rows):
                continue
            if remaining is None:
                yield rows
                continue
            if len(rows) > remaining:  # also true with remaining == 0: a row beyond the limit exists
                self.overflow = True
                if remaining:
                    yield rows[:remaining]
                close = getattr(it, "close", None)  # stop the producer (a generator over a cursor) early
                if close is not None:
                    close()
                return
            remaining -= len(rows)
            yield rows


def _coalesce(pieces: Iterable[bytes], size: int = CHUNK) -> Iterator[bytes]:
    buf: list[bytes] = []
    n = 0
    for piece in pieces:
        buf.append(piece)
        n += len(piece)
        if n >= size:
            yield b"".join(buf)
            buf, n = [], 0
    if buf:
        yield b"".join(buf)


def stream(
    fmt: str,
    columns: Sequence[ColumnLike],
    batches: Iterable[Sequence[tuple]],
    *,
    overflow_after: int | None = None,
    infos: Sequence[tuple[str, str]] = (),
    table_name: str = "result",
) -> Iterator[bytes]:
    """Serialise a query result: an iterator of output pieces (at least `CHUNK` bytes, but the last).

    Nothing is read from ``batches`` before the first ``next``; then output is produced as batches arrive.

    Parameters
    ----------
    fmt
        A RESPONSEFORMAT value or canonical name (see `FORMATS`).
    columns
        Output column descriptions (``adql.ColumnInfo`` or anything with the same attributes).
    batches
        Row batches; each row a tuple of Python values in column order.
    overflow_after
        Write at most this many rows; if more arrive, a VOTable ends with ``QUERY_STATUS=OVERFLOW`` after the
        TABLE, other formats are silently truncated. The producer is closed once the overflow is seen.
    infos
        (name, value) INFOs for the VOTable RESOURCE (e.g. ``("QUERY", adql)``); ignored by other formats.
    table_name
        Table name (VOTable TABLE name, FITS EXTNAME).

    Raises
    ------
    ValueError
        Unknown format, raised by this call itself (not deferred to iteration) so a service can answer 400 first.
    """
    canonical = resolve_format(fmt)
    cols = normalise(columns)
    limited = _Limit(batches, overflow_after)
    if canonical.startswith("votable/"):
        pieces = _write_votable(
            cols, limited, lambda: limited.overflow, binary2=canonical == DEFAULT_FORMAT, infos=infos,
            table_name=table_name,
        )  # fmt: skip
    elif canonical in ("csv", "tsv"):
        pieces = _write_delimited(cols, limited, canonical == "tsv")
    elif canonical == "fits":
        pieces = _write_fits(cols, limited, table_name)
    else:
        pieces = _write_parquet(cols, limited)
    return _coalesce(pieces)


# ------------------------------------------------------------------------------------------------------ CSV and TSV
def _num(v: Any) -> str:
    return repr(float(v))


def _tsv_escape(v: Any) -> str:
    # text/tab-separated-values cannot quote: escape the separators instead
    return text(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _to_text(kind: str, tsv: bool) -> Any:
    """Per-value converter for kinds written as text, or None for kinds Arrow formats itself."""
    if kind in GEOMETRY:
        return lambda v: " ".join(map(_num, v))  # DALI: space-separated numbers
    if kind in ARRAYS:
        return lambda v: " ".join(map(_num, array_values(v)))  # a NULL element as nan
    if kind == "timestamp":
        return iso  # Arrow would write a space, not ISO 8601's T
    if kind == "text":
        return _tsv_escape if tsv else text
    return None


def _write_delimited(cols: Sequence[Column], batches: Iterable[Sequence[Any]], tsv: bool) -> Iterator[bytes]:
    """CSV (RFC 4180: CRLF, strings quoted) or TSV (LF, backslash escapes, no quoting); NULL is an empty field.

    Numbers are formatted by Arrow's C++ code: Python's float ``repr`` alone costs more than our whole per-row
    budget. Floats are written as the shortest round-trip decimal (an integral value without ``.0``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if tsv:
        header = "\t".join(c.name.replace("\t", " ") for c in cols) + "\n"
    else:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow([c.name for c in cols])
        header = buf.getvalue()
        opts = pacsv.WriteOptions(include_header=False, eol="\r\n", quoting_style="needed")
    yield header.encode("utf-8")
    convs = [_to_text(c.kind, tsv) for c in cols]
    types = [pa.string() if f is not None else arrow_type(c.kind) for c, f in zip(cols, convs, strict=True)]
    names = [f"c{i}" for i in range(len(cols))]  # the header is written above; Arrow dislikes duplicate names
    for rows in batches:
        arrays = []
        for i, col in enumerate(zip(*rows, strict=True)):
            f = convs[i]
            if f is not None:
                arrays.append(pa.array([None if v is None else f(v) for v in col], pa.string()))
            else:
                arrays.append(_arrow_array(cols[i].kind, col, types[i]))
        if not tsv:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=names), sink, opts)
            yield sink.getvalue().to_pybytes()
            continue
        # Arrow's writer refuses quotes in unquoted output, which TSV text may hold: join here, Arrow formats numbers
        strings = [pc.cast(a, pa.string()).fill_null("").to_pylist() for a in arrays]
        yield ("\n".join(map("\t".join, zip(*strings, strict=True))) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------------------------------------- FITS
def _fits_card_text(value: str) -> str:
    return value.encode("ascii", "replace").decode("ascii")  # header cards are ASCII only


def _write_fits(cols: Sequence[Column], batches: Iterable[Sequence[Any]], table_name: str) -> Iterator[bytes]:
    """FITS: a primary HDU and one BINTABLE, in bounded memory.

    Pass 1 pickles the batches to a spool file while measuring string widths and the polygon heap; pass 2 writes the
    fixed-width rows (strings as UTF-8 in ``nA``, polygons as ``P`` descriptors); pass 3 writes the heap. FITS
    ``A`` is strictly ASCII: non-ASCII text is written as UTF-8, which astropy reads back.
    """
    from astropy.io import fits

    kinds = [c.kind for c in cols]
    strs = [i for i, k in enumerate(kinds) if k in ("text", "timestamp")]
    polys = [i for i, k in enumerate(kinds) if k == "polygon"]
    ints = [i for i, k in enumerate(kinds) if k in INTEGERS]
    widths = dict.fromkeys(strs, 1)
    maxlen = dict.fromkeys(polys, 0)
    # TNULL candidates per integer column; a value that occurs in the data is struck off (pass 1 sees every value)
    candidates = {i: _tnull_candidates(kinds[i]) for i in ints}
    nullable: set[int] = set()
    nrows = heap = 0
    with tempfile.SpooledTemporaryFile(SPOOL_MEMORY) as spool:
        for rows in batches:
            encoded = list(rows)
            columns: list[Any] = list(zip(*encoded, strict=True))
            for i in strs:  # encode once here so pass 2 reads bytes back
                f = text if kinds[i] == "text" else iso
                columns[i] = [b"" if v is None else f(v).encode("utf-8") for v in columns[i]]
                widths[i] = max(widths[i], max(map(len, columns[i])))
            if strs:
                encoded = list(zip(*columns, strict=True))
            for i in polys:
                lens = [0 if v is None else len(v) for v in columns[i]]
                maxlen[i] = max(maxlen[i], max(lens))
                heap += 8 * sum(lens)
            for i in ints:
                arr, mask = fixed_array(kinds[i], columns[i], len(encoded))
                if mask is not None:
                    nullable.add(i)
                    arr = arr[~mask]
                candidates[i] = [c for c in candidates[i] if not (arr == c).any()]
            pickle.dump(encoded, spool, protocol=pickle.HIGHEST_PROTOCOL)
            nrows += len(encoded)
        # With every candidate taken (pathological) the first one is used: such values then read back as NULL.
        tnull = {i: (candidates[i] or _tnull_candidates(kinds[i]))[0] for i in nullable}
        desc = "Q" if heap >= 2**31 else "P"
        forms = []
        for i, k in enumerate(kinds):
            forms.append(f"{widths[i]}A" if i in widths else f"1{desc}D({maxlen[i]})" if i in maxlen else fits_form(k))
        fields: list[tuple[Any, ...]] = []
        for i, k in enumerate(kinds):
            if i in widths:
                fields.append((f"c{i}", f"S{widths[i]}"))
            elif i in maxlen:
                fields.append((f"c{i}", f">i{4 if desc == 'P' else 8}", (2,)))
            else:
                base, size = FIXED[k]
                fields.append((f"c{i}", base, (size,)) if size > 1 else (f"c{i}", base))
        dtype = np.dtype(fields)

        hdr = fits.Header()
        hdr["XTENSION"] = "BINTABLE"
        hdr["BITPIX"] = 8
        hdr["NAXIS"] = 2
        hdr["NAXIS1"] = dtype.itemsize
        hdr["NAXIS2"] = nrows
        hdr["PCOUNT"] = heap
        hdr["GCOUNT"] = 1
        hdr["TFIELDS"] = len(cols)
        for n, (c, form) in enumerate(zip(cols, forms, strict=True), 1):
            hdr[f"TTYPE{n}"] = _fits_card_text(c.name)
            hdr[f"TFORM{n}"] = form
            if c.unit:
                hdr[f"TUNIT{n}"] = _fits_card_text(c.unit)
            if n - 1 in tnull:
                hdr[f"TNULL{n}"] = tnull[n - 1]
            if c.ucd:
                hdr[f"TUCD{n}"] = _fits_card_text(c.ucd)  # the STILTS/TOPCAT convention
            if c.description:
                hdr[f"TCOMM{n}"] = _fits_card_text(c.description)
            if c.xtype:
                hdr[f"TXTYP{n}"] = _fits_card_text(c.xtype)
        hdr["EXTNAME"] = _fits_card_text(table_name)
        yield fits.PrimaryHDU().header.tostring().encode("ascii")
        yield hdr.tostring().encode("ascii")

        spool.seek(0)
        offset = 0
        for rows in _batches_from(spool, nrows):
            rec = np.zeros(len(rows), dtype)
            columns = list(zip(*rows, strict=True))
            for i, k in enumerate(kinds):
                if i in widths:
                    rec[f"c{i}"] = columns[i]
                elif i in maxlen:
                    counts = np.fromiter((0 if v is None else len(v) for v in columns[i]), np.int64, len(rows))
                    rec[f"c{i}"][:, 0] = counts
                    ends = offset + 8 * np.cumsum(counts)
                    rec[f"c{i}"][:, 1] = ends - 8 * counts
                    offset = int(ends[-1])
                else:
                    rec[f"c{i}"] = _fits_fixed(k, columns[i], len(rows), tnull.get(i, 0))
            yield rec.tobytes()
        if polys:  # the heap, in the order the descriptors were assigned: per batch, column by column
            spool.seek(0)
            for rows in _batches_from(spool, nrows):
                vals = [x for i in polys for r in rows if r[i] for x in r[i]]
                if vals:
                    yield np.array(vals, ">f8").tobytes()
    size = dtype.itemsize * nrows + heap
    if size % 2880:
        yield b"\0" * (2880 - size % 2880)


def _tnull_candidates(kind: str) -> list[int]:
    return list(column_type(kind).null_sentinels)


def _fits_fixed(kind: str, col: Sequence[Any], n: int, null: int) -> np.ndarray:
    arr, mask = fixed_array(kind, col, n)
    if mask is not None:
        if kind in INTEGERS:
            arr[mask] = null
        elif kind == "boolean":
            arr[mask] = 0  # FITS logical null
    return arr


def _batches_from(spool: IO[bytes], nrows: int) -> Iterator[list[Any]]:
    seen = 0
    while seen < nrows:
        rows = pickle.load(spool)
        seen += len(rows)
        yield rows


# ---------------------------------------------------------------------------------------------------------- Parquet
def _arrow_array(kind: str, col: Sequence[Any], typ: Any) -> Any:
    """An Arrow array of one batch column; values Arrow refuses (Decimal, bool as int) are coerced first."""
    import pyarrow as pa

    if kind == "text":
        col = [None if v is None else text(v) for v in col]
    elif kind == "timestamp":
        col = [None if v is None else _utc_naive(v) for v in col]
    try:
        return pa.array(col, typ)
    except (TypeError, ValueError):  # ArrowTypeError, ArrowInvalid
        conv = int if kind in INTEGERS else float if kind in FLOATS else bool if kind == "boolean" else None
        if conv is None:
            raise
        return pa.array([None if v is None else conv(v) for v in col], typ)


def _utc_naive(v: Any) -> Any:
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if isinstance(v, datetime) and v.tzinfo is not None:
        v = v.astimezone(UTC).replace(tzinfo=None)
    return v


def _write_parquet(cols: Sequence[Column], batches: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """Parquet via ``pyarrow.parquet.ParquetWriter``: batches are buffered into row groups, written to a spool file
    (the footer comes last, so nothing can be sent before the end) and the file is then streamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = []
    for c in cols:
        meta = {k: v for k, v in (("unit", c.unit), ("ucd", c.ucd), ("utype", c.utype), ("description", c.description),
                                  ("xtype", c.xtype or "")) if v}  # fmt: skip
        fields.append(pa.field(c.name, arrow_type(c.kind), nullable=True, metadata=meta or None))
    schema = pa.schema(fields)
    kinds = [c.kind for c in cols]
    with tempfile.SpooledTemporaryFile(SPOOL_MEMORY) as spool:
        writer = pq.ParquetWriter(spool, schema)
        pending: list[Any] = []
        npending = 0
        strlen = {i: 1 for i, k in enumerate(kinds) if k == "text"}
        for rows in batches:
            columns: list[Any] = list(zip(*rows, strict=True))
            arrays = []
            for i, k in enumerate(kinds):
                col = columns[i]
                if k == "text":
                    col = [None if v is None else text(v) for v in col]
                    strlen[i] = max(strlen[i], max((len(v) for v in col if v is not None), default=0))
                elif k in FIXED and FIXED[k][1] > 1 and None in col:
                    nan = (np.nan,) * FIXED[k][1]  # astropy cannot read a NULL fixed-size list: NaNs, as in VOTable
                    col = [nan if v is None else v for v in col]
                if k in ARRAYS:
                    col = [None if v is None else array_values(v) for v in col]
                arrays.append(_arrow_array(k, col, schema.field(i).type))
            pending.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
            npending += len(rows)
            if npending >= PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=npending)
                pending, npending = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=npending)
        if strlen:  # astropy sizes string columns from these schema keys (without them it scans, and fails on NULL)
            lens = {f"table::len::{cols[i].name}": str(n) for i, n in strlen.items()}
            # Lengths are known only now; the Arrow schema is stored in the footer, so it can still be replaced.
            final = base64.b64encode(schema.with_metadata(lens).serialize().to_pybytes()).decode("ascii")
            writer.add_key_value_metadata({"ARROW:schema": final})
        writer.close()
        spool.seek(0)
        while piece := spool.read(1 << 20):
            yield piece
