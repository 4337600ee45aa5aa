"""Runtime configuration from the environment and an optional TOML file.

Precedence: environment variables, then ``$ROMANARCHIVE_HOME/config.toml``, then defaults.
"""

from __future__ import annotations

import os
import tomllib
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field

DEFAULT_EMBEDDED_PORT = 54329


class Settings(BaseModel):
    """Where the archive keeps its state.

    Attributes
    ----------
    home
        Root folder for the embedded cluster, the default store and scratch space.
    database_url
        SQLAlchemy URL of an external PostgreSQL; ``None`` means the embedded cluster.
    store
        fsspec URL of the object store (a local folder or ``s3://bucket/prefix``).
    embedded_port
        TCP port of the embedded cluster; it also listens on a socket under ``home``.
    lease_seconds
        How long a claimed job stays owned by a worker before another may take it.
    """

    home: Path
    database_url: str | None = None
    store: str | None = None
    embedded_port: int = DEFAULT_EMBEDDED_PORT
    lease_seconds: int = Field(default=600, gt=0)

    @cached_property
    def store_url(self) -> str:
        """The object store URL, defaulting to a folder under home."""
        return self.store or str(self.home / "store")

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded cluster."""
        return self.home / "pgdata"

    @property
    def crds_path(self) -> Path:
        """Private CRDS cache folder, configured offline."""
        return self.home / "crds"

    @property
    def scratch(self) -> Path:
        """Working folder for pipeline runs."""
        return self.home / "scratch"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment and ``config.toml``.

    Parameters
    ----------
    env
        Environment mapping; ``os.environ`` when omitted.

    Returns
    -------
    Settings
        The resolved configuration.
    """
    env = dict(os.environ if env is None else env)
    home = Path(env.get("ROMANARCHIVE_HOME", "~/.romanarchive")).expanduser().resolve()
    values: dict[str, object] = {}
    toml_path = home / "config.toml"
    if toml_path.exists():
        with toml_path.open("rb") as fh:
            values.update(tomllib.load(fh).get("romanarchive", {}))
    for key, var in (
        ("database_url", "ROMANARCHIVE_DATABASE_URL"),
        ("store", "ROMANARCHIVE_STORE"),
        ("embedded_port", "ROMANARCHIVE_PG_PORT"),
        ("lease_seconds", "ROMANARCHIVE_LEASE_SECONDS"),
    ):
        if env.get(var):
            values[key] = env[var]
    return Settings(home=home, **values)  # type: ignore[arg-type]
