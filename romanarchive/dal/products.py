"""Product lookup by IVOA identifier (ObsCore ``obs_publisher_did``) shared by DataLink, SODA and previews."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import sqlalchemy as sa

from romanarchive.ingest.access import ProductFile, product_file

DID_PREFIX = "ivo://romanarchive/product?"


class DalError(Exception):
    """A refused DAL request: ``status`` is the HTTP status, ``fault`` the DALI/DataLink fault name."""

    def __init__(self, message: str, status: int = 400, fault: str = "UsageFault") -> None:
        super().__init__(message)
        self.status = status
        self.fault = fault


@dataclass(frozen=True)
class Product(ProductFile):
    """What the DAL services need to know about one product and its stored file (the registry's row, plus ids)."""

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
    row = product_file(engine, pid)
    if row is None:
        raise DalError(f"no product {value!r} in this archive", 404, "NotFoundFault")
    return Product(**dataclasses.asdict(row))
