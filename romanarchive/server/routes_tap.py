"""TAP routes: VOSI (capabilities, availability, tables) and synchronous queries. Thin: parameters in, service out."""

from __future__ import annotations

from typing import IO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from romanarchive.ingest.access import ping
from romanarchive.server import vosi
from romanarchive.server.common import error_response, read_params, state, xml_response
from romanarchive.tap import formats, schema
from romanarchive.tap.errors import TapError
from romanarchive.tap.service import parse_query_params
from romanarchive.tap.upload import fetch_url


async def capabilities(request: Request) -> Response:
    """VOSI capabilities."""
    st = state(request)
    return xml_response(vosi.capabilities(st.tap_url, st.base_url, st.config))


def _available(request: Request) -> tuple[bool, str]:
    try:
        ping(state(request).archive.engine)
    except Exception as exc:  # noqa: BLE001 - availability reports any failure
        return False, f"the archive database is unreachable: {type(exc).__name__}"
    return True, "the Roman WFI archive TAP service is accepting queries"


async def availability(request: Request) -> Response:
    """VOSI availability."""
    ok, note = await run_in_threadpool(_available, request)
    return xml_response(vosi.availability(ok, note))


def _published(request: Request) -> list[schema.Published]:
    names = {t.name for t in state(request).runner.catalog().tables.values()}
    return [e for e in schema.published() if e.name in names]


async def tables(request: Request) -> Response:
    """VOSI tables (``detail=min``: without columns)."""
    entries = await run_in_threadpool(_published, request)
    detail = (request.query_params.get("detail") or request.query_params.get("DETAIL") or "").lower() != "min"
    return xml_response(vosi.tables(entries, detail))


async def table(request: Request) -> Response:
    """VOSI ``/tables/{name}``."""
    entries = await run_in_threadpool(_published, request)
    name = request.path_params["name"]
    match = [e for e in entries if e.name.casefold() == name.casefold()]
    if not match:
        return error_response(f"no published table {name!r}", 404)
    return xml_response(vosi.table(match[0], entries))


async def examples(request: Request) -> Response:
    """DALI examples."""
    return Response(vosi.examples().encode("utf-8"), media_type="application/xhtml+xml")


async def sync(request: Request) -> Response:
    """TAP sync: run the query and stream the result (errors before the first row are VOTable errors)."""
    st = state(request)
    params = await read_params(request, st.config.upload_limit_bytes + (2 << 20))
    qp = parse_query_params(params.values, st.config)
    files = params.files

    def opener(ref: str) -> IO[bytes]:
        if ref.startswith("param:"):
            if ref[6:] in files:
                return files[ref[6:]]
            raise TapError(f"upload reference {ref!r} names no part of this request")
        return fetch_url(ref)

    oq = await run_in_threadpool(st.runner.open, qp, st.config.sync_timeout_s, opener)
    fmt = formats.resolve_format(qp.fmt)
    headers = {}
    if fmt in ("fits", "parquet"):
        headers["Content-Disposition"] = f'inline; filename="result.{fmt}"'
    return StreamingResponse(oq.stream(fmt, infos=[("QUERY", qp.query)]), media_type=formats.MEDIA_TYPES[fmt],
                             headers=headers)  # fmt: skip


async def root(request: Request) -> Response:
    """The TAP landing page: where things are."""
    st = state(request)
    links = "".join(f'<li><a href="{st.tap_url}/{p}">{p}</a></li>' for p in ("capabilities", "availability",
                                                                           "tables", "async"))  # fmt: skip
    return Response(f"<html><body><h1>Roman WFI archive TAP service</h1><ul>{links}</ul></body></html>",
                    media_type="text/html")  # fmt: skip


ROUTES = [
    Route("/tap", root),
    Route("/tap/", root),
    Route("/tap/capabilities", capabilities),
    Route("/tap/availability", availability),
    Route("/tap/tables", tables),
    Route("/tap/tables/{name}", table),
    Route("/tap/examples", examples),
    Route("/tap/sync", sync, methods=["GET", "POST"]),
]
