"""``romanarchive level5``: validate, submit and list community products; create team tokens."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from romanarchive.console import ensure_ready, open_archive
from romanarchive.level5.client import product_files, submit
from romanarchive.level5.contract import Limits, dumps
from romanarchive.level5.service import create_token, list_versions
from romanarchive.level5.validate import validate_product


def _print_report(report: dict[str, Any], as_json: bool, ok_line: str) -> None:
    if as_json:
        click.echo(dumps(report))
        return
    for err in report.get("errors", []):
        click.echo(f"{err['location']}: {err['message']} [{err['code']}]")
    if report.get("errors_not_shown"):
        click.echo(f"... and {report['errors_not_shown']} more errors")
    if report.get("valid"):
        click.echo(ok_line)
    else:
        n = len(report.get("errors", [])) + int(report.get("errors_not_shown", 0))
        click.echo(f"invalid: {n} error{'s' if n != 1 else ''}", err=True)


@click.group("level5")
def level5() -> None:
    """Level 5 community products: validate, submit, list; team tokens."""


@level5.command("validate")
@click.argument("product", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--max-errors", type=int, default=Limits.max_errors, show_default=True, help="Errors reported at most.")
@click.option("--max-file-mb", type=float, default=Limits.max_file_bytes / 2**20, show_default=True,
              help="Largest accepted file.")
def validate_cmd(product: tuple[Path, ...], as_json: bool, max_errors: int, max_file_mb: float) -> None:
    """Validate PRODUCT (a data file; its .l5.yaml sidecar is found next to it) offline. Exit 0 only when valid."""
    limits = Limits(max_errors=max_errors, max_file_bytes=int(max_file_mb * 2**20))
    v = validate_product(product_files(product), limits)
    report = v.report()
    _print_report(report, as_json, f"valid: {v.kind} product {v.name!r}"
                  + (f", {v.n_rows} rows" if v.kind == "catalog" else ""))  # fmt: skip
    sys.exit(0 if v.valid else 1)


@level5.command("submit")
@click.argument("product", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--server", required=True, help="Archive server base URL, e.g. http://127.0.0.1:8000.")
@click.option("--token", envvar="ROMANARCHIVE_LEVEL5_TOKEN", help="Team token (or $ROMANARCHIVE_LEVEL5_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the server's report as JSON.")
def submit_cmd(product: tuple[Path, ...], server: str, token: str | None, as_json: bool) -> None:
    """Upload PRODUCT; the server validates it again and publishes it only when fully valid."""
    import requests

    missing = [str(p) for p in product if not p.is_file()]
    if missing:
        click.echo(f"romanarchive: no such file: {missing[0]}", err=True)
        sys.exit(1)
    try:
        report = submit(product_files(product), server, token)
    except requests.RequestException as exc:
        click.echo(f"romanarchive: cannot reach {server}: {exc}", err=True)
        sys.exit(1)
    _print_report(report, as_json, f"published {report.get('product')} version {report.get('version')}"
                  + (f" as {report['table']}" if report.get("table") else "")
                  + f" (submission {report.get('submission_id')})")  # fmt: skip
    sys.exit(0 if report.get("state") == "published" else 1)


@level5.group("token")
def token_group() -> None:
    """Team tokens (stored hashed; shown once)."""


@token_group.command("create")
@click.option("--team", required=True, help="Team name (lower-case identifier); created when new.")
def token_create(team: str) -> None:
    """Create a token for TEAM and print it once."""
    archive = open_archive()
    ensure_ready(archive)
    try:
        token = create_token(archive, team)
    except ValueError as exc:
        click.echo(f"romanarchive: {exc}", err=True)
        sys.exit(1)
    click.echo(token)
    click.echo("Keep it: it is stored hashed and cannot be shown again.", err=True)


@level5.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def list_cmd(as_json: bool) -> None:
    """Published Level 5 products and their versions."""
    archive = open_archive()
    ensure_ready(archive)
    rows = list_versions(archive)
    if as_json:
        click.echo(dumps({"versions": rows}))
        return
    for r in rows:
        rows_txt = f"{r['n_rows']} rows" if r["n_rows"] is not None else "-"
        click.echo(f"{r['name']:<24} v{r['version']:<4} {r['team']:<12} {r['kind']:<8} "
                   f"{r['table_name'] or '-':<36} {rows_txt:>14}  {r['created_at']}")
    if not rows:
        click.echo("no Level 5 products yet")
