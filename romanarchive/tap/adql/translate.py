"""ADQL to PostgreSQL (pgsphere + q3c) translation: queries, FROM clauses and output columns."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from lark import Token, Tree

from .catalog import Catalog, ColumnInfo, NamePart, part_matches
from .errors import AdqlError
from .expressions import ExpressionTranslator, identifier
from .model import GEOMETRY_TYPES, NUMERIC_TYPES, Binding, Cte, Expr, Scope, Source, quote_ident, table_sql, wider
from .parser import parse


@dataclass
class Translation:
    """Result of `translate`.

    Attributes
    ----------
    sql
        One PostgreSQL SELECT statement without a trailing semicolon.
    columns
        Output columns in order, their names unique (case-insensitively) and equal to the SQL output names.
        Geometry columns hold pgsphere values and carry ``xtype`` 'point', 'circle' or 'polygon'.
    overflow_limit
        The LIMIT of the outermost query, or None when there is none. With ``maxrec`` given it is ``maxrec + 1``
        unless a smaller TOP applies (then it is TOP): more than ``maxrec`` rows returned means the result overflowed
        MAXREC, and the caller keeps the first ``maxrec`` rows and reports OVERFLOW.
    """

    sql: str
    columns: list[ColumnInfo]
    overflow_limit: int | None


@dataclass
class _Item:
    """A select-list item: its SQL, output name and metadata, and the alias the user wrote (if any)."""

    sql: str
    info: ColumnInfo
    alias: NamePart | None = None
    kind: str = "any"


@dataclass
class _From:
    sql: str
    visible: list[Source]
    bindings: list[Binding]


def _children(node: Tree, name: str) -> list[Tree]:
    return [c for c in node.children if isinstance(c, Tree) and c.data == name]


def _child(node: Tree, name: str) -> Tree | None:
    found = _children(node, name)
    return found[0] if found else None


def _int_token(token: object, what: str) -> int:
    text = str(token)
    if not text.isdigit():
        raise AdqlError(f"{what} must be a non-negative integer, not {text}")
    return int(text)


def _output_info(e: Expr, name: str) -> ColumnInfo:
    if e.info is not None:
        info = replace(e.info, name=name)
    elif e.kind in GEOMETRY_TYPES:
        info = ColumnInfo(name, GEOMETRY_TYPES[e.kind][0])
    else:
        default = {"str": "VARCHAR", "time": "TIMESTAMP", "num": "DOUBLE"}.get(e.kind, "VARCHAR")
        info = ColumnInfo(name, e.dtype or default)
    if e.kind in GEOMETRY_TYPES and info.xtype is None:
        info.xtype = GEOMETRY_TYPES[e.kind][1]
    return info


def _dedupe(items: list[_Item]) -> None:
    # Unique output names keep derived tables and SELECT * over them unambiguous.
    seen: set[str] = set()
    for item in items:
        name = item.info.name
        if name.casefold() in seen:
            for n in itertools.count(2):
                candidate = f"{name}_{n}"
                if candidate.casefold() not in seen:
                    name = candidate
                    break
            item.info = replace(item.info, name=name)
        seen.add(name.casefold())


class Translator(ExpressionTranslator):
    """Translates one parsed query against a `Catalog` (single use: it numbers the aliases it emits)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._aliases = itertools.count(1)

    def _alias(self, prefix: str = "t") -> tuple[int, str]:
        n = next(self._aliases)
        return n, f"{prefix}{n}"

    def subquery(self, node: Tree, scope: Scope) -> tuple[str, list[ColumnInfo]]:
        sql, columns, _ = self.query(node, scope)
        return sql, columns

    # ---- queries
    def query(self, node: Tree, outer: Scope | None, maxrec: int | None = None
              ) -> tuple[str, list[ColumnInfo], int | None]:
        """Translate a ``query`` node; returns SQL, output columns and the LIMIT emitted at this level."""
        scope = Scope(parent=outer)  # holds this query's CTEs
        with_sql = ""
        with_node = _child(node, "with_clause")
        if with_node is not None:
            with_sql = self._with(with_node, scope)
        set_expr = _child(node, "set_expr")
        assert set_expr is not None
        order = _child(node, "order_by")
        offset_node = _child(node, "offset_clause")
        offset = _int_token(offset_node.children[0], "OFFSET") if offset_node is not None else None
        terms = set_expr.children
        if len(terms) == 1 and len(terms[0].children) == 1:
            sql, columns, limit = self._select(terms[0].children[0], scope, order, offset, maxrec)
            return with_sql + sql, columns, limit
        sql, items = self._set_expr(set_expr, scope)
        if order is not None:
            sql += " ORDER BY " + ", ".join(self._sort_output(s, items, "UNION/INTERSECT/EXCEPT")
                                            for s in order.children)
        limit = maxrec + 1 if maxrec is not None else None
        sql += self._limit_offset(limit, offset)
        return with_sql + sql, [i.info for i in items], limit

    @staticmethod
    def _limit_offset(limit: int | None, offset: int | None) -> str:
        return (f" LIMIT {limit}" if limit is not None else "") + (f" OFFSET {offset}" if offset else "")

    def _with(self, node: Tree, scope: Scope) -> str:
        parts = []
        for cte in node.children:
            name, delimited = identifier(cte.children[0])
            aliases = _child(cte, "column_alias_list")
            body = _child(cte, "query")
            assert body is not None
            sql, columns, _ = self.query(body, scope)  # earlier CTEs are visible to later ones
            columns = self._rename(columns, aliases, f"WITH {name}")
            _, sql_name = self._alias("adql_cte")
            parts.append(f"{quote_ident(sql_name)}({', '.join(quote_ident(c.name) for c in columns)}) AS ({sql})")
            scope.ctes.append(Cte(name, delimited, sql_name, columns))
        return "WITH " + ", ".join(parts) + " "

    @staticmethod
    def _rename(columns: list[ColumnInfo], aliases: Tree | None, what: str) -> list[ColumnInfo]:
        if aliases is None:
            return columns
        names = [identifier(a)[0] for a in aliases.children]
        if len(names) != len(columns):
            raise AdqlError(f"{what} names {len(names)} columns but its query returns {len(columns)}")
        if len({n.casefold() for n in names}) != len(names):
            raise AdqlError(f"{what} names a column twice")
        return [replace(c, name=n) for c, n in zip(columns, names, strict=True)]

    def _set_expr(self, node: Tree, scope: Scope) -> tuple[str, list[_Item]]:
        def operand(core: Tree) -> tuple[str, list[_Item]]:
            sql, items = self._core(core, scope, None, None, None)[:2]
            return f"({sql})", items

        def term(t: Tree) -> tuple[str, list[_Item]]:
            sql, items = operand(t.children[0])
            for op, core in zip(t.children[1::2], t.children[2::2], strict=True):
                rsql, ritems = operand(core)
                self._union_items(items, ritems, "INTERSECT")
                sql = f"({sql} INTERSECT{' ALL' if len(op.children) > 1 else ''} {rsql})"
            return sql, items

        sql, items = term(node.children[0])
        for op, t in zip(node.children[1::2], node.children[2::2], strict=True):
            rsql, ritems = term(t)
            word = str(op.children[0]).upper()
            self._union_items(items, ritems, word)
            sql = f"{sql} {word}{' ALL' if len(op.children) > 1 else ''} {rsql}"
        return sql, items

    @staticmethod
    def _union_items(items: list[_Item], others: list[_Item], word: str) -> None:
        if len(items) != len(others):
            raise AdqlError(f"each {word} operand must return the same number of columns")
        for item, other in zip(items, others, strict=True):
            a, b = item.info.datatype.upper(), other.info.datatype.upper()
            if a in NUMERIC_TYPES and b in NUMERIC_TYPES and a != b:
                item.info = replace(item.info, datatype=wider(a, b))

    def _select(self, core: Tree, scope: Scope, order: Tree | None, offset: int | None, maxrec: int | None
                ) -> tuple[str, list[ColumnInfo], int | None]:
        sql, items, limit = self._core(core, scope, order, offset, maxrec)
        return sql, [i.info for i in items], limit

    def _core(self, core: Tree, outer: Scope, order: Tree | None, offset: int | None, maxrec: int | None
              ) -> tuple[str, list[_Item], int | None]:
        scope = Scope(parent=outer)
        from_node = _child(core, "from_clause")
        from_sql = self._from(from_node, scope) if from_node is not None else ""
        items = self._select_list(_child(core, "select_list"), scope)
        quantifier = _child(core, "set_quantifier")
        distinct = quantifier is not None and str(quantifier.children[0]).upper() == "DISTINCT"
        top_node = _child(core, "top")
        top = _int_token(top_node.children[0], "TOP") if top_node is not None else None
        sql = "SELECT " + ("DISTINCT " if distinct else "")
        sql += ", ".join(f"{i.sql} AS {quote_ident(i.info.name)}" for i in items)
        if from_sql:
            sql += " FROM " + from_sql
        where = _child(core, "where_clause")
        if where is not None:
            sql += " WHERE " + self.condition(where.children[0], scope, "WHERE")
        group = _child(core, "group_by")
        if group is not None:
            sql += " GROUP BY " + ", ".join(self._group_item(g, scope, items) for g in group.children)
        having = _child(core, "having")
        if having is not None:
            sql += " HAVING " + self.condition(having.children[0], scope, "HAVING")
        if order is not None:
            sql += " ORDER BY " + ", ".join(self._sort_item(s, scope, items) for s in order.children)
        limit = top
        if maxrec is not None:
            limit = maxrec + 1 if top is None else min(top, maxrec + 1)
        sql += self._limit_offset(limit, offset)
        return sql, items, limit

    # ---- select list, GROUP BY, ORDER BY
    def _select_list(self, node: Tree | None, scope: Scope) -> list[_Item]:
        assert node is not None
        items: list[_Item] = []
        for item in node.children:
            if item.data == "star":
                if not scope.visible:
                    raise AdqlError("SELECT * needs a FROM clause")
                items += [self._source_item(s) for s in scope.visible]
                continue
            expr_node = item.children[0]
            alias = identifier(item.children[1]) if len(item.children) > 1 else None
            if expr_node.data == "column_ref" and any(isinstance(c, Token) and c.type == "STAR"
                                                      for c in expr_node.children):
                if alias is not None:
                    raise AdqlError("a qualified * cannot have an alias")
                items += [self._source_item(s) for s in self._qualified_star(expr_node, scope)]
                continue
            e = self.value(expr_node, scope, "a select-list item")
            if alias is not None:
                name = alias[0]
            elif e.source is not None:
                name = e.source.name
            elif e.func is not None:
                name = e.func.lower()
            else:
                name = f"col{len(items) + 1}"
            items.append(_Item(e.sql, _output_info(e, name), alias, e.kind))
        _dedupe(items)
        return items

    @staticmethod
    def _source_item(source: Source) -> _Item:
        e = Expr(source.sql, "any", info=source.info)
        datatype = source.info.datatype.upper()
        for kind, (dtype, _) in GEOMETRY_TYPES.items():
            if datatype == dtype or (kind == "polygon" and datatype == "REGION"):
                e.kind = kind
        return _Item(source.sql, _output_info(e, source.name), None, e.kind)

    @staticmethod
    def _qualified_star(node: Tree, scope: Scope) -> list[Source]:
        parts = [identifier(c) for c in node.children if isinstance(c, Tree)]
        bindings = [b for b in scope.bindings if b.matches(parts)]
        shown = ".".join(p[0] for p in parts)
        if not bindings:
            raise AdqlError(f"{shown}.* does not name a table of the FROM clause")
        if len(bindings) > 1:
            raise AdqlError(f"table reference {shown} is ambiguous")
        return bindings[0].columns

    @staticmethod
    def _output_match(node: Tree, items: list[_Item]) -> int | None:
        """Index of the select item a bare name designates (its alias or output name), if any."""
        if node.data != "column_ref" or len(node.children) != 1:
            return None
        part = identifier(node.children[0])
        found = [k for k, i in enumerate(items) if i.alias is not None and part_matches(part, i.alias[0])]
        if not found:
            found = [k for k, i in enumerate(items) if part_matches(part, i.info.name)]
        if len(found) > 1:
            raise AdqlError(f"ORDER BY {part[0]} is ambiguous")
        return found[0] if found else None

    @staticmethod
    def _position(node: Tree, items: list[_Item]) -> int | None:
        if node.data != "number" or not str(node.children[0]).isdigit():
            return None
        pos = int(str(node.children[0]))
        if not 1 <= pos <= len(items):
            raise AdqlError(f"ORDER BY position {pos} is not in the select list (1 to {len(items)})")
        return pos

    @staticmethod
    def _direction(node: Tree) -> str:
        tokens = [str(c).upper() for c in node.children if isinstance(c, Token)]
        return " DESC" if "DESC" in tokens else " ASC" if "ASC" in tokens else ""

    def _sort_item(self, node: Tree, scope: Scope, items: list[_Item]) -> str:
        expr_node = node.children[0]
        pos = self._position(expr_node, items)
        if pos is not None:
            return f"{pos}{self._direction(node)}"
        k = self._output_match(expr_node, items)
        if k is not None:
            if items[k].kind in GEOMETRY_TYPES:
                raise AdqlError("results cannot be ordered by a geometry")
            return f"{quote_ident(items[k].info.name)}{self._direction(node)}"
        e = self.value(expr_node, scope, "an ORDER BY item")
        if e.is_geometry:
            raise AdqlError("results cannot be ordered by a geometry")
        return f"{e.sql}{self._direction(node)}"

    def _sort_output(self, node: Tree, items: list[_Item], what: str) -> str:
        expr_node = node.children[0]
        pos = self._position(expr_node, items)
        if pos is not None:
            return f"{pos}{self._direction(node)}"
        k = self._output_match(expr_node, items)
        if k is None:
            raise AdqlError(f"ORDER BY after {what} must name an output column or give its position")
        return f"{quote_ident(items[k].info.name)}{self._direction(node)}"

    def _group_item(self, node: Tree, scope: Scope, items: list[_Item]) -> str:
        try:
            e = self.value(node, scope, "a GROUP BY item")
        except AdqlError:
            # Like PostgreSQL, fall back to a select-list alias when no input column has the name.
            k = self._output_match(node, items)
            if k is None:
                raise
            return items[k].sql
        if e.is_geometry:
            raise AdqlError("results cannot be grouped by a geometry")
        return e.sql

    # ---- FROM
    def _from(self, node: Tree, scope: Scope) -> str:
        parts = []
        for ref in node.children:
            item = self._table_ref(ref, scope)
            parts.append(item.sql)
            scope.visible += item.visible
            scope.bindings += item.bindings
        return ", ".join(parts)

    def _table_ref(self, node: Tree, scope: Scope) -> _From:
        left = self._table_primary(node.children[0], scope)
        for join in node.children[1:]:
            left = self._join(left, join, scope)
        return left

    def _table_primary(self, node: Tree, scope: Scope) -> _From:
        if node.data == "paren_join":
            inner = self._table_ref(node.children[0], scope)
            return _From(f"({inner.sql})", inner.visible, inner.bindings)
        if node.data == "derived_table":
            query, alias_node = node.children[0], node.children[1]
            # A derived table sees enclosing queries but not its FROM-clause siblings (no LATERAL in ADQL).
            sql, columns, _ = self.query(query, scope.parent)
            name, delimited = identifier(alias_node)
            columns = self._rename(columns, _child(node, "column_alias_list"), f"derived table {name}")
            n, sql_alias = self._alias()
            names = ", ".join(quote_ident(c.name) for c in columns)
            binding = self._binding(n, sql_alias, [name], delimited, columns, None)
            return _From(f"({sql}) AS {quote_ident(sql_alias)}({names})", binding.columns, [binding])
        name_parts = [identifier(c) for c in node.children[0].children]
        alias = identifier(node.children[1]) if len(node.children) > 1 else None
        n, sql_alias = self._alias()
        cte = scope.find_cte(name_parts[0]) if len(name_parts) == 1 else None
        if cte is not None:
            qualifier, delimited = ([alias[0]], alias[1]) if alias else ([cte.name], cte.delimited)
            binding = self._binding(n, sql_alias, qualifier, delimited, cte.columns, None)
            return _From(f"{quote_ident(cte.sql_name)} AS {quote_ident(sql_alias)}", binding.columns, [binding])
        table = self.catalog.lookup(name_parts)
        qualifier, delimited = ([alias[0]], alias[1]) if alias else (table.name.split("."), False)
        binding = self._binding(n, sql_alias, qualifier, delimited, table.columns, table)
        return _From(f"{table_sql(table.sql_name)} AS {quote_ident(sql_alias)}", binding.columns, [binding])

    @staticmethod
    def _binding(n: int, sql_alias: str, qualifier: list[str], delimited: bool, columns: list[ColumnInfo],
                 table) -> Binding:
        binding = Binding(n, sql_alias, qualifier, delimited, [], table)
        binding.columns = [Source(c.name, f"{quote_ident(sql_alias)}.{quote_ident(c.name)}", c, frozenset({n}),
                                  binding) for c in columns]
        return binding

    def _join(self, left: _From, node: Tree, scope: Scope) -> _From:
        jt = _child(node, "join_type")
        words = [str(t).upper() for t in jt.children] if jt is not None else ["INNER"]
        kind = words[0]
        join_sql = "INNER JOIN" if kind == "INNER" else f"{kind} OUTER JOIN"
        right = self._table_primary(next(c for c in node.children if isinstance(c, Tree) and c.data in (
            "table", "derived_table", "paren_join")), scope)
        bindings = left.bindings + right.bindings
        if node.data == "cross_join":
            return _From(f"{left.sql} CROSS JOIN {right.sql}", left.visible + right.visible, bindings)
        spec = _child(node, "join_on")
        if spec is not None:
            on_scope = Scope(parent=scope.parent, bindings=bindings, visible=left.visible + right.visible)
            cond = self.condition(spec.children[0], on_scope, "a JOIN ... ON condition")
            return _From(f"{left.sql} {join_sql} {right.sql} ON {cond}", left.visible + right.visible, bindings)
        using = _child(node, "join_using")
        if using is not None:
            names = [identifier(c) for c in using.children]
        else:  # NATURAL: the published columns the two sides share (PostgreSQL's would include unpublished ones)
            right_names = {s.name for s in right.visible}
            names = [(s.name, True) for s in left.visible if s.name in right_names]
            if not names:
                if kind == "INNER":
                    return _From(f"{left.sql} CROSS JOIN {right.sql}", left.visible + right.visible, bindings)
                return _From(f"{left.sql} {join_sql} {right.sql} ON TRUE", left.visible + right.visible, bindings)
        return self._join_using(left, right, names, kind, join_sql)

    @staticmethod
    def _join_using(left: _From, right: _From, names: list[NamePart], kind: str, join_sql: str) -> _From:
        merged, used_left, used_right = [], [], []
        for part in names:
            sides = []
            for side in (left, right):
                found = [s for s in side.visible if part_matches(part, s.name)]
                if len(found) != 1:
                    problem = "is missing from" if not found else "is ambiguous in"
                    raise AdqlError(f"join column {part[0]} {problem} one side of the join")
                sides.append(found[0])
            lsrc, rsrc = sides
            if lsrc.name != rsrc.name:
                raise AdqlError(f"join column {part[0]} is spelt {lsrc.name} and {rsrc.name} on the two sides")
            used_left.append(lsrc)
            used_right.append(rsrc)
            if kind == "FULL":
                merged.append(Source(lsrc.name, f"COALESCE({lsrc.sql}, {rsrc.sql})", lsrc.info,
                                     lsrc.refs | rsrc.refs))
            else:
                keep = rsrc if kind == "RIGHT" else lsrc
                merged.append(Source(keep.name, keep.sql, keep.info, keep.refs, keep.binding))
        visible = merged + [s for s in left.visible if s not in used_left]
        visible += [s for s in right.visible if s not in used_right]
        cols = ", ".join(quote_ident(s.name) for s in used_left)
        return _From(f"{left.sql} {join_sql} {right.sql} USING ({cols})", visible, left.bindings + right.bindings)


def translate(query: str, catalog: Catalog, maxrec: int | None = None) -> Translation:
    """Translate an ADQL query to one PostgreSQL SELECT statement.

    Parameters
    ----------
    query
        ADQL 2.1 text.
    catalog
        The tables the query may reach (anything else is refused).
    maxrec
        TAP MAXREC: when given, the outermost LIMIT is ``maxrec + 1`` (or TOP when smaller) so that the caller can
        detect overflow; see `Translation.overflow_limit`.

    Returns
    -------
    Translation
        SQL, output column metadata and the LIMIT applied.

    Raises
    ------
    AdqlSyntaxError
        The query does not parse.
    AdqlError
        It parses but refers to unpublished tables, unknown columns or functions, or breaks a limit.
    """
    if maxrec is not None and maxrec < 0:
        raise AdqlError("MAXREC must not be negative")
    tree = parse(query)
    translator = Translator(catalog)
    try:
        sql, columns, limit = translator.query(tree.children[0], None, maxrec)
    except RecursionError:
        raise AdqlError("query is too deeply nested") from None
    return Translation(sql, columns, limit)
