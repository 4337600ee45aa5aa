"""``romanarchive forced-phot``, ``romanarchive diff`` and ``romanarchive lightcurve``."""

from __future__ import annotations

import sys

import click


@click.command("forced-phot")
@click.option("--product", "product_id", type=int, default=None, help="One L2 product id.")
@click.option("--all", "all_products", is_flag=True, help="Every live L2 that covers catalog objects (full run).")
@click.option("--all-objects", is_flag=True, help="Measure every object, not only point-like ones.")
@click.option("--with-overlaps", is_flag=True,
              help="Also objects outside the core of the skycell that catalogued them (may measure one twice).")
def forced_phot(product_id: int | None, all_products: bool, all_objects: bool, with_overlaps: bool) -> None:
    """Forced photometry of catalog objects on L2 images, and their variability indices."""
    from romanarchive.archive import Archive
    from romanarchive.timeseries.forced import ForcedPhotConfig, run_all, run_product

    if (product_id is None) == (not all_products):
        raise click.UsageError("give --product ID or --all")
    archive = Archive.from_env()
    cfg = ForcedPhotConfig(point_like_only=not all_objects, home_core_only=not with_overlaps)
    try:
        out = run_product(archive, product_id, cfg) if product_id is not None else run_all(archive, cfg, True)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(out.products)} image(s): {out.rows_written} measurements written, "
               f"{out.sources_recomputed} sources' indices recomputed ({out.wall_time_s:.1f} s)")


@click.command("diff")
@click.option("--skycell", "cell", default=None, help="Skycell name, e.g. p24301x27y13.")
@click.option("--filter", "filter_name", default=None, help="Filter, e.g. F158.")
@click.option("--all", "all_targets", is_flag=True, help="Every skycell + filter with a live L3.")
@click.option("--full", is_flag=True, help="Difference every epoch again, not only new ones.")
def diff(cell: str | None, filter_name: str | None, all_targets: bool, full: bool) -> None:
    """Difference imaging: epoch co-adds minus templates of earlier images, sources into dia_sources."""
    from tqdm import tqdm

    from romanarchive.archive import Archive
    from romanarchive.timeseries.dia_step import DiaConfig, dia_targets, run_cell

    if all_targets == bool(cell and filter_name) or (not all_targets and not (cell and filter_name)):
        raise click.UsageError("give --skycell NAME --filter F, or --all")
    archive = Archive.from_env()
    if all_targets:
        with archive.engine.connect() as conn:
            targets = dia_targets(conn)
        if not targets:
            raise click.ClickException("no skycell has a live L3 mosaic")
    else:
        targets = [(str(cell), str(filter_name).upper())]
    for name, filt in tqdm(targets, unit="cell", desc="diff", disable=len(targets) < 2):
        try:
            out = run_cell(archive, name, filt, DiaConfig(incremental=not full))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        tqdm.write(f"{name} {filt}: {len(out.epochs)} epoch(s) differenced ({out.reused} unchanged), "
                   f"{out.n_sources} sources ({out.wall_time_s:.1f} s)")


@click.command("lightcurve")
@click.argument("source_id", type=int)
@click.option("--format", "fmt", default="csv", show_default=True, help="votable, csv, json or png.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="File (default: stdout).")
def lightcurve(source_id: int, fmt: str, output: str | None) -> None:
    """Print or save one object's light curve."""
    from romanarchive.archive import Archive
    from romanarchive.timeseries import service

    try:
        fmt = service.parse_format(fmt)
        with Archive.from_env().engine.connect() as conn:
            body, _ = service.render(service.light_curve(conn, source_id), fmt)
    except service.LightCurveError as exc:
        raise click.ClickException(str(exc)) from None
    if output:
        with open(output, "wb") as fh:
            fh.write(body)
    elif fmt == "png":
        raise click.UsageError("PNG output needs -o FILE")
    else:
        sys.stdout.buffer.write(body)


COMMANDS = (forced_phot, diff, lightcurve)
