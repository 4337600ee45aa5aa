"""ADQL 2.1 parsing and translation to PostgreSQL with pgsphere and q3c.

Typical use::

    from romanarchive.tap.adql import Catalog, TableInfo, ColumnInfo, translate

    result = translate("SELECT TOP 5 * FROM cat WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.1))",
                       catalog, maxrec=1000)
    cursor.execute(result.sql)
"""

from .catalog import Catalog, ColumnInfo, TableInfo
from .errors import AdqlError, AdqlSyntaxError
from .parser import MAX_PAREN_DEPTH, MAX_QUERY_BYTES, parse
from .translate import Translation, translate

__all__ = [
    "MAX_PAREN_DEPTH",
    "MAX_QUERY_BYTES",
    "AdqlError",
    "AdqlSyntaxError",
    "Catalog",
    "ColumnInfo",
    "TableInfo",
    "Translation",
    "parse",
    "translate",
]
