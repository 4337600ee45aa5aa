"""The archive's web service: TAP (sync, async, VOSI), cone search and downloads, as one Starlette app.

``romanarchive serve`` runs it with uvicorn. At start it records its public URL in ``archive_settings`` (ObsCore
``access_url`` is built from it), rewrites TAP_SCHEMA from the registry, and starts worker threads that run async
TAP jobs, so a lone ``serve`` process is a complete service; ``romanarchive worker`` processes may run them too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from romanarchive.archive import Archive
from romanarchive.ingest.access import ping, set_base_url
from romanarchive.jobs.worker import run_one
from romanarchive.server import (
    errors,
    routes_dal,
    routes_epsf,
    routes_level5,
    routes_lightcurve,
    routes_mast,
    routes_misc,
    routes_tap,
    routes_uws,
)
from romanarchive.server.common import State
from romanarchive.tap.adql.parser import warm_up
from romanarchive.tap.service import QueryRunner, TapConfig
from romanarchive.tap.uws import KIND, UwsService

log = logging.getLogger(__name__)


class TapWorkers:
    """Threads that claim and run async TAP jobs from the durable queue, and destroy expired jobs."""

    def __init__(self, archive: Archive, uws: UwsService, n: int = 2, poll_s: float = 0.2) -> None:
        self.archive = archive
        self.uws = uws
        self.n = n
        self.poll_s = poll_s
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _loop(self, reaper: bool) -> None:
        since_reap = 0.0
        while not self.stop.is_set():
            try:
                ran = run_one(self.archive, (KIND,))
                if reaper and since_reap > 60:
                    self.uws.reap()
                    since_reap = 0.0
            except Exception:  # noqa: BLE001 - a worker thread must survive a database hiccup
                log.exception("TAP worker")
                ran = None
            if ran is None:
                self.stop.wait(self.poll_s)
                since_reap += self.poll_s

    def start(self) -> None:
        """Start the threads."""
        for i in range(self.n):
            t = threading.Thread(target=self._loop, args=(i == 0,), name=f"tap-worker-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the threads to stop and wait a little: a job still running is redone once its lease expires."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout=timeout_s)


def create_app(archive: Archive, base_url: str, config: TapConfig | None = None, workers: int = 2) -> Starlette:
    """Build the web application.

    Parameters
    ----------
    archive
        The archive to serve.
    base_url
        Public URL of the server root, e.g. ``http://127.0.0.1:8000``.
    config
        TAP limits.
    workers
        Threads running async jobs in this process (0: leave them to ``romanarchive worker``).
    """
    runner = QueryRunner(archive, config)
    st = State(archive, runner, UwsService(runner), base_url.rstrip("/"))
    pool = TapWorkers(archive, st.uws, workers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        set_base_url(archive.engine, st.base_url)
        runner.refresh()
        warm_up()
        if workers:
            pool.start()
        log.info("serving %s at %s", archive.engine.url.render_as_string(hide_password=True), st.base_url)
        try:
            yield
        finally:
            pool.close()
            runner.close()

    app = Starlette(
        routes=[*routes_tap.ROUTES, *routes_uws.ROUTES, *routes_misc.ROUTES, *routes_mast.ROUTES, *routes_dal.ROUTES,
                *routes_level5.ROUTES, *routes_lightcurve.ROUTES, *routes_epsf.ROUTES],
        middleware=[Middleware(routes_dal.DataLinkDescriptors)],
        lifespan=lifespan,
        exception_handlers=errors.handlers(),
    )
    app.state.tap = st
    return app


def serve(archive: Archive, host: str = "127.0.0.1", port: int = 8000, public_url: str | None = None,
          workers: int = 2) -> None:
    """Run the service with uvicorn until interrupted."""
    import uvicorn

    url = public_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    ping(archive.engine)  # fail at start, not at the first request, when the database is unreachable
    uvicorn.run(create_app(archive, url, workers=workers), host=host, port=port, log_level="info",
                access_log=False)  # fmt: skip
