"""``GET /epsf?detector=&filter=&x=&y=&time=&mode=&jitter=&format=``: one ePSF of the library, as ASDF or FITS."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from romanarchive.epsf import service
from romanarchive.server.common import read_params, state


async def epsf(request: Request) -> Response:
    """Parameters are case-insensitive (DALI); errors are VOTables with QUERY_STATUS=ERROR."""
    params = await read_params(request, 1 << 16)
    req = service.parse_request(params.values)
    body, media, name = await run_in_threadpool(service.epsf_document, state(request).archive, req)
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


ROUTES = [Route("/epsf", epsf, methods=["GET", "POST"])]
