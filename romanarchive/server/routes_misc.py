"""Cone search, product downloads and the landing page."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from romanarchive.ingest.access import product_file
from romanarchive.server.common import read_params, state
from romanarchive.server.errors import SCS, answers
from romanarchive.tap import scs
from romanarchive.tap.errors import TapError


@answers(SCS)
async def cone(request: Request) -> Response:
    """Simple Cone Search 1.03 (errors in the SCS form, HTTP 200 as the standard asks)."""
    st = state(request)
    params = await read_params(request, 1 << 20)
    body = await run_in_threadpool(scs.search, st.runner, params.values)
    return StreamingResponse(body, media_type="text/xml")


async def download(request: Request) -> Response:
    """``/files/{product_id}``: the product's file, streamed from the object store (ObsCore access_url)."""
    try:
        product_id = int(request.path_params["product_id"])
    except ValueError:
        raise TapError(f"no product {request.path_params['product_id']!r}", 404) from None
    st = state(request)
    pf = await run_in_threadpool(product_file, st.archive.engine, product_id)
    if pf is None:
        raise TapError(f"no product {product_id}", 404)
    headers = {"Content-Length": str(pf.size), "Content-Disposition": f'attachment; filename="{pf.filename}"'}
    if request.method == "HEAD":
        return Response(b"", media_type=pf.media_type, headers=headers)
    return StreamingResponse(st.archive.store.iter_bytes(pf.key, 1 << 20), media_type=pf.media_type,
                             headers=headers)  # fmt: skip


async def index(request: Request) -> Response:
    """Landing page."""
    st = state(request)
    return Response(
        "<html><body><h1>Roman WFI archive</h1><ul>"
        f'<li>TAP: <a href="{st.tap_url}">{st.tap_url}</a></li>'
        f'<li>Cone search: <a href="{st.base_url}/scs?RA=0&amp;DEC=0&amp;SR=1">{st.base_url}/scs</a></li>'
        "</ul></body></html>",
        media_type="text/html",
    )


ROUTES = [
    Route("/", index),
    Route("/scs", cone, methods=["GET", "POST"]),
    Route("/files/{product_id}", download, methods=["GET", "HEAD"]),
]
