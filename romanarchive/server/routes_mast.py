"""MAST-compatible routes (mission search, portal invoke, downloads) for unmodified astroquery. Thin: see mast/."""

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


def _error(exc: MastError) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "status": "ERROR", "msg": str(exc)}, status_code=exc.status)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise MastError(f"the request body is not JSON: {exc}") from None


async def column_list(request: Request) -> Response:
    """``GET /search/util/api/v0.1/column_list?mission=``."""
    try:
        return JSONResponse(missions.column_list(request.query_params.get("mission", "")))
    except MastError as exc:
        return _error(exc)


async def mission_search(request: Request) -> Response:
    """``POST /search/{mission}/api/v0.1/search`` (JSON body)."""
    try:
        body = await _json_body(request)
        engine = state(request).archive.engine
        return JSONResponse(await run_in_threadpool(missions.search, engine, request.path_params["mission"], body))
    except MastError as exc:
        return _error(exc)


async def mission_products(request: Request) -> Response:
    """``POST /search/{mission}/api/v0.1/post_list_products`` (JSON ``{"dataset_ids": [...]}``)."""
    try:
        body = await _json_body(request)
        engine = state(request).archive.engine
        return JSONResponse(await run_in_threadpool(missions.list_products, engine, request.path_params["mission"],
                                                    body))  # fmt: skip
    except MastError as exc:
        return _error(exc)


async def _send_file(request: Request, uri: str) -> Response:
    try:
        pf = await run_in_threadpool(downloads.resolve, state(request).archive.engine, uri)
    except MastError as exc:
        return _error(exc)
    headers = {"Content-Length": str(pf.size), "Content-Disposition": f'attachment; filename="{pf.filename}"'}
    if request.method == "HEAD":
        return Response(b"", media_type=pf.media_type, headers=headers)
    store = state(request).archive.store
    return StreamingResponse(store.iter_bytes(pf.key, 1 << 20), media_type=pf.media_type, headers=headers)


async def retrieve_product(request: Request) -> Response:
    """``GET /search/{mission}/api/v0.1/retrieve_product?product_name=<id>/<filename>``."""
    try:
        missions.check_mission(request.path_params["mission"])
    except MastError as exc:
        return _error(exc)
    return await _send_file(request, request.query_params.get("product_name", ""))


async def download_file(request: Request) -> Response:
    """``GET|HEAD /api/v0.1/Download/file?uri=mast:ROMAN/product/<id>/<filename>``."""
    return await _send_file(request, request.query_params.get("uri", ""))


async def columns_config(request: Request) -> Response:
    """``POST /portal/Mashup/Mashup.asmx/columnsconfig`` (form ``colConfigId``)."""
    form = await request.form() if request.method == "POST" else request.query_params
    try:
        return JSONResponse(portal.columns_config(str(form.get("colConfigId") or "")))
    except MastError as exc:
        return _error(exc)


async def invoke(request: Request) -> Response:
    """``POST /api/v0/invoke`` (form ``request=<json>``): status ERROR answers carry the message in ``msg``."""
    form = await request.form() if request.method == "POST" else request.query_params
    try:
        req = json.loads(str(form.get("request") or ""))
    except ValueError as exc:
        return JSONResponse({"status": "ERROR", "msg": f"request is not JSON: {exc}", "data": [], "fields": []})
    return JSONResponse(await run_in_threadpool(portal.invoke, state(request).archive.engine, req))


ROUTES = [
    Route("/search/util/api/v0.1/column_list", column_list, methods=["GET"]),
    Route("/search/{mission}/api/v0.1/search", mission_search, methods=["POST"]),
    Route("/search/{mission}/api/v0.1/post_list_products", mission_products, methods=["POST"]),
    Route("/search/{mission}/api/v0.1/retrieve_product", retrieve_product, methods=["GET", "HEAD"]),
    Route("/portal/Mashup/Mashup.asmx/columnsconfig", columns_config, methods=["GET", "POST"]),
    Route("/api/v0/invoke", invoke, methods=["GET", "POST"]),
    Route("/api/v0.1/Download/file", download_file, methods=["GET", "HEAD"]),
]
