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
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable, SetColumnComment, SetTableComment

from romanarchive.db.types import SPoint, SPoly, column_type

__all__ = ["ColumnSpec", "SPoint", "SPoly", "TableSpec", "build_metadata", "build_table", "create_index_ddl",
           "create_table_ddl"]


@dataclass(frozen=True)
class ColumnSpec:
    """One documented column.

    Attributes
    ----------
    name
        Column name (a safe lower-case SQL identifier).
    type
        Logical type: a key of `romanarchive.db.types.TYPES`, ``varchar(N)`` or ``char(N)``.
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
        try:
            return column_type(self.type).sa()
        except ValueError as exc:
            raise ValueError(f"column {self.name}: unknown logical type {self.type!r}") from exc

    @property
    def tap_datatype(self) -> str:
        """ADQL datatype (``romanarchive.db.types``)."""
        return column_type(self.type).adql


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

    @property
    def sql_name(self) -> str:
        """The PostgreSQL relation, always schema-qualified (``public`` by default)."""
        return f"{self.schema or 'public'}.{self.name}"

    @property
    def adql_name(self) -> str:
        """Published (ADQL) name: ``tap_schema``, else the schema (``public`` is ``roman``: an ADQL reserved word)."""
        sql_schema = self.schema or "public"
        pub = self.tap_schema or {"tap_schema": "TAP_SCHEMA", "public": "roman"}.get(sql_schema, sql_schema)
        return f"{pub}.{self.name}"

    @property
    def public_columns(self) -> tuple[ColumnSpec, ...]:
        """The published columns (all but ``private``), in order."""
        hidden = set(self.private)
        return tuple(c for c in self.columns if c.name not in hidden)


def build_table(spec: TableSpec, metadata: sa.MetaData, *, temporary: bool = False,
                autoincrement: bool = True) -> sa.Table:
    """Make the SQLAlchemy table of a spec, with its indexes.

    Parameters
    ----------
    spec
        The documented table.
    metadata
        Where the table is registered.
    temporary
        A ``TEMPORARY`` table dropped when the creating transaction ends (``ON COMMIT DROP``).
    autoincrement
        Whether a lone integer primary key becomes a ``serial`` (SQLAlchemy's default); run-time tables keep their
        keys' own values.

    Returns
    -------
    sqlalchemy.Table
        The table.
    """
    options: dict[str, Any] = {"prefixes": ["TEMPORARY"], "postgresql_on_commit": "DROP"} if temporary else {}
    cols: list[Any] = []
    for c in spec.columns:
        args: list[Any] = [c.name, c.sa_type()]
        if c.foreign_key:
            args.append(sa.ForeignKey(c.foreign_key, ondelete="CASCADE"))
        cols.append(
            sa.Column(
                *args,
                primary_key=c.primary_key,
                autoincrement="auto" if autoincrement else False,
                nullable=c.nullable and not c.primary_key,
                server_default=sa.text(c.server_default) if c.server_default else None,
                comment=c.description,
            )
        )
    for group in spec.unique:
        cols.append(sa.UniqueConstraint(*group, name=f"uq_{spec.name}_{'_'.join(group)}"[:63]))
    for c in spec.columns:
        if c.indexed and not c.primary_key:
            if column_type(c.type).index == "gist":
                cols.append(sa.Index(f"ix_{spec.name}_{c.name}", c.name, postgresql_using="gist"))
            else:
                cols.append(sa.Index(f"ix_{spec.name}_{c.name}", c.name))
    return sa.Table(spec.name, metadata, *cols, schema=spec.schema, comment=spec.description, **options)


def build_metadata(specs: Iterable[TableSpec]) -> sa.MetaData:
    """Build one MetaData holding every table of the registry."""
    md = sa.MetaData(naming_convention={"pk": "pk_%(table_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s"})
    for spec in specs:
        build_table(spec, md)
    return md


def _q3c_index_name(spec: TableSpec, i: int, ra: str, dec: str) -> str:
    return (f"{spec.name}_q3c" if i == 0 else f"{spec.name}_q3c_{ra}_{dec}")[:63]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_index_ddl(spec: TableSpec) -> list[str]:
    """PostgreSQL DDL of a spec's indexes: its indexed columns (B-tree, GiST for pgsphere) and its q3c pairs.

    Run them after a bulk load: building an index once is cheaper than maintaining it row by row.

    Parameters
    ----------
    spec
        The documented table (``q3c`` pairs get ``CREATE INDEX <table>_q3c ON ... (q3c_ang2ipix(ra, dec))``).

    Returns
    -------
    list of str
        One statement per index.
    """
    table = build_table(spec, sa.MetaData())
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    out = [str(CreateIndex(ix).compile(dialect=dialect)) for ix in sorted(table.indexes, key=lambda ix: ix.name or "")]
    target = f"{_quote(spec.schema)}.{_quote(spec.name)}" if spec.schema else _quote(spec.name)
    for i, (ra, dec) in enumerate(spec.q3c):
        out.append(f"CREATE INDEX {_quote(_q3c_index_name(spec, i, ra, dec))} ON {target} "
                   f"(q3c_ang2ipix({_quote(ra)}, {_quote(dec)}))")
    return out


def create_table_ddl(spec: TableSpec, *, temporary: bool = False, indexes: bool = True,
                     comments: bool = True) -> list[str]:
    """PostgreSQL DDL of a table made at run time (match tables, Level 5 tables, TAP uploads) from its spec.

    Parameters
    ----------
    spec
        The documented table.
    temporary
        ``CREATE TEMPORARY TABLE ... ON COMMIT DROP`` (a TAP upload: gone when the query's transaction ends).
    indexes
        Append `create_index_ddl`; leave it out to create the indexes after loading the rows.
    comments
        Append ``COMMENT ON`` the table and its columns (their descriptions).

    Returns
    -------
    list of str
        ``CREATE TABLE`` first, then the comments, then the indexes.
    """
    table = build_table(spec, sa.MetaData(), temporary=temporary, autoincrement=False)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    out = [str(CreateTable(table).compile(dialect=dialect)).strip()]
    if comments:
        if spec.description:
            out.append(str(SetTableComment(table).compile(dialect=dialect)))
        out.extend(str(SetColumnComment(c).compile(dialect=dialect)) for c in table.columns if c.comment)
    if indexes:
        out.extend(create_index_ddl(spec))
    return out
