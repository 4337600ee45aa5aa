"""MAST-compatible routes (mission search, portal invoke, downloads) for unmodified astroquery. Thin: see mast/.

A refused request raises `MastError`, answered as MAST's JSON error by `romanarchive.server.errors`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from romanarchive.mast import downloads, missions, portal
from romanarchive.mast.common import MastError
from romanarchive.server.common import state


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise MastError(f"the request body is not JSON: {exc}") from None


async def column_list(request: Request) -> Response:
    """``GET /search/util/api/v0.1/column_list?mission=``."""
    return JSONResponse(missions.column_list(request.query_params.get("mission", "")))


async def mission_search(request: Request) -> Response:
    """``POST /search/{mission}/api/v0.1/search`` (JSON body)."""
    body = await _json_body(request)
    engine = state(request).archive.engine
    return JSONResponse(await run_in_threadpool(missions.search, engine, request.path_params["mission"], body))


async def mission_products(request: Request) -> Response:
    """``POST /search/{mission}/api/v0.1/post_list_products`` (JSON ``{"dataset_ids": [...]}``)."""
    body = await _json_body(request)
    engine = state(request).archive.engine
    return JSONResponse(await run_in_threadpool(missions.list_products, engine, request.path_params["mission"],
                                                body))  # fmt: skip


async def _send_file(request: Request, uri: str) -> Response:
    st = state(request)
    pf = await run_in_threadpool(downloads.resolve, st.archive.engine, uri)
    headers = {"Content-Length": str(pf.size), "Content-Disposition": f'attachment; filename="{pf.filename}"'}
    if request.method == "HEAD":
        return Response(b"", media_type=pf.media_type, headers=headers)
    return StreamingResponse(st.archive.store.iter_bytes(pf.key, 1 << 20), media_type=pf.media_type,
                             headers=headers)  # fmt: skip


async def retrieve_product(request: Request) -> Response:
    """``GET /search/{mission}/api/v0.1/retrieve_product?product_name=<id>/<filename>``."""
    missions.check_mission(request.path_params["mission"])
    return await _send_file(request, request.query_params.get("product_name", ""))


async def download_file(request: Request) -> Response:
    """``GET|HEAD /api/v0.1/Download/file?uri=mast:ROMAN/product/<id>/<filename>``."""
    return await _send_file(request, request.query_params.get("uri", ""))


async def columns_config(request: Request) -> Response:
    """``POST /portal/Mashup/Mashup.asmx/columnsconfig`` (form ``colConfigId``)."""
    form = await request.form() if request.method == "POST" else request.query_params
    return JSONResponse(portal.columns_config(str(form.get("colConfigId") or "")))


async def invoke(request: Request) -> Response:
    """``POST /api/v0/invoke`` (form ``request=<json>``): status ERROR answers carry the message in ``msg``."""
    form = await request.form() if request.method == "POST" else request.query_params
    text = str(form.get("request") or "")
    return JSONResponse(await run_in_threadpool(portal.invoke_json, state(request).archive.engine, text))


ROUTES = [
    Route("/search/util/api/v0.1/column_list", column_list, methods=["GET"]),
    Route("/search/{mission}/api/v0.1/search", mission_search, methods=["POST"]),
    Route("/search/{mission}/api/v0.1/post_list_products", mission_products, methods=["POST"]),
    Route("/search/{mission}/api/v0.1/retrieve_product", retrieve_product, methods=["GET", "HEAD"]),
    Route("/portal/Mashup/Mashup.asmx/columnsconfig", columns_config, methods=["GET", "POST"]),
    Route("/api/v0/invoke", invoke, methods=["GET", "POST"]),
    Route("/api/v0.1/Download/file", download_file, methods=["GET", "HEAD"]),
]
