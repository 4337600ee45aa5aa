"""Cone search, product downloads and the landing page."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from romanarchive.db.tables import files, products
from romanarchive.server.common import read_params, state
from romanarchive.tap import scs
from romanarchive.tap.service import TapError


async def cone(request: Request) -> Response:
    """Simple Cone Search 1.03 (errors in the SCS form, HTTP 200 as the standard asks)."""
    st = state(request)
    try:
        params = await read_params(request, 1 << 20)
        body = await run_in_threadpool(scs.search, st.runner, params.values)
    except TapError as exc:
        return Response(scs.error_votable(str(exc)), media_type="text/xml")
    return StreamingResponse(body, media_type="text/xml")


def _product_file(request: Request, product_id: int) -> dict[str, Any] | None:
    with state(request).archive.engine.connect() as conn:
        row = conn.execute(
            sa.select(files.c.uri, files.c.filename, files.c.size, files.c.media_type)
            .join(products, products.c.file_id == files.c.file_id).where(products.c.product_id == product_id)
        ).mappings().first()  # fmt: skip
    return dict(row) if row else None


async def download(request: Request) -> Response:
    """``/files/{product_id}``: the product's file, streamed from the object store (ObsCore access_url)."""
    try:
        product_id = int(request.path_params["product_id"])
    except ValueError:
        raise TapError(f"no product {request.path_params['product_id']!r}", 404) from None
    row = await run_in_threadpool(_product_file, request, product_id)
    if row is None:
        raise TapError(f"no product {product_id}", 404)
    headers = {"Content-Length": str(row["size"]),
               "Content-Disposition": f'attachment; filename="{row["filename"]}"'}  # fmt: skip
    if request.method == "HEAD":
        return Response(b"", media_type=row["media_type"], headers=headers)
    store = state(request).archive.store
    return StreamingResponse(store.iter_bytes(row["uri"], 1 << 20), media_type=row["media_type"], headers=headers)


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
