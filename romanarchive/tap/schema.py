"""What TAP publishes: tables registered from the column registry, TAP_SCHEMA, and the translator's catalog.

A table is published when its :class:`~romanarchive.db.registry.TableSpec` says ``published=True`` and it is one of
the core tables (TAP_SCHEMA, ``ivoa.obscore``, exposures, products), one of the tables a domain declares in the
pipeline wiring (:func:`romanarchive.jobs.wiring.tables`), or a run-time table a domain reports
(:func:`romanarchive.jobs.wiring.dynamic_tables`, e.g. Level 5 catalogs and match tables). From then on it appears in
TAP_SCHEMA (real ``tap_schema`` tables, refreshed by :func:`refresh_tap_schema`), in VOSI ``/tables``, is readable
by the read-only query role, and ADQL queries may reach it. Nothing else is reachable. The spec's ``table_type``,
``utype``, ``q3c``, ``spoint_column``/``spoint_of``, ``private`` and ``tap_schema`` say how.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from romanarchive.db import types
from romanarchive.db.registry import ColumnSpec, TableSpec
from romanarchive.jobs import wiring
from romanarchive.tap.adql import Catalog, ColumnInfo, TableInfo

#: The PostgreSQL role queries run as: SELECT on published relations only (created by migration 0002).
QUERY_ROLE = "romanarchive_tap"

C = ColumnSpec
_TS = "tap_schema"


def _ts(name: str, description: str, *cols: ColumnSpec) -> TableSpec:
    return TableSpec(name, description, cols, schema=_TS, published=True)


def _c(name: str, type_: str, description: str, ucd: str, principal: bool = True, nullable: bool = True,
       fk: str | None = None) -> ColumnSpec:
    return C(name, type_, description, ucd=ucd, principal=principal, std=True, nullable=nullable, foreign_key=fk)


TS_SCHEMAS = _ts(
    "schemas", "Schemas published through this TAP service.",
    _c("schema_name", "text", "Schema name, as used in queries", "meta.id;meta.main", nullable=False),
    _c("utype", "text", "Data-model utype of the schema", "meta.ref.utype", principal=False),
    _c("description", "text", "What the schema holds", "meta.note"),
    _c("schema_index", "integer", "Recommended order for display", "meta.number", principal=False),
)
TS_TABLES = _ts(
    "tables", "Tables published through this TAP service.",
    _c("schema_name", "text", "Schema the table belongs to", "meta.id", nullable=False,
       fk="tap_schema.schemas.schema_name"),
    _c("table_name", "text", "Fully qualified table name, as used in queries", "meta.id;meta.main", nullable=False),
    _c("table_type", "text", "table or view", "meta.code", nullable=False),
    _c("utype", "text", "Data-model utype of the table", "meta.ref.utype", principal=False),
    _c("description", "text", "What one row is", "meta.note"),
    _c("table_index", "integer", "Recommended order for display", "meta.number", principal=False),
)
TS_COLUMNS = _ts(
    "columns", "Columns of the published tables.",
    _c("table_name", "text", "Fully qualified name of the table", "meta.id", nullable=False,
       fk="tap_schema.tables.table_name"),
    _c("column_name", "text", "Column name, as used in queries", "meta.id;meta.main", nullable=False),
    _c("utype", "text", "Data-model utype", "meta.ref.utype", principal=False),
    _c("ucd", "text", "Unified Content Descriptor", "meta.ucd"),
    _c("unit", "text", "VOUnit", "meta.unit"),
    _c("description", "text", "What the column holds", "meta.note"),
    _c("datatype", "text", "VOTable datatype", "meta.code", nullable=False),
    _c("arraysize", "text", "VOTable arraysize", "meta.code", principal=False),
    _c("xtype", "text", "VOTable/DALI extended type", "meta.code", principal=False),
    _c("size", "integer", "Fixed array length (deprecated in TAP 1.1; see arraysize)", "meta.number",
       principal=False),
    _c("principal", "integer", "1 if the column is shown by default", "meta.code", nullable=False),
    _c("indexed", "integer", "1 if the column is indexed", "meta.code", nullable=False),
    _c("std", "integer", "1 if the column is defined by a standard", "meta.code", nullable=False),
    _c("column_index", "integer", "Recommended order for display", "meta.number", principal=False),
)
TS_KEYS = _ts(
    "keys", "Foreign keys between published tables.",
    _c("key_id", "text", "Key identifier", "meta.id;meta.main", nullable=False),
    _c("from_table", "text", "Table holding the foreign key", "meta.id", nullable=False,
       fk="tap_schema.tables.table_name"),
    _c("target_table", "text", "Table the key points to", "meta.id", nullable=False,
       fk="tap_schema.tables.table_name"),
    _c("utype", "text", "Data-model utype", "meta.ref.utype", principal=False),
    _c("description", "text", "What the key means", "meta.note"),
)
TS_KEY_COLUMNS = _ts(
    "key_columns", "Columns of the foreign keys.",
    _c("key_id", "text", "Key identifier", "meta.id", nullable=False, fk="tap_schema.keys.key_id"),
    _c("from_column", "text", "Column of the from_table", "meta.id", nullable=False),
    _c("target_column", "text", "Column of the target_table", "meta.id", nullable=False),
)
TAP_SCHEMA_TABLES: tuple[TableSpec, ...] = (TS_SCHEMAS, TS_TABLES, TS_COLUMNS, TS_KEYS, TS_KEY_COLUMNS)
SCHEMA_DESCRIPTIONS = {
    "TAP_SCHEMA": "Metadata of the tables this service publishes (TAP 1.1).",
    "ivoa": "IVOA data-model tables: ObsCore 1.1.",
    "roman": "The Roman WFI archive: exposures and data products of every level.",
    "level5": "Level 5 community contributed catalogs, one table per published version (<product>_v<N>).",
    "refcat": "Reference catalogs: Gaia DR3 bright stars and Hipparcos 2, HEALPix-ordered.",
    "xmatch": "Cross-match tables written by 'romanarchive xmatch --into'.",
}


@dataclass(frozen=True)
class Published:
    """A table reachable through TAP.

    Attributes
    ----------
    spec
        Its documented columns.
    name
        Published (ADQL) name, ``schema.table``.
    sql_name
        Relation in PostgreSQL.
    table_type
        ``table`` or ``view``.
    q3c
        (ra, dec) column pairs with a q3c index.
    spoint_column, spoint_of
        Indexed pgsphere point column and the (ra, dec) pair it equals.
    utype
        Data-model utype of the table.
    """

    spec: TableSpec
    name: str
    sql_name: str
    table_type: str = "table"
    q3c: tuple[tuple[str, str], ...] = ()
    spoint_column: str | None = None
    spoint_of: tuple[str, str] | None = None
    utype: str = ""
    columns: tuple[ColumnSpec, ...] = field(default=())

    @property
    def schema_name(self) -> str:
        """Published schema name."""
        return self.name.split(".", 1)[0]


def entry_of(spec: TableSpec) -> Published:
    """The TAP view of a published spec: its ADQL and SQL names, publication options and public columns.

    The published schema is the spec's ``tap_schema``, else its PostgreSQL schema, ``roman`` for ``public`` (an
    ADQL reserved word) and ``TAP_SCHEMA`` for ``tap_schema``.
    """
    return Published(spec, spec.adql_name, spec.sql_name, spec.table_type, tuple(spec.q3c), spec.spoint_column,
                     spec.spoint_of, spec.utype, spec.public_columns)


# Static entries, rebuilt when the wiring's tables change (a domain registered or removed, e.g. by a test).
_STATIC: tuple[tuple[int, ...], dict[str, Published]] = ((), {})


def _static() -> dict[str, Published]:
    global _STATIC
    # TAP_SCHEMA first, then ObsCore and the registry tables behind it, then the domains' tables.
    specs = [*TAP_SCHEMA_TABLES, *wiring.static_published()]
    key = tuple(map(id, specs))
    if key != _STATIC[0]:
        entries: dict[str, Published] = {}
        for spec in specs:
            e = entry_of(spec)
            entries[e.name] = e
        _STATIC = (key, entries)
    return _STATIC[1]


# ------------------------------------------------------------------------------------------------- dynamic tables
#: Tables created at run time (Level 5 catalogs, match tables) are described in the database: each domain's
#: ``dynamic_tables`` functions in the wiring return their specs, read through a connection.
_DYNAMIC: dict[str, Published] = {}
#: ``archive_settings`` key counting publications of dynamic tables, so other processes notice them.
GENERATION_KEY = "tap_generation"


def load_dynamic(conn: sa.Connection) -> None:
    """Reload the dynamic tables' entries from the database (`refresh_tap_schema` does it too)."""
    global _DYNAMIC
    entries: dict[str, Published] = {}
    for spec in wiring.dynamic_tables(conn):
        if spec.published:
            e = entry_of(spec)
            entries[e.name] = e
    _DYNAMIC = entries


def bump_generation(conn: sa.Connection) -> None:
    """Tell every process that the dynamic tables changed (commits with the caller's transaction)."""
    conn.execute(sa.text("INSERT INTO archive_settings (key, value) VALUES (:k, '1') ON CONFLICT (key) "
                         "DO UPDATE SET value = (archive_settings.value::bigint + 1)::text"), {"k": GENERATION_KEY})


def generation(conn: sa.Connection) -> str:
    """The current publication counter (cheap: one primary-key lookup)."""
    value = conn.execute(sa.text("SELECT value FROM archive_settings WHERE key = :k"), {"k": GENERATION_KEY})
    return value.scalar_one_or_none() or "0"


def _entries() -> dict[str, Published]:
    return {**_static(), **_DYNAMIC}


def published() -> list[Published]:
    """Every published table, in registration order (dynamic tables last)."""
    return list(_entries().values())


def find(name: str) -> Published | None:
    """A published table by name (case-insensitive)."""
    for entry in _entries().values():
        if entry.name.casefold() == name.casefold():
            return entry
    return None


# ------------------------------------------------------------------------------------------------------------ types
#: xtype of footprint columns: served as STC-S text (``Polygon ICRS ra1 dec1 ...``, degrees), ObsCore 1.1 style.
REGION_XTYPE = types.REGION_XTYPE
# ADQL 2.1 reserved words (ADQL's own and SQL-92's): columns named so must be written "quoted" in queries.
_RESERVED_WORDS = """
ABS ACOS AREA ASIN ATAN ATAN2 BIT_AND BIT_NOT BIT_OR BIT_XOR BOX CEILING CENTROID CIRCLE CONTAINS COORD1 COORD2
COORDSYS COS COT DEGREES DISTANCE EXP FLOOR ILIKE INTERSECTS IN_UNIT LOG LOG10 MOD PI POINT POLYGON POWER RADIANS
REGION RAND ROUND SIN SQRT TOP TAN TRUNCATE ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT
AUTHORIZATION AVG BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER CHAR_LENGTH
CHARACTER_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT CONNECTION CONSTRAINT CONSTRAINTS
CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER
CURSOR DATE DAY DEALLOCATE DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS
DISCONNECT DISTINCT DOMAIN DOUBLE DROP ELSE END END-EXEC ESCAPE EXCEPT EXCEPTION EXEC EXECUTE EXISTS EXTERNAL
EXTRACT FALSE FETCH FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY
IMMEDIATE IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT INTEGER INTERSECT INTERVAL INTO IS ISOLATION
JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE LOCAL LOWER MATCH MAX MIN MINUTE MODULE MONTH NAMES NATIONAL NATURAL
NCHAR NEXT NO NOT NULL NULLIF NUMERIC OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD PARTIAL
POSITION PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ REAL REFERENCES RELATIVE RESTRICT
REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION SESSION_USER SET SIZE SMALLINT SOME SPACE SQL
SQLCODE SQLERROR SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP TIMEZONE_HOUR
TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION UNIQUE UNKNOWN UPDATE UPPER USAGE USER
USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER WHERE WITH WORK WRITE YEAR ZONE OFFSET
"""
RESERVED = frozenset(_RESERVED_WORDS.split())


def query_name(name: str) -> str:
    """A column name as queries must write it: delimited when it is an ADQL reserved word (TAP_SCHEMA, VOSI)."""
    return f'"{name}"' if name.upper() in RESERVED else name


def votable_type(col: ColumnSpec) -> tuple[str, str | None, str | None]:
    """(VOTable datatype, arraysize, xtype) of a registry column, as TAP_SCHEMA and VOSI declare it."""
    return types.votable_type(col.type)


def unit_of(col: ColumnSpec) -> str:
    """Published unit: none for STC-S regions (ObsCore 1.1 s_region), else the registry's."""
    return "" if col.type == "spoly" else col.unit


def column_info(col: ColumnSpec) -> ColumnInfo:
    """The translator's view of a registry column (ADQL datatype, metadata for the output FIELD)."""
    _, arraysize, xtype = votable_type(col)
    return ColumnInfo(col.name, types.adql_type(col.type), unit_of(col), col.ucd, col.utype, col.description, xtype,
                      arraysize)  # fmt: skip


def table_info(entry: Published) -> TableInfo:
    """The translator's view of a published table."""
    regions = [c.name for c in entry.columns if c.type == "spoly" and c.indexed]  # GiST-indexed footprints
    return TableInfo(entry.name, entry.sql_name, [column_info(c) for c in entry.columns], q3c=list(entry.q3c),
                     spoint_column=entry.spoint_column, region_columns=regions, spoint_of=entry.spoint_of)  # fmt: skip


def catalog(existing: set[str] | None = None) -> Catalog:
    """The tables an ADQL query may reach: every published one (that exists, when ``existing`` is given)."""
    cat = Catalog()
    for entry in _entries().values():
        if existing is None or entry.sql_name in existing:
            cat.add(table_info(entry))
    return cat


def existing_relations(conn: sa.Connection) -> set[str]:
    """SQL names of the published relations present in the database."""
    names = [e.sql_name for e in _entries().values()]
    rows = conn.execute(sa.text("SELECT n, to_regclass(n) IS NOT NULL FROM unnest(CAST(:n AS text[])) AS n"),
                        {"n": names}).all()  # fmt: skip
    return {n for n, present in rows if present}


def foreign_keys(entries: list[Published]) -> list[tuple[str, str, str, str, str]]:
    """(key_id, from_table, target_table, from_column, target_column) between the given published tables."""
    by_sql = {e.sql_name: e for e in entries}
    keys = []
    for e in entries:
        for c in e.columns:
            if not c.foreign_key:
                continue
            table, column = c.foreign_key.rsplit(".", 1)
            target = by_sql.get(table if "." in table else f"public.{table}")
            if target is not None:
                keys.append((f"{e.name}.{c.name}", e.name, target.name, query_name(c.name), query_name(column)))
    return keys


def refresh_tap_schema(conn: sa.Connection) -> None:
    """Rewrite the ``tap_schema`` tables from the registry and grant the query role SELECT on what is published.

    Only relations present in the database are listed (a later migration's table appears once it exists).
    Dynamic tables are reloaded from the database first.
    """
    # Concurrent rewrites (two publications) would both delete and re-insert the same rows: take turns.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('romanarchive.tap_schema'))"))
    load_dynamic(conn)
    present = existing_relations(conn)
    entries = [e for e in _entries().values() if e.sql_name in present]
    for t in reversed(TAP_SCHEMA_TABLES):
        conn.execute(sa.text(f"DELETE FROM tap_schema.{t.name}"))
    schemas = list(dict.fromkeys(e.schema_name for e in entries))
    _insert(conn, "schemas", [
        {"schema_name": s, "utype": None, "description": SCHEMA_DESCRIPTIONS.get(s), "schema_index": i}
        for i, s in enumerate(schemas)])  # fmt: skip
    _insert(conn, "tables", [
        {"schema_name": e.schema_name, "table_name": e.name, "table_type": e.table_type, "utype": e.utype or None,
         "description": e.spec.description, "table_index": i} for i, e in enumerate(entries)])  # fmt: skip
    rows = []
    for e in entries:
        for i, c in enumerate(e.columns):
            datatype, arraysize, xtype = votable_type(c)
            rows.append({
                "table_name": e.name, "column_name": query_name(c.name), "utype": c.utype or None,
                "ucd": c.ucd or None, "unit": unit_of(c) or None, "description": c.description,
                "datatype": datatype, "arraysize": arraysize,
                "xtype": xtype, "size": int(arraysize) if arraysize and arraysize.isdigit() else None,
                "principal": int(c.principal), "indexed": int(c.indexed or c.primary_key), "std": int(c.std),
                "column_index": i + 1,
            })  # fmt: skip
    _insert(conn, "columns", rows)
    keys = foreign_keys(entries)
    _insert(conn, "keys", [{"key_id": k, "from_table": f, "target_table": t, "utype": None,
                            "description": f"{f}.{fc} references {t}.{tc}"} for k, f, t, fc, tc in keys])
    _insert(conn, "key_columns", [{"key_id": k, "from_column": fc, "target_column": tc} for k, _, _, fc, tc in keys])
    grant_query_role(conn, entries)


def grant_query_role(conn: sa.Connection, entries: list[Published]) -> None:
    """Give the query role USAGE on the schemas and SELECT on the relations of ``entries`` (idempotent)."""
    for schema in sorted({e.sql_name.split(".")[0] for e in entries}):
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {QUERY_ROLE}'))
    for e in entries:
        schema, name = e.sql_name.split(".")
        conn.execute(sa.text(f'GRANT SELECT ON "{schema}"."{name}" TO {QUERY_ROLE}'))


def _insert(conn: sa.Connection, table: str, rows: Sequence[Mapping[str, object]]) -> None:
    if rows:
        cols = list(rows[0])
        quoted = ", ".join(f'"{c}"' for c in cols)
        conn.execute(sa.text(f"INSERT INTO tap_schema.{table} ({quoted}) VALUES ({', '.join(':' + c for c in cols)})"),
                     rows)  # fmt: skip

