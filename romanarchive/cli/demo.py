"""``romanarchive demo``: the whole archive, end to end, on a small survey."""

from __future__ import annotations

import time
from pathlib import Path

import click
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.cli.status import print_status
from romanarchive.console import ensure_ready
from romanarchive.ingest.inspect import IngestError
from romanarchive.ingest.service import ingest_paths
from romanarchive.jobs.worker import run_workers
from romanarchive.server.app import serve as run_server
from romanarchive.sim.survey import SurveyConfig, load_manifest, simulate_survey


def run_demo(archive: Archive, workdir: Path | None, preset: str = "demo", workers: int = 2, serve: bool = True,
             port: int = 8000) -> None:
    """Start the database, simulate, ingest, process with ``workers`` processes, print the result, then serve.

    Processing is what ingest queues: calibration (L1 -> L2), then per skycell and filter the co-adds (L3), per
    skycell the catalog (L4), forced photometry of its objects on every covering L2 and difference imaging.
    """
    t0 = time.monotonic()
    click.secho("1/4 database", bold=True)
    ensure_ready(archive, start=True)
    click.echo(f"    {archive.engine.url.render_as_string(hide_password=True)}; store {archive.settings.store_url}")
    workdir = workdir or archive.settings.home / "demo"
    click.secho(f"2/4 simulate ({preset} survey) into {workdir}", bold=True)
    config = SurveyConfig.demo() if preset == "demo" else SurveyConfig.tiny()
    if (workdir / "manifest.json").exists() and load_manifest(workdir).config == config:
        click.echo("    already simulated with the same configuration; reusing it")
    else:
        simulate_survey(config, workdir)
    click.secho("3/4 ingest", bold=True)
    errors = 0
    n = 0
    for res in ingest_paths(archive, [workdir / "refs", workdir / "l1"], workers=workers):
        if isinstance(res, IngestError):
            errors += 1
            click.echo(f"    error: {res}", err=True)
        else:
            n += 1
    click.echo(f"    {n} files registered or already present, {errors} errors")
    click.secho(f"4/4 process on ingest ({workers} workers): calibrate, L2 catalogs, co-add, catalog, time series",
                bold=True)
    ran = run_workers(archive.settings, workers)
    click.echo(f"    ran {ran} job(s)")
    click.echo("    " + science_summary(archive))
    click.secho(f"\narchive after {time.monotonic() - t0:.0f} s:", bold=True)
    print_status(archive)
    psql = archive.engine.url.set(drivername="postgresql").render_as_string(hide_password=True)
    click.echo(f"\nthe database: psql '{psql}' -c 'SELECT obs_id, calib_level, access_url FROM ivoa.obscore'")
    if not serve:
        click.echo("next: `romanarchive serve` to publish it through TAP, `romanarchive status --json`")
        return
    click.echo(examples(f"http://127.0.0.1:{port}"))

    run_server(archive, "127.0.0.1", port)


def science_summary(archive: Archive) -> str:
    """One line: catalog objects, per-image (L2) sources, light-curve points, variability rows and difference-imaging
    sources."""
    with archive.engine.connect() as conn:
        n = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM objects WHERE release = 'live'), (SELECT count(*) FROM forced_phot), "
            "(SELECT count(*) FROM variability), (SELECT count(*) FROM dia_sources), "
            "(SELECT count(*) FROM l2_sources)")).one()
    return (f"{n[0]} catalog objects, {n[4]} L2 sources, {n[1]} forced-photometry measurements, {n[2]} variability "
            f"rows, {n[3]} difference-imaging sources")


def examples(base: str) -> str:
    """Ready-to-paste client examples for a server at ``base``."""
    q = "SELECT TOP 5 obs_id, calib_level, t_min, access_url FROM ivoa.obscore ORDER BY t_min"
    cat = "SELECT TOP 5 source_id, ra, dec, is_extended, psf_f158_flux FROM roman.objects"
    mast = "query_criteria(coordinates='271.81 66.72', radius=3)"
    return f"""
serving the archive at {base} (Ctrl-C stops):
  TAP {base}/tap   cone search {base}/scs (object catalog)   downloads {base}/files/<product_id>
  SIA2 {base}/sia2/query   DataLink {base}/datalink/links   SODA {base}/soda/sync   MAST API (astroquery)

pyvo:
  python -c "import pyvo; print(pyvo.dal.TAPService('{base}/tap').search('{q}').to_table())"
  python -c "import pyvo; print(pyvo.dal.SCSService('{base}/scs').search((271.81, 66.72), 0.05).to_table())"
  python -c "import pyvo; print(pyvo.dal.TAPService('{base}/tap').search('{cat}').to_table())"
  python -c "import pyvo; print(pyvo.dal.SIA2Service('{base}/tap').search(pos=(271.81, 66.72, 0.05)).to_table())"
astroquery.mast (put "[mast] server = {base}" in ~/.astropy/config/astroquery.cfg):
  python -c "from astroquery.mast import MastMissions as M; print(M(mission='roman').{mast})"
light curve of an object (source_id from roman.objects): curl -s '{base}/lightcurve?source_id=ID&format=csv'
TOPCAT: File > Load Table > TAP query, TAP URL {base}/tap
STILTS:
  stilts tapquery tapurl={base}/tap adql="{q}"
curl:
  curl -s '{base}/tap/sync' -d LANG=ADQL -d RESPONSEFORMAT=csv --data-urlencode 'QUERY={q}'
  curl -s '{base}/scs?RA=271.81&DEC=66.72&SR=0.05'
"""
