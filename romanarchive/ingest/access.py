"""The registry as the access services read it: a product's stored file, the server's public URL, database health.

Downloads (``/files``), DataLink, SODA, previews and the MAST download URLs all resolve a product id to its stored
file here, so the query is written once; the web server records its public URL here (ObsCore ``access_url`` and the
DataLink descriptors of async results are built from it).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from romanarchive.db.tables import archive_settings, files, products

#: ``archive_settings`` key of the server's public URL.
BASE_URL_KEY = "base_url"


@dataclass(frozen=True)
class ProductFile:
    """A product and its stored file.

    Attributes
    ----------
    product_id, level, product_type, obs_id, exposure_id, em_min, em_max
        The product row's values.
    key
        Object-store key of the file (``files.uri``).
    filename, size, media_type, sha256
        The file row's values.
    """

    product_id: int
    level: int
    product_type: str
    obs_id: str | None
    exposure_id: int | None
    em_min: float | None
    em_max: float | None
    key: str
    filename: str
    size: int
    media_type: str
    sha256: str


def product_file(engine: sa.Engine, product_id: int) -> ProductFile | None:
    """The product ``product_id`` and its file, or None when there is no such product."""
    p, f = products.c, files.c
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(p.product_id, p.level, p.product_type, p.obs_id, p.exposure_id, p.em_min, p.em_max, f.uri,
                      f.filename, f.size, f.media_type, f.sha256)
            .join(files, f.file_id == p.file_id).where(p.product_id == product_id)
        ).first()  # fmt: skip
    return ProductFile(*tuple(row)) if row is not None else None


def set_base_url(engine: sa.Engine, base_url: str) -> None:
    """Record the server's public URL (ObsCore ``access_url`` points at ``<base_url>/files/<product_id>``)."""
    stmt = insert(archive_settings).values(key=BASE_URL_KEY, value=base_url)
    with engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}))


def base_url(conn: sa.Connection) -> str | None:
    """The public URL the server recorded (None before any server started)."""
    value = conn.execute(sa.select(archive_settings.c.value).where(archive_settings.c.key == BASE_URL_KEY)).scalar()
    return str(value) if value is not None else None


def ping(engine: sa.Engine) -> None:
    """Raise whatever the database driver raises unless the archive database answers a trivial query."""
    with engine.connect() as conn:
        conn.execute(sa.select(sa.literal(1)))
