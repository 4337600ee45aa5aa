"""Level 5 catalogs as forced-photometry targets: ``romanarchive targets add --from-level5 <id>``.

A published Level 5 catalog version (``level5_versions``; its rows in ``level5.<name>_v<version>``) names its
position columns (``ra_column``, ``dec_column``). :func:`level5_positions` reads them, with a name per row: a column
called ``name`` or ``id`` where the catalog has one, else its single-column primary key, else the row number (1-based,
in primary-key order). The targets get origin ``level5:<id>`` (:mod:`romanarchive.timeseries.targets`), so adding
the same catalog again moves the rows whose positions changed and leaves the others.

This glue lives here, not in :mod:`romanarchive.timeseries`, which may not import the Level 5 layer:
:func:`targets_command` gives the time-series ``targets`` command group this reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import click
import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.level5.publish import level5_columns, level5_versions
from romanarchive.timeseries.cli import targets_group

#: Columns taken as the target name, in order of preference (case-insensitive).
NAME_COLUMNS = ("name", "id")


class Level5TargetError(ValueError):
    """The identifier names no Level 5 catalog with positions."""


@dataclass(frozen=True)
class Level5Positions:
    """The positions of one Level 5 catalog version."""

    table: str
    name_column: str | None  # None: row numbers
    names: list[str]
    ra: np.ndarray
    dec: np.ndarray
    skipped: int  # rows without a position


def _version(conn: sa.Connection, ident: str) -> sa.RowMapping:
    """The ``level5_versions`` row of a product id, ``name/vN`` (or ``name_vN``), or a name (its newest version)."""
    v = level5_versions.c
    newest = sa.select(level5_versions).where(v.name == ident).order_by(v.version.desc()).limit(1)
    if ident.isdigit():
        row = conn.execute(sa.select(level5_versions).where(v.product_id == int(ident))).mappings().first()
    else:
        m = re.fullmatch(r"(.+?)(?:/v|_v)(\d+)", ident)
        row = conn.execute(sa.select(level5_versions).where(v.name == m.group(1), v.version == int(m.group(2)))
                           ).mappings().first() if m else None
        # A plain name (which may itself end in "_v<digits>"): its newest version.
        row = row or conn.execute(newest).mappings().first()
    if row is None:
        raise Level5TargetError(f"no Level 5 product {ident!r} (give its name, name/vN or product id; see "
                                "`romanarchive level5 list`)")
    return row


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def level5_positions(conn: sa.Connection, ident: str) -> Level5Positions:
    """Names and positions of the rows of a Level 5 catalog (see the module docstring).

    Raises
    ------
    Level5TargetError
        Unknown identifier, an ASDF product, or a catalog without position columns.
    """
    row = _version(conn, ident)
    label = f"{row['name']} v{row['version']}"
    if row["table_name"] is None:
        raise Level5TargetError(f"Level 5 product {label} is a {row['kind']} product, not a catalog")
    if not row["ra_column"] or not row["dec_column"]:
        raise Level5TargetError(f"Level 5 catalog {label} declares no position (ra/dec) columns")
    cols = conn.execute(sa.select(level5_columns.c.column_name, level5_columns.c.primary_key)
                        .where(level5_columns.c.table_name == row["table_name"])
                        .order_by(level5_columns.c.position)).all()  # fmt: skip
    by_lower = {c.lower(): c for c, _ in cols}
    pk = [c for c, is_pk in cols if is_pk]
    name_col = next((by_lower[n] for n in NAME_COLUMNS if n in by_lower), pk[0] if len(pk) == 1 else None)
    schema_name, table = row["table_name"].split(".", 1)
    order = ", ".join(map(_quote, pk)) or "ctid"
    name_sql = (f"CAST({_quote(name_col)} AS text)" if name_col
                else f"CAST(row_number() OVER (ORDER BY {order}) AS text)")
    rows = conn.execute(sa.text(
        f"SELECT {name_sql}, {_quote(row['ra_column'])}, {_quote(row['dec_column'])} "
        f"FROM {_quote(schema_name)}.{_quote(table)} ORDER BY {order}")).all()
    keep = [r for r in rows if r[1] is not None and r[2] is not None and r[0] is not None]
    return Level5Positions(row["table_name"], name_col, [str(r[0]) for r in keep],
                           np.array([float(r[1]) for r in keep]), np.array([float(r[2]) for r in keep]),
                           len(rows) - len(keep))


def read_level5(archive: Archive, ident: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The reader ``targets add --from-level5`` calls: the catalog's (names, ra, dec)."""
    with archive.engine.connect() as conn:
        pos = level5_positions(conn, ident)
    how = f"named by {pos.name_column}" if pos.name_column else "named by row number"
    skipped = f"; {pos.skipped} row(s) without a position left out" if pos.skipped else ""
    click.echo(f"{pos.table}: {len(pos.names)} row(s), {how}{skipped}")
    return pos.names, pos.ra, pos.dec


def targets_command() -> click.Group:
    """``romanarchive targets`` with ``add --from-level5``."""
    return targets_group(read_level5)
