"""``romanarchive status``: products per level, jobs by state."""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa

from romanarchive.archive import Archive
from romanarchive.db.tables import exposures, products, reference_files
from romanarchive.jobs.queue import counts

LEVELS = range(6)


def archive_status(archive: Archive) -> dict[str, Any]:
    """Counts per level and jobs by state."""
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


def print_status(archive: Archive) -> None:
    """Print :func:`archive_status` for a person."""
    st = archive_status(archive)
    click.echo("products by level: " + ", ".join(f"L{k}={v}" for k, v in st["levels"].items()))
    click.echo("jobs by state:     " + (", ".join(f"{k}={v}" for k, v in sorted(st["jobs"].items())) or "none"))
    click.echo(f"exposures: {st['exposures']}, reference files: {st['reference_files']}")
