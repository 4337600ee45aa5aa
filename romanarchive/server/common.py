"""What every router shares: DALI parameter reading, response documents and the service state."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import IO

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from romanarchive.archive import Archive
from romanarchive.tap import formats
from romanarchive.tap.service import QueryRunner, TapConfig, TapError, lower_params
from romanarchive.tap.uws import UwsService

log = logging.getLogger(__name__)

VOTABLE = "application/x-votable+xml"
XML = "text/xml"
TEXT = "text/plain"


@dataclass
class State:
    """The running service.

    Attributes
    ----------
    archive
        The archive served.
    runner
        Executes TAP queries.
    uws
        The async job list.
    base_url
        Public URL of the server root (no trailing slash).
    """

    archive: Archive
    runner: QueryRunner
    uws: UwsService
    base_url: str

    @property
    def config(self) -> TapConfig:
        """Service limits."""
        return self.runner.config

    @property
    def tap_url(self) -> str:
        """Public URL of the TAP service."""
        return self.base_url + "/tap"


def state(request: Request) -> State:
    """The service state of the app handling ``request``."""
    return request.app.state.tap  # type: ignore[no-any-return]


@dataclass
class Params:
    """Request parameters: lower-case names -> values (DALI names are case-insensitive), and uploaded parts."""

    values: dict[str, list[str]]
    files: dict[str, IO[bytes]]


async def read_params(request: Request, max_body: int) -> Params:
    """Query-string parameters plus, for POST, the urlencoded or multipart form.

    Raises
    ------
    TapError
        The body is larger than ``max_body`` or not a readable form.
    """
    items: list[tuple[str, str]] = list(request.query_params.multi_items())
    files: dict[str, IO[bytes]] = {}
    if request.method == "POST":
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body:
            raise TapError(f"request body of {length} bytes is larger than the limit of {max_body}", 413)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            try:
                form = await request.form(max_files=64, max_fields=256, max_part_size=max_body)
            except Exception as exc:  # noqa: BLE001 - starlette raises several kinds for bad forms
                raise TapError(f"unreadable form data: {exc}") from None
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = value.file
                else:
                    items.append((key, str(value)))
    return Params(lower_params(items), files)


def error_response(message: str, status: int = 400) -> Response:
    """A DALI error: a VOTable with one ``QUERY_STATUS=ERROR`` INFO (pyvo reads it whatever the HTTP status)."""
    return Response(formats.error_votable(message), status_code=status, media_type=VOTABLE)


def xml_response(doc: str, status: int = 200) -> Response:
    """An XML document."""
    return Response(doc.encode("utf-8"), status_code=status, media_type=XML)


def text_response(text: str) -> Response:
    """A text/plain value (UWS job attributes)."""
    return Response(text.encode("utf-8"), media_type=TEXT)


def describe(exc: BaseException) -> str:
    """Error text for an unexpected server failure."""
    return f"internal error: {type(exc).__name__}: {exc}"

