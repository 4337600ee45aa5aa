"""Light-curve service: one object's forced-photometry time series as VOTable, CSV, JSON or a PNG plot.

Access layer over the ``forced_phot`` table that :mod:`romanarchive.timeseries` fills: the server route
(:mod:`romanarchive.server.routes_lightcurve`) and the CLI (``romanarchive lightcurve``,
:mod:`romanarchive.dal.lightcurve_cli`) are thin callers of :func:`light_curve` and :func:`render`. Columns and
their VOTable FIELDs come from the column registry (:data:`romanarchive.db.tables_timeseries.FORCED_PHOT`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from romanarchive.db.registry import ColumnSpec
from romanarchive.db.tables_timeseries import FORCED_PHOT
from romanarchive.tap.schema import column_info
from romanarchive.tap.votable import normalise, write_votable

FORMATS = {"votable": "application/x-votable+xml", "csv": "text/csv", "json": "application/json",
           "png": "image/png"}
#: Columns returned, in order (every forced_phot column a light curve needs).
COLUMNS = ("source_id", "product_id", "filter", "mjd", "flux", "flux_err", "flux_ap", "flux_ap_err", "dra", "ddec",
           "shift_snr", "flux_shifted", "flux_shifted_err", "flags", "run_id")
#: Filter colours of the PNG plot (shortest to longest wavelength).
_COLOURS = {"F062": "tab:purple", "F087": "tab:blue", "F106": "tab:cyan", "F129": "tab:green", "F146": "tab:olive",
            "F158": "tab:orange", "F184": "tab:red", "F213": "tab:brown"}


class LightCurveError(ValueError):
    """A request that cannot be answered; ``status`` is the HTTP status to use."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LightCurve:
    """One object's measurements, sorted by filter and time."""

    source_id: int
    rows: list[tuple[Any, ...]]

    @property
    def columns(self) -> list[ColumnSpec]:
        """Registry columns of the rows."""
        return [FORCED_PHOT.column(c) for c in COLUMNS]


def parse_source_id(value: str | None) -> int:
    """The ``source_id`` parameter as an integer, or a :class:`LightCurveError`."""
    if value is None or not value.strip():
        raise LightCurveError("missing parameter SOURCE_ID")
    try:
        return int(value.strip())
    except ValueError:
        raise LightCurveError(f"SOURCE_ID must be an integer, not {value.strip()!r}") from None


def parse_format(value: str | None) -> str:
    """Normalise the ``format`` parameter (short names or MIME types)."""
    v = (value or "votable").strip().lower()
    aliases = {"application/x-votable+xml": "votable", "text/xml": "votable", "vot": "votable", "xml": "votable",
               "text/csv": "csv", "application/json": "json", "image/png": "png"}
    v = aliases.get(v, v)
    if v not in FORMATS:
        raise LightCurveError(f"unsupported FORMAT {value!r}; use one of {', '.join(FORMATS)}")
    return v


def light_curve(conn: sa.Connection, source_id: int) -> LightCurve:
    """Read one object's time series.

    Raises
    ------
    LightCurveError
        (404) when the object has no measurements.
    """
    rows = conn.execute(sa.text(f"SELECT {', '.join(COLUMNS)} FROM forced_phot WHERE source_id = :s "
                                "ORDER BY filter, mjd"), {"s": source_id}).all()
    if not rows:
        raise LightCurveError(f"no light curve for source_id {source_id}", status=404)
    return LightCurve(source_id, [tuple(r) for r in rows])


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def render(lc: LightCurve, fmt: str) -> tuple[bytes, str]:
    """Serialise a light curve; returns (body, media type)."""
    if fmt == "votable":
        cols = normalise([column_info(c) for c in lc.columns])
        body = b"".join(write_votable(cols, [lc.rows], lambda: False, binary2=False,
                                      infos=[("source_id", str(lc.source_id))], table_name="lightcurve"))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows([["" if _clean(v) is None else v for v in r] for r in lc.rows])
        body = buf.getvalue().encode("utf-8")
    elif fmt == "json":
        doc = {"source_id": lc.source_id,
               "fields": [{"name": c.name, "datatype": c.tap_datatype, "unit": c.unit, "ucd": c.ucd,
                           "description": c.description} for c in lc.columns],
               "data": [[_clean(v) for v in r] for r in lc.rows]}
        body = json.dumps(doc).encode("utf-8")
    elif fmt == "png":
        body = plot_png(lc)
    else:
        raise LightCurveError(f"unsupported FORMAT {fmt!r}")
    return body, FORMATS[fmt]


def plot_png(lc: LightCurve) -> bytes:
    """Flux against MJD per filter with 1-sigma error bars (matplotlib, Agg backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    i_f, i_t, i_v, i_e, i_fl = (COLUMNS.index(c) for c in ("filter", "mjd", "flux", "flux_err", "flags"))
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for band in sorted({r[i_f] for r in lc.rows}):
        pts = [r for r in lc.rows if r[i_f] == band and r[i_v] is not None]
        ok = [r for r in pts if not r[i_fl] & 0b10011]  # edge, bad pixels, saturated: open symbols
        bad = [r for r in pts if r[i_fl] & 0b10011]
        colour = _COLOURS.get(str(band))
        if ok:
            ax.errorbar([r[i_t] for r in ok], [r[i_v] for r in ok], yerr=[r[i_e] or 0 for r in ok], fmt="o",
                        color=colour, label=str(band), capsize=2)
        if bad:
            ax.errorbar([r[i_t] for r in bad], [r[i_v] for r in bad], yerr=[r[i_e] or 0 for r in bad], fmt="o",
                        mfc="none", color=colour, label=f"{band} (flagged)", capsize=2)
    ax.set_xlabel("MJD")
    ax.set_ylabel("PSF flux [nJy]")
    ax.set_title(f"source_id {lc.source_id}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
