"""``romanarchive catalog`` (build skycell catalogs by hand), ``romanarchive l2-catalog`` (per-image source catalogs)
and ``romanarchive inject`` (source injection)."""

from __future__ import annotations

import click
import sqlalchemy as sa
from tqdm import tqdm

from romanarchive.archive import Archive
from romanarchive.catalog import l2_job
from romanarchive.catalog.injection import InjectionConfig, run_injection, store_injection
from romanarchive.catalog.job import LiveL3, catalog_references, catalog_skycell, catalog_skycells, live_l3
from romanarchive.catalog.select import CatalogInputError
from romanarchive.catalog.step import LoadedImage, load_image
from romanarchive.db.tables import files, products


@click.command("catalog")
@click.option("--skycell", "cell", default=None, help="Skycell name, e.g. p24301x27y13.")
@click.option("--all", "all_cells", is_flag=True, help="Every skycell with a live L3 mosaic.")
def catalog(cell: str | None, all_cells: bool) -> None:
    """Build the multiband catalog of skycells from their live L3s (what the catalog jobs do)."""
    if not cell and not all_cells:
        raise click.UsageError("give --skycell NAME or --all")
    archive = Archive.from_env()
    with archive.engine.connect() as conn:
        cells = catalog_skycells(conn)
    if cell:
        if cell not in cells:
            raise click.ClickException(f"skycell {cell} has no live L3 mosaic")
        cells = [cell]
    if not cells:
        raise click.ClickException("no skycell has a live L3 mosaic")
    failed = 0
    with tqdm(cells, unit="cell", desc="catalog", disable=len(cells) < 2) as bar:
        for name in bar:
            try:
                out = catalog_skycell(archive, name)
            except CatalogInputError as exc:
                failed += 1
                tqdm.write(f"error: {name}: {exc}")
                continue
            tqdm.write(f"{name}: {out.n_objects} objects in {'+'.join(out.bands)}, L4 products "
                       f"{', '.join(map(str, out.product_ids))} ({out.wall_time_s:.1f} s)")
    if failed:
        raise SystemExit(1)


@click.command("l2-catalog")
@click.option("--product", "product_ids", type=int, multiple=True, help="L2 product id (repeatable).")
@click.option("--all", "all_images", is_flag=True, help="Every live L2 image.")
def l2_catalog(product_ids: tuple[int, ...], all_images: bool) -> None:
    """Build the source catalog of L2 images with romancal's SourceCatalogStep (what the l2_catalog jobs do)."""
    if bool(product_ids) == all_images:
        raise click.UsageError("give --product ID (repeatable) or --all")
    archive = Archive.from_env()
    wanted = list(product_ids) or None
    with archive.engine.connect() as conn:
        live = {im.product_id for im in l2_job.live_l2_images(conn, wanted)}
    unknown = sorted(set(product_ids) - live)
    if unknown:
        raise click.ClickException(f"not a live L2 image: {', '.join(map(str, unknown))}")
    if not live:
        raise click.ClickException("no live L2 image")
    done, errors = l2_job.run_all(archive, wanted, progress=True)
    for out in done:
        tqdm.write(f"L2 {out.product_id}: {out.n_sources} sources, catalog product {out.catalog_product_id} "
                   f"({out.wall_time_s:.1f} s)")
    for pid, msg in errors:
        tqdm.write(f"error: L2 {pid}: {msg}")
    click.echo(f"{len(done)} image(s) catalogued, {sum(o.n_sources for o in done)} sources, {len(errors)} error(s)")
    if errors:
        raise SystemExit(1)


def _images(archive: Archive, cell: str | None, product_id: int | None) -> tuple[list[LoadedImage], str, list[int]]:
    with archive.engine.connect() as conn:
        if cell:
            rows = live_l3(conn, cell)
            if not rows:
                raise click.ClickException(f"skycell {cell} has no live L3 mosaic")
            target = cell
        else:
            rows = [LiveL3(*r) for r in conn.execute(
                sa.select(products.c.product_id, products.c.filter, files.c.uri, files.c.filename)
                .join(files, files.c.file_id == products.c.file_id)
                .where(products.c.product_id == product_id, products.c.level == 3))]
            if not rows:
                raise click.ClickException(f"product {product_id} is not an L3 mosaic (injection measures what "
                                           "the catalog measures: L3s)")
            target = f"product:{product_id}"
    images = [load_image(archive.store.local_file(r.uri, archive.settings.scratch / "inject" / r.filename),
                         r.product_id) for r in rows]
    return images, target, [int(r.product_id) for r in rows]


@click.command("inject")
@click.option("--skycell", "cell", default=None, help="Inject into the live L3s of this skycell.")
@click.option("--product", "product_id", type=int, default=None, help="Inject into this L3 mosaic.")
@click.option("--mags", default="21,22,23,24,25,26,27", show_default=True, help="Comma-separated AB magnitudes.")
@click.option("--points-per-mag", type=int, default=12, show_default=True, help="Point sources per magnitude.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the placement.")
def inject(cell: str | None, product_id: int | None, mags: str, points_per_mag: int, seed: int) -> None:
    """Inject stars and Sérsic galaxies, catalogue them, and store completeness/bias (nothing injected is archived)."""
    if bool(cell) == (product_id is not None):
        raise click.UsageError("give exactly one of --skycell NAME or --product ID")
    try:
        cfg = InjectionConfig(mags=tuple(float(m) for m in mags.split(",")), points_per_mag=points_per_mag,
                              seed=seed)
    except ValueError as exc:
        raise click.BadParameter(str(exc).splitlines()[0], param_hint="--mags") from None
    archive = Archive.from_env()
    with tqdm(total=3, desc="inject", unit="step") as bar:
        images, target, pids = _images(archive, cell, product_id)
        bar.update()
        try:
            refs = catalog_references(archive, [im.band for im in images], archive.settings.scratch / "inject")
            result = run_injection(images, cfg, refs)
        except (CatalogInputError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        bar.update()
        with archive.engine.begin() as conn:
            run_id = store_injection(conn, result, target, pids, cfg)
        bar.update()
    click.echo(f"injection run {run_id}: {len(result.sources)} sources, {int(result.sources['recovered'].sum())} "
               "recovered")
    for row in result.completeness:
        click.echo(f"  {row['filter']} {row['kind']:6s} {row['mag_lo']:5.1f}-{row['mag_hi']:5.1f}  "
                   f"completeness {row['completeness']:.2f}  flux bias {row['flux_bias']:+.3f}")


COMMANDS = (catalog, l2_catalog, inject)
