"""``romanarchive mosaic`` (co-add by hand) and ``romanarchive skycells`` (list cells)."""

from __future__ import annotations

import json

import click
import sqlalchemy as sa
from tqdm import tqdm

from romanarchive.archive import Archive
from romanarchive.db.tables import products
from romanarchive.imaging.coadd import MosaicError
from romanarchive.mosaic.job import L2_TYPE, build_and_register, footprints_of
from romanarchive.sky.skycells import skycell, skycells_containing, skycells_for_footprint


def _targets(conn: sa.Connection, cell: str | None, filter_name: str | None) -> list[tuple[str, str]]:
    """(skycell, filter) pairs that live L2s touch, optionally restricted."""
    stmt = sa.select(sa.cast(products.c.s_region, sa.Text), products.c.filter).where(
        products.c.product_type == L2_TYPE, products.c.release == "live", products.c.s_region.is_not(None))
    if filter_name:
        stmt = stmt.where(products.c.filter == filter_name)
    out: set[tuple[str, str]] = set()
    for region, flt in conn.execute(stmt):
        for c in skycells_for_footprint(region):
            if cell is None or c.name == cell:
                out.add((c.name, flt))
    return sorted(out)


@click.command("mosaic")
@click.option("--skycell", "cell", default=None, help="Skycell name, e.g. p24301x27y13.")
@click.option("--filter", "filter_name", default=None, help="Filter, e.g. F158 (default: every filter).")
@click.option("--all", "all_cells", is_flag=True, help="Every skycell that live L2 images touch.")
def mosaic(cell: str | None, filter_name: str | None, all_cells: bool) -> None:
    """Co-add live L2 images onto skycells and register the L3 mosaics (what the mosaic jobs do)."""
    if not cell and not all_cells:
        raise click.UsageError("give --skycell NAME or --all")
    if cell:
        try:
            skycell(cell)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    archive = Archive.from_env()
    with archive.engine.connect() as conn:
        targets = _targets(conn, cell, filter_name.upper() if filter_name else None)
    if not targets:
        raise click.ClickException("no live L2 image touches that skycell/filter")
    failed = 0
    with tqdm(targets, unit="cell", desc="mosaic", disable=len(targets) < 2) as bar:
        for name, flt in bar:
            try:
                pid = build_and_register(archive, name, flt)
            except MosaicError as exc:
                failed += 1
                tqdm.write(f"error: {name} {flt}: {exc}")
                continue
            tqdm.write(f"{name} {flt}: L3 product {pid}")
    if failed:
        raise SystemExit(1)


@click.command("skycells")
@click.option("--ra", type=float, default=None, help="Right ascension, degrees.")
@click.option("--dec", type=float, default=None, help="Declination, degrees.")
@click.option("--product", "product_id", type=int, default=None, help="A product id: cells its footprint touches.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def skycells(ra: float | None, dec: float | None, product_id: int | None, as_json: bool) -> None:
    """List the skycells containing a position or touched by a product's footprint."""
    if product_id is not None:
        with Archive.from_env().engine.connect() as conn:
            found = footprints_of(conn, [product_id])
        if not found or not found[0][0]:
            raise click.ClickException(f"product {product_id} does not exist or has no footprint")
        cells = skycells_for_footprint(str(found[0][0]))
    elif ra is not None and dec is not None:
        if not -90.0 <= dec <= 90.0:
            raise click.ClickException(f"--dec {dec} is outside [-90, 90]")
        cells = skycells_containing(ra, dec)
    else:
        raise click.UsageError("give --ra and --dec, or --product ID")
    rows = [{"name": c.name, "ra": round(c.centre()[0], 6), "dec": round(c.centre()[1], 6),
             "shape": list(c.shape), "pixel_scale_arcsec": c.pixel_scale} for c in cells]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['name']}\t{r['ra']:.6f}\t{r['dec']:.6f}")
