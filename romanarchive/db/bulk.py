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
    """Encode equal-length numeric arrays as one binary COPY payload (header, rows, trailer).

    Parameters
    ----------
    columns
        Column name -> 1-D array of int16/32/64, float32/64 or bool (no NULLs).

    Returns
    -------
    bytes
        The COPY ... FROM STDIN (FORMAT binary) stream.
    """
    arrays = list(columns.values())
    n = len(arrays[0])
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    for i, arr in enumerate(arrays):
        if len(arr) != n:
            raise ValueError("all columns must have the same length")
        wire = _WIRE.get((arr.dtype.kind, arr.dtype.itemsize))
        if wire is None:
            raise TypeError(f"column {list(columns)[i]!r}: dtype {arr.dtype} has no binary COPY encoding here")
        fields += [(f"len{i}", ">i4"), (f"val{i}", wire)]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["nfields"] = len(arrays)
    for i, arr in enumerate(arrays):
        rec[f"len{i}"] = arr.dtype.itemsize
        rec[f"val{i}"] = arr
    return _HEADER + rec.tobytes() + _TRAILER


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
