"""Product lookup by IVOA identifier (ObsCore ``obs_publisher_did``) shared by DataLink, SODA and previews."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

DID_PREFIX = "ivo://romanarchive/product?"


class DalError(Exception):
    """A refused DAL request: ``status`` is the HTTP status, ``fault`` the DALI/DataLink fault name."""

    def __init__(self, message: str, status: int = 400, fault: str = "UsageFault") -> None:
        super().__init__(message)
        self.status = status
        self.fault = fault


@dataclass(frozen=True)
class Product:
    """What the DAL services need to know about one product and its stored file."""

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

    @property
    def did(self) -> str:
        """The publisher dataset identifier."""
        return did(self.product_id)

    @property
    def is_image(self) -> bool:
        """Whether it is a calibrated image (level 2 or more, ASDF): what cutouts and previews work on."""
        return self.level >= 2 and self.filename.endswith(".asdf")


def did(product_id: int) -> str:
    """Publisher DID of a product."""
    return f"{DID_PREFIX}{product_id}"


def parse_id(value: str) -> int:
    """Product id of a DID (``ivo://romanarchive/product?123``) or a bare product id.

    Raises
    ------
    DalError
        Not an identifier of this archive (NotFoundFault).
    """
    text = value.strip()
    rest = text[len(DID_PREFIX):] if text.startswith(DID_PREFIX) else text
    if not rest.isdigit():
        raise DalError(f"{value!r} is not an identifier of this archive", 404, "NotFoundFault")
    return int(rest)


def lookup(engine: sa.Engine, value: str) -> Product:
    """The product an ID names.

    Raises
    ------
    DalError
        Unknown identifier (NotFoundFault, 404).
    """
    pid = parse_id(value)
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT p.product_id, p.level, p.product_type, p.obs_id, p.exposure_id, p.em_min, p.em_max, f.uri, "
            "f.filename, f.size, f.media_type FROM products p JOIN files f ON f.file_id = p.file_id "
            "WHERE p.product_id = :pid"), {"pid": pid}).first()
    if row is None:
        raise DalError(f"no product {value!r} in this archive", 404, "NotFoundFault")
    return Product(*row)
