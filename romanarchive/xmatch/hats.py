"""``romanarchive export hats``: a published table as a HATS catalog collection (with a margin cache) for LSDB.

The table's scalar columns are read in HEALPix order and partitioned by ``lsdb.from_dataframe``; the collection it
writes (main catalog, margin cache of ``margin_arcsec``, and the collection properties) is what
``lsdb.open_catalog(DIR)`` reads. pgsphere columns are left out (the ra/dec columns carry the position). A table
file (CSV, VOTable, FITS, Parquet) can be exported the same way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from romanarchive.xmatch.sources import DEC_NAMES, RA_NAMES, InputError, find_table, is_file, read_file, table_source

_SCALAR = {"smallint": "int16", "integer": "int32", "bigint": "int64", "real": "float32", "double": "float64",
           "boolean": "boolean"}


def read_frame(engine: sa.Engine, name: str) -> tuple[pd.DataFrame, str, str]:
    """A published table's scalar and text columns as a DataFrame, with its RA and Dec column names.

    Rows of a table keyed by (id, release) are those of the live release, as in ``romanarchive xmatch``.
    """
    src = table_source(engine, name)
    entry = find_table(engine, name)
    cols = [c for c in entry.public_columns if c.type not in ("spoint", "spoly")]
    select = ", ".join(f'"{c.name}"' for c in cols)
    order = f' ORDER BY "{src.hpx}"' if src.hpx else ""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT {select} FROM {entry.sql_name} WHERE {src.where()}{order}')).all()
    data = {}
    for i, c in enumerate(cols):
        values = [r[i] for r in rows]
        kind = _SCALAR.get(c.type)
        if kind and kind != "boolean" and not any(v is None for v in values):
            data[c.name] = np.asarray(values, dtype=kind)
        elif kind in ("float32", "float64"):
            data[c.name] = np.asarray([np.nan if v is None else v for v in values], dtype=kind)
        elif c.type in ("timestamp", "timestamptz"):
            data[c.name] = pd.to_datetime(pd.Series(values, dtype=object), utc=c.type == "timestamptz")
        elif kind:
            data[c.name] = pd.array(values, dtype="Int64" if kind.startswith("int") else "boolean")
        else:
            data[c.name] = pd.array([None if v is None else str(v) for v in values], dtype="string")
    frame = pd.DataFrame(data)
    bad = ~(np.isfinite(frame[src.ra].astype(float)) & np.isfinite(frame[src.dec].astype(float)))
    return frame[~bad.to_numpy()].reset_index(drop=True), src.ra, src.dec


def file_frame(path: str) -> tuple[pd.DataFrame, str, str]:
    """A table file as a DataFrame (its scalar columns) with its RA and Dec column names (lsdb sorts the rows)."""
    from astropy.table import Table

    pos = read_file(path)  # validates positions and finds the columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = Table.read(path, format="votable") if path.lower().endswith((".vot", ".xml")) else Table.read(path)
    scalar = [n for n in table.colnames if table[n].ndim == 1]
    frame = table[scalar].to_pandas()
    ra, dec = _radec_names(path, list(frame.columns))
    if len(pos) != len(frame):
        raise InputError(f"{path}: rows without a position cannot be exported")
    return frame, ra, dec


def _radec_names(path: str, names: list[str]) -> tuple[str, str]:
    lower = {n.lower(): n for n in names}
    ra = next((lower[c] for c in RA_NAMES if c in lower), None)
    dec = next((lower[c] for c in DEC_NAMES if c in lower), None)
    if ra is None or dec is None:
        raise InputError(f"{path}: no RA/Dec columns found (columns: {', '.join(names)})")
    return ra, dec


def export_hats(engine: sa.Engine, name: str, directory: Path, *, margin_arcsec: float = 10.0,
                rows_per_partition: int = 500_000, overwrite: bool = True) -> Path:
    """Write a published table as a HATS collection under ``directory``.

    Parameters
    ----------
    engine
        The archive database.
    name
        Published table name, e.g. ``refcat.gaia_dr3_bright``.
    directory
        Where the collection goes (its name is the table's).
    margin_arcsec
        Width of the margin cache: cross-matches within this radius see neighbours across partition edges.
    rows_per_partition
        Largest number of rows in one HEALPix partition.
    overwrite
        Replace an existing collection.

    Returns
    -------
    pathlib.Path
        The collection directory.
    """
    import lsdb

    if margin_arcsec <= 0:
        raise ValueError("the margin must be a positive angle")
    if is_file(name):
        frame, ra, dec = file_frame(name)
        catalog_name = Path(name).name.split(".")[0]
    else:
        frame, ra, dec = read_frame(engine, name)
        catalog_name = name.split(".")[-1]
    if frame.empty:
        raise InputError(f"table {name} has no rows with a position to export")
    catalog = lsdb.from_dataframe(frame, ra_column=ra, dec_column=dec, catalog_name=catalog_name,
                                  margin_threshold=margin_arcsec, partition_rows=rows_per_partition)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / catalog_name
    catalog.to_hats(out, catalog_name=catalog_name, as_collection=True, overwrite=overwrite, progress_bar=False)
    return out
