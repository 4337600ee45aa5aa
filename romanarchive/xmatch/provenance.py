"""Provenance of cross-match and astrometry runs: software versions, table states, input files, host.

Match tables and astrometry checks are derived tables rather than archive products, so their provenance lives in
their registry rows (``xmatch_tables``, ``astrometry_checks``): the step, the software versions, the parameters,
the inputs (tables with their write counter from ``xmatch_versions``, files with their sha256), wall time and host.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from romanarchive.software import package_versions

_PACKAGES = ("romanarchive", "numpy", "astropy", "cdshealpix", "gwcs", "roman_datamodels", "pyarrow")


def software_versions() -> dict[str, str]:
    """Versions of the packages the cross-match and astrometry steps run on."""
    return package_versions(_PACKAGES)


def host() -> str:
    """Host the step ran on."""
    return socket.gethostname()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def table_input(conn: sa.Connection, sql_name: str, published: str | None = None) -> dict[str, Any]:
    """An input table and its write counter (``xmatch_versions``; None where the table is not tracked)."""
    version = conn.execute(sa.text("SELECT version FROM xmatch_versions WHERE relation = :n"),
                           {"n": sql_name}).scalar()
    return {"table": published or sql_name, "relation": sql_name,
            "version": None if version is None else int(version)}
