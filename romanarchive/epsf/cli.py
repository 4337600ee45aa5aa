"""``romanarchive epsf build | list | get``: the empirical PSF library from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.epsf.build import EpsfBuildError
from romanarchive.epsf.config import EpsfConfig
from romanarchive.epsf.job import build_window
from romanarchive.epsf.service import EpsfError, EpsfRequest, epsf_document

_LIST = sa.text(
    "SELECT e.product_id, e.position, e.detector, e.filter, e.x, e.y, e.t_min, e.t_max, e.n_images, e.n_stars, "
    "e.fwhm, e.residual_rms FROM epsf e JOIN products p ON p.product_id = e.product_id "
    "WHERE p.release = 'live' AND (CAST(:det AS text) IS NULL OR e.detector = :det) "
    "AND (CAST(:filt AS text) IS NULL OR e.filter = :filt) ORDER BY e.detector, e.filter, e.t_min, e.position"
)


@click.group("epsf")
def epsf() -> None:
    """Empirical PSF library: build ePSFs from dithered L2 stars, list them, get one."""


@epsf.command("build")
@click.option("--detector", required=True, help="Detector, e.g. WFI01.")
@click.option("--filter", "filter_name", required=True, help="Filter, e.g. F158.")
@click.option("--time", "mjd", type=float, required=True, help="An MJD inside the time window to build.")
@click.option("--window-days", type=float, default=None, help="Width of the time windows (default 30).")
@click.option("--grid", type=int, default=None, help="Grid points per detector axis (default: 1 for cut-outs).")
@click.option("--min-stars", type=int, default=None, help="Fewest star images per ePSF.")
def build(detector: str, filter_name: str, mjd: float, window_days: float | None, grid: int | None,
          min_stars: int | None) -> None:
    """Build (or rebuild) the ePSFs of a detector, filter and time window from its live L2 images."""
    over: dict[str, Any] = {k: v for k, v in {"window_days": window_days, "grid": grid, "min_stars": min_stars}.items()
                            if v is not None}
    try:
        pid = build_window(Archive.from_env(), detector, filter_name, mjd, EpsfConfig(**over), progress=True)
    except (EpsfBuildError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"library product {pid}")


@epsf.command("list")
@click.option("--detector", default=None, help="Only this detector.")
@click.option("--filter", "filter_name", default=None, help="Only this filter.")
def list_(detector: str | None, filter_name: str | None) -> None:
    """The live ePSFs of the library, one line per grid point."""
    archive = Archive.from_env()
    with archive.engine.connect() as conn:
        rows = conn.execute(_LIST, {"det": detector.upper() if detector else None,
                                    "filt": filter_name.upper() if filter_name else None}).all()
    click.echo("product pos detector filter        x        y      t_min      t_max images stars  fwhm  resid")
    for r in rows:
        click.echo(f"{r[0]:7d} {r[1]:3d} {r[2]:8s} {r[3]:6s} {r[4]:8.1f} {r[5]:8.1f} {r[6]:10.3f} {r[7]:10.3f} "
                   f"{r[8]:6d} {r[9]:5d} {r[10]:5.3f} {r[11]:6.4f}")


@epsf.command("get")
@click.option("--detector", required=True)
@click.option("--filter", "filter_name", required=True)
@click.option("--x", type=float, default=None, help="Detector column (default: the grid's centre).")
@click.option("--y", type=float, default=None, help="Detector row (default: the grid's centre).")
@click.option("--time", "mjd", type=float, default=None, help="MJD (default: any time).")
@click.option("--mode", type=click.Choice(["interpolate", "nearest"]), default="interpolate")
@click.option("--jitter", type=float, default=0.0, help="Extra Gaussian jitter, mas RMS per axis.")
@click.option("--format", "fmt", type=click.Choice(["asdf", "fits"]), default="asdf")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: the name the service gives).")
def get(detector: str, filter_name: str, x: float | None, y: float | None, mjd: float | None, mode: str,
        jitter: float, fmt: str, output: Path | None) -> None:
    """Write one (interpolated) ePSF of the library as ASDF or FITS."""
    if (x is None) != (y is None):
        raise click.UsageError("give both --x and --y, or neither")
    req = EpsfRequest(detector.upper(), filter_name.upper(), x, y, mjd, mode, jitter, fmt)
    try:
        body, _, name = epsf_document(Archive.from_env(), req)
    except EpsfError as exc:
        raise click.ClickException(str(exc)) from None
    path = output or Path(name)
    path.write_bytes(body)
    click.echo(str(path))
