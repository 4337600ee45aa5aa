"""Binary COPY of Arrow columns that may hold NULLs and text, vectorised with numpy.

Columns without NULLs or text are encoded by `romanarchive.db.bulk.encode_binary_copy` (fixed-width rows).
Otherwise rows have variable width; each field's bytes are scattered to their offsets in one buffer per chunk, with
no Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from romanarchive.db.bulk import encode_binary_copy

_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)
_WIRE = {pa.int16(): ">i2", pa.int32(): ">i4", pa.int64(): ">i8", pa.float32(): ">f4", pa.float64(): ">f8",
         pa.bool_(): "?"}  # fmt: skip


def _field(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(per-row payload sizes with -1 for NULL, concatenated payload bytes) of one column."""
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_string(arr.type):
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] is not None else \
            np.empty(0, np.uint8)
        sizes = np.diff(offsets).astype(np.int64)
        payload = data[offsets[0]: offsets[-1]]
        if not valid.all():  # NULL slots may hold bytes in principle: keep only the valid rows' bytes
            keep = np.repeat(valid, sizes)
            payload = payload[keep]
        return np.where(valid, sizes, -1), payload
    wire = np.dtype(_WIRE[arr.type])
    values = arr.fill_null(0 if not pa.types.is_boolean(arr.type) else False).to_numpy(zero_copy_only=False)
    payload = values[valid].astype(wire).view(np.uint8)
    return np.where(valid, wire.itemsize, -1).astype(np.int64), payload


def encode_rows(columns: Mapping[str, pa.Array]) -> bytes:
    """One binary COPY payload (header, rows, trailer) of equal-length Arrow columns."""
    fields = [_field(a) for a in columns.values()]
    n = len(next(iter(columns.values())))
    psize = [np.maximum(s, 0) for s, _ in fields]
    row_len = 2 + sum(4 + p for p in psize)
    row_start = np.concatenate(([0], np.cumsum(row_len)[:-1]))
    buf = np.empty(int(row_len.sum()), dtype=np.uint8)
    nf = np.array([len(fields)], dtype=">i2").view(np.uint8)
    buf[row_start[:, None] + np.arange(2)] = nf
    pos = row_start + 2
    for (sizes, payload), p in zip(fields, psize, strict=True):
        buf[pos[:, None] + np.arange(4)] = sizes.astype(">i4").view(np.uint8).reshape(n, 4)
        if payload.size:
            src_start = np.concatenate(([0], np.cumsum(p)[:-1]))
            idx = np.repeat(pos + 4 - src_start, p) + np.arange(payload.size)
            buf[idx] = payload
        pos = pos + 4 + p
    return _HEADER + buf.tobytes() + _TRAILER


def copy_columns(conn: psycopg.Connection, table: str, columns: Mapping[str, pa.Array],
                 chunk_rows: int = 25_000, freeze: bool = False) -> int:
    """Load Arrow columns into ``table`` with one binary COPY (the caller commits).

    Chunks are encoded (`romanarchive.db.bulk.encode_binary_copy` when fixed-width and NULL-free, else
    `encode_rows`) while a writer thread streams the previous ones, so encoding overlaps the server's work.

    Parameters
    ----------
    conn
        Open psycopg connection.
    table
        Target table, ``schema.name``.
    columns
        Column name -> Arrow array of int16/32/64, float32/64, bool or string, NULLs allowed.
    chunk_rows
        Rows per encoded piece (bounds memory; pieces of about a megabyte stay in cache and start the stream
        sooner: 25k rows load 1M 10-column rows ~10% faster than 100k).
    freeze
        ``COPY ... FREEZE``: load the rows already frozen (only for a table created in this transaction), so no
        later reader or vacuum rewrites every page to set hint bits.

    Returns
    -------
    int
        Rows loaded.
    """
    arrays = list(columns.values())
    fixed = all(a.null_count == 0 and a.type in _WIRE for a in arrays)
    names = list(columns)
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary{})").format(
        sql.Identifier(*table.split(".")), sql.SQL(", ").join(sql.Identifier(c) for c in names),
        sql.SQL(", FREEZE" if freeze else ""))
    n = len(arrays[0])
    with conn.cursor() as cur, cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as cp:
        for start in range(0, n, chunk_rows):
            part = {k: v.slice(start, chunk_rows) for k, v in columns.items()}
            if fixed:
                payload = encode_binary_copy({k: v.to_numpy(zero_copy_only=False) for k, v in part.items()})
            else:
                payload = encode_rows(part)
            # One COPY stream: the header once at the start, the trailer once at the end.
            body = payload[len(_HEADER): -len(_TRAILER)]
            cp.write((_HEADER if start == 0 else b"") + body + (_TRAILER if start + chunk_rows >= n else b""))
    return n
