"""Values the translator passes around: typed SQL fragments, name scopes and SQL quoting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalog import ColumnInfo, NamePart, TableInfo, part_matches
from .errors import AdqlError

NUMERIC_TYPES = ("SMALLINT", "INTEGER", "BIGINT", "REAL", "DOUBLE")
INTEGER_TYPES = ("SMALLINT", "INTEGER", "BIGINT")
_KIND_OF_TYPE = {
    **{t: "num" for t in NUMERIC_TYPES},
    "FLOAT": "num",
    "CHAR": "str",
    "VARCHAR": "str",
    "UNICODECHAR": "str",
    "CLOB": "str",
    "TEXT": "str",
    "TIMESTAMP": "time",
    "POINT": "point",
    "CIRCLE": "circle",
    "POLYGON": "polygon",
    "REGION": "polygon",
}
#: ColumnInfo datatype and DALI xtype of geometry kinds.
GEOMETRY_TYPES = {"point": ("POINT", "point"), "circle": ("CIRCLE", "circle"), "polygon": ("POLYGON", "polygon")}


def kind_of_datatype(datatype: str) -> str:
    """Expression kind ('num', 'str', 'time', 'point', 'circle', 'polygon' or 'any') of a column datatype."""
    return _KIND_OF_TYPE.get(datatype.upper(), "any")


def wider(a: str, b: str) -> str:
    """The numeric datatype able to hold both ``a`` and ``b``."""
    ia = NUMERIC_TYPES.index(a) if a in NUMERIC_TYPES else len(NUMERIC_TYPES) - 1
    ib = NUMERIC_TYPES.index(b) if b in NUMERIC_TYPES else len(NUMERIC_TYPES) - 1
    return NUMERIC_TYPES[max(ia, ib)]


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier (always quoted, so keywords and case survive)."""
    if "\x00" in name:
        raise AdqlError("identifiers may not contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal; E'...' form when it holds backslashes, so standard_conforming_strings cannot matter."""
    if "\x00" in value:
        raise AdqlError("string literals may not contain NUL characters")
    if "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


def table_sql(sql_name: str) -> str:
    """SQL for a `TableInfo.sql_name`."""
    if '"' in sql_name:
        return sql_name  # pre-quoted by the service itself, never by a user
    return ".".join(quote_ident(p) for p in sql_name.split("."))


@dataclass
class Expr:
    """A translated expression.

    ``kind`` is one of 'num', 'str', 'time', 'bool' (a condition), 'point', 'circle', 'polygon', 'null' or 'any'.
    ``geom`` keeps the structure the index rewrites need: ('radec', ra, dec) for POINT(ra, dec), ('column',) for a
    geometry column, ('circle', centre, radius) for CIRCLE. ``pred`` is the boolean SQL of CONTAINS/INTERSECTS, whose
    ``sql`` is the ADQL 0/1 integer.
    """

    sql: str
    kind: str
    dtype: str = ""
    info: ColumnInfo | None = None
    source: Source | None = None
    refs: frozenset[int] = frozenset()
    const: Any = None
    geom: tuple | None = None
    pred: str | None = None
    func: str | None = None
    args: list[Expr] = field(default_factory=list)

    @property
    def is_geometry(self) -> bool:
        return self.kind in ("point", "circle", "polygon")


@dataclass
class Source:
    """A column visible in a FROM clause: its name, the SQL reaching it and its metadata."""

    name: str
    sql: str
    info: ColumnInfo
    refs: frozenset[int]
    binding: Binding | None = None


@dataclass
class Binding:
    """One FROM item (table, derived table or CTE reference) and the names that qualify its columns."""

    id: int
    alias: str
    qualifier: list[str]
    qualifier_delimited: bool
    columns: list[Source]
    table: TableInfo | None = None

    def matches(self, parts: list[NamePart]) -> bool:
        if len(parts) > len(self.qualifier):
            return False
        if len(self.qualifier) == 1:  # an alias, or a CTE
            text, delimited = parts[0]
            if self.qualifier_delimited or delimited:
                return text == self.qualifier[0]
            return text.casefold() == self.qualifier[0].casefold()
        return all(part_matches(p, n) for p, n in zip(parts, self.qualifier[-len(parts) :], strict=True))

    def column(self, part: NamePart) -> Source | None:
        found = [s for s in self.columns if part_matches(part, s.name)]
        if len(found) > 1:
            raise AdqlError(f"column name {part[0]} is ambiguous in {'.'.join(self.qualifier)}")
        return found[0] if found else None


@dataclass
class Cte:
    """A common table expression: emitted name and output columns."""

    name: str
    delimited: bool
    sql_name: str
    columns: list[ColumnInfo]


@dataclass
class Scope:
    """Names visible in one SELECT: its FROM items, the enclosing scope and the CTEs."""

    parent: Scope | None = None
    bindings: list[Binding] = field(default_factory=list)
    visible: list[Source] = field(default_factory=list)
    ctes: list[Cte] = field(default_factory=list)

    def find_cte(self, part: NamePart) -> Cte | None:
        scope: Scope | None = self
        while scope is not None:
            for cte in reversed(scope.ctes):
                if part_matches(part, cte.name) if not cte.delimited else part[0] == cte.name:
                    return cte
            scope = scope.parent
        return None

    def resolve(self, parts: list[NamePart]) -> Source:
        """Resolve a column reference here or in enclosing scopes (correlated subqueries)."""
        scope: Scope | None = self
        shown = ".".join(p[0] for p in parts)
        while scope is not None:
            if len(parts) == 1:
                found = [s for s in scope.visible if part_matches(parts[0], s.name)]
                if len(found) > 1:
                    raise AdqlError(f"column name {shown} is ambiguous; qualify it with a table name")
                if found:
                    return found[0]
            else:
                qualifier = parts[:-1]
                bindings = [b for b in scope.bindings if b.matches(qualifier)]
                if len(bindings) > 1:
                    raise AdqlError(f"table reference {'.'.join(p[0] for p in qualifier)} is ambiguous")
                if bindings:
                    source = bindings[0].column(parts[-1])
                    if source is None:
                        raise AdqlError(f"column {parts[-1][0]} does not exist in {'.'.join(bindings[0].qualifier)}")
                    return source
            scope = scope.parent
        raise AdqlError(f"column {shown} does not exist")
