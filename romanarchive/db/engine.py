"""Database URLs, engines and migrations."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa

from romanarchive.config import Settings
from romanarchive.db.embedded import EmbeddedCluster

REPO_ROOT = Path(__file__).resolve().parents[2]


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs.

    Parameters
    ----------
    url
        A libpq or SQLAlchemy URL.

    Returns
    -------
    str
        A SQLAlchemy URL with the ``postgresql+psycopg`` driver.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def database_url(settings: Settings) -> str:
    """URL of the archive database: the external server when configured, else the embedded cluster."""
    if settings.database_url:
        return normalise_url(settings.database_url)
    return EmbeddedCluster.from_settings(settings).url


def libpq_url(url: str) -> str:
    """Plain libpq form of a SQLAlchemy URL (for psycopg.connect and COPY)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def get_engine(url: str) -> sa.Engine:
    """A pooled engine per URL (cached so every service shares one pool)."""
    return sa.create_engine(normalise_url(url), pool_pre_ping=True, pool_size=5, max_overflow=10)


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    """Alembic configuration pointing at ``url`` and the repository's migration scripts."""
    from alembic.config import Config

    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``: the only way DDL reaches the database."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision the database is at, or ``None`` before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest migration in the repository (what ``upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("postgresql://localhost/unused")).get_current_head()
    assert head is not None
    return head
