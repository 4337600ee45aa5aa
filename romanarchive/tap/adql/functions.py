"""The function whitelist: ADQL 2.1 math, string and aggregate functions and IVOA UDFs.

Any name not registered here (or in `geometry.FUNCTIONS`) is refused, so queries cannot reach PostgreSQL functions
such as ``pg_sleep`` or ``pg_read_file``.
"""

from __future__ import annotations

from collections.abc import Callable

from . import geometry
from .catalog import ColumnInfo
from .errors import AdqlError
from .model import INTEGER_TYPES, Expr

Handler = Callable[[str, list[Expr], bool], Expr]

# ADQL name -> PostgreSQL function returning double precision.
_DOUBLE_MATH = {
    "CEILING": "ceiling",
    "DEGREES": "degrees",
    "EXP": "exp",
    "FLOOR": "floor",
    "LOG": "ln",  # ADQL LOG is the natural logarithm
    "LOG10": "log10",
    "PI": "pi",
    "POWER": "power",
    "RADIANS": "radians",
    "SQRT": "sqrt",
    "SIN": "sin",
    "COS": "cos",
    "TAN": "tan",
    "COT": "cot",
    "ASIN": "asin",
    "ACOS": "acos",
    "ATAN": "atan",
    "ATAN2": "atan2",
}


AGGREGATES = ("COUNT", "SUM", "AVG", "MIN", "MAX", "IVO_STRING_AGG")


def _refs(args: list[Expr]) -> frozenset[int]:
    refs: frozenset[int] = frozenset()
    for a in args:
        refs |= a.refs
    return refs


def _need(name: str, args: list[Expr], kinds: tuple[str, ...], what: str) -> None:
    for a in args:
        if a.kind not in (*kinds, "any", "null"):
            raise AdqlError(f"{name} needs {what} arguments")


def _sql_args(args: list[Expr]) -> str:
    return ", ".join(a.sql for a in args)


def _double_math(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need(name, args, ("num",), "numeric")
    return Expr(f"{_DOUBLE_MATH[name]}({_sql_args(args)})", "num", "DOUBLE", refs=_refs(args), func=name, args=args)


def _abs(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need(name, args, ("num",), "numeric")
    return Expr(f"abs({args[0].sql})", "num", args[0].dtype or "DOUBLE", refs=_refs(args), func=name, args=args)


def _is_int(e: Expr) -> bool:
    return e.kind == "num" and e.dtype in INTEGER_TYPES


def _mod(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need(name, args, ("num",), "numeric")
    a, b = args
    if _is_int(a) and _is_int(b):
        return Expr(
            f"mod({a.sql}, {b.sql})",
            "num",
            "BIGINT" if "BIGINT" in (a.dtype, b.dtype) else a.dtype,
            refs=_refs(args),
            func=name,
            args=args,
        )
    # PostgreSQL has no mod(double precision, ...)
    sql = f"CAST(mod(CAST({a.sql} AS numeric), CAST({b.sql} AS numeric)) AS double precision)"
    return Expr(sql, "num", "DOUBLE", refs=_refs(args), func=name, args=args)


def _round(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need(name, args, ("num",), "numeric")
    fn = "round" if name == "ROUND" else "trunc"
    if len(args) == 1:
        # numeric rounds halves away from zero; round(double precision) would round them to even.
        sql = f"CAST({fn}(CAST({args[0].sql} AS numeric)) AS double precision)"
        return Expr(sql, "num", "DOUBLE", refs=_refs(args), func=name, args=args)
    if not _is_int(args[1]) and args[1].kind != "any":
        raise AdqlError(f"the second argument of {name} must be an integer")
    # round(x, n) only exists for numeric in PostgreSQL.
    sql = f"CAST({fn}(CAST({args[0].sql} AS numeric), {args[1].sql}) AS double precision)"
    return Expr(sql, "num", "DOUBLE", refs=_refs(args), func=name, args=args)


def _rand(name: str, args: list[Expr], distinct: bool) -> Expr:
    # A seed is accepted for compatibility and ignored: setseed() would change the session state.
    _need(name, args, ("num",), "numeric")
    return Expr("random()", "num", "DOUBLE", func=name)


def _case_fn(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need(name, args, ("str",), "string")
    return Expr(f"{name.lower()}({args[0].sql})", "str", "VARCHAR", refs=_refs(args), func=name, args=args)


def _coalesce(name: str, args: list[Expr], distinct: bool) -> Expr:
    typed = [a for a in args if a.kind != "null"]
    kind = typed[0].kind if typed else "null"
    if kind == "bool":
        raise AdqlError(f"{name} needs value arguments")
    dtype = typed[0].dtype if typed else ""
    return Expr(f"{name.lower()}({_sql_args(args)})", kind, dtype, refs=_refs(args), func=name, args=args)


def _aggregate(name: str, args: list[Expr], distinct: bool, star: bool = False) -> Expr:
    quantifier = "DISTINCT " if distinct else ""
    if name == "COUNT":
        sql = "count(*)" if star else f"count({quantifier}{args[0].sql})"
        return Expr(sql, "num", "BIGINT", refs=_refs(args), func=name, args=args)
    arg = args[0]
    if arg.is_geometry:
        raise AdqlError(f"{name} cannot aggregate geometries")
    if name in ("SUM", "AVG"):
        _need(name, args, ("num",), "numeric")
    inner = f"{name.lower()}({quantifier}{arg.sql})"
    if name == "AVG":
        return Expr(f"CAST({inner} AS double precision)", "num", "DOUBLE", refs=arg.refs, func=name, args=args)
    if name == "SUM":
        if _is_int(arg):  # sum(bigint) is numeric in PostgreSQL; ADQL users expect an integer
            return Expr(f"CAST({inner} AS bigint)", "num", "BIGINT", refs=arg.refs, func=name, args=args)
        return Expr(f"CAST({inner} AS double precision)", "num", "DOUBLE", refs=arg.refs, func=name, args=args)
    return Expr(inner, arg.kind, arg.dtype, info=arg.info, refs=arg.refs, func=name, args=args)


def _hasword(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need(name, args, ("str",), "string")
    sql = f"CAST((to_tsvector('simple', {args[0].sql}) @@ plainto_tsquery('simple', {args[1].sql})) AS integer)"
    return Expr(sql, "num", "INTEGER", refs=_refs(args), func=name, args=args)


def _nocasematch(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need(name, args, ("str",), "string")
    return Expr(
        f"CAST(({args[0].sql} ILIKE {args[1].sql}) AS integer)",
        "num",
        "INTEGER",
        refs=_refs(args),
        func=name,
        args=args,
    )


def _string_agg(name: str, args: list[Expr], distinct: bool) -> Expr:
    if args[0].is_geometry:
        raise AdqlError(f"{name} cannot aggregate geometries")
    _need(name, args[1:], ("str",), "a string delimiter as")
    sql = f"string_agg({'DISTINCT ' if distinct else ''}CAST({args[0].sql} AS text), {args[1].sql})"
    return Expr(sql, "str", "VARCHAR", refs=_refs(args), func=name, args=args)


def _interval_overlaps(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need(name, args, ("num", "time"), "numeric or timestamp")
    l1, h1, l2, h2 = (a.sql for a in args)
    return Expr(
        f"CAST(({h1} >= {l2} AND {h2} >= {l1}) AS integer)", "num", "INTEGER", refs=_refs(args), func=name, args=args
    )


def _epoch_prop(name: str, args: list[Expr], distinct: bool) -> Expr:
    # SQL functions of migration 0003: ra, dec, parallax, pmra, pmdec, radial_velocity, ref_epoch, out_epoch.
    _need(name, args, ("num",), "numeric")
    sql = f"{name.lower()}({', '.join(f'CAST({a.sql} AS double precision)' for a in args)})"
    if name == "IVO_EPOCH_PROP_POS":
        return Expr(sql, "point", "POINT", refs=_refs(args), func=name, args=args)
    # DOUBLE[6]: ra, dec [deg], parallax [mas], pmra, pmdec [mas/yr], radial_velocity [km/s]; mixed units, none given.
    info = ColumnInfo("", "DOUBLE", arraysize="6")
    return Expr(sql, "array", "DOUBLE", info=info, refs=_refs(args), func=name, args=args)


def _unsupported(name: str, args: list[Expr], distinct: bool) -> Expr:
    raise AdqlError(f"{name} is not supported by this service")


REGISTRY: dict[str, tuple[int, int | None, Handler]] = {
    **{n: (2, 2, _double_math) if n in ("POWER", "ATAN2") else (1, 1, _double_math) for n in _DOUBLE_MATH},
    "PI": (0, 0, _double_math),
    "ABS": (1, 1, _abs),
    "MOD": (2, 2, _mod),
    "ROUND": (1, 2, _round),
    "TRUNCATE": (1, 2, _round),
    "RAND": (0, 1, _rand),
    "LOWER": (1, 1, _case_fn),
    "UPPER": (1, 1, _case_fn),
    "COALESCE": (1, None, _coalesce),
    "NULLIF": (2, 2, _coalesce),
    **{n: (1, 1, _aggregate) for n in ("COUNT", "SUM", "AVG", "MIN", "MAX")},
    "IVO_HASWORD": (2, 2, _hasword),
    "IVO_NOCASEMATCH": (2, 2, _nocasematch),
    "IVO_STRING_AGG": (2, 2, _string_agg),
    "IVO_INTERVAL_OVERLAPS": (4, 4, _interval_overlaps),
    "IVO_EPOCH_PROP": (8, 8, _epoch_prop),
    "IVO_EPOCH_PROP_POS": (8, 8, _epoch_prop),
    "IN_UNIT": (0, None, _unsupported),
    "REGION": (0, None, _unsupported),
}


def known(name: str) -> bool:
    """Whether the upper-case ``name`` is a whitelisted function."""
    return name in REGISTRY or name in geometry.FUNCTIONS


def call(name: str, args: list[Expr], distinct: bool = False, star: bool = False) -> Expr:
    """Translate a call of the ADQL function ``name`` (upper case) on translated arguments.

    Raises
    ------
    AdqlError
        Unknown or forbidden function, wrong number or kind of arguments.
    """
    spec = REGISTRY.get(name) or geometry.FUNCTIONS.get(name)
    if spec is None:
        raise AdqlError(f"function {name} is unknown or not allowed")
    low, high, handler = spec
    if star:
        if name != "COUNT":
            raise AdqlError(f"{name}(*) is not allowed; only COUNT(*)")
        return _aggregate(name, [], False, star=True)
    if distinct and name not in AGGREGATES:
        raise AdqlError(f"DISTINCT is only allowed in aggregate functions, not in {name}")
    if len(args) < low or (high is not None and len(args) > high):
        expected = str(low) if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
        raise AdqlError(f"{name} takes {expected} argument{'s' if expected != '1' else ''}, not {len(args)}")
    return handler(name, args, distinct)
