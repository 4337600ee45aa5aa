"""Product files behind the MAST download URLs (mission ``retrieve_product`` and portal ``Download/file``)."""

from __future__ import annotations

import sqlalchemy as sa

from romanarchive.ingest.access import ProductFile, product_file
from romanarchive.mast.common import MastError, parse_product_uri

__all__ = ["ProductFile", "resolve"]


def resolve(engine: sa.Engine, uri: str) -> ProductFile:
    """The file named by a mission product URI (``<id>/<filename>``) or portal ``dataURI``.

    Raises
    ------
    MastError
        Unknown product, or a file name that is not the product's (404).
    """
    pf = product_file(engine, parse_product_uri(uri))
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if pf is None or ("/" in uri and name != pf.filename):
        raise MastError(f"unknown product {uri!r}", 404)
    return pf
