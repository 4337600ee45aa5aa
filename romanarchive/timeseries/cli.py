"""``romanarchive forced-phot``, ``romanarchive diff`` and ``romanarchive targets`` (``romanarchive lightcurve`` is
:mod:`romanarchive.dal.lightcurve_cli`).

``targets`` is made by :func:`targets_group`; the archive's command line gives it a Level 5 reader
(:mod:`romanarchive.level5.targets`, a layer above this one) for ``targets add --from-level5``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.timeseries import targets as tg
from romanarchive.timeseries.dia_job import dia_targets, run_cell
from romanarchive.timeseries.dia_step import DiaConfig
from romanarchive.timeseries.forced_job import KIND, run_all, run_product
from romanarchive.timeseries.forced_step import ForcedPhotConfig

#: Reads a Level 5 catalog's positions: (archive, collection or product id) -> (names, ra, dec); raises
#: ``ValueError`` with a message for the user.
Level5Reader = Callable[[Archive, str], tuple[list[str], np.ndarray, np.ndarray]]


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


def read_target_file(path: Path, fmt: str | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names and positions (degrees) of a target table: columns ``name``, ``ra``, ``dec`` (any case).

    Any format astropy's Table reads (csv, ecsv, votable, fits; ``fmt`` when the extension does not tell). Columns
    with angle units are converted to degrees; masked cells are errors.

    Raises
    ------
    TargetError
        Unreadable file, missing columns, empty cells, bad coordinates (see :func:`targets.check_targets`).
    """
    from astropy import units as u
    from astropy.table import Table

    try:
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as exc:  # astropy raises many kinds for an unreadable or unrecognised file
        raise tg.TargetError(f"{path}: cannot read it as a table ({exc})") from None
    by_lower = {c.lower(): c for c in table.colnames}
    missing = [c for c in ("name", "ra", "dec") if c not in by_lower]
    if missing:
        raise tg.TargetError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                             f"(needs name, ra, dec in degrees; it has {', '.join(table.colnames) or 'none'})")
    out = []
    for c in ("ra", "dec"):
        col = table[by_lower[c]]
        if np.ma.is_masked(col):
            rows = np.flatnonzero(np.ma.getmaskarray(col))[:5] + 1
            raise tg.TargetError(f"{path}: empty {c} at row(s) {', '.join(map(str, rows))}")
        unit = getattr(col, "unit", None)
        try:
            values = (np.asarray(col, float) * unit).to_value(u.deg) if unit else np.asarray(col, float)
        except (u.UnitConversionError, ValueError, TypeError) as exc:
            raise tg.TargetError(f"{path}: column {c} is not an angle in degrees ({exc})") from None
        out.append(values)
    names = table[by_lower["name"]]
    empty = np.flatnonzero(np.ma.getmaskarray(names))[:5] + 1
    if len(empty):
        raise tg.TargetError(f"{path}: empty name at row(s) {', '.join(map(str, empty))}")
    names_list, ra, dec = tg.check_targets([str(n) for n in names], out[0], out[1])
    return names_list, ra, dec


def _measure_now(archive: Archive, products: list[int]) -> None:
    """Run the queued forced_phot jobs of these products in this process (their own parameters), with a progress
    bar; each is marked done with its rows."""
    from tqdm import tqdm

    with archive.engine.connect() as conn:
        queued = {int(r[0]): (int(r[1]), r[2]) for r in conn.execute(sa.text(
            "SELECT product_id, job_id, params FROM jobs WHERE kind = :k AND state = 'queued' "
            "AND product_id = ANY(:p)"), {"k": KIND, "p": products})}
    n_rows = n_target_rows = 0
    for pid in tqdm(products, desc="forced photometry", unit="image"):
        job_id, params = queued.get(pid, (None, None))
        out = run_product(archive, pid, ForcedPhotConfig(**(params or {})), job_id=job_id)
        n_rows += out.rows_written
        n_target_rows += out.target_rows
    click.echo(f"{len(products)} image(s) measured: {n_target_rows} target measurements, {n_rows} catalog-object "
               "measurements")


def targets_group(from_level5: Level5Reader | None = None) -> click.Group:
    """The ``targets`` command group; ``from_level5`` enables ``targets add --from-level5``."""

    @click.group("targets")
    def targets() -> None:
        """Forced photometry of your own positions: add, list and remove targets.

        Each target is measured as a point source (PSF and aperture flux) on every live L2 image whose footprint
        contains it, by the images' forced_phot jobs; its measurements are in roman.target_phot.
        """

    # Negative declinations ("-2.5") are arguments, not options.
    @targets.command("add", context_settings={"ignore_unknown_options": True})
    @click.argument("position", nargs=-1, metavar="[NAME RA DEC]")
    @click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                  help="A table with columns name, ra, dec (degrees): csv, ecsv, votable, fits.")
    @click.option("--format", "fmt", default=None, help="astropy Table format of --file when its extension is "
                  "not enough (e.g. ascii.csv, votable).")
    @click.option("--from-level5", "level5_id", default=None, metavar="ID",
                  help="A published Level 5 catalog (name, name/vN or product id): its rows become targets with "
                  "origin level5:ID." if from_level5 else "Not available here (use the romanarchive command).",
                  hidden=from_level5 is None)
    @click.option("--origin", default=tg.OPERATOR, show_default=True,
                  help="Who asks: 'operator' or 'level5:<id>' (names are unique within an origin).")
    @click.option("--now", is_flag=True, help="Measure the covering L2 images in this process instead of leaving "
                  "their jobs to `romanarchive worker`.")
    def add(position: tuple[str, ...], path: Path | None, fmt: str | None, level5_id: str | None, origin: str,
            now: bool) -> None:
        """Add targets (NAME RA DEC in degrees, --file, or --from-level5) and queue their forced photometry.

        A name the origin already has at another position moves there (its old measurements are deleted).
        """
        given = sum([bool(position), path is not None, level5_id is not None])
        if given != 1:
            raise click.UsageError("give NAME RA DEC, --file FILE or --from-level5 ID (one of them)")
        if position and len(position) != 3:
            raise click.UsageError(f"expected NAME RA DEC, got {len(position)} argument(s): {' '.join(position)}")
        archive = Archive.from_env()
        try:
            if path is not None:
                names, ra, dec = read_target_file(path, fmt)
            elif level5_id is not None:
                if from_level5 is None:
                    raise click.UsageError("--from-level5 is not available here")
                if origin != tg.OPERATOR:
                    raise click.UsageError("--from-level5 sets the origin itself (level5:ID)")
                origin = tg.LEVEL5_PREFIX + level5_id.strip()
                names, ra, dec = from_level5(archive, level5_id.strip())
            else:
                try:
                    coords = [float(position[1]), float(position[2])]
                except ValueError:
                    raise tg.TargetError(f"RA and Dec must be numbers in degrees, got {position[1]!r} "
                                         f"{position[2]!r}") from None
                names, ra, dec = [position[0]], np.array(coords[:1]), np.array(coords[1:])
            added = tg.add_and_queue(archive, names, ra, dec, origin)
        except ValueError as exc:  # TargetError, or a Level 5 catalog that cannot be read
            raise click.ClickException(str(exc)) from None
        click.echo(f"{len(added.target_ids)} target(s) of origin {origin}: {added.new} new, {added.moved} moved, "
                   f"{added.unchanged} unchanged")
        if not added.changed:
            click.echo("nothing new to measure")
        elif not added.products:
            click.echo("no live L2 image covers them yet: L2 images that do are measured when they are registered")
        elif now:
            _measure_now(archive, added.products)
        else:
            waiting = len(added.products) - added.jobs_queued
            click.echo(f"{added.jobs_queued} forced_phot job(s) queued for the {len(added.products)} L2 image(s) "
                       "that cover them" + (f" ({waiting} already waiting or running)" if waiting else "")
                       + "; run `romanarchive worker` to measure them (or add with --now)")

    @targets.command("list")
    @click.option("--origin", default=None, help="Only this origin.")
    @click.option("--json", "as_json", is_flag=True, help="JSON output.")
    def list_cmd(origin: str | None, as_json: bool) -> None:
        """Targets, with how many L2 measurements each has."""
        with Archive.from_env().engine.connect() as conn:
            rows = tg.list_targets(conn, origin)
        if as_json:
            click.echo(json.dumps([r | {"added": r["added"].isoformat()} for r in rows], indent=1))
            return
        for r in rows:
            click.echo(f"{r['target_id']:>8} {r['name']:<24} {r['ra']:12.7f} {r['dec']:+12.7f} {r['origin']:<20} "
                       f"{r['n_measurements']:>5} measurement(s)")
        if not rows:
            click.echo("no targets" + (f" of origin {origin}" if origin else ""))

    @targets.command("remove")
    @click.argument("names", nargs=-1)
    @click.option("--origin", default=tg.OPERATOR, show_default=True, help="Origin of the targets.")
    @click.option("--all", "everything", is_flag=True, help="Every target of the origin.")
    def remove(names: tuple[str, ...], origin: str, everything: bool) -> None:
        """Remove targets NAME... (or --all of an origin) and their measurements."""
        if bool(names) == everything:
            raise click.UsageError("give NAME... or --all")
        gone = tg.remove_targets(Archive.from_env(), None if everything else list(names), origin)
        missing = sorted(set(names) - set(gone))
        click.echo(f"removed {len(gone)} target(s) of origin {origin}")
        if missing:
            raise click.ClickException(f"no target {', '.join(missing)} of origin {origin}")

    return targets


targets = targets_group()

COMMANDS = (forced_phot, diff, targets)
