"""The column registry: one documented description of every archive column.

Each :class:`ColumnSpec` carries the column's name, logical type, unit, UCD, utype and description, and whether it
is indexed or principal. The same specs build the SQLAlchemy tables (and so, through Alembic, the DDL), and later
TAP_SCHEMA and VOTable FIELDs — in the spirit of ``lsst.daf.butler.ddl.FieldSpec`` and DaCHS resource descriptors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.types import UserDefinedType


class SPoly(UserDefinedType[str]):
    """pgsphere spherical polygon."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "spoly"


class SPoint(UserDefinedType[str]):
    """pgsphere spherical point."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "spoint"


# Logical type -> (SQLAlchemy type factory, TAP datatype, VOTable arraysize or None).
_TYPES: dict[str, tuple[Any, str, str | None]] = {
    "smallint": (sa.SmallInteger, "SMALLINT", None),
    "integer": (sa.Integer, "INTEGER", None),
    "bigint": (sa.BigInteger, "BIGINT", None),
    "real": (sa.REAL, "REAL", None),
    "double": (sa.Double, "DOUBLE", None),
    "boolean": (sa.Boolean, "BOOLEAN", None),
    "text": (sa.Text, "VARCHAR", "*"),
    "timestamp": (sa.DateTime, "TIMESTAMP", "*"),
    "timestamptz": (lambda: sa.DateTime(timezone=True), "TIMESTAMP", "*"),
    "jsonb": (pg.JSONB, "VARCHAR", "*"),
    "spoly": (SPoly, "VARCHAR", "*"),  # served as a DALI polygon (xtype polygon)
    "spoint": (SPoint, "VARCHAR", "*"),
}


@dataclass(frozen=True)
class ColumnSpec:
    """One documented column.

    Attributes
    ----------
    name
        Column name (a safe lower-case SQL identifier).
    type
        Logical type: a key of the type table, ``varchar(N)`` or ``char(N)``.
    description
        What the column holds, for TAP_SCHEMA and VOTable DESCRIPTION.
    unit
        VOUnit string, empty when dimensionless.
    ucd
        IVOA UCD1+.
    utype
        Data-model utype (ObsCore etc.).
    nullable
        Whether NULL is allowed.
    primary_key
        Part of the primary key.
    indexed
        Gets a B-tree index (pgsphere columns get GiST).
    principal
        Shown by default in clients (TAP_SCHEMA ``principal``).
    std
        Defined by an IVOA standard (TAP_SCHEMA ``std``).
    foreign_key
        ``table.column`` this column references.
    server_default
        SQL default expression.
    source
        Dotted path in a Roman datamodel the value is read from at ingest (e.g. ``meta.exposure.start_time``).
    """

    name: str
    type: str
    description: str
    unit: str = ""
    ucd: str = ""
    utype: str = ""
    nullable: bool = True
    primary_key: bool = False
    indexed: bool = False
    principal: bool = False
    std: bool = False
    foreign_key: str | None = None
    server_default: str | None = None
    source: str | None = None

    def sa_type(self) -> Any:
        """SQLAlchemy type of the column."""
        t = self.type
        if t.startswith("varchar("):
            return sa.String(int(t[8:-1]))
        if t.startswith("char("):
            return sa.CHAR(int(t[5:-1]))
        try:
            return _TYPES[t][0]()
        except KeyError as exc:
            raise ValueError(f"column {self.name}: unknown logical type {t!r}") from exc

    @property
    def tap_datatype(self) -> str:
        """TAP_SCHEMA datatype."""
        if self.type.startswith(("varchar(", "char(")):
            return "VARCHAR" if self.type.startswith("varchar") else "CHAR"
        return _TYPES[self.type][1]


@dataclass(frozen=True)
class TableSpec:
    """A documented table.

    Attributes
    ----------
    name
        Table name (unqualified).
    description
        What one row is.
    columns
        Its columns in order.
    schema
        PostgreSQL schema; ``None`` is the default search path (``public``).
    published
        Whether it is served through TAP (TAP_SCHEMA, VOSI tables, ADQL, SELECT for the query role): TAP
        publishes exactly the specs the pipeline wiring declares with ``published=True``.
    unique
        Column groups that are unique together.
    table_type
        ``table`` or ``view`` (TAP_SCHEMA ``table_type``).
    utype
        Data-model utype of the table (e.g. ``ivo://ivoa.net/std/obscore#table-1.1``).
    q3c
        (ra, dec) column pairs carrying a ``q3c_ang2ipix`` index, so cone searches and joins use it.
    spoint_column, spoint_of
        An indexed pgsphere point column and the (ra, dec) pair it was computed from.
    private
        Columns kept out of publication.
    tap_schema
        Published (ADQL) schema name; default the PostgreSQL schema, ``roman`` for ``public``.
    """

    name: str
    description: str
    columns: tuple[ColumnSpec, ...]
    schema: str | None = None
    published: bool = False
    unique: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    table_type: str = "table"
    utype: str = ""
    q3c: tuple[tuple[str, str], ...] = ()
    spoint_column: str | None = None
    spoint_of: tuple[str, str] | None = None
    private: tuple[str, ...] = ()
    tap_schema: str | None = None

    def column(self, name: str) -> ColumnSpec:
        """Look up a column by name."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def qualified_name(self) -> str:
        """``schema.name`` or ``name``."""
        return f"{self.schema}.{self.name}" if self.schema else self.name


def build_table(spec: TableSpec, metadata: sa.MetaData) -> sa.Table:
    """Make the SQLAlchemy table of a spec, with its indexes.

    Parameters
    ----------
    spec
        The documented table.
    metadata
        Where the table is registered.

    Returns
    -------
    sqlalchemy.Table
        The table.
    """
    cols: list[Any] = []
    for c in spec.columns:
        args: list[Any] = [c.name, c.sa_type()]
        if c.foreign_key:
            args.append(sa.ForeignKey(c.foreign_key, ondelete="CASCADE"))
        cols.append(
            sa.Column(
                *args,
                primary_key=c.primary_key,
                nullable=c.nullable and not c.primary_key,
                server_default=sa.text(c.server_default) if c.server_default else None,
                comment=c.description,
            )
        )
    for group in spec.unique:
        cols.append(sa.UniqueConstraint(*group, name=f"uq_{spec.name}_{'_'.join(group)}"[:63]))
    for c in spec.columns:
        if c.indexed and not c.primary_key:
            if c.type in ("spoly", "spoint"):
                cols.append(sa.Index(f"ix_{spec.name}_{c.name}", c.name, postgresql_using="gist"))
            else:
                cols.append(sa.Index(f"ix_{spec.name}_{c.name}", c.name))
    return sa.Table(spec.name, metadata, *cols, schema=spec.schema, comment=spec.description)


def build_metadata(specs: Iterable[TableSpec]) -> sa.MetaData:
    """Build one MetaData holding every table of the registry."""
    md = sa.MetaData(naming_convention={"pk": "pk_%(table_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s"})
    for spec in specs:
        build_table(spec, md)
    return md
