"""Load a skycell's catalog into ``objects``: HEALPix indices, stable ids, binary COPY, atomic replacement.

The rows go straight into ``objects`` with one binary COPY (:func:`romanarchive.db.bulk.copy_arrays`), sorted by
``source_id`` (= HEALPix order) in numpy first: ``pos`` is sent in spoint's binary form (migration 0004 gives
pgsphere's type the built-in point's binary I/O), ``release`` and ``skycell`` as text, NaN measurements as NULL.
The caller's transaction holds the delete of the skycell's previous live rows and the COPY, so readers see the old
or the new catalog, never a mix.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sqlalchemy as sa

from romanarchive.catalog.ids import COUNTER_BITS, assign_source_ids
from romanarchive.db.bulk import copy_arrays
from romanarchive.db.tables_catalog import LIVE, OBJECTS
from romanarchive.db.types import numpy_dtype
from romanarchive.sky.footprint import healpix29

_TEXT = {"release", "skycell"}  # constant per load, sent as text
_NOT_NULL_FLOATS = {"ra", "dec"}


def numeric_columns(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The objects columns present in ``columns``, cast to their wire dtypes, in table order.

    NaN in nullable double columns becomes a masked (NULL) cell; ``pos`` and the text columns are not included.
    """
    out: dict[str, np.ndarray] = {}
    for c in OBJECTS.columns:
        if c.name in columns and c.name not in _TEXT and c.name != "pos":
            # numpy's bool (not the type table's 1-byte integer), so that NaN-free flags stay True/False.
            dtype = np.dtype(np.bool_) if c.type == "boolean" else numpy_dtype(c.type, big_endian=False)
            arr = np.asarray(columns[c.name])
            if c.type == "boolean" and arr.dtype.kind == "f":  # NaN is unknown, not True
                nan = np.isnan(arr)
                out[c.name] = np.ma.MaskedArray(np.nan_to_num(arr) != 0, mask=nan) if nan.any() else arr != 0
                continue
            if np.issubdtype(dtype, np.integer) and arr.dtype.kind == "f":
                arr = np.nan_to_num(arr, nan=-1)
            arr = np.ascontiguousarray(arr, dtype=dtype)
            if dtype.kind == "f" and c.name not in _NOT_NULL_FLOATS:
                nan = np.isnan(arr)
                if nan.any():
                    arr = np.ma.MaskedArray(arr, mask=nan)
            out[c.name] = arr
    return out


def spoint_wire(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """pgsphere points of (ra, dec) in degrees, in spoint's binary COPY form (two big-endian float8, radians),
    normalised as pgsphere's own input does (lng in [0, 2 pi), lng = 0 at the poles)."""
    lng = np.radians(np.asarray(ra, dtype=float) % 360.0)
    lng[lng >= 2 * np.pi] -= 2 * np.pi
    lat = np.radians(np.asarray(dec, dtype=float))
    lng[np.abs(lat) >= np.pi / 2] = 0.0
    wire = np.empty(len(lng), dtype=[("lng", ">f8"), ("lat", ">f8")])
    wire["lng"], wire["lat"] = lng, lat
    return wire.view("V16")


def copy_rows(dbapi_conn: object, table: str, data: Mapping[str, np.ndarray], skycell: str, release: str) -> int:
    """Binary-COPY wire-typed ``data`` (from :func:`numeric_columns`) plus ``pos`` and the text columns."""
    n = len(data["ra"])
    extra = {"pos": spoint_wire(np.asarray(data["ra"]), np.asarray(data["dec"])),
             "release": np.full(n, release.encode(), dtype=f"S{max(1, len(release.encode()))}"),
             "skycell": np.full(n, skycell.encode(), dtype=f"S{max(1, len(skycell.encode()))}")}
    return copy_arrays(dbapi_conn, table, {**data, **extra})  # type: ignore[arg-type]


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
    # Ids of neighbouring skycells share HEALPix-12 cells: loads take turns (until commit) so that one load sees the
    # ids another assigned; measuring, the slow part, stays parallel.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('objects:source_id'))"))
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
        # A lost last commit after a crash is rebuilt by re-running the job; no need to wait for the WAL flush.
        conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
        order = np.argsort(ids, kind="stable")
        data = numeric_columns({**{k: np.asarray(v)[order] for k, v in columns.items()}, "source_id": ids[order],
                                "hpx": hpx[order]})
        copy_rows(conn.connection.driver_connection, "objects", data, skycell, release)
    return ids
