"""``romanarchive`` command line."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from tqdm import tqdm

from romanarchive.archive import Archive
from romanarchive.cli.status import archive_status, print_status
from romanarchive.console import ensure_ready, fail, open_archive
from romanarchive.db.embedded import EmbeddedCluster, EmbeddedError
from romanarchive.db.engine import current_revision, upgrade
from romanarchive.ingest.inspect import IngestError
from romanarchive.ingest.service import expand_paths, ingest_paths
from romanarchive.jobs.queue import list_jobs, retry
from romanarchive.jobs.worker import run_dask, run_workers
from romanarchive.tap.adql import AdqlError, AdqlSyntaxError, parse, translate
from romanarchive.tap.schema import catalog

#: Commands each domain defines next to its code: name -> ("module:attribute", short help). They are imported when
#: run, so that `romanarchive --help` does not load every domain's science libraries. An attribute that is not a
#: command is called to make one.
DOMAIN_COMMANDS: dict[str, tuple[str, str]] = {
    "mosaic": ("romanarchive.mosaic.cli:mosaic", "Co-add live L2 images onto skycells and register the L3 mosaics."),
    "skycells": ("romanarchive.mosaic.cli:skycells", "Skycells containing a position or touched by a product."),
    "release": ("romanarchive.releases:cli", "Data releases: freeze the live products and object catalog."),
    "catalog": ("romanarchive.catalog.cli:catalog", "Build the multiband catalog of skycells from their live L3s."),
    "l2-catalog": ("romanarchive.catalog.cli:l2_catalog", "Source catalogs of L2 images (romancal SourceCatalogStep)."),
    "inject": ("romanarchive.catalog.cli:inject", "Inject stars and galaxies, catalogue them, store completeness."),
    "forced-phot": ("romanarchive.timeseries.cli:forced_phot", "Forced photometry of catalog objects on L2 images."),
    "diff": ("romanarchive.timeseries.cli:diff", "Difference imaging: epoch co-adds minus templates."),
    "targets": ("romanarchive.level5.targets:targets_command",
                "Forced photometry of your own positions (or a Level 5 catalog's): add, list, remove."),
    "lightcurve": ("romanarchive.dal.lightcurve_cli:lightcurve", "Print or save one object's light curve."),
    "refcat": ("romanarchive.xmatch.cli:refcat", "Reference catalogs (Gaia DR3 bright stars, Hipparcos 2)."),
    "xmatch": ("romanarchive.xmatch.cli:xmatch", "Cross-match two published tables (or a file) by position."),
    "export": ("romanarchive.xmatch.cli:export", "Export archive tables for other tools (HATS)."),
    "astrometry": ("romanarchive.xmatch.cli:astrometry", "Astrometric checks of L2/L3 images against Gaia."),
    "level5": ("romanarchive.level5.cli:level5", "Level 5 community products: validate, submit, list; tokens."),
    "epsf": ("romanarchive.epsf.cli:epsf", "Empirical PSF library: build ePSFs from L2 stars, list, get one."),
    "validate": ("romanarchive.validate.cli:validate", "Compare catalogs and light curves with a simulation's truth."),
}


class _Commands(click.Group):
    """The ``romanarchive`` group: its own commands plus the domains' (:data:`DOMAIN_COMMANDS`), loaded on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *DOMAIN_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in DOMAIN_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attr = DOMAIN_COMMANDS[cmd_name][0].split(":")
        found = getattr(importlib.import_module(module), attr)
        return found if isinstance(found, click.Command) else found()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in DOMAIN_COMMANDS:
                rows.append((name, DOMAIN_COMMANDS[name][1]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(formatter.width - 20)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Commands)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def main(verbose: int) -> None:
    """Archive and catalog system for the Roman Wide Field Imager."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # romancal/stpipe set INFO on their own loggers; filter at the handler so -v decides what is shown.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    if not verbose:
        # Offline by design: romanisim warns on every image that CRDS is not used (it resets its own logger's level
        # on import, so filter at the handler); romancal warns about on_disk.
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda r: not (r.name.startswith("romanisim") and r.levelno < logging.ERROR))
        warnings.filterwarnings("ignore", message="on_disk is only supported", category=UserWarning)


@main.group()
def db() -> None:
    """Manage the database (embedded cluster or external server)."""


@db.command("start")
def db_start() -> None:
    """Initialise and start the embedded PostgreSQL cluster, then apply migrations."""
    archive = open_archive()
    if archive.settings.database_url:
        click.echo(f"using the external database {archive.url}; nothing to start")
    else:
        cluster = EmbeddedCluster.from_settings(archive.settings)
        try:
            cluster.start()
        except EmbeddedError as exc:
            fail(str(exc))
        click.echo(f"embedded PostgreSQL running: {cluster.url} (data in {cluster.pgdata})")
    _upgrade(archive)


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster."""
    archive = open_archive()
    if archive.settings.database_url:
        fail("an external database is configured; stop it with its own tools")
    EmbeddedCluster.from_settings(archive.settings).stop()
    click.echo("embedded PostgreSQL stopped")


@db.command("status")
def db_status() -> None:
    """Say where the database is, whether it runs, and its migration revision."""
    archive = open_archive()
    if not archive.settings.database_url:
        cluster = EmbeddedCluster.from_settings(archive.settings)
        click.echo(f"embedded cluster {cluster.pgdata}: {'running' if cluster.running() else 'stopped'}")
        if not cluster.running():
            sys.exit(3)
    try:
        click.echo(f"database {archive.url}: revision {current_revision(archive.url) or '(none)'}")
    except sa.exc.OperationalError as exc:
        fail(f"cannot reach {archive.url}: {str(exc.orig).strip()}", 3)


def _upgrade(archive: Archive) -> None:
    try:
        upgrade(archive.url)
    except sa.exc.DBAPIError as exc:
        hint = ""
        if "commutator" in str(exc.orig):
            hint = " — pgsphere needs the upstream fix for PostgreSQL >= 15.9: run `sudo python3 sql/patch_pgsphere.py`"
        fail(f"migration failed: {str(exc.orig).strip()}{hint}")
    click.echo(f"schema at revision {current_revision(archive.url)}")


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to head."""
    _upgrade(open_archive())


@main.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for l1/, refs/, truth/ and manifest.json.")
@click.option("--preset", type=click.Choice(["demo", "tiny", "star-field", "custom"]), default="custom",
              show_default=True,
              help="Start from the demo (24 exposures), tiny (2) or star-field (8, 400 stars each) survey; other "
                   "options override it.")
@click.option("--size", type=int, default=None, help="Image side in pixels: 512 for tests, 4088 full detector.")
@click.option("--pointings", type=int, default=None, help="Telescope pointings tiling the field.")
@click.option("--dithers", type=int, default=None, help="Dithered exposures per pointing and epoch.")
@click.option("--epochs", type=int, default=None, help="Visits of the field (variability, transients, motion).")
@click.option("--filters", default=None, help="Comma-separated, e.g. F087,F158.")
@click.option("--detectors", default=None, help="Comma-separated, e.g. WFI01,WFI02.")
@click.option("--seed", type=int, default=None, help="Random seed; the same seed gives the same survey.")
def simulate(out: Path, preset: str, **opts: Any) -> None:
    """Simulate a small Roman WFI survey with romanisim (L1 ramps, reference files, truth catalogue)."""
    names = {"pointings": "n_pointings"}
    overrides: dict[str, Any] = {}
    for key, value in opts.items():
        if value is None:
            continue
        if key in ("filters", "detectors"):
            value = [v.strip().upper() for v in value.split(",") if v.strip()]
        overrides[names.get(key, key)] = value
    from romanarchive.sim.survey import SurveyConfig, simulate_survey  # romanisim + galsim: slow to import

    config = {"demo": SurveyConfig.demo, "tiny": SurveyConfig.tiny, "star-field": SurveyConfig.star_field}.get(
        preset, SurveyConfig)(**overrides)
    manifest = simulate_survey(config, out)
    click.echo(f"simulated {len(manifest.l1)} L1 exposures into {out} in {manifest.elapsed_s:.0f} s")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=False, path_type=Path))
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel ingest processes.")
@click.option("--replace", is_flag=True, help="Let a different file supersede an archived one of the same identity.")
def ingest(paths: tuple[Path, ...], workers: int, replace: bool) -> None:
    """Validate, store and register ASDF files (L1/L2 products, reference files); queue calibration of L1."""
    archive = open_archive()
    ensure_ready(archive)
    files = expand_paths(paths)
    total = len(files)
    tally: dict[str, int] = {}
    errors = 0
    with tqdm(total=total, unit="file", desc="ingest", disable=total < 2) as bar:
        for res in ingest_paths(archive, files, replace=replace, workers=workers):
            bar.update()
            if isinstance(res, IngestError):
                errors += 1
                tqdm.write(f"error: {res}", file=sys.stderr)
                continue
            tally[res.status] = tally.get(res.status, 0) + 1
            if total < 2:
                click.echo(f"{res.status}: {res.path}" + (f" (product {res.product_id})" if res.product_id else ""))
    click.echo(", ".join(f"{n} {k}" for k, n in sorted(tally.items())) + (f", {errors} failed" if errors else ""))
    sys.exit(1 if errors else 0)


@main.group()
def jobs() -> None:
    """Inspect and re-queue processing jobs."""


@jobs.command("list")
@click.option("--state", type=click.Choice(["queued", "running", "done", "failed"]))
@click.option("--limit", type=int, default=50, show_default=True)
def jobs_list(state: str | None, limit: int) -> None:
    """List recent jobs."""
    archive = open_archive()
    ensure_ready(archive)
    with archive.engine.connect() as conn:
        rows = list_jobs(conn, state, limit)
    click.echo(f"{'job':>6} {'kind':<10} {'state':<8} {'product':>8} {'tries':>5}  error")
    for r in rows:
        err = (r["error"] or "").strip().splitlines()
        click.echo(f"{r['job_id']:>6} {r['kind']:<10} {r['state']:<8} {r['product_id'] or '-':>8} {r['attempts']:>5}  "
                   f"{err[0][:100] if err else ''}")


@jobs.command("retry")
@click.argument("job_ids", nargs=-1, type=int)
def jobs_retry(job_ids: tuple[int, ...]) -> None:
    """Re-queue failed jobs (all, or the given ids)."""
    archive = open_archive()
    ensure_ready(archive)
    click.echo(f"re-queued {retry(archive.engine, list(job_ids) or None)} job(s)")


@main.command()
@click.option("--workers", "-n", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--dask", "dask_address", default=None,
              help="Run on Dask: 'local' (LocalCluster) or a scheduler address.")
@click.option("--wait", is_flag=True, help="Keep running and wait for new jobs.")
@click.option("--kind", "kinds", multiple=True,
              help="Only run jobs of this kind (repeatable): calibrate, mosaic, catalog, forced_phot, dia, tap_query.")
def worker(workers: int, dask_address: str | None, wait: bool, kinds: tuple[str, ...]) -> None:
    """Run queued jobs (calibration, co-adds, catalogs, time series) until the queue is empty."""
    archive = open_archive()
    ensure_ready(archive)
    if dask_address:
        n = run_dask(archive.settings, dask_address, workers, kinds=kinds or None)
    else:
        n = run_workers(archive.settings, workers, wait=wait, kinds=kinds or None)
    click.echo(f"ran {n} job(s)")
    print_status(archive)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """What is in the archive: products per level and jobs by state."""
    archive = open_archive()
    ensure_ready(archive)
    if as_json:
        click.echo(json.dumps(archive_status(archive), indent=2))
    else:
        print_status(archive)


@main.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the simulated survey is written (default $ROMANARCHIVE_HOME/demo).")
@click.option("--preset", type=click.Choice(["demo", "tiny"]), default="demo", show_default=True)
@click.option("--workers", "-n", type=int, default=2, show_default=True)
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Finish by serving the demo archive (TAP, cone search, downloads) until Ctrl-C.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to serve on.")
def demo(workdir: Path | None, preset: str, workers: int, serve: bool, port: int) -> None:
    """End to end: start the database, simulate a survey, ingest it, calibrate every L1 to L2, report, serve."""
    from romanarchive.cli.demo import run_demo  # the simulation and server stacks

    run_demo(open_archive(), workdir, preset, workers, serve=serve, port=port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--public-url", default=None, help="URL clients reach the server at (default http://HOST:PORT).")
@click.option("--workers", "-n", type=int, default=2, show_default=True,
              help="Threads running async TAP jobs in this process (0: leave them to `romanarchive worker`).")
def serve(host: str, port: int, public_url: str | None, workers: int) -> None:
    """Serve TAP (sync, async, VOSI), cone search at /scs and product downloads at /files/{id}."""
    archive = open_archive()
    ensure_ready(archive)
    click.echo(f"TAP service at {public_url or f'http://{host}:{port}'}/tap")
    from romanarchive.server.app import serve as run_server  # uvicorn + Starlette

    run_server(archive, host, port, public_url, workers)


@main.group()
def adql() -> None:
    """Check or translate ADQL against the published tables."""


def _read_query() -> str:
    query = sys.stdin.read()
    if not query.strip():
        fail("no query on standard input")
    return query


@adql.command("check")
def adql_check() -> None:
    """Parse ADQL from standard input: exit 0 when valid, else 1 with line:column and the reason."""
    try:
        parse(_read_query())
    except AdqlSyntaxError as exc:
        fail(f"{exc.line or 0}:{exc.column or 0}: {exc}")
    except AdqlError as exc:
        fail(str(exc))
    click.echo("valid ADQL")


@adql.command("translate")
@click.option("--maxrec", type=int, default=None, help="Apply TAP MAXREC (adds the overflow LIMIT).")
def adql_translate(maxrec: int | None) -> None:
    """Translate ADQL from standard input to the PostgreSQL the service would run."""
    try:
        result = translate(_read_query(), catalog(), maxrec=maxrec)
    except AdqlSyntaxError as exc:
        fail(f"{exc.line or 0}:{exc.column or 0}: {exc}")
    except AdqlError as exc:
        fail(str(exc))
    click.echo(result.sql)


