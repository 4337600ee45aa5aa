"""``romanarchive xmatch``: a bulk cross-match of two tables or files beside the database.

Inputs are read as HEALPix-ordered columns (tables through their cached Parquet copies, see
:mod:`romanarchive.xmatch.sources`), matched by :func:`romanarchive.xmatch.match.crossmatch`, and written to a
published match table (binary COPY) or to a file. Every input is checked before anything is written.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from romanarchive.xmatch import provenance
from romanarchive.xmatch.healpix import ORDER
from romanarchive.xmatch.match import Pairs, check_radius, crossmatch
from romanarchive.xmatch.publish import MATCH_COLUMNS, check_name, match_columns, write_match_table
from romanarchive.xmatch.sources import InputError, Positions, is_file, load_input, table_source

_OUT_FORMATS = {".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".fits": "fits", ".parquet": "parquet",
                ".vot": "votable", ".xml": "votable"}

STEP = "romanarchive.xmatch.bulk"


def parse_radius(text: str) -> float:
    """An angle such as ``1arcsec``, ``0.5 arcmin`` or ``2e-4 deg`` (a bare number is arcsec), in degrees."""
    import astropy.units as u

    try:
        q = u.Quantity(text.strip())
    except (TypeError, ValueError):
        raise ValueError(f"cannot read the radius {text!r}: write e.g. 1arcsec, 0.5arcmin or 0.001deg") from None
    if q.unit == u.dimensionless_unscaled:
        q = q.value * u.arcsec
    try:
        deg = float(q.to_value(u.deg))
    except u.UnitConversionError:
        raise ValueError(f"the radius {text!r} is not an angle") from None
    check_radius(deg)
    return deg


@dataclass
class XmatchResult:
    """What a bulk cross-match did."""

    left: Positions
    right: Positions
    pairs: Pairs
    how: dict[str, str] = field(default_factory=dict)
    written: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def run_xmatch(left: str, right: str, radius_deg: float, *, engine: sa.Engine | None = None,
               home: Path | None = None, nearest: bool = False, into: str | None = None, out: str | None = None,
               replace: bool = False, left_cols: tuple[str, str] | None = None,
               right_cols: tuple[str, str] | None = None, progress: bool = False,
               release: str | None = None) -> XmatchResult:
    """Cross-match LEFT with RIGHT and write the pairs.

    Parameters
    ----------
    left, right
        Published table names or file paths.
    radius_deg
        Match radius (degrees).
    engine, home
        The archive (tables, ``--into``); None for files only.
    nearest
        Keep only the nearest right row per left row.
    into
        Match table name to create in the ``xmatch`` schema.
    out
        File to write (format from the suffix).
    replace
        Overwrite an existing match table or file.
    left_cols, right_cols
        (ra, dec) column names of file inputs.
    progress
        Show a tqdm progress bar.
    release
        Release of the rows of tables keyed by (id, release), e.g. ``objects`` (default ``live``); an error for
        tables without a release key.
    """
    check_radius(radius_deg)
    if into is not None:
        check_name(into)
        if engine is None:
            raise ValueError("--into needs the archive database")
    if out is not None:
        suffix = Path(out).suffix.lower()
        if suffix not in _OUT_FORMATS:
            raise ValueError(f"cannot write {out}: use one of {', '.join(_OUT_FORMATS)}")
        if Path(out).exists() and not replace:
            raise ValueError(f"{out} exists; pass --replace to overwrite it")
    if release is not None and not any(_release_for(engine, n, release) for n in (left, right)):
        raise InputError(f"--release {release}: neither input is a table with a release key")
    t0 = time.perf_counter()
    lpos, lhow = load_input(engine, home, left, left_cols, _release_for(engine, left, release))
    rpos, rhow = load_input(engine, home, right, right_cols, _release_for(engine, right, release))
    t1 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(lpos), unit="row", desc="xmatch", unit_scale=True)
    try:
        pairs = crossmatch(lpos.ra, lpos.dec, rpos.ra, rpos.dec, radius_deg, nearest=nearest, hpx2=rpos.hpx,
                           progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    t2 = time.perf_counter()
    result = XmatchResult(lpos, rpos, pairs, {"left": lhow, "right": rhow})
    cols = match_columns(lpos, rpos, pairs)
    mode = "nearest" if nearest else "all"
    if into is not None:
        assert engine is not None
        inputs = [_input_record(engine, left, lhow, len(lpos), release),
                  _input_record(engine, right, rhow, len(rpos), release)]
        prov = {"step": STEP, "software": provenance.software_versions(),
                "parameters": {"radius_arcsec": radius_deg * 3600, "mode": mode, "left_cols": left_cols,
                               "right_cols": right_cols, "release": release, "healpix_order": ORDER},
                "inputs": inputs,
                "wall_time_s": time.perf_counter() - t0, "host": provenance.host()}
        write_match_table(engine, into, cols, left=lpos.label, right=rpos.label, radius_arcsec=radius_deg * 3600,
                          mode=mode, replace=replace, provenance=prov,
                          keys=(inputs[0]["key"], inputs[1]["key"]))
        result.written = f"xmatch.{into}"
    if out is not None:
        write_file(out, cols, lpos.label, rpos.label, radius_deg * 3600, mode)
        result.written = (result.written + " and " if result.written else "") + out
    result.seconds = {"read": t1 - t0, "match": t2 - t1, "write": time.perf_counter() - t2}
    return result


def _release_for(engine: sa.Engine | None, name: str, release: str | None) -> str | None:
    """``--release`` applies to the table inputs that have a release key (and must apply to at least one)."""
    if release is None or is_file(name):
        return None
    return release if table_source(engine, name).fixed else None


def _input_record(engine: sa.Engine, name: str, how: str, n_rows: int, release: str | None) -> dict[str, Any]:
    """Provenance of one input: a file with its sha256, or a table with its write counter and full row key."""
    if how == "file":
        return {"file": str(Path(name).resolve()), "sha256": provenance.file_sha256(name), "rows": n_rows,
                "key": {"id": "row number or id column", "fixed": {}}}
    src = table_source(engine, name, _release_for(engine, name, release))
    with engine.connect() as conn:
        rec = provenance.table_input(conn, src.sql_name, src.name)
    return {**rec, "read": how, "rows": n_rows, "key": src.key}


def write_file(path: str, cols: dict[str, np.ndarray], left: str, right: str, radius_arcsec: float,
               mode: str) -> None:
    """Write match columns to a file, with units, UCDs and descriptions from `MATCH_COLUMNS`."""
    from astropy.table import Table

    table = Table()
    for c in MATCH_COLUMNS:
        table[c.name] = cols[c.name]
        table[c.name].unit = c.unit or None
        table[c.name].description = c.description
        table[c.name].meta["ucd"] = c.ucd
    table.meta.update({"left": left, "right": right, "radius_arcsec": radius_arcsec, "mode": mode})
    fmt = _OUT_FORMATS[Path(path).suffix.lower()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITS: long keywords become HIERARCH cards
        table.write(path, format=fmt, overwrite=True)
