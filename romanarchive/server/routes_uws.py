"""UWS 1.1 routes of TAP async: the job list, jobs, their attributes and results."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from romanarchive.server.common import (
    Params,
    error_response,
    read_params,
    state,
    text_response,
    xml_response,
)
from romanarchive.tap import formats, uws
from romanarchive.tap.service import TapError, first


def _job_url(request: Request, job_id: str) -> str:
    return f"{state(request).tap_url}/async/{job_id}"


def _see(request: Request, job_id: str) -> Response:
    return RedirectResponse(_job_url(request, job_id), status_code=303)


async def _params(request: Request) -> Params:
    return await read_params(request, state(request).config.upload_limit_bytes + (2 << 20))


async def job_list(request: Request) -> Response:
    """GET: the job list (PHASE, AFTER, LAST filters); POST: create a job, 303 to it."""
    st = state(request)
    params = await _params(request)
    if request.method == "POST":
        job_id = await run_in_threadpool(st.uws.create, params.values, params.files)
        return _see(request, job_id)
    rows = await run_in_threadpool(st.uws.list_jobs, params.values.get("phase", []), first(params.values, "AFTER"),
                                   first(params.values, "LAST"))  # fmt: skip
    return xml_response(uws.jobs_xml(rows, st.tap_url + "/async"))


async def job(request: Request) -> Response:
    """GET (with WAIT): the job document; POST ACTION=DELETE or DELETE: destroy it; POST PHASE etc.: change it."""
    st = state(request)
    job_id = request.path_params["job_id"]
    params = await _params(request)
    action = (first(params.values, "ACTION") or "").upper()
    if request.method == "DELETE" or action == "DELETE":
        await run_in_threadpool(st.uws.delete, job_id)
        return RedirectResponse(st.tap_url + "/async", status_code=303)
    if request.method == "POST":
        if action:
            raise TapError(f"unknown ACTION {action!r}")
        if "destruction" in params.values:
            await run_in_threadpool(st.uws.set_destruction, job_id, params.values["destruction"][-1])
        if "executionduration" in params.values:
            await run_in_threadpool(st.uws.set_execution_duration, job_id, params.values["executionduration"][-1])
        rest = {k: v for k, v in params.values.items() if k not in ("destruction", "executionduration")}
        if rest:
            await run_in_threadpool(st.uws.set_parameters, job_id, rest)
        return _see(request, job_id)
    wait = first(params.values, "WAIT")
    if wait is not None:
        try:
            seconds = float(wait)
        except ValueError:
            raise TapError(f"WAIT must be a number of seconds, not {wait!r}") from None
        row = await run_in_threadpool(st.uws.wait, job_id, seconds, first(params.values, "PHASE"))
    else:
        row = await run_in_threadpool(st.uws.get, job_id)
    return xml_response(uws.job_xml(row, _job_url(request, job_id)))


async def phase(request: Request) -> Response:
    """GET: the phase as text; POST PHASE=RUN|ABORT."""
    st = state(request)
    job_id = request.path_params["job_id"]
    if request.method == "POST":
        params = await _params(request)
        value = first(params.values, "PHASE")
        if value is None:
            raise TapError("missing PHASE parameter (RUN or ABORT)")
        await run_in_threadpool(st.uws.set_phase, job_id, value)
        return _see(request, job_id)
    row = await run_in_threadpool(st.uws.get, job_id)
    return text_response(row["phase"])


async def attribute(request: Request) -> Response:
    """quote, executionduration, destruction, owner, runId: text/plain (the latter three may be POSTed)."""
    st = state(request)
    job_id = request.path_params["job_id"]
    name = request.url.path.rsplit("/", 1)[1].lower()
    if request.method == "POST":
        params = await _params(request)
        value = first(params.values, name)
        if value is None:
            raise TapError(f"missing {name.upper()} parameter")
        if name == "destruction":
            await run_in_threadpool(st.uws.set_destruction, job_id, value)
        elif name == "executionduration":
            await run_in_threadpool(st.uws.set_execution_duration, job_id, value)
        else:
            raise TapError(f"{name} cannot be changed", 405)
        return _see(request, job_id)
    row = await run_in_threadpool(st.uws.get, job_id)
    value = {
        "quote": "",
        "executionduration": str(row["execution_duration"]),
        "destruction": uws.iso(row["destruction"]),
        "owner": "",
        "runid": row["run_id"] or "",
    }[name]
    return text_response(value)


async def error(request: Request) -> Response:
    """The job's error document (a DALI error VOTable)."""
    row = await run_in_threadpool(state(request).uws.get, request.path_params["job_id"])
    if row["phase"] != "ERROR":
        return error_response(f"job {row['job_id']} has no error (phase {row['phase']})", 404)
    return Response(formats.error_votable(row["error_summary"] or "error"), media_type="application/x-votable+xml")


async def parameters(request: Request) -> Response:
    """The job's parameters (POST adds to a PENDING job's)."""
    st = state(request)
    job_id = request.path_params["job_id"]
    if request.method == "POST":
        params = await _params(request)
        await run_in_threadpool(st.uws.set_parameters, job_id, params.values)
        return _see(request, job_id)
    row = await run_in_threadpool(st.uws.get, job_id)
    return xml_response(uws.parameters_xml(row))


async def results(request: Request) -> Response:
    """The job's result list."""
    job_id = request.path_params["job_id"]
    row = await run_in_threadpool(state(request).uws.get, job_id)
    return xml_response(uws.results_xml(row, _job_url(request, job_id)))


async def result(request: Request) -> Response:
    """The result itself, streamed from the object store."""
    st = state(request)
    key, media = await run_in_threadpool(st.uws.result, request.path_params["job_id"])
    size = await run_in_threadpool(st.archive.store.size, key)
    return StreamingResponse(st.archive.store.iter_bytes(key, 1 << 20), media_type=media,
                             headers={"Content-Length": str(size)})  # fmt: skip


_J = "/tap/async/{job_id}"
ROUTES = [
    Route("/tap/async", job_list, methods=["GET", "POST"]),
    Route(_J, job, methods=["GET", "POST", "DELETE"]),
    Route(_J + "/phase", phase, methods=["GET", "POST"]),
    *(Route(f"{_J}/{name}", attribute, methods=["GET", "POST"])
      for name in ("quote", "executionduration", "destruction", "owner", "runId")),
    Route(_J + "/error", error),
    Route(_J + "/parameters", parameters, methods=["GET", "POST"]),
    Route(_J + "/results", results),
    Route(_J + "/results/result", result),
]
