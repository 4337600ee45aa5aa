"""Load a skycell's catalog into ``objects``: HEALPix indices, stable ids, binary COPY, atomic replacement.

pgsphere has no binary I/O for ``spoint`` and binary COPY has no text constants, so the numeric columns are
COPied (binary) into a temporary staging table and moved with one ``INSERT ... SELECT`` that adds ``pos``,
``release`` and ``skycell``, turns NaN into NULL and writes rows in ``source_id`` (= HEALPix) order. The caller's
transaction holds the delete of the skycell's previous live rows and the insert, so readers see the old or the new
catalog, never a mix.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sqlalchemy as sa

from romanarchive.catalog.ids import COUNTER_BITS, assign_source_ids
from romanarchive.db.bulk import copy_arrays
from romanarchive.db.tables_catalog import LIVE, OBJECTS
from romanarchive.sky.footprint import healpix29

_SQL_TYPE = {"double": ("double precision", np.float64), "real": ("real", np.float32),
             "integer": ("integer", np.int32), "smallint": ("smallint", np.int16), "bigint": ("bigint", np.int64),
             "boolean": ("boolean", np.bool_)}
_ADDED = {"pos", "release", "skycell"}  # filled by the INSERT ... SELECT, not COPied


def numeric_columns(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The objects columns present in ``columns``, cast to their wire dtypes, in table order."""
    out: dict[str, np.ndarray] = {}
    for c in OBJECTS.columns:
        if c.name in columns and c.name not in _ADDED:
            dtype = _SQL_TYPE[c.type][1]
            arr = np.asarray(columns[c.name])
            if np.issubdtype(dtype, np.integer) and arr.dtype.kind == "f":
                arr = np.nan_to_num(arr, nan=-1)
            out[c.name] = np.ascontiguousarray(arr, dtype=dtype)
    return out


def _stage(conn: sa.Connection, names: list[str]) -> None:
    cols = ", ".join(f'"{n}" {_SQL_TYPE[OBJECTS.column(n).type][0]}' for n in names)
    conn.execute(sa.text(f"CREATE TEMP TABLE _objects_stage ({cols}) ON COMMIT DROP"))


def insert_staged(conn: sa.Connection, names: list[str], skycell: str, release: str) -> int:
    """Move the staging table into ``objects`` in source_id order; returns rows inserted."""
    def expr(n: str) -> str:
        return f"NULLIF(\"{n}\", 'NaN')" if OBJECTS.column(n).type == "double" and n not in ("ra", "dec") else f'"{n}"'

    target = ", ".join(f'"{n}"' for n in names)
    select = ", ".join(expr(n) for n in names)
    res = conn.execute(sa.text(
        f"INSERT INTO objects ({target}, pos, release, skycell) SELECT {select}, "
        f"spoint(radians(ra), radians(dec)), :release, :skycell FROM _objects_stage ORDER BY source_id"
    ), {"release": release, "skycell": skycell})
    conn.execute(sa.text("DROP TABLE _objects_stage"))
    return int(res.rowcount)


def replace_skycell(conn: sa.Connection, skycell: str, columns: Mapping[str, np.ndarray],
                    release: str = LIVE) -> np.ndarray:
    """Replace the live catalog rows of one skycell with ``columns`` (inside the caller's transaction).

    Parameters
    ----------
    conn
        Connection in a transaction (committed by the caller).
    skycell
        Skycell name.
    columns
        ``ra``, ``dec`` and any measurement columns of the ``objects`` table (as :func:`measure` returns).
    release
        Release tag of the rows (``live`` for new catalogs).

    Returns
    -------
    numpy.ndarray
        The rows' source ids, in the order of ``columns``.
    """
    ra = np.asarray(columns["ra"], dtype=float)
    dec = np.asarray(columns["dec"], dtype=float)
    if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
        raise ValueError("catalog positions must be finite")
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"objects:{skycell}"})
    hpx = healpix29(ra, dec) if len(ra) else np.empty(0, np.int64)
    prev = conn.execute(sa.text("SELECT source_id, ra, dec FROM objects WHERE release = :r AND skycell = :s"),
                        {"r": release, "s": skycell}).all()
    taken: set[int] = set()
    if len(hpx):
        cells = np.unique(hpx >> 4)
        lo, hi = int(cells.min()) << COUNTER_BITS, (int(cells.max()) + 1) << COUNTER_BITS
        rows = conn.execute(sa.text(
            "SELECT source_id FROM objects WHERE release = :r AND skycell IS DISTINCT FROM :s "
            "AND source_id >= :lo AND source_id < :hi"), {"r": release, "s": skycell, "lo": lo, "hi": hi}).scalars()
        cellset = set(cells.tolist())
        taken = {int(v) for v in rows if int(v) >> COUNTER_BITS in cellset}
    ids = assign_source_ids(hpx, ra, dec, np.array([r.source_id for r in prev], np.int64),
                            np.array([r.ra for r in prev]), np.array([r.dec for r in prev]), taken)
    conn.execute(sa.text("DELETE FROM objects WHERE release = :r AND skycell = :s"), {"r": release, "s": skycell})
    if len(ids):
        data = numeric_columns({**columns, "source_id": ids, "hpx": hpx})
        names = list(data)
        _stage(conn, names)
        copy_arrays(conn.connection.driver_connection, "_objects_stage", data)  # type: ignore[arg-type]
        insert_staged(conn, names, skycell, release)
    return ids
