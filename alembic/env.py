"""Alembic environment: target metadata is the column registry's tables."""

from __future__ import annotations

import re

from sqlalchemy import engine_from_config, pool

from alembic import context
from romanarchive.config import load_settings
from romanarchive.db.engine import database_url
from romanarchive.db.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or database_url(load_settings())

# Views (ivoa.obscore) and extension objects are managed by hand in migrations; autogenerate compares tables only.
_MANAGED_SCHEMAS = {None, "public"}
# Partitions of partitioned tables (created by hand in their migration) are not registry tables.
_PARTITION = re.compile(r"^forced_phot_p\d+$")


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if type_ == "table":
        return (getattr(obj, "schema", None) in _MANAGED_SCHEMAS and name != "alembic_version"
                and not _PARTITION.match(name))
    return True


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, include_object=include_object,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
