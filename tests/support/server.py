"""A live server in a background thread, for tests and benchmarks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from romanarchive.archive import Archive
from romanarchive.config import Settings
from romanarchive.db.engine import upgrade
from romanarchive.db.scratch import create_database, drop_database, free_port
from romanarchive.ingest.inspect import IngestError
from romanarchive.ingest.service import ingest_paths
from romanarchive.jobs.worker import drain
from romanarchive.server.app import create_app
from romanarchive.tap.service import TapConfig


@contextmanager
def live_server(archive: Archive, config: TapConfig | None = None, workers: int = 2,
                port: int | None = None) -> Iterator[str]:
    """Serve ``archive`` on a free loopback port; yields the base URL (``.../tap`` is the TAP service)."""
    import uvicorn

    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(archive, url, config, workers)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def populated_archive(admin_url: str, workdir: Path, survey: Path,
                      kinds: tuple[str, ...] | None = ("calibrate",), folders: tuple[str, ...] = ("refs", "l1"),
                      db_name: str = "ra_tap") -> Iterator[Archive]:
    """A fresh archive database holding ``survey`` ingested and processed; dropped afterwards.

    ``folders`` of the survey are ingested. ``kinds`` are the job kinds run after ingest: by default calibration
    only (L1 and L2 products, co-adds and catalogs stay queued); ``None`` runs everything the L2s trigger, ``()``
    nothing.
    """
    url = create_database(admin_url, db_name)
    try:
        upgrade(url)
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        archive = Archive(Settings(home=home, database_url=url, store=str(workdir / "store"), lease_seconds=30))
        errors = [r for r in ingest_paths(archive, [survey / f for f in folders]) if isinstance(r, IngestError)]
        if errors:
            raise RuntimeError(f"ingest failed: {errors[0]}")
        drain(archive.settings, kinds=kinds)
        yield archive
    finally:
        drop_database(admin_url, url)
