"""IVOA data-access routes: SIA 2.0 query, DataLink links, SODA sync cutouts and PNG previews (thin: see dal/), and
the middleware that adds the DataLink service descriptor to query results."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from romanarchive.archive import Archive
from romanarchive.dal import datalink, previews, sia, soda
from romanarchive.dal.products import DalError, Product, lookup
from romanarchive.server import vosi
from romanarchive.server.common import VOTABLE, error_response, read_params, state, xml_response
from romanarchive.tap import formats
from romanarchive.tap.service import QueryParams, TapError
from romanarchive.tap.votable import SERVICE_DESCRIPTORS


@contextmanager
def local_file(archive: Archive, key: str) -> Iterator[Path]:
    """A local path of a stored object (the store's own file when it is local, else a temporary copy)."""
    local = archive.store.local_path(key)
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="dal-") as tmp:
        yield archive.store.get_file(key, Path(tmp) / Path(key).name)


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
        token = SERVICE_DESCRIPTORS.set(("obs_publisher_did", partial(datalink.links_descriptor, base)))
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
    try:
        query = sia.adql(params.values)
        maxrec = sia.maxrec(params.values, st.config.default_maxrec, st.config.hard_maxrec)
    except DalError as exc:
        return error_response(str(exc), exc.status)
    qp = QueryParams(query, "ADQL", maxrec, formats.resolve_format(None))
    oq = await run_in_threadpool(st.runner.open, qp, st.config.sync_timeout_s)
    pieces = formats.stream(qp.fmt, oq.columns, oq.batches, overflow_after=oq.maxrec, infos=[("QUERY", query)])
    return StreamingResponse(pieces, media_type=VOTABLE)  # the DataLink descriptor: see DataLinkDescriptors


async def links(request: Request) -> Response:
    """DataLink ``links?ID=...`` (repeatable)."""
    st = state(request)
    params = await read_params(request, 1 << 20)
    try:
        doc = await run_in_threadpool(datalink.links_votable, st.archive.engine, st.base_url,
                                      params.values.get("id", []))  # fmt: skip
    except DalError as exc:
        return error_response(str(exc), exc.status)
    return Response(doc, media_type=datalink.MEDIA_TYPE)


def _one(values: dict[str, list[str]], name: str) -> str | None:
    got = [v for v in values.get(name, []) if v.strip()]
    if len(got) > 1:
        raise DalError(f"this service makes one cutout per request: give {name.upper()} at most once")
    return got[0] if got else None


def _cutout(archive: Archive, values: dict[str, list[str]]) -> tuple[bytes, str, Product]:
    ident = _one(values, "id")
    if ident is None:
        raise DalError("missing ID parameter")
    product = lookup(archive.engine, ident)
    if not product.is_image:
        raise DalError(f"product {product.product_id} (level {product.level}) is not a calibrated image: "
                       "cutouts need level 2 or above")  # fmt: skip
    fmt = soda.FORMATS.get((_one(values, "responseformat") or "application/x-asdf").lower())
    if fmt is None:
        raise DalError("RESPONSEFORMAT must be application/x-asdf or application/fits")
    regions = []
    if (c := _one(values, "circle")) is not None:
        regions.append(soda.circle(c))
    if (p := _one(values, "polygon")) is not None:
        regions.append(soda.polygon(p))
    if (b := _one(values, "band")) is not None:
        soda.check_band(product, soda.band(b))
    with local_file(archive, product.key) as path:
        return soda.cutout(path, product, regions, fmt), fmt, product


async def soda_sync(request: Request) -> Response:
    """SODA sync cutout (errors are text/plain ``Fault: message``, as SODA asks)."""
    st = state(request)
    params = await read_params(request, 1 << 20)
    try:
        data, fmt, product = await run_in_threadpool(_cutout, st.archive, params.values)
    except (DalError, TapError) as exc:
        fault = getattr(exc, "fault", "UsageFault")
        return Response(f"{fault}: {exc}\n", status_code=getattr(exc, "status", 400), media_type="text/plain")
    name = soda.cutout_name(product, fmt)
    return Response(data, media_type=soda.MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


def _preview(archive: Archive, ident: str) -> Path:
    product = lookup(archive.engine, ident)
    with local_file(archive, product.key) as path:
        return previews.cached_preview(archive.settings.home / "cache" / "previews", product, path)


async def preview(request: Request) -> Response:
    """``/preview/{product_id}.png``."""
    try:
        path = await run_in_threadpool(_preview, state(request).archive, request.path_params["product_id"])
    except DalError as exc:
        return Response(f"{exc.fault}: {exc}\n", status_code=exc.status, media_type="text/plain")
    return FileResponse(path, media_type="image/png")


ROUTES = [
    Route("/sia2/query", sia_query, methods=["GET", "POST"]),
    Route("/sia2/capabilities", capabilities),
    Route("/datalink/links", links, methods=["GET", "POST"]),
    Route("/datalink/capabilities", capabilities),
    Route("/soda/sync", soda_sync, methods=["GET", "POST"]),
    Route("/preview/{product_id}.png", preview),
]
