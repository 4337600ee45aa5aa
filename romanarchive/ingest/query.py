"""Questions every producer asks the registry: which live products lie under a region."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from romanarchive.db import product_types
from romanarchive.db.tables import files, products
from romanarchive.sky.footprint import spoly_literal


@dataclass(frozen=True)
class LiveProduct:
    """A live product and its stored file."""

    product_id: int
    uri: str
    filename: str
    t_min: float | None
    t_max: float | None


def live_l2(conn: sa.Connection, corners: Sequence[tuple[float, float]], filter_name: str) -> list[LiveProduct]:
    """Live L2 images of a filter whose footprint overlaps the polygon ``corners`` ((ra, dec) degrees), by id."""
    region = sa.text(":poly ::spoly").bindparams(poly=spoly_literal(corners))
    rows = conn.execute(
        sa.select(products.c.product_id, files.c.uri, files.c.filename, products.c.t_min, products.c.t_max)
        .join(files, files.c.file_id == products.c.file_id)
        .where(products.c.level == 2, products.c.product_type == product_types.L2, products.c.filter == filter_name,
               products.c.release == "live", products.c.s_region.op("&&")(region))
        .order_by(products.c.product_id)
    ).all()
    return [LiveProduct(*r) for r in rows]
