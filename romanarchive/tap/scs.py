"""Simple Cone Search 1.03 over a configurable published table, through the same translator and runner as TAP.

By default it serves the archive's source catalog, ``roman.objects`` (its ``live`` release), as an archive's cone
search usually does; products are found by position through SIA 2.0, TAP on ``ivoa.obscore`` or the MAST API.

RA, DEC and SR are in decimal degrees (ICRS); VERB 1 gives the identifier and position, 2 (default) the principal
columns, 3 every column. Errors are a VOTable with an ``INFO name="Error"`` (SCS 1.03) and a DALI
``QUERY_STATUS=ERROR`` INFO, so SCS and DAL clients both read them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from romanarchive.tap import schema
from romanarchive.tap.service import QueryParams, QueryRunner, TapError, first
from romanarchive.tap.votable import NAMESPACE, xml_attr, xml_text

MAX_SR = 180.0


@dataclass(frozen=True)
class ConeTable:
    """The table cone searches read: its published name, the identifier, RA and Dec columns, and an ADQL condition
    every row served must meet (empty for none)."""

    table: str
    id_column: str
    ra_column: str
    dec_column: str
    condition: str = ""


#: The default: the archive's source catalog, as it is now (rows of the ``live`` release; frozen releases are the
#: same objects again, reachable through TAP).
OBJECTS = ConeTable("roman.objects", "source_id", "ra", "dec", "release = 'live'")
#: The products (one row per product, at its footprint's centre).
OBSCORE = ConeTable("ivoa.obscore", "obs_publisher_did", "s_ra", "s_dec")
_CONE = OBJECTS


def configure(table: str, id_column: str, ra_column: str, dec_column: str, condition: str | None = None) -> None:
    """Point ``/scs`` at another published table (one with an index on its position).

    ``condition`` (ADQL) restricts the rows served; by default ``release = 'live'`` for ``roman.objects``, none
    for other tables.
    """
    global _CONE
    if condition is None:
        condition = OBJECTS.condition if table.lower() == OBJECTS.table else ""
    _CONE = ConeTable(table, id_column, ra_column, dec_column, condition)


def cone_table() -> ConeTable:
    """The table ``/scs`` searches."""
    return _CONE


def _number(params: Mapping[str, list[str]], name: str) -> float:
    raw = first(params, name)
    if raw is None or not raw.strip():
        raise TapError(f"missing required parameter {name}")
    try:
        value = float(raw)
    except ValueError:
        raise TapError(f"{name} must be a number in decimal degrees, not {raw!r}") from None
    if not math.isfinite(value):
        raise TapError(f"{name} must be finite, not {raw!r}")
    return value


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def search(runner: QueryRunner, params: Mapping[str, list[str]]) -> Iterator[bytes]:
    """Run a cone search; returns the VOTable in pieces.

    Raises
    ------
    TapError
        Missing or out-of-range RA, DEC, SR or VERB, or a failed query.
    """
    ra, dec, sr = _number(params, "RA"), _number(params, "DEC"), _number(params, "SR")
    if not 0 <= ra <= 360:
        raise TapError(f"RA must be within [0, 360] degrees, not {ra:g}")
    if not -90 <= dec <= 90:
        raise TapError(f"DEC must be within [-90, 90] degrees, not {dec:g}")
    if not 0 <= sr <= MAX_SR:
        raise TapError(f"SR must be within [0, {MAX_SR:g}] degrees, not {sr:g}")
    verb_raw = first(params, "VERB") or "2"
    if verb_raw.strip() not in ("1", "2", "3"):
        raise TapError(f"VERB must be 1, 2 or 3, not {verb_raw!r}")
    verb = int(verb_raw)
    cone = _CONE
    entry = schema.find(cone.table)
    if entry is None:
        raise TapError(f"the cone search table {cone.table} is not published", 500)
    main = [cone.id_column, cone.ra_column, cone.dec_column]
    if verb == 1:
        names = main
    elif verb == 2:
        names = main + [c.name for c in entry.columns if c.principal and c.name not in main]
    else:
        names = main + [c.name for c in entry.columns if c.name not in main]
    adql = (f"SELECT {', '.join(_q(n) for n in names)} FROM {entry.name} WHERE 1 = CONTAINS("
            f"POINT('ICRS', {_q(cone.ra_column)}, {_q(cone.dec_column)}), CIRCLE('ICRS', {ra!r}, {dec!r}, {sr!r}))"
            + (f" AND {cone.condition}" if cone.condition else ""))
    qp = QueryParams(adql, "ADQL", runner.config.hard_maxrec, "votable")
    oq = runner.open(qp, runner.config.sync_timeout_s)
    # SCS 1.03 finds the identifier and position by these UCD1 names.
    ucds = {cone.id_column: "ID_MAIN", cone.ra_column: "POS_EQ_RA_MAIN", cone.dec_column: "POS_EQ_DEC_MAIN"}
    oq.columns = [replace(c, ucd=ucds.get(c.name, c.ucd)) for c in oq.columns]
    return oq.stream("votable/tabledata" if first(params, "RESPONSEFORMAT") == "votable/td" else "votable",
                     infos=[("QUERY", adql)])  # fmt: skip


def error_votable(message: str) -> bytes:
    """An SCS 1.03 error document (also a DALI error)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<VOTABLE version="1.4" xmlns="{NAMESPACE}">\n'
        f'<INFO ID="Error" name="Error" value="{xml_attr(message)}"/>\n'
        '<RESOURCE type="results">\n'
        f'<INFO name="QUERY_STATUS" value="ERROR">{xml_text(message)}</INFO>\n'
        "</RESOURCE>\n</VOTABLE>\n"
    ).encode()
