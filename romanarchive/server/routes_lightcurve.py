"""``GET /lightcurve?source_id=...&format=votable|csv|json|png``: one object's forced-photometry light curve."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from romanarchive.dal import lightcurve, service
from romanarchive.server.common import read_params, state


def _one(values: dict[str, list[str]], name: str) -> str | None:
    v = values.get(name)
    return v[-1] if v else None


async def light_curve(request: Request) -> Response:
    """Parameters are case-insensitive (DALI); errors are VOTables with QUERY_STATUS=ERROR."""
    params = await read_params(request, 1 << 16)
    source_id = lightcurve.parse_source_id(_one(params.values, "source_id"))
    fmt = lightcurve.parse_format(_one(params.values, "format") or _one(params.values, "responseformat"))
    body, media = await run_in_threadpool(service.light_curve_document, state(request).archive, source_id, fmt)
    return Response(body, media_type=media)


ROUTES = [Route("/lightcurve", light_curve, methods=["GET", "POST"])]
