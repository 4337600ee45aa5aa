"""An archive holding a calibrated survey's L1 and L2 files as ingested (no processing), for tests and benchmarks of
the MAST, SIA2, DataLink and SODA services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from romanarchive.archive import Archive


@contextmanager
def survey_archive(admin_url: str, workdir: Path, survey: Path) -> Iterator[Archive]:
    """A fresh archive database with ``survey/l1`` and ``survey/l2`` ingested; dropped afterwards."""
    from romanarchive.config import Settings
    from romanarchive.db.engine import upgrade
    from romanarchive.db.scratch import create_database, drop_database
    from romanarchive.ingest.inspect import IngestError
    from romanarchive.ingest.service import ingest_paths

    url = create_database(admin_url, "ra_mast")
    try:
        upgrade(url)
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        archive = Archive(Settings(home=home, database_url=url, store=str(workdir / "store"), lease_seconds=30))
        paths = [survey / "refs", survey / "l1", survey / "l2"]
        errors = [r for r in ingest_paths(archive, paths) if isinstance(r, IngestError)]
        if errors:
            raise RuntimeError(f"ingest failed: {errors[0]}")
        yield archive
    finally:
        drop_database(admin_url, url)
