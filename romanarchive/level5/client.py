"""Submitting Level 5 products over HTTP (what ``romanarchive level5 submit`` and the Python client use)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from romanarchive.level5.contract import sidecar_for

#: Environment variable holding a team token (so it need not appear on command lines).
TOKEN_ENV = "ROMANARCHIVE_LEVEL5_TOKEN"


def product_files(path_or_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files of a product: the given ones, plus the data file's sidecar when it exists and was not given."""
    paths = [Path(path_or_paths)] if isinstance(path_or_paths, (str, os.PathLike)) else [Path(p) for p in path_or_paths]
    out = list(paths)
    for p in paths:
        side = sidecar_for(p)
        if not p.name.endswith(".l5.yaml") and side.is_file() and side not in out:
            out.append(side)
    return out


def submit(path_or_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], server: str,
           token: str | None = None, timeout: float = 600.0) -> dict[str, Any]:
    """Upload a product to ``POST {server}/level5/submissions``.

    Parameters
    ----------
    path_or_paths
        The data file (its ``.l5.yaml`` sidecar is added when present) or every file of the product.
    server
        Base URL of the archive server, e.g. ``http://127.0.0.1:8000``.
    token
        Team bearer token; defaults to ``$ROMANARCHIVE_LEVEL5_TOKEN``.
    timeout
        Seconds to wait for the server (it validates and publishes before answering).

    Returns
    -------
    dict
        The server's report (``valid``, ``errors``, ``submission_id``, ``state``, ``version``, ``table`` ...)
        plus ``http_status``.
    """
    import requests

    token = token or os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with ExitStack() as stack:
        parts = [("file", (p.name, stack.enter_context(p.open("rb")), "application/octet-stream"))
                 for p in product_files(path_or_paths)]
        resp = requests.post(server.rstrip("/") + "/level5/submissions", files=parts, headers=headers,
                             timeout=timeout)
    try:
        body: dict[str, Any] = resp.json()
    except ValueError:
        body = {"valid": False, "errors": [{"code": "http", "location": server,
                                            "message": f"HTTP {resp.status_code}: {resp.text[:300]}"}]}
    body["http_status"] = resp.status_code
    return body


def status(server: str, submission_id: int, token: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """``GET {server}/level5/submissions/{id}``: state and validation report of a submission."""
    import requests

    token = token or os.environ.get(TOKEN_ENV)
    resp = requests.get(f"{server.rstrip('/')}/level5/submissions/{submission_id}", timeout=timeout,
                        headers={"Authorization": f"Bearer {token}"} if token else {})
    body: dict[str, Any] = resp.json()
    body["http_status"] = resp.status_code
    return body
