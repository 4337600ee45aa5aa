"""Domain errors as HTTP answers, in one place: the services raise, the routers do not catch.

Every service error carries its HTTP status (``status``). A DALI service answers a VOTable with
``QUERY_STATUS=ERROR`` (pyvo reads it whatever the HTTP status); a route may ask for its standard's own error form
with `answers`: ``FAULT`` (SODA and previews: ``text/plain`` ``<Fault>: message``) or ``SCS`` (Simple Cone Search:
an SCS error VOTable, HTTP 200 as SCS 1.03 asks). The MAST API answers JSON whatever the route.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from romanarchive.dal.lightcurve import LightCurveError
from romanarchive.dal.products import DalError
from romanarchive.epsf.service import EpsfError
from romanarchive.mast.common import MastError
from romanarchive.server.common import describe, error_response
from romanarchive.tap import scs
from romanarchive.tap.errors import TapError

log = logging.getLogger(__name__)

#: The error forms a route may ask for (DALI is the default).
DALI, FAULT, SCS = "dali", "fault", "scs"
#: Errors the services raise for a refused request (each has ``status``).
DOMAIN_ERRORS: tuple[type[Exception], ...] = (TapError, DalError, LightCurveError, MastError, EpsfError)

F = TypeVar("F", bound=Callable[..., Any])


def answers(style: str) -> Callable[[F], F]:
    """Mark a route endpoint as answering domain errors in ``style`` (`FAULT` or `SCS`) instead of DALI."""
    if style not in (DALI, FAULT, SCS):
        raise ValueError(f"unknown error style {style!r}")

    def mark(endpoint: F) -> F:
        endpoint.error_style = style  # type: ignore[attr-defined]
        return endpoint

    return mark


def _style(request: Request) -> str:
    # The router puts the matched endpoint in the scope; a request that matched no route has none (DALI).
    return str(getattr(request.scope.get("endpoint"), "error_style", DALI))


async def domain_error(request: Request, exc: Exception) -> Response:
    """The answer to a refused request, in the form its route asks for, with the error's HTTP status."""
    status = int(getattr(exc, "status", 400))
    if isinstance(exc, MastError):
        return JSONResponse({"detail": str(exc), "status": "ERROR", "msg": str(exc)}, status_code=status)
    style = _style(request)
    if style == FAULT:
        fault = getattr(exc, "fault", "UsageFault")
        return Response(f"{fault}: {exc}\n", status_code=status, media_type="text/plain")
    if style == SCS:
        return Response(scs.error_votable(str(exc)), media_type="text/xml")
    return error_response(str(exc), status)


async def http_error(request: Request, exc: Exception) -> Response:
    """An HTTP error of the framework (unknown path, wrong method) as a DALI error."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.detail or f"HTTP {exc.status_code}", exc.status_code)


async def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected failure: logged, answered as a DALI error with HTTP 500."""
    log.exception("request %s failed", request.url.path)
    return error_response(describe(exc), 500)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def handlers() -> Mapping[Any, Handler]:
    """The application's exception handlers (Starlette ``exception_handlers``)."""
    out: dict[Any, Handler] = {e: domain_error for e in DOMAIN_ERRORS}
    out[HTTPException] = http_error
    out[Exception] = server_error
    return out
