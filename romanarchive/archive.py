"""The archive handle: settings, database engine and object store, shared by the CLI, workers and server."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sqlalchemy as sa

from romanarchive.config import Settings, load_settings
from romanarchive.db.engine import database_url, get_engine
from romanarchive.store.objectstore import ObjectStore


@dataclass
class Archive:
    """Everything a service needs to reach the archive."""

    settings: Settings

    @classmethod
    def from_env(cls) -> Archive:
        """Build from the environment and config file."""
        return cls(load_settings())

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the archive database."""
        return database_url(self.settings)

    @property
    def engine(self) -> sa.Engine:
        """Shared engine."""
        return get_engine(self.url)

    @cached_property
    def store(self) -> ObjectStore:
        """The object store."""
        return ObjectStore(self.settings.store_url)
