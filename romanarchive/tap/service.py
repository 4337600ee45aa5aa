"""Running TAP queries: DALI parameters, ADQL translation, safe execution and streamed serialisation.

A query runs on its own pooled connection in one transaction that is made READ ONLY (after any TAP_UPLOAD temp
tables are loaded), as the no-login role ``romanarchive_tap`` that may only SELECT published relations, under a
``statement_timeout``. Rows come from a server-side cursor in ``fetchmany`` batches straight into
`romanarchive.tap.formats.stream`, so memory stays bounded by one batch whatever the result size.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any

import psycopg
from psycopg import errors as pgerrors

from romanarchive.archive import Archive
from romanarchive.db.engine import libpq_url
from romanarchive.tap import formats, schema
from romanarchive.tap.adql import MAX_QUERY_BYTES, AdqlError, Catalog, ColumnInfo, translate
from romanarchive.tap.errors import TapError
from romanarchive.tap.upload import load_uploads, parse_upload_param

__all__ = ["ConnectionPool", "OpenQuery", "QueryParams", "QueryRunner", "TapConfig", "TapError", "parse_query_params"]

log = logging.getLogger(__name__)

LANGS = ("ADQL", "ADQL-2.0", "ADQL-2.1")


@dataclass(frozen=True)
class TapConfig:
    """Limits of the TAP service.

    Attributes
    ----------
    default_maxrec, hard_maxrec
        Rows returned when MAXREC is not given, and the most any query may return.
    sync_timeout_s
        Statement timeout of synchronous queries.
    default_duration_s, max_duration_s
        Default and largest UWS executionduration of async jobs.
    destruction_s
        How long an async job and its result are kept.
    batch_rows
        Rows fetched per round trip (and encoded per piece of output).
    upload_limit_bytes
        Largest accepted TAP_UPLOAD table.
    """

    default_maxrec: int = 100_000
    hard_maxrec: int = 10_000_000
    sync_timeout_s: float = 60.0
    default_duration_s: int = 3600
    max_duration_s: int = 4 * 3600
    destruction_s: int = 7 * 86400
    batch_rows: int = 5000
    upload_limit_bytes: int = 64 << 20


@dataclass
class QueryParams:
    """Validated TAP query parameters."""

    query: str
    lang: str
    maxrec: int
    fmt: str
    uploads: list[tuple[str, str]] = field(default_factory=list)
    runid: str | None = None


def lower_params(items: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """DALI: parameter names are case-insensitive; keep every value of a repeated name, in order."""
    out: dict[str, list[str]] = {}
    for k, v in items:
        out.setdefault(k.lower(), []).append(v)
    return out


def first(params: Mapping[str, list[str]], name: str) -> str | None:
    """The first value of a parameter, or None."""
    values = params.get(name.lower())
    return values[0] if values else None


def parse_query_params(params: Mapping[str, list[str]], config: TapConfig) -> QueryParams:
    """Check REQUEST, LANG, QUERY, MAXREC, RESPONSEFORMAT/FORMAT and UPLOAD (unknown parameters are ignored).

    Raises
    ------
    TapError
        A missing or invalid parameter.
    """
    request = first(params, "REQUEST")
    if request is not None and request != "doQuery":
        raise TapError(f"unsupported REQUEST {request!r}: only doQuery is supported")
    lang = first(params, "LANG")
    if lang is None:
        lang = "ADQL"
    if lang.upper() not in LANGS:
        raise TapError(f"unsupported LANG {lang!r}: this service accepts {', '.join(LANGS)}")
    query = first(params, "QUERY")
    if query is None or not query.strip():
        raise TapError("missing QUERY parameter")
    if len(query) > MAX_QUERY_BYTES or len(query.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise TapError(f"query is too long (more than {MAX_QUERY_BYTES} bytes)")
    maxrec = config.default_maxrec
    raw = first(params, "MAXREC")
    if raw is not None and raw.strip():
        try:
            maxrec = int(raw)
        except ValueError:
            raise TapError(f"MAXREC must be a non-negative integer, not {raw!r}") from None
        if maxrec < 0:
            raise TapError(f"MAXREC must be a non-negative integer, not {raw!r}")
    maxrec = min(maxrec, config.hard_maxrec)
    fmt_value = first(params, "RESPONSEFORMAT") or first(params, "FORMAT")
    try:
        fmt = formats.resolve_format(fmt_value)
    except ValueError as exc:
        raise TapError(str(exc)) from None
    uploads: list[tuple[str, str]] = []
    for value in params.get("upload", []):
        uploads.extend(parse_upload_param(value))
    return QueryParams(query, lang, maxrec, fmt, uploads, first(params, "RUNID"))


# ------------------------------------------------------------------------------------------------ geometry output
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_DEG = 180.0 / math.pi


def _degrees(value: str) -> list[float]:
    # pgsphere prints 15 significant digits of radians; 1e-12 deg (4 nano-arcsec) drops only that noise.
    return [round(float(x) * _DEG, 12) for x in _NUM.findall(value)]


def _dali(value: Any) -> Any:
    """pgsphere text (radians) -> DALI tuple in degrees; a circle's radius is converted as well."""
    if value is None or not isinstance(value, str):
        return value
    return tuple(_degrees(value))


def _stcs(value: Any) -> Any:
    """pgsphere text (radians) -> STC-S in degrees: ``Polygon ICRS ...``, ``Circle ICRS ...``, ``Position ICRS ...``."""
    if value is None or not isinstance(value, str):
        return value
    shape = {"{": "Polygon", "<": "Circle"}.get(value.lstrip()[:1], "Position")
    return f"{shape} ICRS " + " ".join(repr(v) for v in _degrees(value))


def _converters(columns: Sequence[ColumnInfo]) -> list[tuple[int, Any]]:
    out = []
    for i, c in enumerate(columns):
        xtype = (c.xtype or "").lower()
        if xtype == schema.REGION_XTYPE.lower() or c.datatype.upper() == "REGION":
            out.append((i, _stcs))
        elif xtype in ("point", "circle", "polygon") or c.datatype.upper() in ("POINT", "CIRCLE", "POLYGON"):
            out.append((i, _dali))
    return out


def convert_rows(rows: list[tuple[Any, ...]], converters: list[tuple[int, Any]]) -> list[tuple[Any, ...]]:
    """Turn the pgsphere values of a batch into DALI arrays or STC-S text."""
    if not converters or not rows:
        return rows
    out = []
    for row in rows:
        r = list(row)
        for i, f in converters:
            r[i] = f(r[i])
        out.append(tuple(r))
    return out


# ------------------------------------------------------------------------------------------------------- execution
class ConnectionPool:
    """A small pool of psycopg connections to the archive database (connecting costs more than a small query)."""

    def __init__(self, url: str, max_idle: int = 8) -> None:
        self.url = libpq_url(url)
        self.max_idle = max_idle
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def get(self) -> psycopg.Connection[Any]:
        """An idle connection, or a new one."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return psycopg.connect(self.url, application_name="romanarchive-tap")

    def put(self, conn: psycopg.Connection[Any]) -> None:
        """Return a connection: its transaction is rolled back (dropping temp tables and SET LOCALs)."""
        try:
            if not conn.closed:
                conn.rollback()
        except psycopg.Error:
            conn.close()
        with self._lock:
            if not conn.closed and not conn.broken and len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


@dataclass
class OpenQuery:
    """A query that started without error: its output columns and the rest of its rows, batch by batch."""

    columns: list[ColumnInfo]
    maxrec: int
    batches: Iterator[list[tuple[Any, ...]]]
    backend_pid: int

    def stream(self, fmt: str, infos: Sequence[tuple[str, str]] = ()) -> Iterator[bytes]:
        """Serialise with `romanarchive.tap.formats.stream`."""
        return formats.stream(fmt, self.columns, self.batches, overflow_after=self.maxrec, infos=infos)


def _sql_error(exc: psycopg.Error, timeout_s: float | None) -> TapError:
    if isinstance(exc, pgerrors.QueryCanceled):
        if timeout_s:
            return TapError(f"query cancelled: it exceeded the time limit of {timeout_s:g} s")
        return TapError("query cancelled")
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return TapError(f"permission denied: {exc.diag.message_primary or exc}")
    msg = exc.diag.message_primary if getattr(exc, "diag", None) is not None else None
    return TapError(f"query failed: {msg or exc}")


UploadOpener = Callable[[str], IO[bytes]]


class QueryRunner:
    """Translate and run TAP queries against one archive.

    Parameters
    ----------
    archive
        The archive (its database URL is used; queries run as `schema.QUERY_ROLE`).
    config
        Service limits.
    """

    def __init__(self, archive: Archive, config: TapConfig | None = None) -> None:
        self.archive = archive
        self.config = config or TapConfig()
        self.pool = ConnectionPool(archive.url)
        self._catalog: Catalog | None = None
        self._generation = ""
        self._checked = 0.0

    def catalog(self) -> Catalog:
        """Published tables present in the database (cached; `refresh` renews it).

        At most once a second the publication counter is read, so tables published at run time by another process
        (Level 5 catalogs) become queryable a moment later.
        """
        now = time.monotonic()
        cat = self._catalog
        if cat is None or now - self._checked >= 1.0:
            with self.archive.engine.connect() as conn:
                gen = schema.generation(conn)
                if cat is None or gen != self._generation:
                    schema.load_dynamic(conn)
                    cat = self._catalog = schema.catalog(schema.existing_relations(conn))
                    self._generation = gen
            self._checked = now
        return cat

    def refresh(self) -> None:
        """Rewrite TAP_SCHEMA from the registry and forget the cached catalog."""
        with self.archive.engine.begin() as conn:
            schema.refresh_tap_schema(conn)
        self._catalog = None

    def open(self, qp: QueryParams, timeout_s: float | None, upload: UploadOpener | None = None,
             on_start: Callable[[int], None] | None = None) -> OpenQuery:
        """Translate, start the query and read its first batch; errors up to here raise `TapError`.

        Parameters
        ----------
        qp
            The query.
        timeout_s
            Statement timeout (None or 0: none).
        upload
            Opens the VOTable of an UPLOAD reference (``param:name`` or a URL); needed when ``qp.uploads``.
        on_start
            Called with the PostgreSQL backend pid before the query starts (so it can be cancelled); may raise.
        """
        catalog = self.catalog()
        conn = self.pool.get()
        try:
            if on_start is not None:
                on_start(conn.info.backend_pid)
            # One round trip for the session set-up (simple-query protocol takes several statements).
            setup = [f"SET LOCAL ROLE {schema.QUERY_ROLE}"]
            if timeout_s:
                setup.append(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            if not qp.uploads:
                setup.append("SET LOCAL transaction_read_only = on")
            conn.execute("; ".join(setup).encode())
            if qp.uploads:
                if upload is None:
                    raise TapError("this request cannot carry uploads")
                tables = load_uploads(conn, qp.uploads, upload, self.config.upload_limit_bytes)
                catalog = Catalog({**catalog.tables, **{t.name: t for t in tables}})
                # From here nothing may write: a transaction can become read-only mid-way, never the other way round.
                conn.execute("SET LOCAL transaction_read_only = on")
            try:
                translation = translate(qp.query, catalog, maxrec=qp.maxrec)
            except RecursionError:
                raise TapError("query is too deeply nested") from None
            except AdqlError as exc:
                raise TapError(str(exc)) from None
            geometry = _converters(translation.columns)
            columns = [_output_column(c) for c in translation.columns]
            # The binary protocol parses ~2.7x faster; pgsphere values are only converted from their text form.
            cur = conn.cursor(name="tap_query", binary=not geometry)
            cur.execute(translation.sql.encode("utf-8"))  # bytes: no client-side placeholder parsing
            head = convert_rows(cur.fetchmany(self.config.batch_rows), geometry)
        except psycopg.Error as exc:
            self.pool.put(conn)
            raise _sql_error(exc, timeout_s) from None
        except BaseException:
            self.pool.put(conn)
            raise
        return OpenQuery(columns, qp.maxrec, self._rest(conn, cur, head, geometry, timeout_s),
                         conn.info.backend_pid)  # fmt: skip

    def _rest(self, conn: psycopg.Connection[Any], cur: psycopg.ServerCursor[Any], head: list[tuple[Any, ...]],
              geometry: list[tuple[int, Any]], timeout_s: float | None) -> Iterator[list[tuple[Any, ...]]]:
        try:
            if head:
                yield head
            if len(head) < self.config.batch_rows:
                return
            while rows := cur.fetchmany(self.config.batch_rows):
                yield convert_rows(rows, geometry)
        except psycopg.Error as exc:
            raise _sql_error(exc, timeout_s) from None
        finally:
            self.pool.put(conn)

    def close(self) -> None:
        """Release pooled connections."""
        self.pool.close()


def _output_column(c: ColumnInfo) -> ColumnInfo:
    # Regions are served as STC-S text; DALI geometry in degrees whatever the expression said.
    if (c.xtype or "").lower() == schema.REGION_XTYPE.lower() or c.datatype.upper() == "REGION":
        return replace(c, datatype="VARCHAR", xtype=schema.REGION_XTYPE, arraysize="*", unit="")
    if (c.xtype or "").lower() in ("point", "circle", "polygon") and not c.unit:
        return replace(c, unit="deg")
    return c

