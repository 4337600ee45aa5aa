"""Inputs of a bulk cross-match: published archive tables (through cached, HEALPix-ordered Parquet copies) or files.

A table's copy lives under ``<home>/xmatch/cache/<schema>.<table>.parquet`` with columns ``id``, ``ra``, ``dec``,
``hpx`` in HEALPix order. Whether it is current is decided without reading the table: a statement-level trigger
(``xmatch_bump_version``, migration 0006) counts every INSERT, UPDATE, DELETE and TRUNCATE of the table in
``xmatch_versions``; the copy records the table's oid and that counter as read in the same REPEATABLE READ snapshot
as its rows, and is reused only while both are unchanged (a dropped and re-created table has a new oid). The trigger
is installed the first time a table is matched. Views cannot carry the trigger and are read afresh every time.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from romanarchive.db.registry import TableSpec
from romanarchive.jobs import wiring
from romanarchive.xmatch.healpix import ORDER, check_positions, healpix_nested

_META = b"romanarchive.xmatch"
#: Usual names of RA and Dec columns, tried (case-insensitively) when no UCD says which columns they are.
RA_NAMES = ("ra", "raj2000", "ra_icrs", "radeg", "ra_deg", "s_ra", "alpha")
DEC_NAMES = ("dec", "dej2000", "de_icrs", "dedeg", "dec_deg", "s_dec", "delta", "decl")
_ID_NAMES = ("id", "source_id", "objid", "object_id", "hip", "row_id")
FILE_SUFFIXES = (".csv", ".ecsv", ".vot", ".xml", ".votable", ".fits", ".fit", ".fits.gz", ".parquet", ".pq")


class InputError(ValueError):
    """An input that cannot be cross-matched (unknown table, no positions, bad values)."""


@dataclass
class Positions:
    """One side of a cross-match, in HEALPix order.

    Attributes
    ----------
    label
        Published table name or file name.
    ids
        Row identifiers (the table's integer key, a file's id column, else the file row number).
    ra, dec
        Degrees.
    hpx
        Order-29 nested HEALPix index, ascending.
    id_name
        What ``ids`` are.
    """

    label: str
    ids: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    hpx: np.ndarray
    id_name: str

    def __len__(self) -> int:
        return len(self.ra)


def _sorted(label: str, ids: np.ndarray, ra: np.ndarray, dec: np.ndarray, id_name: str) -> Positions:
    check_positions(ra, dec, label)
    ra = np.mod(ra, 360.0)
    hpx = healpix_nested(ra, dec)
    order = np.argsort(hpx, kind="stable")
    return Positions(label, ids[order], ra[order], dec[order], hpx[order], id_name)


def is_file(name: str) -> bool:
    """Whether a LEFT/RIGHT argument names a file rather than a published table."""
    return Path(name).exists() or name.lower().endswith(FILE_SUFFIXES)


def _pick(names: list[str], ucds: dict[str, str], ucd: str, candidates: tuple[str, ...]) -> str | None:
    for n in names:
        if ucds.get(n, "").lower().startswith(ucd) and "meta.main" in ucds.get(n, "").lower():
            return n
    for n in names:
        if ucds.get(n, "").lower().split(";")[0] == ucd:
            return n
    lower = {n.lower(): n for n in names}
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def read_file(path: str, columns: tuple[str, str] | None = None) -> Positions:
    """Positions of a CSV, VOTable, FITS or Parquet table file.

    Parameters
    ----------
    path
        The file.
    columns
        (ra, dec) column names; found by UCD or usual names when not given.
    """
    from astropy.table import Table

    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    fmt = None
    low = p.name.lower()
    if low.endswith((".csv",)):
        fmt = "ascii.csv"
    elif low.endswith((".vot", ".xml", ".votable")):
        fmt = "votable"
    elif low.endswith((".parquet", ".pq")):
        fmt = "parquet"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = Table.read(p, format=fmt) if fmt else Table.read(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file
        raise InputError(f"{path}: not a readable table ({exc})") from None
    names = list(table.colnames)
    ucds = {n: str(getattr(table[n].info, "meta", {}).get("ucd", "") or getattr(table[n], "ucd", "") or "")
            for n in names}
    if columns:
        ra_name, dec_name = columns
        for c in columns:
            if c not in names:
                raise InputError(f"{path}: no column {c!r} (columns: {', '.join(names)})")
    else:
        ra_name = _pick(names, ucds, "pos.eq.ra", RA_NAMES)  # type: ignore[assignment]
        dec_name = _pick(names, ucds, "pos.eq.dec", DEC_NAMES)  # type: ignore[assignment]
        if ra_name is None or dec_name is None:
            raise InputError(f"{path}: no RA/Dec columns found (columns: {', '.join(names)}); name them "
                             "with --left-cols/--right-cols RA,DEC")
    try:
        ra = np.ma.filled(np.ma.asarray(table[ra_name], np.float64), np.nan)
        dec = np.ma.filled(np.ma.asarray(table[dec_name], np.float64), np.nan)
    except (TypeError, ValueError):
        raise InputError(f"{path}: columns {ra_name}/{dec_name} are not numeric") from None
    id_name = _pick(names, {}, "", _ID_NAMES)
    ids = np.arange(len(table), dtype=np.int64)
    if id_name is not None and table[id_name].dtype.kind in "iu":
        ids = np.asarray(table[id_name], np.int64)
    else:
        id_name = "row"
    return _sorted(p.name, ids, ra, dec, id_name)


# ------------------------------------------------------------------------------------------------- archive tables
@dataclass(frozen=True)
class TableSource:
    """A published table's position and id columns."""

    name: str
    sql_name: str
    ra: str
    dec: str
    id: str | None
    hpx: str | None
    is_view: bool
    fixed: tuple[tuple[str, str], ...] = ()  # key columns held fixed (e.g. release = 'live') and their values

    @property
    def key(self) -> dict[str, Any]:
        """The full primary key of a row: the id column plus the fixed key columns and their values."""
        return {"id": self.id, "fixed": dict(self.fixed)}

    def where(self) -> str:
        """SQL condition selecting the rows of the fixed key values (TRUE when none)."""
        return " AND ".join(f"{_q(c)} = '{v.replace(chr(39), chr(39) * 2)}'" for c, v in self.fixed) or "TRUE"


def published_specs(engine: sa.Engine | None) -> list[TableSpec]:
    """The tables TAP publishes (but TAP_SCHEMA's own), run-time ones included when the archive is given."""
    if engine is None:
        return wiring.static_published()
    with engine.connect() as conn:
        return wiring.published_tables(conn)


def find_table(engine: sa.Engine | None, name: str) -> TableSpec:
    """A published table by its ADQL name (case-insensitive; unqualified when unique), or `InputError`."""
    specs = published_specs(engine)
    hits = [s for s in specs if s.adql_name.casefold() == name.casefold()]
    if not hits and "." not in name:
        # An unqualified name designates the one published table of that name.
        hits = [s for s in specs if s.name.casefold() == name.casefold()]
        hits = hits if len(hits) == 1 else []
    if not hits:
        raise InputError(f"unknown table {name!r}: not a published archive table (see TAP_SCHEMA.tables)")
    return hits[0]


def table_source(engine: sa.Engine | None, name: str, release: str | None = None) -> TableSource:
    """Resolve a published table name; raise `InputError` when unknown or without positions.

    A row's id is the table's integer primary-key column. When the key has more columns, an integer alone does not
    name a row: a ``release`` key column is held fixed (``release``, default ``'live'``), so that ids are unique
    among the rows read and the match records the full key; any other extra key column is refused.
    """
    entry = find_table(engine, name)
    columns = entry.public_columns
    cols = {c.name: c for c in columns}
    if entry.q3c:
        ra, dec = entry.q3c[0]
    elif entry.spoint_of:
        ra, dec = entry.spoint_of
    else:
        ucds = {c.name: c.ucd for c in columns}
        numeric = [c.name for c in columns if c.type in ("double", "real")]
        ra, dec = _pick(numeric, ucds, "pos.eq.ra", RA_NAMES), _pick(numeric, ucds, "pos.eq.dec", DEC_NAMES)  # type: ignore[assignment]
        if ra is None or dec is None:
            raise InputError(f"table {entry.adql_name} has no RA/Dec columns")
    pk = [c for c in columns if c.primary_key]
    keys = [c.name for c in pk if c.type in ("bigint", "integer", "smallint")]
    fixed: list[tuple[str, str]] = []
    for c in pk:
        if keys and c.name == keys[0]:
            continue
        if c.name != "release":
            raise InputError(f"table {entry.adql_name} has the composite key ({', '.join(x.name for x in pk)}): only a "
                             "release key column can be held fixed")
        fixed.append(("release", release or "live"))
    if release is not None and not fixed:
        raise InputError(f"--release {release}: table {entry.adql_name} has no release key column")
    hpx = "hpx" if "hpx" in cols and cols["hpx"].type == "bigint" else None
    return TableSource(entry.adql_name, entry.sql_name, ra, dec, keys[0] if keys else None, hpx,
                       entry.table_type == "view", tuple(fixed))


def _q(name: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in name.split("."))


def copy_out(conn: sa.Connection, query: str, types: list[str]) -> list[np.ndarray]:
    """Run ``COPY (query) TO STDOUT`` in binary and decode its fixed-width, NULL-free columns with numpy.

    Parameters
    ----------
    conn
        Connection (its transaction decides the snapshot).
    query
        A SELECT whose columns are ``int8`` or ``float8`` with no NULLs.
    types
        numpy wire types of the columns, e.g. ``[">i8", ">f8"]``.
    """
    raw: Any = conn.connection.driver_connection
    buf = bytearray()
    with raw.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as cp:
        for block in cp:
            buf += block
    ext = int.from_bytes(buf[15:19], "big")
    start = 19 + ext
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, t in enumerate(types):
        fields += [(f"l{i}", ">i4"), (f"v{i}", t)]
    dtype = np.dtype(fields)
    count = (len(buf) - start - 2) // dtype.itemsize
    rec = np.frombuffer(buf, dtype, count=count, offset=start)
    return [rec[f"v{i}"].astype(t.replace(">", "<")) for i, t in enumerate(types)]


def track_writes(conn: sa.Connection, sql_name: str) -> None:
    """Install the write-counting trigger on a table (idempotent) and give it an ``xmatch_versions`` row.

    Parameters
    ----------
    conn
        Connection inside a transaction.
    sql_name
        ``schema.table`` of the relation.
    """
    schema_, table = sql_name.split(".")
    found = conn.execute(sa.text("SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(:n) AND tgname = "
                                 "'xmatch_version'"), {"n": sql_name}).first()
    if found is None:
        conn.execute(sa.text(f"CREATE TRIGGER xmatch_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "
                             f"{_q(sql_name)} FOR EACH STATEMENT EXECUTE FUNCTION xmatch_bump_version()"))
    conn.execute(sa.text("INSERT INTO xmatch_versions (relation) VALUES (:n) ON CONFLICT DO NOTHING"),
                 {"n": f"{schema_}.{table}"})


def cache_path(home: Path, src: TableSource) -> Path:
    """Where a table's cached copy lives (one per fixed key value, e.g. per release)."""
    fixed = "".join(f"@{c}={v}" for c, v in src.fixed)
    return home / "xmatch" / "cache" / f"{re.sub(r'[^A-Za-z0-9_.@=-]', '_', src.sql_name + fixed)}.parquet"


def _cached_state(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    meta = pq.read_schema(path).metadata or {}
    if _META not in meta:
        return None
    return dict(json.loads(meta[_META]))


def read_table(engine: sa.Engine, home: Path, name: str, release: str | None = None) -> tuple[Positions, str]:
    """Positions of a published table, from its cached copy when current, else read with binary COPY and cached.

    Returns
    -------
    (Positions, str)
        The positions and how they were obtained: ``cache``, ``refreshed`` or ``read`` (views, never cached).
    """
    src = table_source(engine, name, release)
    key = src.id or "0"
    select = (f"SELECT {'CAST(' + _q(src.id) + ' AS bigint)' if src.id else '0::bigint'}, "
              f"CAST({_q(src.ra)} AS float8), CAST({_q(src.dec)} AS float8) FROM {_q(src.sql_name)} "
              f"WHERE {_q(src.ra)} IS NOT NULL AND {_q(src.dec)} IS NOT NULL AND {src.where()}")
    path = cache_path(home, src)
    if not src.is_view:
        with engine.begin() as conn:
            track_writes(conn, src.sql_name)
        with engine.connect() as conn:
            state = conn.execute(sa.text("SELECT CAST(to_regclass(:n) AS oid), v.version FROM xmatch_versions v "
                                         "WHERE v.relation = :n"), {"n": src.sql_name}).one()
        current = {"oid": str(state[0]), "version": str(state[1]), "select": select}
        if _cached_state(path) == current:
            t = pq.read_table(path, memory_map=True)
            cols = {c: t.column(c).to_numpy() for c in ("id", "ra", "dec", "hpx")}
            id_name = src.id or "row"
            return Positions(src.name, cols["id"], cols["ra"], cols["dec"], cols["hpx"], id_name), "cache"
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        version = None
        if not src.is_view:
            version = conn.execute(sa.text("SELECT CAST(to_regclass(:n) AS oid), v.version FROM xmatch_versions v "
                                           "WHERE v.relation = :n"), {"n": src.sql_name}).one()
        ids, ra, dec = copy_out(conn, select, [">i8", ">f8", ">f8"])
        conn.rollback()
    if not src.id:
        ids = np.arange(len(ra), dtype=np.int64)
    pos = _sorted(src.name, ids, ra, dec, src.id or "row")
    if version is None:
        return pos, "read"
    path.parent.mkdir(parents=True, exist_ok=True)
    state_out = {"oid": str(version[0]), "version": str(version[1]), "select": select}
    table = pa.table({"id": pos.ids, "ra": pos.ra, "dec": pos.dec, "hpx": pos.hpx})
    table = table.replace_schema_metadata({_META: json.dumps(state_out).encode(), b"id_column": key.encode()})
    tmp = path.with_suffix(".tmp")
    # Fast to write and read back (no dictionaries or statistics, one row group): the copy is a cache, not an archive.
    pq.write_table(table, tmp, compression="lz4", use_dictionary=False, write_statistics=False,
                   row_group_size=max(1, min(len(pos), 1 << 26)))
    tmp.replace(path)
    return pos, "refreshed"


def load_input(engine: sa.Engine | None, home: Path | None, name: str,
               columns: tuple[str, str] | None = None, release: str | None = None) -> tuple[Positions, str]:
    """A LEFT/RIGHT argument: a file, else a published table (needs the archive)."""
    if is_file(name):
        return read_file(name, columns), "file"
    if engine is None or home is None:
        raise InputError(f"{name}: not a file, and no archive to find the table in")
    if columns:
        raise InputError("--left-cols/--right-cols apply to files only: tables use their registered positions")
    return read_table(engine, home, name, release)


__all__ = ["ORDER", "FILE_SUFFIXES", "InputError", "Positions", "load_input", "read_file", "read_table"]
