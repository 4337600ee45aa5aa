"""Description of the published tables an ADQL query may reach."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import AdqlError

#: A name part as written in the query: (text, delimited). Delimited ("quoted") parts compare case-sensitively.
NamePart = tuple[str, bool]


def part_matches(part: NamePart, name: str) -> bool:
    """Whether a query name part designates the catalog name ``name`` (regular identifiers ignore case)."""
    text, delimited = part
    return text == name if delimited else text.casefold() == name.casefold()


@dataclass
class ColumnInfo:
    """A published column (TAP_SCHEMA.columns semantics)."""

    name: str
    datatype: str
    unit: str = ""
    ucd: str = ""
    utype: str = ""
    description: str = ""
    xtype: str | None = None
    arraysize: str | None = None


@dataclass
class TableInfo:
    """A published table.

    Parameters
    ----------
    name
        Published name, e.g. ``ivoa.obscore`` or ``TAP_UPLOAD.mine``.
    sql_name
        Relation to emit in SQL: a dotted path of unquoted names (each part is quoted on emission) or, if it contains a
        double quote, a verbatim pre-quoted SQL name.
    columns
        Published columns in ``SELECT *`` order. Columns not listed cannot be referenced by queries.
    q3c
        (ra, dec) column pairs in degrees with a ``q3c_ang2ipix(ra, dec)`` index.
    spoint_column
        pgsphere ``spoint`` column with a GiST index (may be unpublished).
    region_columns
        ``spoly`` columns with a GiST index.
    spoint_of
        (ra, dec) pair that ``spoint_column`` equals ``spoint(radians(ra), radians(dec))`` of; lets
        ``POINT(t.ra, t.dec)`` use the spoint index when there is no q3c pair.
    rows
        Row count when known (uploads). When both sides of a positional join are indexed, the index of the larger
        side is the one used (an unknown count counts as larger), so the small side drives the nested loop.
    """

    name: str
    sql_name: str
    columns: list[ColumnInfo]
    q3c: list[tuple[str, str]] = field(default_factory=list)
    spoint_column: str | None = None
    region_columns: list[str] = field(default_factory=list)
    spoint_of: tuple[str, str] | None = None
    rows: int | None = None

    def has_q3c(self, ra: str, dec: str) -> bool:
        """Whether (ra, dec) is an indexed q3c pair."""
        return any(r.casefold() == ra.casefold() and d.casefold() == dec.casefold() for r, d in self.q3c)

    def spoint_for(self, ra: str, dec: str) -> str | None:
        """The indexed spoint column equal to POINT(ra, dec), if any."""
        if self.spoint_column and self.spoint_of:
            r, d = self.spoint_of
            if r.casefold() == ra.casefold() and d.casefold() == dec.casefold():
                return self.spoint_column
        return None


@dataclass
class Catalog:
    """The tables a query may use, keyed by published name (upload tables as ``TAP_UPLOAD.<name>``).

    Lookups ignore case for regular identifiers; an unqualified name resolves when exactly one table has that last
    component (an exact match of the whole name wins).
    """

    tables: dict[str, TableInfo] = field(default_factory=dict)

    def add(self, table: TableInfo) -> None:
        """Publish ``table`` under its name."""
        self.tables[table.name] = table

    def get(self, name: str) -> TableInfo | None:
        """The table a dotted name designates (parts compared case-insensitively), or None."""
        try:
            return self.lookup([(part, False) for part in name.split(".")])
        except AdqlError:
            return None

    def lookup(self, parts: list[NamePart]) -> TableInfo:
        """Resolve a possibly qualified table name; raise `AdqlError` when it is not published or ambiguous."""
        shown = ".".join(text for text, _ in parts)
        exact, partial = [], []
        for key, table in self.tables.items():
            names = key.split(".")
            if len(names) == len(parts) and all(part_matches(p, n) for p, n in zip(parts, names, strict=True)):
                exact.append(table)
            elif len(parts) < len(names) and all(
                part_matches(p, n) for p, n in zip(parts, names[-len(parts) :], strict=True)
            ):
                partial.append(table)
        found = exact or partial
        if len(found) == 1:
            return found[0]
        if not found:
            raise AdqlError(f"table {shown} is not published")
        raise AdqlError(f"table name {shown} is ambiguous: {', '.join(sorted(t.name for t in found))}")
