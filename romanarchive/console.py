"""What every command-line module needs: the archive from the environment, a ready database, a clean exit.

Below the processing domains, so that each domain's own commands (``romanarchive catalog``, ``xmatch``,
``level5`` ...) use it without importing the command-line package that gathers them.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.embedded import EmbeddedCluster
from romanarchive.db.engine import current_revision, upgrade


def open_archive() -> Archive:
    """The archive the environment and config file describe."""
    return Archive.from_env()


def fail(msg: str, code: int = 1) -> NoReturn:
    """Print ``romanarchive: msg`` on standard error and exit with ``code``."""
    click.echo(f"romanarchive: {msg}", err=True)
    sys.exit(code)


def ensure_ready(archive: Archive, start: bool = False) -> None:
    """Make sure the database answers and is migrated; start/upgrade it when ``start``."""
    if not archive.settings.database_url:
        cluster = EmbeddedCluster.from_settings(archive.settings)
        if not cluster.running():
            if not start:
                fail(f"the embedded database under {cluster.pgdata} is not running; run `romanarchive db start` "
                     "(or set ROMANARCHIVE_DATABASE_URL to use a server)")
            cluster.start()
    try:
        rev = current_revision(archive.url)
    except sa.exc.OperationalError as exc:
        fail(f"cannot reach the database at {archive.url}: {str(exc.orig).strip()}")
    if start:
        upgrade(archive.url)
    elif rev is None:
        fail("the database has no archive schema yet; run `romanarchive db upgrade`")
