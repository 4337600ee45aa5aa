"""The pipeline wiring: what each domain adds to the archive, declared in one place of its own.

A domain (``calib``, ``mosaic``, ``catalog``, ``timeseries``, ``xmatch``, ``tap``, ``level5``, ...) is a
sub-package of ``romanarchive`` with a ``wiring`` module that calls :func:`register` with one :class:`Domain`:

* its **job kinds** (:class:`JobKind`), each with the handler a worker runs;
* its **rules** (:class:`Rule`): "when a product of level / type X is registered, queue Y", run by product
  registration inside the registering transaction;
* the **tables** it owns (:class:`~romanarchive.db.registry.TableSpec`; those with ``published=True`` are served
  through TAP) and the **run-time tables** it creates later (a function of a connection returning their specs).

The worker (:mod:`romanarchive.jobs.worker`), product registration (:mod:`romanarchive.ingest.register`) and TAP
publication (:mod:`romanarchive.tap.schema`) read this registry and import no domain: :func:`load` finds the
domains by looking for ``romanarchive.<package>.wiring`` modules, so a new domain is a new folder with a
``wiring.py`` (see the README's Layout section).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa

import romanarchive
from romanarchive.archive import Archive
from romanarchive.db.obscore import OBSCORE
from romanarchive.db.registry import TableSpec
from romanarchive.db.tables import EXPOSURES, PRODUCTS
from romanarchive.jobs.queue import Job


class Handler(Protocol):
    """A job handler: runs one claimed job to completion (marking it done in its own transaction)."""

    def __call__(self, archive: Archive, job: Job, /) -> int | None: ...


@dataclass(frozen=True)
class JobKind:
    """A kind of durable job and the function that runs it.

    Attributes
    ----------
    name
        The ``jobs.kind`` value (at most 32 characters).
    handler
        Runs one claimed job; returns the id of the product it made, if any.
    description
        One line for ``romanarchive worker --help`` and the README.
    """

    name: str
    handler: Handler
    description: str = ""


@dataclass(frozen=True)
class NewProduct:
    """A product row just written by registration, as rules see it (inside the registering transaction)."""

    product_id: int
    level: int
    product_type: str
    obs_id: str | None = None
    filter: str | None = None
    s_region: str | None = None  # pgsphere polygon literal, degrees


#: What a rule does with the new products it matched: queue jobs through the connection.
Queuer = Callable[[sa.Connection, Sequence[NewProduct]], object]


@dataclass(frozen=True)
class Rule:
    """When products of a level (and optionally a type) are registered, queue what follows from them.

    Attributes
    ----------
    name
        Short name, for logs and the README (e.g. ``"L2 -> mosaic"``).
    queue
        Called once per registration with the matching new products.
    level
        Product level the rule reacts to (``None``: any level).
    product_types
        Product types it reacts to (empty: any type of that level).
    """

    name: str
    queue: Queuer
    level: int | None = None
    product_types: tuple[str, ...] = ()

    def matches(self, product: NewProduct) -> bool:
        """Whether the rule reacts to ``product``."""
        if self.level is not None and product.level != self.level:
            return False
        return not self.product_types or product.product_type in self.product_types


#: Run-time tables of a domain (match tables, Level 5 versions): their specs, read from the database.
DynamicTables = Callable[[sa.Connection], Iterable[TableSpec]]
#: Told, inside the transaction that made them, that run-time tables were created or dropped (TAP rewrites
#: TAP_SCHEMA): lets a processing domain publish a table without importing the TAP layer.
TablesChanged = Callable[[sa.Connection], None]


@dataclass(frozen=True)
class Domain:
    """Everything one domain adds to the archive.

    Attributes
    ----------
    name
        The domain's name (its package name).
    description
        One line.
    jobs
        Job kinds it runs.
    rules
        Rules it adds to product registration.
    tables
        Tables it owns, in publication order; those whose spec says ``published`` are served through TAP.
    dynamic_tables
        Functions returning the specs of tables it creates at run time (published when the spec says so).
    on_tables_changed
        Called by :func:`tables_changed` when some domain created or dropped run-time tables.
    """

    name: str
    description: str = ""
    jobs: tuple[JobKind, ...] = ()
    rules: tuple[Rule, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    dynamic_tables: tuple[DynamicTables, ...] = field(default=())
    on_tables_changed: tuple[TablesChanged, ...] = ()


#: The archive's own published tables (not a domain's): ObsCore and the registry tables behind it.
CORE_TABLES: tuple[TableSpec, ...] = (OBSCORE, EXPOSURES, PRODUCTS)

_DOMAINS: dict[str, Domain] = {}
_LOADED = False
_LOCK = threading.Lock()


def register(domain: Domain) -> Domain:
    """Add (or replace, by name) a domain's declarations; returns it."""
    kinds = {k.name for d in _DOMAINS.values() if d.name != domain.name for k in d.jobs}
    clash = kinds & {k.name for k in domain.jobs}
    if clash:
        raise ValueError(f"domain {domain.name!r} declares job kinds another domain owns: {sorted(clash)}")
    _DOMAINS[domain.name] = domain
    return domain


def unregister(name: str) -> None:
    """Remove a domain (tests that add a toy one take it out again)."""
    _DOMAINS.pop(name, None)


def load() -> None:
    """Import every ``romanarchive.<package>.wiring`` module once, so that each domain registers itself."""
    global _LOADED
    if _LOADED:
        return
    with _LOCK:
        if _LOADED:
            return
        for info in sorted(pkgutil.iter_modules(romanarchive.__path__), key=lambda m: m.name):
            name = f"romanarchive.{info.name}.wiring"
            if info.ispkg and importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
        _LOADED = True


def domains() -> list[Domain]:
    """Every registered domain, in registration order (loading them first)."""
    load()
    return list(_DOMAINS.values())


def job_kinds() -> dict[str, JobKind]:
    """Job kind name -> its declaration, over every domain."""
    return {k.name: k for d in domains() for k in d.jobs}


def rules() -> list[Rule]:
    """Every domain's registration rules."""
    return [r for d in domains() for r in d.rules]


def tables() -> list[TableSpec]:
    """Every domain's own tables, in domain order."""
    return [t for d in domains() for t in d.tables]


def dynamic_tables(conn: sa.Connection) -> list[TableSpec]:
    """The run-time tables every domain reports, read through ``conn``."""
    return [t for d in domains() for source in d.dynamic_tables for t in source(conn)]


def static_published() -> list[TableSpec]:
    """`CORE_TABLES` and every domain's own tables that say ``published``, in that order."""
    return [s for s in (*CORE_TABLES, *tables()) if s.published]


def published_tables(conn: sa.Connection) -> list[TableSpec]:
    """What TAP publishes besides TAP_SCHEMA's own tables: `CORE_TABLES`, every domain's tables and run-time tables.

    Only specs with ``published=True``, in that order; lets a domain look a published table up without the TAP layer.
    """
    return [*static_published(), *(s for s in dynamic_tables(conn) if s.published)]


def tables_changed(conn: sa.Connection) -> None:
    """Tell every domain that run-time tables were created or dropped (inside the caller's transaction)."""
    for d in domains():
        for hook in d.on_tables_changed:
            hook(conn)


def fire(conn: sa.Connection, new: Sequence[NewProduct]) -> None:
    """Run every rule that matches some of the new products (inside the registering transaction)."""
    if not new:
        return
    for rule in rules():
        matched = [p for p in new if rule.matches(p)]
        if matched:
            rule.queue(conn, matched)
