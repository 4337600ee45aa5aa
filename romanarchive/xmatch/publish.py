"""Match tables: written to the ``xmatch`` schema with binary COPY, listed in ``xmatch_tables``, published in TAP.

Each match table is built from its :class:`~romanarchive.db.registry.TableSpec` (`match_spec`: the documented
columns of `MATCH_COLUMNS`). Publication is dynamic: :func:`match_tables` (declared in ``romanarchive.xmatch.wiring``)
reports every row of ``xmatch_tables`` as the published table ``xmatch.<name>``, and writing or dropping one tells
the pipeline wiring (:func:`romanarchive.jobs.wiring.tables_changed`), which has TAP rewrite TAP_SCHEMA in the same
transaction.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import sqlalchemy as sa

from romanarchive.db.bulk import copy_arrays
from romanarchive.db.registry import ColumnSpec, TableSpec, create_table_ddl
from romanarchive.db.tables import metadata
from romanarchive.jobs import wiring
from romanarchive.xmatch import provenance as prov_mod
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


def match_spec(name: str, description: str) -> TableSpec:
    """The spec of the match table ``xmatch.<name>`` (its DDL and its TAP publication)."""
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
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:  # no parameters: a '%' in a description stays text
            for statement in create_table_ddl(match_spec(name, description)):
                cur.execute(statement)
        n = copy_arrays(raw, f"{SCHEMA}.{name}", columns) if len(columns["left_id"]) else 0  # type: ignore[arg-type]
        registry = metadata.tables["xmatch_tables"]
        conn.execute(registry.insert().values(
            name=name, description=description, left_source=left, right_source=right, radius_arcsec=radius_arcsec,
            mode=mode, n_pairs=int(len(columns["left_id"])), left_key=(keys or ({}, {}))[0],
            right_key=(keys or ({}, {}))[1], **prov))
        wiring.tables_changed(conn)
    return int(n)


def drop_match_table(engine: sa.Engine, name: str) -> None:
    """Remove a match table and its registration."""
    check_name(name)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP TABLE IF EXISTS {SCHEMA}."{name}"'))
        conn.execute(sa.text("DELETE FROM xmatch_tables WHERE name = :n"), {"n": name})
        wiring.tables_changed(conn)


def match_tables(conn: sa.Connection) -> list[TableSpec]:
    """The pipeline wiring's run-time tables of xmatch: every registered match table (none before migration 0006)."""
    if conn.execute(sa.text("SELECT to_regclass('public.xmatch_tables')")).scalar_one() is None:
        return []
    rows = conn.execute(sa.text("SELECT name, description FROM xmatch_tables ORDER BY created_at, name")).all()
    return [match_spec(name, description or f"Cross-match table {name}") for name, description in rows]
