"""IVOA data-access routes: SIA 2.0 query, DataLink links, SODA sync cutouts and PNG previews (thin: see
`romanarchive.dal.service`), and the middleware that adds the DataLink service descriptor to query results."""

from __future__ import annotations

from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from romanarchive.dal import datalink, service
from romanarchive.server import vosi
from romanarchive.server.common import VOTABLE, read_params, state, xml_response
from romanarchive.server.errors import FAULT, answers
from romanarchive.tap.descriptors import links_descriptor
from romanarchive.tap.votable import SERVICE_DESCRIPTORS


class DataLinkDescriptors:
    """ASGI middleware: VOTable query results (TAP sync, SIA2) written for a request carry the DataLink service
    descriptor when they hold ``obs_publisher_did`` (so pyvo finds each row's links)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        base = scope["app"].state.tap.base_url
        token = SERVICE_DESCRIPTORS.set(("obs_publisher_did", partial(links_descriptor, base)))
        try:
            await self.app(scope, receive, send)
        finally:
            SERVICE_DESCRIPTORS.reset(token)


async def capabilities(request: Request) -> Response:
    """VOSI capabilities (the same document as ``/tap/capabilities``: it lists every service)."""
    st = state(request)
    return xml_response(vosi.capabilities(st.tap_url, st.base_url, st.config))


async def sia_query(request: Request) -> Response:
    """SIA 2.0 query: VOTable of ObsCore rows, with a DataLink service descriptor."""
    st = state(request)
    params = await read_params(request, 1 << 20)
    pieces = await run_in_threadpool(service.sia_query, st.runner, params.values)
    return StreamingResponse(pieces, media_type=VOTABLE)  # the DataLink descriptor: see DataLinkDescriptors


async def links(request: Request) -> Response:
    """DataLink ``links?ID=...`` (repeatable)."""
    st = state(request)
    params = await read_params(request, 1 << 20)
    doc = await run_in_threadpool(service.links, st.archive, st.base_url, params.values)
    return Response(doc, media_type=datalink.MEDIA_TYPE)


@answers(FAULT)
async def soda_sync(request: Request) -> Response:
    """SODA sync cutout (errors are text/plain ``Fault: message``, as SODA asks)."""
    st = state(request)
    params = await read_params(request, 1 << 20)
    cut = await run_in_threadpool(service.cutout, st.archive, params.values)
    return Response(cut.data, media_type=cut.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{cut.filename}"'})  # fmt: skip


@answers(FAULT)
async def preview(request: Request) -> Response:
    """``/preview/{product_id}.png``."""
    path = await run_in_threadpool(service.preview, state(request).archive, request.path_params["product_id"])
    return FileResponse(path, media_type="image/png")


ROUTES = [
    Route("/sia2/query", sia_query, methods=["GET", "POST"]),
    Route("/sia2/capabilities", capabilities),
    Route("/datalink/links", links, methods=["GET", "POST"]),
    Route("/datalink/capabilities", capabilities),
    Route("/soda/sync", soda_sync, methods=["GET", "POST"]),
    Route("/preview/{product_id}.png", preview),
]
