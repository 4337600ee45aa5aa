"""Match tables: written to the ``xmatch`` schema with binary COPY, listed in ``xmatch_tables``, published in TAP.

Publication is dynamic (``romanarchive.tap.schema.DYNAMIC_SOURCES`` names :func:`tap_entries`): every row of
``xmatch_tables`` becomes the published table ``xmatch.<name>`` with the documented columns of `MATCH_COLUMNS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from romanarchive.db.bulk import copy_arrays
from romanarchive.db.registry import ColumnSpec, TableSpec

if TYPE_CHECKING:
    from romanarchive.tap.schema import Published
    from romanarchive.xmatch.match import Pairs
    from romanarchive.xmatch.sources import Positions

C = ColumnSpec
SCHEMA = "xmatch"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

MATCH_COLUMNS: tuple[ColumnSpec, ...] = (
    C("left_id", "bigint", "Identifier of the left row (its table's key, a file's id column or row number)",
      ucd="meta.id", nullable=False, principal=True),
    C("right_id", "bigint", "Identifier of the right row (its table's key, a file's id column or row number)",
      ucd="meta.id", nullable=False, principal=True),
    C("sep_arcsec", "double", "Angular separation of the two positions", unit="arcsec", ucd="pos.angDistance",
      nullable=False, principal=True),
    C("left_ra", "double", "Right ascension of the left row", unit="deg", ucd="pos.eq.ra;meta.main",
      nullable=False),
    C("left_dec", "double", "Declination of the left row", unit="deg", ucd="pos.eq.dec;meta.main", nullable=False),
    C("right_ra", "double", "Right ascension of the right row", unit="deg", ucd="pos.eq.ra", nullable=False),
    C("right_dec", "double", "Declination of the right row", unit="deg", ucd="pos.eq.dec", nullable=False),
)


def match_columns(left: Positions, right: Positions, pairs: Pairs) -> dict[str, np.ndarray]:
    """The match table's columns for ``pairs`` of indexes into ``left`` and ``right``."""
    return {
        "left_id": left.ids[pairs.left], "right_id": right.ids[pairs.right], "sep_arcsec": pairs.sep_arcsec,
        "left_ra": left.ra[pairs.left], "left_dec": left.dec[pairs.left],
        "right_ra": right.ra[pairs.right], "right_dec": right.dec[pairs.right],
    }  # fmt: skip


def check_name(name: str) -> str:
    """A valid match table name (lower-case identifier), or `ValueError`."""
    if not _NAME.match(name):
        raise ValueError(f"invalid match table name {name!r}: use a lower-case letter, then letters, digits, _")
    return name


def _spec(name: str, description: str) -> TableSpec:
    return TableSpec(name, description, MATCH_COLUMNS, schema=SCHEMA, published=True)


def write_match_table(engine: sa.Engine, name: str, columns: dict[str, np.ndarray], *, left: str, right: str,
                      radius_arcsec: float, mode: str, replace: bool = False,
                      provenance: dict[str, Any] | None = None,
                      keys: tuple[dict[str, Any], dict[str, Any]] | None = None) -> int:
    """Create ``xmatch.<name>``, fill it with binary COPY, register and publish it, in one transaction.

    ``provenance`` fills the registry row's provenance columns (step, software, parameters, inputs, wall_time_s,
    host); without it the step is recorded with empty parameters and inputs. ``keys`` gives the full row key of
    each side (``left_id``/``right_id`` plus fixed key columns such as ``release``), stored as ``left_key`` and
    ``right_key``.

    Returns
    -------
    int
        Rows written.
    """
    from romanarchive.db.tables import metadata
    from romanarchive.tap import schema as tap_schema
    from romanarchive.xmatch import provenance as prov_mod

    prov = {"step": "romanarchive.xmatch.publish", "software": prov_mod.software_versions(), "parameters": {},
            "inputs": [], "wall_time_s": 0.0, "host": prov_mod.host(), **(provenance or {})}

    check_name(name)
    description = (f"Cross-match of {left} (left) with {right} (right): {mode} pairs within {radius_arcsec:g} "
                   "arcsec")
    with engine.begin() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM xmatch_tables WHERE name = :n"), {"n": name}).first()
        if exists and not replace:
            raise ValueError(f"match table xmatch.{name} exists; choose another name or pass --replace")
        conn.execute(sa.text(f'DROP TABLE IF EXISTS {SCHEMA}."{name}"'))
        conn.execute(sa.text("DELETE FROM xmatch_tables WHERE name = :n"), {"n": name})
        ddl = ", ".join(f"{c.name} {'bigint' if c.type == 'bigint' else 'double precision'} NOT NULL"
                        for c in MATCH_COLUMNS)
        conn.execute(sa.text(f'CREATE TABLE {SCHEMA}."{name}" ({ddl})'))
        for c in MATCH_COLUMNS:
            conn.execute(sa.text(f'COMMENT ON COLUMN {SCHEMA}."{name}".{c.name} IS {_lit(c.description)}'))
        raw = conn.connection.driver_connection
        assert raw is not None
        n = copy_arrays(raw, f"{SCHEMA}.{name}", columns) if len(columns["left_id"]) else 0  # type: ignore[arg-type]
        registry = metadata.tables["xmatch_tables"]
        conn.execute(registry.insert().values(
            name=name, description=description, left_source=left, right_source=right, radius_arcsec=radius_arcsec,
            mode=mode, n_pairs=int(len(columns["left_id"])), left_key=(keys or ({}, {}))[0],
            right_key=(keys or ({}, {}))[1], **prov))
        tap_schema.bump_generation(conn)
        tap_schema.load_dynamic(conn)
        tap_schema.refresh_tap_schema(conn)
    return int(n)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def drop_match_table(engine: sa.Engine, name: str) -> None:
    """Remove a match table and its registration."""
    from romanarchive.tap import schema as tap_schema

    check_name(name)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP TABLE IF EXISTS {SCHEMA}."{name}"'))
        conn.execute(sa.text("DELETE FROM xmatch_tables WHERE name = :n"), {"n": name})
        tap_schema.bump_generation(conn)
        tap_schema.load_dynamic(conn)
        tap_schema.refresh_tap_schema(conn)


def tap_entries(conn: sa.Connection) -> Iterable[Published]:
    """`romanarchive.tap.schema` dynamic source: every registered match table (none before migration 0006)."""
    from romanarchive.tap import schema as tap_schema

    if conn.execute(sa.text("SELECT to_regclass('public.xmatch_tables')")).scalar_one() is None:
        return []
    rows = conn.execute(sa.text("SELECT name, description FROM xmatch_tables ORDER BY created_at, name")).all()
    out = []
    for name, description in rows:
        spec = _spec(name, description or f"Cross-match table {name}")
        out.append(tap_schema.Published(spec, f"{SCHEMA}.{name}", f"{SCHEMA}.{name}", columns=spec.columns))
    return out
