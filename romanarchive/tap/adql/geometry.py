"""ADQL geometry functions on pgsphere, and the rewrites that let sky-position predicates use an index.

ADQL works in degrees and pgsphere in radians, so every constructor converts with ``radians()`` and every angle
returned to ADQL with ``degrees()``. Predicates keep their pgsphere boolean in `Expr.pred`; `comparison` turns
``CONTAINS(...) = 1`` and ``DISTANCE(...) < r`` into ``q3c_join`` or an indexed pgsphere operator where the catalog
says an index exists (both forms are exact, so a rewrite never changes results, only the plan).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .catalog import ColumnInfo
from .errors import AdqlError
from .model import Binding, Expr, Source, quote_ident

Handler = Callable[[str, list[Expr], bool], Expr]
_FRAMES = ("", "ICRS")


def _info(name: str, unit: str) -> ColumnInfo:
    return ColumnInfo(name.lower(), "DOUBLE", unit=unit)


def _refs(args: list[Expr]) -> frozenset[int]:
    refs: frozenset[int] = frozenset()
    for a in args:
        refs |= a.refs
    return refs


def _strip_coordsys(name: str, args: list[Expr]) -> list[Expr]:
    """Drop and validate the optional leading coordinate-system string (ADQL 2.0 style, deprecated in 2.1)."""
    if args and args[0].kind == "str":
        frame = args[0].const
        if not isinstance(frame, str):
            raise AdqlError(f"the coordinate system argument of {name} must be a string literal")
        words = frame.split()
        if (words[0].upper() if words else "") not in _FRAMES:
            raise AdqlError(f"coordinate system {frame!r} is not supported; positions are ICRS")
        return args[1:]
    return args


def _numbers(name: str, args: list[Expr]) -> None:
    for a in args:
        if a.kind not in ("num", "any", "null"):
            raise AdqlError(f"{name} needs numeric coordinates (degrees)")


def _need_kind(name: str, e: Expr, kinds: tuple[str, ...], what: str) -> None:
    if e.kind not in (*kinds, "null"):
        raise AdqlError(f"{name} needs {what}")


def make_point(ra: Expr, dec: Expr) -> Expr:
    """POINT(ra, dec) in degrees."""
    return Expr(
        f"spoint(radians({ra.sql}), radians({dec.sql}))",
        "point",
        "POINT",
        refs=_refs([ra, dec]),
        geom=("radec", ra, dec),
        func="POINT",
        args=[ra, dec],
    )


def make_circle(centre: Expr, radius: Expr) -> Expr:
    """CIRCLE(centre, radius) with the radius in degrees."""
    return Expr(
        f"scircle({centre.sql}, radians({radius.sql}))",
        "circle",
        "CIRCLE",
        refs=_refs([centre, radius]),
        geom=("circle", centre, radius),
        func="CIRCLE",
        args=[centre, radius],
    )


def degrees_of(point: Expr) -> tuple[str, str]:
    """SQL for the (ra, dec) of a point, in degrees."""
    if point.geom and point.geom[0] == "radec":
        return point.geom[1].sql, point.geom[2].sql
    return f"degrees(long({point.sql}))", f"degrees(lat({point.sql}))"


def _point(name: str, args: list[Expr], distinct: bool) -> Expr:
    args = _strip_coordsys(name, args)
    if len(args) != 2:
        raise AdqlError("POINT takes an optional coordinate system, then ra and dec")
    _numbers(name, args)
    return make_point(*args)


def _circle(name: str, args: list[Expr], distinct: bool) -> Expr:
    args = _strip_coordsys(name, args)
    if len(args) == 3:
        _numbers(name, args)
        centre = make_point(args[0], args[1])
    elif len(args) == 2:
        centre = args[0]
        _need_kind(name, centre, ("point",), "a POINT centre")
    else:
        raise AdqlError("CIRCLE takes a centre (POINT or ra, dec) and a radius")
    _numbers(name, args[-1:])
    return make_circle(centre, args[-1])


# A polygon vertex: SQL of ra and dec in degrees, and their values when both are literals.
Vertex = tuple[str, str, float | None, float | None]


def _vertex(point: Expr) -> Vertex:
    if point.geom and point.geom[0] == "radec":
        ra, dec = point.geom[1], point.geom[2]
        return ra.sql, dec.sql, _const(ra), _const(dec)
    ra_sql, dec_sql = degrees_of(point)
    return ra_sql, dec_sql, None, None


def _const(e: Expr) -> float | None:
    return float(e.const) if isinstance(e.const, int | float) and not isinstance(e.const, bool) else None


def make_polygon(vertices: list[Vertex]) -> Expr:
    """An spoly from vertices; a literal when all coordinates are constants (so the planner sees a constant)."""
    consts = [(v[2], v[3]) for v in vertices]
    if all(ra is not None and dec is not None for ra, dec in consts):
        text = ",".join(f"({ra!r}d,{dec!r}d)" for ra, dec in consts)
        sql = f"'{{{text}}}'::spoly"
        geom: tuple = ("polygon", consts)
    else:
        # pgsphere 1.2 has no spoly constructor from numbers: build its text form (float8 text is exact).
        pieces = [f"CAST(radians({ra}) AS text) || ',' || CAST(radians({dec}) AS text)" for ra, dec, _, _ in vertices]
        sql = "CAST('{(' || " + " || '),(' || ".join(pieces) + " || ')}' AS spoly)"
        geom = ("polygon", None)
    return Expr(sql, "polygon", "POLYGON", geom=geom, func="POLYGON")


def _polygon(name: str, args: list[Expr], distinct: bool) -> Expr:
    args = _strip_coordsys(name, args)
    if args and all(a.kind == "point" for a in args):
        vertices = [_vertex(a) for a in args]
    else:
        _numbers(name, args)
        if len(args) % 2:
            raise AdqlError("POLYGON needs pairs of coordinates")
        vertices = [(ra.sql, dec.sql, _const(ra), _const(dec)) for ra, dec in zip(args[::2], args[1::2], strict=True)]
    if len(vertices) < 3:
        raise AdqlError("POLYGON needs at least three vertices")
    e = make_polygon(vertices)
    e.refs = _refs(args)
    return e


def _box(name: str, args: list[Expr], distinct: bool) -> Expr:
    # ADQL 2.0 BOX (deprecated in 2.1): centre, width and height in degrees, emitted as the polygon of its corners.
    args = _strip_coordsys(name, args)
    if len(args) == 3 and args[0].kind == "point":
        (ra_sql, dec_sql, ra_c, dec_c), sizes = _vertex(args[0]), args[1:]
    elif len(args) == 4:
        _numbers(name, args[:2])
        ra_sql, dec_sql, ra_c, dec_c = args[0].sql, args[1].sql, _const(args[0]), _const(args[1])
        sizes = args[2:]
    else:
        raise AdqlError("BOX takes a centre (POINT or ra, dec), a width and a height")
    _numbers(name, sizes)
    w, h = sizes
    wc, hc = _const(w), _const(h)
    vertices: list[Vertex] = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        ra = f"({ra_sql} {'+' if sx > 0 else '-'} ({w.sql}) / 2.0)"
        dec = f"({dec_sql} {'+' if sy > 0 else '-'} ({h.sql}) / 2.0)"
        if ra_c is not None and dec_c is not None and wc is not None and hc is not None:
            vertices.append((ra, dec, ra_c + sx * wc / 2, dec_c + sy * hc / 2))
        else:
            vertices.append((ra, dec, None, None))
    e = make_polygon(vertices)
    e.refs = _refs(args)
    return e


def _area(name: str, args: list[Expr], distinct: bool) -> Expr:
    (g,) = args
    _need_kind(name, g, ("point", "circle", "polygon"), "a geometry")
    if g.kind == "point":
        return Expr("0.0::float8", "num", "DOUBLE", refs=g.refs)
    # pgsphere areas are in steradians; ADQL wants square degrees.
    return Expr(f"degrees(degrees(area({g.sql})))", "num", "DOUBLE", info=_info(name, "deg**2"), refs=g.refs, func=name)


def _centroid(name: str, args: list[Expr], distinct: bool) -> Expr:
    (g,) = args
    _need_kind(name, g, ("point", "circle", "polygon"), "a geometry")
    if g.kind == "point":
        return g
    if g.kind == "circle":
        return Expr(f"center({g.sql})", "point", "POINT", refs=g.refs, func=name)
    if g.geom and g.geom[0] == "polygon" and g.geom[1]:
        # Mean of the vertex unit vectors: pgsphere 1.2 has no polygon centroid function.
        vec = [0.0, 0.0, 0.0]
        for ra, dec in g.geom[1]:
            a, d = math.radians(ra), math.radians(dec)
            vec[0] += math.cos(d) * math.cos(a)
            vec[1] += math.cos(d) * math.sin(a)
            vec[2] += math.sin(d)
        lon = math.degrees(math.atan2(vec[1], vec[0])) % 360.0
        lat = math.degrees(math.atan2(vec[2], math.hypot(vec[0], vec[1])))
        return Expr(f"spoint(radians({lon!r}), radians({lat!r}))", "point", "POINT", func=name)
    raise AdqlError("CENTROID is only supported for circles and for polygons with literal vertices")


def _coord(name: str, args: list[Expr], distinct: bool) -> Expr:
    (p,) = args
    _need_kind(name, p, ("point",), "a POINT")
    fn = "long" if name == "COORD1" else "lat"
    return Expr(f"degrees({fn}({p.sql}))", "num", "DOUBLE", info=_info(name, "deg"), refs=p.refs, func=name)


def _coordsys(name: str, args: list[Expr], distinct: bool) -> Expr:
    _need_kind(name, args[0], ("point", "circle", "polygon"), "a geometry")
    return Expr("'ICRS'", "str", "VARCHAR", func=name)


def _distance(name: str, args: list[Expr], distinct: bool) -> Expr:
    if len(args) == 4:
        _numbers(name, args)
        p, q = make_point(args[0], args[1]), make_point(args[2], args[3])
    elif len(args) == 2:
        p, q = args
        for e in args:
            _need_kind(name, e, ("point",), "two POINTs or four coordinates")
    else:
        raise AdqlError("DISTANCE takes two POINTs or four coordinates")
    return Expr(
        f"degrees({p.sql} <-> {q.sql})",
        "num",
        "DOUBLE",
        info=_info(name, "deg"),
        refs=_refs([p, q]),
        func=name,
        args=[p, q],
    )


def _contains_expr(a: Expr, b: Expr) -> Expr:
    pred = f"({a.sql} @ {b.sql})"
    return Expr(
        f"CAST({pred} AS integer)", "num", "INTEGER", refs=_refs([a, b]), pred=pred, func="CONTAINS", args=[a, b]
    )


def _contains(name: str, args: list[Expr], distinct: bool) -> Expr:
    a, b = args
    _need_kind(name, a, ("point", "circle", "polygon"), "a geometry as first argument")
    _need_kind(name, b, ("circle", "polygon"), "a CIRCLE, POLYGON or BOX (a region) as second argument")
    return _contains_expr(a, b)


def _intersects(name: str, args: list[Expr], distinct: bool) -> Expr:
    a, b = args
    for e in args:
        _need_kind(name, e, ("point", "circle", "polygon"), "geometries")
    if a.kind == "point" and b.kind == "point":
        raise AdqlError("INTERSECTS needs at least one region (CIRCLE, POLYGON or BOX)")
    # ADQL: with a point argument INTERSECTS means CONTAINS(point, region).
    if a.kind == "point":
        return _contains_expr(a, b)
    if b.kind == "point":
        return _contains_expr(b, a)
    pred = f"({a.sql} && {b.sql})"
    return Expr(f"CAST({pred} AS integer)", "num", "INTEGER", refs=_refs(args), pred=pred, func=name, args=args)


def _healpix_index(name: str, args: list[Expr], distinct: bool) -> Expr:
    order, *pos = args
    if len(pos) == 2:
        _numbers(name, pos)
        point = make_point(*pos)
    elif len(pos) == 1:
        point = pos[0]
        _need_kind(name, point, ("point",), "an order and a POINT, or an order, ra and dec")
    else:
        raise AdqlError("IVO_HEALPIX_INDEX takes an order and a POINT, or an order, ra and dec")
    _numbers(name, [order])
    return Expr(
        f"healpix_nest(CAST({order.sql} AS integer), {point.sql})", "num", "BIGINT", refs=_refs(args), func=name
    )


def _healpix_center(name: str, args: list[Expr], distinct: bool) -> Expr:
    _numbers(name, args)
    order, index = args
    return Expr(
        f"centre_of_healpix_nest(CAST({order.sql} AS integer), CAST({index.sql} AS bigint))",
        "point",
        "POINT",
        refs=_refs(args),
        func=name,
    )


FUNCTIONS: dict[str, tuple[int, int | None, Handler]] = {
    "POINT": (2, 3, _point),
    "CIRCLE": (2, 4, _circle),
    "POLYGON": (3, None, _polygon),
    "BOX": (3, 5, _box),
    "AREA": (1, 1, _area),
    "CENTROID": (1, 1, _centroid),
    "COORD1": (1, 1, _coord),
    "COORD2": (1, 1, _coord),
    "COORDSYS": (1, 1, _coordsys),
    "DISTANCE": (2, 4, _distance),
    "CONTAINS": (2, 2, _contains),
    "INTERSECTS": (2, 2, _intersects),
    "IVO_HEALPIX_INDEX": (2, 3, _healpix_index),
    "IVO_HEALPIX_CENTER": (2, 2, _healpix_center),
}


# ---- index rewrites
def _radec_columns(point: Expr) -> tuple[Binding, Source, Source] | None:
    """(binding, ra, dec) when ``point`` is POINT(t.ra, t.dec) on two columns of one catalog table."""
    if not (point.geom and point.geom[0] == "radec"):
        return None
    ra, dec = point.geom[1].source, point.geom[2].source
    if ra is None or dec is None or ra.binding is None or ra.binding is not dec.binding:
        return None
    if ra.binding.table is None:
        return None
    return ra.binding, ra, dec


def _spoint_sql(binding: Binding, column: str) -> str:
    return f"{quote_ident(binding.alias)}.{quote_ident(column)}"


def _size(binding: Binding) -> float:
    rows = binding.table.rows if binding.table is not None else None
    return math.inf if rows is None else float(rows)


def contains_index(point: Expr, region: Expr) -> str | None:
    """Index-using SQL equivalent to CONTAINS(point, region) = 1, or None when no index applies.

    In a join where both the point's table and the circle centre's table are indexed, the larger table's index is
    used (`TableInfo.rows`), so the smaller side drives the nested loop.
    """
    if point.kind != "point":
        return None
    circle = region.geom if region.geom and region.geom[0] == "circle" else None
    candidates: list[tuple[float, str]] = []
    found = _radec_columns(point)
    if found:
        binding, ra, dec = found
        table = binding.table
        assert table is not None
        if binding.id not in region.refs:
            if circle and table.has_q3c(ra.name, dec.name):
                cra, cdec = degrees_of(circle[1])
                # q3c_join(ra1, dec1, ra2, dec2, r) scans the index on (ra2, dec2).
                candidates.append((_size(binding), f"q3c_join({cra}, {cdec}, {ra.sql}, {dec.sql}, {circle[2].sql})"))
            else:
                spoint = table.spoint_for(ra.name, dec.name)
                if spoint:
                    candidates.append((_size(binding), f"({_spoint_sql(binding, spoint)} @ {region.sql})"))
    if circle:
        # The indexed position may be the circle centre: a point table joined to it, or a constant point.
        centre, radius = circle[1], circle[2]
        others = point.refs | radius.refs
        found = _radec_columns(centre)
        source = centre.source
        if found and found[0].id not in others:
            binding, ra, dec = found
            table = binding.table
            assert table is not None
            if table.has_q3c(ra.name, dec.name):
                pra, pdec = degrees_of(point)
                candidates.append((_size(binding), f"q3c_join({pra}, {pdec}, {ra.sql}, {dec.sql}, {radius.sql})"))
            else:
                spoint = table.spoint_for(ra.name, dec.name)
                if spoint:
                    candidates.append((_size(binding), f"({_spoint_sql(binding, spoint)} @ scircle({point.sql}, "
                                                       f"radians({radius.sql})))"))
        elif (
            centre.geom == ("column",)
            and source is not None
            and source.binding is not None
            and source.binding.table is not None
            and source.binding.id not in others
            and source.binding.table.spoint_column == source.name
        ):
            candidates.append((_size(source.binding), f"({centre.sql} @ scircle({point.sql}, "
                                                      f"radians({radius.sql})))"))
    if not candidates:
        return None
    # The first of the largest: a stable choice, the point's table when sizes tie.
    best = max(c[0] for c in candidates)
    return next(sql for size, sql in candidates if size == best)


def comparison(left: Expr, op: str, right: Expr) -> str | None:
    """Boolean SQL for ``left op right`` when it is a geometric predicate, else None.

    Handles CONTAINS/INTERSECTS compared with 0 or 1 (either side) and DISTANCE(p, q) < r, <= r, r > and r >=.
    """
    for pred, other in ((left, right), (right, left)):
        if pred.pred is not None and op in ("=", "<>") and other.const in (0, 1) and isinstance(other.const, int):
            if (other.const == 1) != (op == "="):
                return f"(NOT {pred.pred})"
            if pred.func == "CONTAINS":
                return contains_index(pred.args[0], pred.args[1]) or pred.pred
            return pred.pred
    if left.func == "DISTANCE" and op in ("<", "<="):
        distance, radius = left, right
    elif right.func == "DISTANCE" and op in (">", ">="):
        distance, radius = right, left
    else:
        return None
    if radius.kind not in ("num", "any"):
        return None
    p, q = distance.args
    for point, centre in ((p, q), (q, p)):
        sql = contains_index(point, make_circle(centre, radius))
        if sql:
            return sql
    return None
