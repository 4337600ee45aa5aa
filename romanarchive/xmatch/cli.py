"""Command line: ``romanarchive refcat``, ``romanarchive xmatch`` and ``romanarchive export hats``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from romanarchive.console import fail, open_archive
from romanarchive.xmatch.astrometry import AstrometryConfig, check_astrometry
from romanarchive.xmatch.bulk import parse_radius, run_xmatch
from romanarchive.xmatch.hats import export_hats as run_export_hats
from romanarchive.xmatch.refcat import REFCATS, load_refcat, refcat_counts
from romanarchive.xmatch.sources import is_file


def _cols(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise click.BadParameter("write RA,DEC column names, e.g. ra,dec")
    return parts[0], parts[1]


@click.group()
def refcat() -> None:
    """Reference catalogs (Gaia DR3 bright stars, Hipparcos 2) loaded from installed packages."""


@refcat.command("load")
@click.argument("name", required=False)
@click.option("--all", "load_all", is_flag=True, help="Load every reference catalog.")
def refcat_load(name: str | None, load_all: bool) -> None:
    """Load reference catalog NAME (gaia-dr3-bright, hipparcos2), replacing its rows."""
    if load_all == (name is not None):
        fail(f"name one reference catalog ({', '.join(REFCATS)}) or pass --all")
    names = list(REFCATS) if load_all else [str(name)]
    archive = open_archive()
    for n in names:
        t = time.perf_counter()
        try:
            rows = load_refcat(archive.engine, n)
        except ValueError as exc:
            fail(str(exc))
        spec = REFCATS[n].spec
        click.echo(f"{n}: {rows} rows into {spec.qualified_name} in {time.perf_counter() - t:.1f} s")


@refcat.command("list")
def refcat_list() -> None:
    """List the reference catalogs and the rows loaded."""
    counts = refcat_counts(open_archive().engine)
    for name, r in REFCATS.items():
        click.echo(f"{name:16s} {r.spec.qualified_name:24s} {counts[name]:>9d} rows  (from {r.package})")


@click.command("xmatch")
@click.argument("left")
@click.argument("right")
@click.option("--radius", default="1arcsec", show_default=True, help="Match radius, e.g. 1arcsec, 0.5arcmin.")
@click.option("--nearest", "mode", flag_value="nearest", help="Keep the nearest RIGHT row of each LEFT row.")
@click.option("--all", "mode", flag_value="all", default=True, help="Keep every pair within the radius (default).")
@click.option("--into", "into", default=None, help="Write a published match table xmatch.<INTO>.")
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False), help="Write a file (.csv .ecsv "
              ".fits .parquet .vot .xml).")
@click.option("--replace", is_flag=True, help="Overwrite an existing match table or file.")
@click.option("--left-cols", default=None, help="RA,DEC column names of a LEFT file.")
@click.option("--right-cols", default=None, help="RA,DEC column names of a RIGHT file.")
@click.option("--release", default=None, help="Release of the rows of tables keyed by (id, release), such as "
              "objects [default: live].")
def xmatch(left: str, right: str, radius: str, mode: str, into: str | None, out: str | None, replace: bool,
           left_cols: str | None, right_cols: str | None, release: str | None) -> None:
    """Cross-match LEFT with RIGHT (published tables such as refcat.gaia_dr3_bright, or table files)."""
    if into is None and out is None:
        fail("say where the pairs go: --into TABLE or --out FILE")
    try:
        radius_deg = parse_radius(radius)
        lc, rc = _cols(left_cols), _cols(right_cols)
    except (ValueError, click.BadParameter) as exc:
        fail(str(exc))
    archive = None
    if into is not None or not (is_file(left) and is_file(right)):
        archive = open_archive()
    try:
        result = run_xmatch(left, right, radius_deg, engine=archive.engine if archive else None,
                            home=archive.settings.home if archive else None, nearest=mode == "nearest", into=into,
                            out=out, replace=replace, left_cols=lc, right_cols=rc, progress=True,
                            release=release)
    except ValueError as exc:
        fail(str(exc))
    s = result.seconds
    click.echo(f"{len(result.pairs)} pairs ({len(result.left)} x {len(result.right)} rows; inputs: "
               f"{result.how['left']}, {result.how['right']}) -> {result.written}; read {s['read']:.2f} s, "
               f"match {s['match']:.2f} s, write {s['write']:.2f} s")


@click.group("export")
def export() -> None:
    """Export archive tables for other tools."""


@export.command("hats")
@click.argument("table")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--margin", default="10arcsec", show_default=True, help="Margin cache width.")
@click.option("--rows-per-partition", default=500_000, show_default=True, help="Largest partition.")
def export_hats(table: str, directory: Path, margin: str, rows_per_partition: int) -> None:
    """Write TABLE as a HATS catalog (with a margin cache) under DIRECTORY, for lsdb.open_catalog."""
    archive = open_archive()
    try:
        margin_arcsec = parse_radius(margin) * 3600
        out = run_export_hats(archive.engine, table, directory, margin_arcsec=margin_arcsec,
                  rows_per_partition=rows_per_partition)
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"wrote {out}")


@click.group()
def astrometry() -> None:
    """Astrometric checks of the L4 object catalog against Gaia."""


@astrometry.command("check")
@click.option("--release", default="live", show_default=True, help="Release of the catalog rows.")
@click.option("--radius", default="0.5arcsec", show_default=True, help="Match radius.")
@click.option("--point-like-only", is_flag=True, help="Match only objects classified point-like.")
def astrometry_check(release: str, radius: str, point_like_only: bool) -> None:
    """Match catalog objects to Gaia DR3; write residual statistics per L2 and L3 image to astrometry_checks."""
    archive = open_archive()
    try:
        cfg = AstrometryConfig(release=release, radius_arcsec=parse_radius(radius) * 3600,
                               point_like_only=point_like_only)
        rows = check_astrometry(archive, cfg)
    except ValueError as exc:
        fail(str(exc))
    for r in rows:
        med = "-" if r["dra_median"] is None else f"{r['dra_median']:+.1f}, {r['ddec_median']:+.1f} mas"
        click.echo(f"product {r['product_id']} (L{r['level']} {r['filter']}): {r['n_measured']}/{r['n_matched']} "
                   f"measured/matched of {r['n_reference']} reference stars; median residual {med}")
    if not rows:
        click.echo("no live L2 or L3 images")


COMMANDS = (refcat, xmatch, export, astrometry)
