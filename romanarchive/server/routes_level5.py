"""Level 5 submission endpoints (JSON; bearer-token authenticated). The logic is in `romanarchive.level5.service`.

``POST /level5/submissions`` (multipart, one or more ``file`` parts), ``GET /level5/submissions`` (the caller's
submissions) and ``GET /level5/submissions/{id}`` (status and validation report).
"""

from __future__ import annotations

from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from romanarchive.level5 import service
from romanarchive.level5.contract import Limits
from romanarchive.server.common import state


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _limits(request: Request) -> Limits:
    """``app.state.level5_limits`` when set, else from the environment (read once per app)."""
    limits = getattr(request.app.state, "level5_limits", None)
    if limits is None:
        limits = request.app.state.level5_limits = Limits.from_env()
    return limits  # type: ignore[no-any-return]


def _json(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


async def post_submission(request: Request) -> JSONResponse:
    """Receive, validate and publish a submission."""
    st = state(request)
    limits = _limits(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_file_bytes * limits.max_files + (1 << 20):
        return _json(413, {"valid": False, "state": "refused", "errors": [
            {"code": "file.too_large", "location": "request", "message": f"request body of {length} bytes is "
             f"larger than the limit of {limits.max_files} files of {limits.max_file_bytes} bytes"}]})
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _json(400, {"valid": False, "state": "refused", "errors": [
            {"code": "submission.files", "location": "request", "message": "send the files as multipart/form-data"}]})
    try:
        form = await request.form(max_files=limits.max_files + 4, max_fields=16)
    except Exception as exc:  # noqa: BLE001 - starlette raises several kinds for bad forms
        return _json(400, {"valid": False, "state": "refused", "errors": [
            {"code": "submission.files", "location": "request", "message": f"unreadable form data: {exc}"}]})
    uploads: list[tuple[str, IO[bytes]]] = [(v.filename or "", v.file) for _, v in form.multi_items()
                                            if isinstance(v, UploadFile)]  # fmt: skip
    client = request.client.host if request.client else None
    try:
        status, body = await run_in_threadpool(service.submit, st.archive, _token(request), uploads, client, limits)
    finally:
        await form.close()
    if status == 201:
        # This process's query catalog sees the new table at once; other processes notice the counter.
        await run_in_threadpool(st.runner.refresh)
    return _json(status, body)


async def get_submission(request: Request) -> JSONResponse:
    """Status and validation report of a submission."""
    try:
        sid = int(request.path_params["sid"])
    except ValueError:
        return _json(404, {"errors": [{"code": "not_found", "location": "submission",
                                       "message": "no such submission"}]})
    status, body = await run_in_threadpool(service.get_submission, state(request).archive, _token(request), sid)
    return _json(status, body)


async def list_submissions(request: Request) -> JSONResponse:
    """The caller's latest submissions."""
    status, body = await run_in_threadpool(service.list_submissions, state(request).archive, _token(request))
    return _json(status, body)


ROUTES = [
    Route("/level5/submissions", post_submission, methods=["POST"]),
    Route("/level5/submissions", list_submissions, methods=["GET"]),
    Route("/level5/submissions/{sid}", get_submission, methods=["GET"]),
]
