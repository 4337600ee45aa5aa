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
    from support.server import populated_archive

    with populated_archive(admin_url, workdir, survey, kinds=(), folders=("refs", "l1", "l2"),
                           db_name="ra_mast") as archive:
        yield archive
