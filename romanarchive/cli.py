"""``romanarchive`` command line."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.embedded import EmbeddedCluster, EmbeddedError

LEVELS = range(6)


def _archive() -> Archive:
    return Archive.from_env()


def _fail(msg: str, code: int = 1) -> None:
    click.echo(f"romanarchive: {msg}", err=True)
    sys.exit(code)


def ensure_ready(archive: Archive, start: bool = False) -> None:
    """Make sure the database answers and is migrated; start/upgrade it when ``start``."""
    from romanarchive.db.engine import current_revision, upgrade

    if not archive.settings.database_url:
        cluster = EmbeddedCluster.from_settings(archive.settings)
        if not cluster.running():
            if not start:
                _fail(f"the embedded database under {cluster.pgdata} is not running; run `romanarchive db start` "
                      "(or set ROMANARCHIVE_DATABASE_URL to use a server)")
            cluster.start()
    try:
        rev = current_revision(archive.url)
    except sa.exc.OperationalError as exc:
        _fail(f"cannot reach the database at {archive.url}: {str(exc.orig).strip()}")
    if start:
        upgrade(archive.url)
    elif rev is None:
        _fail("the database has no archive schema yet; run `romanarchive db upgrade`")


@click.group()
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
    archive = _archive()
    if archive.settings.database_url:
        click.echo(f"using the external database {archive.url}; nothing to start")
    else:
        cluster = EmbeddedCluster.from_settings(archive.settings)
        try:
            cluster.start()
        except EmbeddedError as exc:
            _fail(str(exc))
        click.echo(f"embedded PostgreSQL running: {cluster.url} (data in {cluster.pgdata})")
    _upgrade(archive)


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster."""
    archive = _archive()
    if archive.settings.database_url:
        _fail("an external database is configured; stop it with its own tools")
    EmbeddedCluster.from_settings(archive.settings).stop()
    click.echo("embedded PostgreSQL stopped")


@db.command("status")
def db_status() -> None:
    """Say where the database is, whether it runs, and its migration revision."""
    from romanarchive.db.engine import current_revision

    archive = _archive()
    if not archive.settings.database_url:
        cluster = EmbeddedCluster.from_settings(archive.settings)
        click.echo(f"embedded cluster {cluster.pgdata}: {'running' if cluster.running() else 'stopped'}")
        if not cluster.running():
            sys.exit(3)
    try:
        click.echo(f"database {archive.url}: revision {current_revision(archive.url) or '(none)'}")
    except sa.exc.OperationalError as exc:
        _fail(f"cannot reach {archive.url}: {str(exc.orig).strip()}", 3)


def _upgrade(archive: Archive) -> None:
    from romanarchive.db.engine import current_revision, upgrade

    try:
        upgrade(archive.url)
    except sa.exc.DBAPIError as exc:
        hint = ""
        if "commutator" in str(exc.orig):
            hint = " — pgsphere needs the upstream fix for PostgreSQL >= 15.9: run `sudo python3 sql/patch_pgsphere.py`"
        _fail(f"migration failed: {str(exc.orig).strip()}{hint}")
    click.echo(f"schema at revision {current_revision(archive.url)}")


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to head."""
    _upgrade(_archive())


@main.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for l1/, refs/, truth/ and manifest.json.")
@click.option("--preset", type=click.Choice(["demo", "tiny", "custom"]), default="custom", show_default=True,
              help="Start from the demo (24 exposures) or tiny (2 exposures) survey; other options override it.")
@click.option("--size", type=int, default=None, help="Image side in pixels: 512 for tests, 4088 full detector.")
@click.option("--pointings", type=int, default=None, help="Telescope pointings tiling the field.")
@click.option("--dithers", type=int, default=None, help="Dithered exposures per pointing and epoch.")
@click.option("--epochs", type=int, default=None, help="Visits of the field (variability, transients, motion).")
@click.option("--filters", default=None, help="Comma-separated, e.g. F087,F158.")
@click.option("--detectors", default=None, help="Comma-separated, e.g. WFI01,WFI02.")
@click.option("--seed", type=int, default=None, help="Random seed; the same seed gives the same survey.")
def simulate(out: Path, preset: str, **opts: Any) -> None:
    """Simulate a small Roman WFI survey with romanisim (L1 ramps, reference files, truth catalogue)."""
    from romanarchive.sim.survey import SurveyConfig, simulate_survey

    names = {"pointings": "n_pointings"}
    overrides: dict[str, Any] = {}
    for key, value in opts.items():
        if value is None:
            continue
        if key in ("filters", "detectors"):
            value = [v.strip().upper() for v in value.split(",") if v.strip()]
        overrides[names.get(key, key)] = value
    config = {"demo": SurveyConfig.demo, "tiny": SurveyConfig.tiny}.get(preset, SurveyConfig)(**overrides)
    manifest = simulate_survey(config, out)
    click.echo(f"simulated {len(manifest.l1)} L1 exposures into {out} in {manifest.elapsed_s:.0f} s")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=False, path_type=Path))
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel ingest processes.")
@click.option("--replace", is_flag=True, help="Let a different file supersede an archived one of the same identity.")
def ingest(paths: tuple[Path, ...], workers: int, replace: bool) -> None:
    """Validate, store and register ASDF files (L1/L2 products, reference files); queue calibration of L1."""
    from tqdm import tqdm

    from romanarchive.ingest.inspect import IngestError
    from romanarchive.ingest.service import expand_paths, ingest_paths

    archive = _archive()
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
    from romanarchive.jobs.queue import list_jobs

    archive = _archive()
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
    from romanarchive.jobs.queue import retry

    archive = _archive()
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
    from romanarchive.jobs.worker import run_dask, run_workers

    archive = _archive()
    ensure_ready(archive)
    if dask_address:
        n = run_dask(archive.settings, dask_address, workers, kinds=kinds or None)
    else:
        n = run_workers(archive.settings, workers, wait=wait, kinds=kinds or None)
    click.echo(f"ran {n} job(s)")
    _print_status(archive)


def archive_status(archive: Archive) -> dict[str, Any]:
    """Counts per level and jobs by state."""
    from romanarchive.db.tables import exposures, products, reference_files
    from romanarchive.jobs.queue import counts

    with archive.engine.connect() as conn:
        rows = conn.execute(sa.select(products.c.level, sa.func.count()).group_by(products.c.level)).all()
        per_level: dict[int, int] = {int(level): int(n) for level, n in rows}
        return {
            "levels": {str(lv): int(per_level.get(lv, 0)) for lv in LEVELS},
            "jobs": counts(conn),
            "exposures": conn.execute(sa.select(sa.func.count()).select_from(exposures)).scalar_one(),
            "reference_files": conn.execute(sa.select(sa.func.count()).select_from(reference_files)).scalar_one(),
            "database": archive.engine.url.render_as_string(hide_password=True),
            "store": archive.settings.store_url,
        }


def _print_status(archive: Archive) -> None:
    st = archive_status(archive)
    click.echo("products by level: " + ", ".join(f"L{k}={v}" for k, v in st["levels"].items()))
    click.echo("jobs by state:     " + (", ".join(f"{k}={v}" for k, v in sorted(st["jobs"].items())) or "none"))
    click.echo(f"exposures: {st['exposures']}, reference files: {st['reference_files']}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """What is in the archive: products per level and jobs by state."""
    archive = _archive()
    ensure_ready(archive)
    if as_json:
        click.echo(json.dumps(archive_status(archive), indent=2))
    else:
        _print_status(archive)


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
    from romanarchive.demo import run_demo

    run_demo(_archive(), workdir, preset, workers, serve=serve, port=port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--public-url", default=None, help="URL clients reach the server at (default http://HOST:PORT).")
@click.option("--workers", "-n", type=int, default=2, show_default=True,
              help="Threads running async TAP jobs in this process (0: leave them to `romanarchive worker`).")
def serve(host: str, port: int, public_url: str | None, workers: int) -> None:
    """Serve TAP (sync, async, VOSI), cone search at /scs and product downloads at /files/{id}."""
    from romanarchive.server.app import serve as run_server

    archive = _archive()
    ensure_ready(archive)
    click.echo(f"TAP service at {public_url or f'http://{host}:{port}'}/tap")
    run_server(archive, host, port, public_url, workers)


@main.group()
def adql() -> None:
    """Check or translate ADQL against the published tables."""


def _read_query() -> str:
    query = sys.stdin.read()
    if not query.strip():
        _fail("no query on standard input")
    return query


@adql.command("check")
def adql_check() -> None:
    """Parse ADQL from standard input: exit 0 when valid, else 1 with line:column and the reason."""
    from romanarchive.tap.adql import AdqlError, AdqlSyntaxError, parse

    try:
        parse(_read_query())
    except AdqlSyntaxError as exc:
        _fail(f"{exc.line or 0}:{exc.column or 0}: {exc}")
    except AdqlError as exc:
        _fail(str(exc))
    click.echo("valid ADQL")


@adql.command("translate")
@click.option("--maxrec", type=int, default=None, help="Apply TAP MAXREC (adds the overflow LIMIT).")
def adql_translate(maxrec: int | None) -> None:
    """Translate ADQL from standard input to the PostgreSQL the service would run."""
    from romanarchive.tap.adql import AdqlError, AdqlSyntaxError, translate
    from romanarchive.tap.schema import catalog

    try:
        result = translate(_read_query(), catalog(), maxrec=maxrec)
    except AdqlSyntaxError as exc:
        _fail(f"{exc.line or 0}:{exc.column or 0}: {exc}")
    except AdqlError as exc:
        _fail(str(exc))
    click.echo(result.sql)


def _add_domain_commands() -> None:
    """Register the command groups each domain package defines next to its code."""
    from romanarchive.catalog import cli as catalog_cli
    from romanarchive.dal import lightcurve_cli
    from romanarchive.level5.cli import level5
    from romanarchive.mosaic.cli import mosaic, skycells
    from romanarchive.releases import cli as release_group
    from romanarchive.timeseries import cli as timeseries_cli
    from romanarchive.xmatch import cli as xmatch_cli

    for cmd in (mosaic, skycells, release_group(), *catalog_cli.COMMANDS, *timeseries_cli.COMMANDS,
                *lightcurve_cli.COMMANDS, *xmatch_cli.COMMANDS, level5):
        main.add_command(cmd)  # type: ignore[arg-type]


_add_domain_commands()

if __name__ == "__main__":
    main()
