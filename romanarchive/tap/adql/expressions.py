"""Translation of ADQL value and condition expressions to PostgreSQL."""

from __future__ import annotations

from lark import Token, Tree

from romanarchive.db.types import column_type

from . import functions, geometry
from .catalog import NamePart
from .errors import AdqlError
from .model import GEOMETRY_TYPES, INTEGER_TYPES, Expr, Scope, kind_of_datatype, quote_literal, wider

# ADQL 2.1 CAST target (its words) -> logical type; the PostgreSQL and ADQL types come from romanarchive.db.types.
_CAST_LOGICAL = {
    ("SMALLINT",): "smallint", ("INTEGER",): "integer", ("INT",): "integer", ("BIGINT",): "bigint",
    ("REAL",): "real", ("DOUBLE", "PRECISION"): "double", ("CHAR",): "char", ("CHARACTER",): "char",
    ("VARCHAR",): "varchar", ("TIMESTAMP",): "timestamp",
}  # fmt: skip
_CAST_TYPES = {k: (column_type(v).sql, column_type(v).adql) for k, v in _CAST_LOGICAL.items()}
_KIND_OF_CAST = {
    "SMALLINT": "num",
    "INTEGER": "num",
    "BIGINT": "num",
    "REAL": "num",
    "DOUBLE": "num",
    "CHAR": "str",
    "VARCHAR": "str",
    "TIMESTAMP": "time",
}
_INT4_MAX = 2**31 - 1
_INT8_MAX = 2**63 - 1


def identifier(node: Tree) -> NamePart:
    """(text, delimited) of an ``identifier`` node."""
    token = node.children[0]
    assert isinstance(token, Token)
    if token.type == "DELIMITED_ID":
        return token[1:-1].replace('""', '"'), True
    return str(token), False


def _union(*exprs: Expr) -> frozenset[int]:
    refs: frozenset[int] = frozenset()
    for e in exprs:
        refs |= e.refs
    return refs


def _has(node: Tree, token_type: str) -> bool:
    return any(isinstance(c, Token) and c.type == token_type for c in node.children)


def _trees(node: Tree) -> list[Tree]:
    return [c for c in node.children if isinstance(c, Tree)]


def _integer(value: int) -> Expr:
    if value > _INT8_MAX:
        raise AdqlError(f"integer literal {value} is out of range")
    return Expr(str(value), "num", "INTEGER" if value <= _INT4_MAX else "BIGINT", const=value)


class ExpressionTranslator:
    """Expression half of the translator; `translate.Translator` adds queries and FROM clauses."""

    def subquery(self, node: Tree, scope: Scope) -> tuple[str, list]:  # pragma: no cover - provided by subclass
        raise NotImplementedError

    # ---- entry points
    def condition(self, node: Tree, scope: Scope, where: str = "a condition") -> str:
        """SQL of a boolean condition (WHERE, ON, HAVING, CASE WHEN, AND/OR/NOT operands)."""
        e = self.expr(node, scope)
        if e.kind != "bool":
            raise AdqlError(f"{where} must be a predicate such as a comparison, not a value expression")
        return e.sql

    def value(self, node: Tree, scope: Scope, where: str = "a value") -> Expr:
        """A non-boolean expression."""
        e = self.expr(node, scope)
        if e.kind == "bool":
            raise AdqlError(f"a condition cannot be used as {where}")
        return e

    def expr(self, node: Tree, scope: Scope) -> Expr:
        handler = getattr(self, f"_x_{node.data}", None)
        if handler is None:  # pragma: no cover - the grammar has no other expression rules
            raise AdqlError(f"unsupported expression {node.data}")
        return handler(node, scope)

    # ---- boolean operators and predicates
    def _x_or_expr(self, node: Tree, scope: Scope) -> Expr:
        return Expr("(" + " OR ".join(self.condition(c, scope, "an OR operand") for c in node.children) + ")", "bool")

    def _x_and_expr(self, node: Tree, scope: Scope) -> Expr:
        return Expr("(" + " AND ".join(self.condition(c, scope, "an AND operand") for c in node.children) + ")", "bool")

    def _x_not_(self, node: Tree, scope: Scope) -> Expr:
        return Expr(f"(NOT {self.condition(node.children[-1], scope, 'a NOT operand')})", "bool")

    def _x_comparison(self, node: Tree, scope: Scope) -> Expr:
        left_node, op, right_node = node.children
        left, right = self.value(left_node, scope), self.value(right_node, scope)
        op = "<>" if op == "!=" else str(op)
        rewritten = geometry.comparison(left, op, right)
        if rewritten is not None:
            return Expr(rewritten, "bool")
        self._comparable(left, right, op)
        return Expr(f"({left.sql} {op} {right.sql})", "bool")

    @staticmethod
    def _comparable(left: Expr, right: Expr, op: str) -> None:
        for e in (left, right):
            if e.is_geometry:
                raise AdqlError(f"geometries cannot be compared with {op}; use CONTAINS, INTERSECTS or DISTANCE")
        kinds = {left.kind, right.kind} - {"any", "null"}
        if kinds == {"num", "str"}:
            raise AdqlError(f"cannot compare a number with a string using {op}")

    def _x_between(self, node: Tree, scope: Scope) -> Expr:
        x, low, high = (self.value(c, scope) for c in _trees(node))
        for e in (low, high):
            self._comparable(x, e, "BETWEEN")
        neg = "NOT " if _has(node, "NOT") else ""
        return Expr(f"({x.sql} {neg}BETWEEN {low.sql} AND {high.sql})", "bool")

    def _x_like(self, node: Tree, scope: Scope) -> Expr:
        x, pattern = (self.value(c, scope) for c in _trees(node))
        op = "ILIKE" if _has(node, "ILIKE") else "LIKE"
        for e in (x, pattern):
            if e.kind not in ("str", "any", "null"):
                raise AdqlError(f"{op} needs string operands")
        neg = "NOT " if _has(node, "NOT") else ""
        return Expr(f"({x.sql} {neg}{op} {pattern.sql})", "bool")

    def _x_is_null(self, node: Tree, scope: Scope) -> Expr:
        x = self.value(_trees(node)[0], scope)
        return Expr(f"({x.sql} IS {'NOT ' if _has(node, 'NOT') else ''}NULL)", "bool")

    def _x_in_list(self, node: Tree, scope: Scope) -> Expr:
        x, *items = (self.value(c, scope) for c in _trees(node))
        for e in items:
            self._comparable(x, e, "IN")
        neg = "NOT " if _has(node, "NOT") else ""
        return Expr(f"({x.sql} {neg}IN ({', '.join(e.sql for e in items)}))", "bool")

    def _x_in_subquery(self, node: Tree, scope: Scope) -> Expr:
        x_node, query = _trees(node)
        x = self.value(x_node, scope)
        sql, columns = self.subquery(query, scope)
        if len(columns) != 1:
            raise AdqlError("a subquery after IN must return exactly one column")
        neg = "NOT " if _has(node, "NOT") else ""
        return Expr(f"({x.sql} {neg}IN ({sql}))", "bool")

    def _x_exists(self, node: Tree, scope: Scope) -> Expr:
        sql, _ = self.subquery(_trees(node)[0], scope)
        return Expr(f"(EXISTS ({sql}))", "bool")

    # ---- arithmetic and string operators
    def _x_value(self, node: Tree, scope: Scope) -> Expr:
        acc = self.value(node.children[0], scope, "an operand")
        for op, operand in zip(node.children[1::2], node.children[2::2], strict=True):
            right = self.value(operand, scope, "an operand")
            if op == "||":
                for e in (acc, right):
                    if e.is_geometry:
                        raise AdqlError("geometries cannot be concatenated")
                acc = Expr(f"({acc.sql} || {right.sql})", "str", "VARCHAR", refs=_union(acc, right))
                continue
            for e in (acc, right):
                if e.kind not in ("num", "any", "null") or (e.kind == "num" and e.dtype not in INTEGER_TYPES):
                    raise AdqlError(f"bitwise operator {op} needs integer operands")
            sql_op = "#" if op == "^" else str(op)  # ADQL ^ is XOR; PostgreSQL spells it #
            acc = Expr(
                f"({acc.sql} {sql_op} {right.sql})",
                "num",
                wider(acc.dtype or "INTEGER", right.dtype or "INTEGER"),
                refs=_union(acc, right),
            )
        return acc

    def _arith(self, node: Tree, scope: Scope) -> Expr:
        acc = self.value(node.children[0], scope, "an operand")
        for op, operand in zip(node.children[1::2], node.children[2::2], strict=True):
            right = self.value(operand, scope, "an operand")
            for e in (acc, right):
                if e.kind not in ("num", "any", "null"):
                    raise AdqlError(f"arithmetic operator {op} needs numeric operands")
            acc = Expr(
                f"({acc.sql} {op} {right.sql})",
                "num",
                wider(acc.dtype or "DOUBLE", right.dtype or "DOUBLE"),
                refs=_union(acc, right),
            )
        return acc

    _x_sum = _arith
    _x_product = _arith

    def _x_unary_op(self, node: Tree, scope: Scope) -> Expr:
        op, operand = node.children
        e = self.value(operand, scope, "an operand")
        if op == "~":
            if e.kind not in ("num", "any", "null") or (e.kind == "num" and e.dtype not in INTEGER_TYPES):
                raise AdqlError("bitwise operator ~ needs an integer operand")
            return Expr(f"(~ {e.sql})", "num", e.dtype or "INTEGER", refs=e.refs)
        if e.kind not in ("num", "any", "null"):
            raise AdqlError(f"unary {op} needs a numeric operand")
        if op == "+":
            return Expr(e.sql, e.kind, e.dtype, refs=e.refs, const=e.const)
        const = -e.const if isinstance(e.const, int | float) else None
        return Expr(f"(- {e.sql})", "num", e.dtype, refs=e.refs, const=const)

    # ---- literals
    def _x_number(self, node: Tree, scope: Scope) -> Expr:
        text = str(node.children[0])
        if "." in text or "e" in text.lower():
            return Expr(f"{text}::float8", "num", "DOUBLE", const=float(text))
        return _integer(int(text))

    def _x_hexnum(self, node: Tree, scope: Scope) -> Expr:
        return _integer(int(str(node.children[0])[2:], 16))

    def _x_string(self, node: Tree, scope: Scope) -> Expr:
        value = "".join(str(t)[1:-1].replace("''", "'") for t in node.children)
        return Expr(quote_literal(value), "str", "VARCHAR", const=value)

    def _x_null(self, node: Tree, scope: Scope) -> Expr:
        return Expr("NULL", "null")

    # ---- names, functions, CASE, CAST, subqueries
    def _x_column_ref(self, node: Tree, scope: Scope) -> Expr:
        if _has(node, "STAR"):
            raise AdqlError("a qualified * is only allowed in the select list")
        source = scope.resolve([identifier(c) for c in node.children])
        datatype = source.info.datatype.upper()
        kind = kind_of_datatype(datatype)
        geom = ("column",) if kind in GEOMETRY_TYPES else None
        return Expr(source.sql, kind, datatype, info=source.info, source=source, refs=source.refs, geom=geom)

    def _x_func_call(self, node: Tree, scope: Scope) -> Expr:
        written = str(node.children[0])
        name = written.upper()
        if not functions.known(name):  # before the arguments, so the error names the real problem
            raise AdqlError(f"function {written} is unknown or not allowed")
        star, distinct, args = False, False, []
        if len(node.children) > 1:
            arg_node = node.children[1]
            if arg_node.data == "star_arg":
                star = True
            else:
                for c in arg_node.children:
                    if c.data == "set_quantifier":
                        distinct = str(c.children[0]).upper() == "DISTINCT"
                    else:
                        args.append(self.value(c, scope, "a function argument"))
        return functions.call(name, args, distinct=distinct, star=star)

    def _case_result(self, parts: list[tuple[str, Tree]], else_node: Tree | None, scope: Scope, head: str) -> Expr:
        values = [(cond, self.value(v, scope, "a CASE result")) for cond, v in parts]
        other = self.value(else_node, scope, "a CASE result") if else_node is not None else None
        results = [v for _, v in values] + ([other] if other is not None else [])
        typed = [v for v in results if v.kind != "null"]
        kind = typed[0].kind if typed else "null"
        dtype = typed[0].dtype if typed else ""
        if kind == "num":
            for v in typed:
                dtype = wider(dtype, v.dtype) if v.kind == "num" else dtype
        sql = head + " ".join(f"WHEN {cond} THEN {v.sql}" for cond, v in values)
        if other is not None:
            sql += f" ELSE {other.sql}"
        return Expr(f"({sql} END)", kind, dtype, refs=_union(*results))

    def _x_searched_case(self, node: Tree, scope: Scope) -> Expr:
        whens = [c for c in node.children if c.data == "when_clause"]
        other = next((c.children[0] for c in node.children if c.data == "else_clause"), None)
        parts = [(self.condition(w.children[0], scope, "a CASE WHEN condition"), w.children[1]) for w in whens]
        return self._case_result(parts, other, scope, "CASE ")

    def _x_simple_case(self, node: Tree, scope: Scope) -> Expr:
        operand = self.value(node.children[0], scope, "a CASE operand")
        whens = [c for c in node.children[1:] if c.data == "when_clause"]
        other = next((c.children[0] for c in node.children if c.data == "else_clause"), None)
        parts = []
        for w in whens:
            probe = self.value(w.children[0], scope, "a CASE WHEN value")
            self._comparable(operand, probe, "CASE")
            parts.append((probe.sql, w.children[1]))
        return self._case_result(parts, other, scope, f"CASE {operand.sql} ")

    def _x_cast(self, node: Tree, scope: Scope) -> Expr:
        operand = self.value(node.children[0], scope, "a CAST operand")
        words = [str(t) for t in node.children[1].children]
        length = words.pop() if words and words[-1][:1].isdigit() else None
        key = tuple(w.upper() for w in words)
        if key not in _CAST_TYPES:
            raise AdqlError(f"CAST to {' '.join(words)} is not supported")
        sql_type, dtype = _CAST_TYPES[key]
        if length is not None:
            if dtype not in ("CHAR", "VARCHAR") or not length.isdigit() or not 0 < int(length) <= 10485760:
                raise AdqlError(f"invalid length in CAST to {' '.join(words)}")
            sql_type += f"({int(length)})"
        if operand.is_geometry:
            raise AdqlError("geometries cannot be CAST")
        return Expr(f"CAST({operand.sql} AS {sql_type})", _KIND_OF_CAST[dtype], dtype, refs=operand.refs)

    def _x_scalar_subquery(self, node: Tree, scope: Scope) -> Expr:
        sql, columns = self.subquery(node.children[0], scope)
        if len(columns) != 1:
            raise AdqlError("a scalar subquery must return exactly one column")
        col = columns[0]
        return Expr(f"({sql})", kind_of_datatype(col.datatype), col.datatype.upper(), info=col)
