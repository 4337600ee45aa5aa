"""``GET /lightcurve?source_id=...&format=votable|csv|json|png``: one object's forced-photometry light curve."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from romanarchive.dal import lightcurve as service
from romanarchive.server.common import error_response, read_params, state
from romanarchive.tap.service import TapError


def _one(values: dict[str, list[str]], name: str) -> str | None:
    v = values.get(name)
    return v[-1] if v else None


async def lightcurve(request: Request) -> Response:
    """Parameters are case-insensitive (DALI); errors are VOTables with QUERY_STATUS=ERROR."""
    st = state(request)
    try:
        params = await read_params(request, 1 << 16)
        source_id = service.parse_source_id(_one(params.values, "source_id"))
        fmt = service.parse_format(_one(params.values, "format") or _one(params.values, "responseformat"))

        def work() -> tuple[bytes, str]:
            with st.archive.engine.connect() as conn:
                lc = service.light_curve(conn, source_id)
            return service.render(lc, fmt)

        body, media = await run_in_threadpool(work)
    except service.LightCurveError as exc:
        return error_response(str(exc), exc.status)
    except TapError as exc:
        return error_response(str(exc), getattr(exc, "status", 400))
    return Response(body, media_type=media)


ROUTES = [Route("/lightcurve", lightcurve, methods=["GET", "POST"])]
