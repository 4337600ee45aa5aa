"""Data releases: freeze the current live products and object catalog under a name.

Live processing tags everything ``live`` (``romanarchive.db.tables_catalog.LIVE``). ``create_release`` freezes, in
one REPEATABLE READ transaction (one snapshot, so products and objects are mutually consistent):

* **products** by membership: a ``release_products(release, product_id)`` row for every live product. Products are
  not copied; a product stays ``live`` until later processing replaces it (a new L3 of the same skycell and
  filter), and then, instead of being deleted, it is re-tagged with its newest release, so every release keeps
  all of its products and files;
* **object catalog rows** by copy: every ``objects`` row with ``release = 'live'`` is copied with
  ``release = NAME``, so the catalog step can rewrite the live rows freely;
* a ``releases`` row with the counts.

TAP users query a release with ``WHERE release = 'DR1'`` on ``roman.objects``, its products with
``roman.products JOIN roman.release_products USING (product_id) WHERE release_products.release = 'DR1'``, and the
newest frozen release through the view ``roman.objects_latest``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

import click
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.registry import TableSpec
from romanarchive.db.tables import metadata
from romanarchive.db.tables_catalog import LIVE, OBJECTS, OBJECTS_LATEST_VIEW

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: The view of the newest frozen release's object rows (created by migration 0004, published as roman.objects_latest).
OBJECTS_LATEST = TableSpec(
    OBJECTS_LATEST_VIEW,
    "The object catalog of the newest frozen data release (roman.objects rows of that release); query a given "
    "release with roman.objects WHERE release = 'NAME'.",
    OBJECTS.columns,
    published=True,
    table_type="view",
    spoint_column="pos",
    spoint_of=("ra", "dec"),
)


class ReleaseError(ValueError):
    """A release cannot be created; the message is one line for the user."""


@dataclass(frozen=True)
class Release:
    """One frozen release."""

    release: str
    description: str | None
    created_at: datetime
    n_products: int
    n_objects: int


def _tables() -> tuple[sa.Table, sa.Table, sa.Table, sa.Table]:
    t = metadata.tables
    return t["releases"], t["release_products"], t["objects"], t["products"]


def create_release(engine: sa.Engine, name: str, description: str | None = None) -> Release:
    """Freeze the live products and object rows as release ``name``.

    Raises
    ------
    ReleaseError
        When the name is invalid, reserved (``live``) or already used.
    """
    if not _NAME.match(name or ""):
        raise ReleaseError(f"invalid release name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if name.lower() == LIVE:
        raise ReleaseError(f"{LIVE!r} is the tag of the unfrozen set, not a release name")
    releases, members, objects, products = _tables()
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        if conn.execute(sa.select(releases.c.release).where(releases.c.release == name)).first() is not None:
            raise ReleaseError(f"release {name!r} already exists")
        conn.execute(releases.insert().values(release=name, description=description))
        conn.execute(members.insert().from_select(
            ["release", "product_id"],
            sa.select(sa.literal(name), products.c.product_id).where(products.c.release == LIVE),
        ))
        cols = [c.name for c in objects.columns]
        conn.execute(objects.insert().from_select(
            cols,
            sa.select(*[sa.literal(name).label("release") if c == "release" else objects.c[c] for c in cols])
            .where(objects.c.release == LIVE),
        ))
        n_products = conn.execute(sa.select(sa.func.count()).where(members.c.release == name)).scalar_one()
        n_objects = conn.execute(sa.select(sa.func.count()).where(objects.c.release == name)).scalar_one()
        row = conn.execute(
            releases.update().where(releases.c.release == name)
            .values(n_products=n_products, n_objects=n_objects).returning(releases)
        ).mappings().one()
    return Release(**row)


def list_releases(conn: sa.Connection) -> list[Release]:
    """Every frozen release, newest first."""
    releases = _tables()[0]
    rows = conn.execute(sa.select(releases).order_by(releases.c.created_at.desc(), releases.c.release.desc()))
    return [Release(**r) for r in rows.mappings()]


def release_product_ids(conn: sa.Connection, name: str) -> list[int]:
    """Products frozen in a release."""
    members = _tables()[1]
    return list(conn.execute(sa.select(members.c.product_id).where(members.c.release == name)
                             .order_by(members.c.product_id)).scalars())


def cli() -> object:
    """The ``romanarchive release`` command group."""
    @click.group("release")
    def release() -> None:
        """Data releases: freeze the live products and object catalog under a name."""

    @release.command("create")
    @click.argument("name")
    @click.option("--description", default=None, help="What the release contains.")
    def create(name: str, description: str | None) -> None:
        """Freeze the current live products and object rows as release NAME."""
        try:
            rel = create_release(Archive.from_env().engine, name, description)
        except ReleaseError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"release {rel.release}: {rel.n_products} products, {rel.n_objects} objects frozen")

    @release.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def list_cmd(as_json: bool) -> None:
        """List frozen releases, newest first."""
        with Archive.from_env().engine.connect() as conn:
            rels = list_releases(conn)
        if as_json:
            click.echo(json.dumps([{**r.__dict__, "created_at": r.created_at.isoformat()} for r in rels]))
            return
        for r in rels:
            click.echo(f"{r.release}\t{r.created_at:%Y-%m-%d %H:%M:%S}\t{r.n_products} products\t"
                       f"{r.n_objects} objects\t{r.description or ''}")

    return release
