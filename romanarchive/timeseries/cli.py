"""``romanarchive forced-phot`` and ``romanarchive diff`` (``romanarchive lightcurve`` is
:mod:`romanarchive.dal.lightcurve_cli`)."""

from __future__ import annotations

import click

from romanarchive.archive import Archive
from romanarchive.timeseries.dia_job import dia_targets, run_cell
from romanarchive.timeseries.dia_step import DiaConfig
from romanarchive.timeseries.forced_job import run_all, run_product
from romanarchive.timeseries.forced_step import ForcedPhotConfig


@click.command("forced-phot")
@click.option("--product", "product_id", type=int, default=None, help="One L2 product id.")
@click.option("--all", "all_products", is_flag=True, help="Every live L2 that covers catalog objects (full run).")
@click.option("--point-like-only", is_flag=True,
              help="Measure only point-like objects (default: every object; extended ones get aperture fluxes).")
@click.option("--with-overlaps", is_flag=True,
              help="Also objects outside the core of the skycell that catalogued them (may measure one twice).")
def forced_phot(product_id: int | None, all_products: bool, point_like_only: bool, with_overlaps: bool) -> None:
    """Forced photometry of catalog objects on L2 images, and their variability indices."""
    if (product_id is None) == (not all_products):
        raise click.UsageError("give --product ID or --all")
    archive = Archive.from_env()
    cfg = ForcedPhotConfig(point_like_only=point_like_only, home_core_only=not with_overlaps)
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


COMMANDS = (forced_phot, diff)
