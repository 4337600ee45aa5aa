"""Questions every producer asks the registry: which live products lie under a region, which reference file to use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from romanarchive.db import product_types
from romanarchive.db.tables import files, products, reference_files
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


def newest_reference(conn: sa.Connection, reftype: str, optical_element: str,
                     detectors: Sequence[str] = ()) -> tuple[str, str] | None:
    """(store key, file name) of the newest reference file of a type for a filter, or ``None``.

    For products that combine detectors (L3 mosaics, their catalogs): the exact filter before ``ANY``, one of
    ``detectors`` (the inputs' detectors) before any other, then the newest ``useafter``.
    """
    rf = reference_files
    det_rank = (sa.case((rf.c.detector.in_([d.upper() for d in detectors]), 0), else_=1) if detectors
                else sa.literal(0))
    row = conn.execute(
        sa.select(files.c.uri, files.c.filename)
        .join(files, files.c.file_id == rf.c.file_id)
        .where(rf.c.reftype == reftype, rf.c.optical_element.in_([optical_element.upper(), "ANY"]))
        .order_by((rf.c.optical_element == "ANY").asc(), det_rank, rf.c.useafter.desc(), rf.c.ref_id.desc())
        .limit(1)
    ).first()
    return (str(row[0]), str(row[1])) if row is not None else None
