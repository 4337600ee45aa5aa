"""``romanarchive lightcurve``: one object's light curve from the command line (:mod:`romanarchive.dal.lightcurve`)."""

from __future__ import annotations

import sys

import click

from romanarchive.archive import Archive
from romanarchive.dal import lightcurve as service


@click.command("lightcurve")
@click.argument("source_id", type=int)
@click.option("--format", "fmt", default="csv", show_default=True, help="votable, csv, json or png.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="File (default: stdout).")
def lightcurve(source_id: int, fmt: str, output: str | None) -> None:
    """Print or save one object's light curve."""
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


COMMANDS = (lightcurve,)
