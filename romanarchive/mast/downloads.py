"""Product files behind the MAST download URLs (mission ``retrieve_product`` and portal ``Download/file``)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from romanarchive.mast.common import MastError, parse_product_uri


@dataclass(frozen=True)
class ProductFile:
    """The stored file of one product."""

    product_id: int
    key: str
    filename: str
    size: int
    media_type: str
    sha256: str


def resolve(engine: sa.Engine, uri: str) -> ProductFile:
    """The file named by a mission product URI (``<id>/<filename>``) or portal ``dataURI``.

    Raises
    ------
    MastError
        Unknown product, or a file name that is not the product's (404).
    """
    pid = parse_product_uri(uri)
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT f.uri, f.filename, f.size, f.media_type, f.sha256 FROM products p "
            "JOIN files f ON f.file_id = p.file_id WHERE p.product_id = :pid"), {"pid": pid}).first()
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if row is None or ("/" in uri and name != row.filename):
        raise MastError(f"unknown product {uri!r}", 404)
    return ProductFile(pid, row.uri, row.filename, row.size, row.media_type, row.sha256)
