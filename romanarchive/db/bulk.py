"""Bulk loading with PostgreSQL's binary COPY, encoded with numpy (no per-row Python)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import psycopg
from psycopg import sql

_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)

# numpy kind/size -> big-endian wire type of the matching PostgreSQL column type.
_WIRE = {("i", 2): ">i2", ("i", 4): ">i4", ("i", 8): ">i8", ("u", 2): ">i2", ("u", 4): ">i4", ("u", 8): ">i8",
         ("f", 4): ">f4", ("f", 8): ">f8", ("b", 1): "?"}


def encode_binary_copy(columns: Mapping[str, np.ndarray]) -> bytes:
    """Encode equal-length arrays as one binary COPY payload (header, rows, trailer).

    Parameters
    ----------
    columns
        Column name -> 1-D array of int16/32/64, float32/64, bool, fixed-width bytes (``S``, for text and varchar
        columns; trailing NUL padding is not sent) or raw values already in the type's binary wire format (``V``,
        sent whole). Masked cells of a ``numpy.ma`` array are sent as NULL.

    Returns
    -------
    bytes
        The COPY ... FROM STDIN (FORMAT binary) stream.
    """
    arrays = [np.ma.getdata(v) for v in columns.values()]
    masks = [np.ma.getmaskarray(v) if np.ma.is_masked(v) else None for v in columns.values()]
    n = len(arrays[0])
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    for i, arr in enumerate(arrays):
        if len(arr) != n:
            raise ValueError("all columns must have the same length")
        kind = arr.dtype.kind
        wire = f"{kind}{arr.dtype.itemsize}" if kind in "SV" else _WIRE.get((kind, arr.dtype.itemsize))
        if wire is None:
            raise TypeError(f"column {list(columns)[i]!r}: dtype {arr.dtype} has no binary COPY encoding here")
        fields += [(f"len{i}", ">i4"), (f"val{i}", wire)]
    dtype = np.dtype(fields)
    rec = np.empty(n, dtype=dtype)
    rec["nfields"] = len(arrays)
    # Variable-length cells (NULLs, short strings) are written at full width, then their unused bytes dropped.
    drop: list[tuple[int, int, np.ndarray]] = []
    for i, arr in enumerate(arrays):
        size = arr.dtype.itemsize
        rec[f"val{i}"] = arr
        length = np.char.str_len(arr).astype(np.int32) if arr.dtype.kind == "S" else np.full(n, size, np.int32)
        mask = masks[i]
        if mask is not None:
            length[mask] = -1
        rec[f"len{i}"] = length
        if (length < size).any():
            drop.append((int(dtype.fields[f"val{i}"][1]), size, np.clip(length, 0, None)))  # type: ignore[index]
    if not drop:
        return _HEADER + rec.tobytes() + _TRAILER
    raw = rec.view(np.uint8).reshape(n, dtype.itemsize)
    keep = np.ones(raw.shape, dtype=bool)
    for offset, size, length in drop:
        keep[:, offset:offset + size] = np.arange(size)[None, :] < length[:, None]
    return _HEADER + raw[keep].tobytes() + _TRAILER


def copy_arrays(conn: psycopg.Connection, table: str, columns: Mapping[str, np.ndarray],
                chunk_rows: int = 1_000_000) -> int:
    """Load arrays into ``table`` with binary COPY, in chunks of bounded memory.

    Parameters
    ----------
    conn
        Open psycopg connection (the caller commits).
    table
        Target table, optionally schema-qualified.
    columns
        Column name -> array, as for :func:`encode_binary_copy`.
    chunk_rows
        Rows per COPY statement.

    Returns
    -------
    int
        Rows loaded.
    """
    names = list(columns)
    ident = sql.Identifier(*table.split("."))
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        ident, sql.SQL(", ").join(sql.Identifier(c) for c in names))
    n = len(next(iter(columns.values())))
    with conn.cursor() as cur:
        for start in range(0, n, chunk_rows):
            part = {k: v[start:start + chunk_rows] for k, v in columns.items()}
            with cur.copy(stmt) as cp:
                cp.write(encode_binary_copy(part))
    return n
