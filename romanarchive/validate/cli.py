"""``romanarchive validate``: the archive's products against a simulation's truth, figure by figure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from romanarchive.console import ensure_ready, fail, open_archive


@click.command("validate")
@click.option("--survey", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Simulated survey folder (truth/, refs/); default $ROMANARCHIVE_HOME/demo.")
@click.option("--truth", "truth_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Truth catalogue (default SURVEY/truth/truth.ecsv).")
@click.option("--release", default="live", show_default=True, help="Catalog release to validate.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.json, report.txt and PNG plots into this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of text.")
@click.option("--no-peer", is_flag=True, help="Skip the source-extractor comparison (faster).")
@click.option("--max-l2", type=int, default=40, show_default=True,
              help="L2 images searched for SATURATED DQ pixels around bright stars.")
@click.option("--strict", is_flag=True, help="Exit with status 1 when a figure fails its goal.")
def validate(survey: Path | None, truth_file: Path | None, release: str, report_dir: Path | None, as_json: bool,
             no_peer: bool, max_l2: int, strict: bool) -> None:
    """Compare the archive's catalog, light curves and DIA sources with a simulation's truth.

    Prints every science figure the archive is held to (purity, duplicates, bright-star debris, completeness against
    source-extractor on the same L3s, units, flux bias and pulls, astrometry, star/galaxy class, time domain)
    next to its goal and PASS/FAIL.
    """
    from romanarchive.validate.inputs import EmptyArchiveError
    from romanarchive.validate.matching import TruthError
    from romanarchive.validate.run import validate_archive

    archive = open_archive()
    survey = survey or archive.settings.home / "demo"
    truth = truth_file or survey / "truth" / "truth.ecsv"
    if not truth.is_file():
        fail(f"no truth catalogue at {truth}: pass --survey DIR (a simulated survey) or --truth FILE")
    ensure_ready(archive)
    try:
        report = validate_archive(archive, truth, release=release, survey=survey if survey.is_dir() else None,
                                  run_peer=not no_peer, max_l2=max_l2, progress=sys.stderr.isatty())
    except (TruthError, EmptyArchiveError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1))
    else:
        click.echo(report.text())
    if report_dir is not None:
        written = report.write(report_dir)
        click.echo(f"report written to {report_dir} ({len(written)} files)", err=as_json)
    if strict and report.n_failed:
        sys.exit(1)
