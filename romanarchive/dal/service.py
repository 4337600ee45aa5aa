"""The data-access services the web routes call: SIA 2.0 query, DataLink links, SODA sync cutout, PNG preview and
light-curve document.

Each takes the request's lower-cased parameters (DALI names are case-insensitive) and raises `DalError` for a
refused request; the server turns that into its DALI answer. Stored files are read from the object store (a local
path when the store is a folder, else a temporary copy).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from romanarchive.archive import Archive
from romanarchive.dal import datalink, lightcurve, previews, sia, soda
from romanarchive.dal.products import DalError, Product, lookup
from romanarchive.tap import formats
from romanarchive.tap.service import QueryParams, QueryRunner

Values = Mapping[str, list[str]]


@contextmanager
def local_file(archive: Archive, key: str) -> Iterator[Path]:
    """A local path of a stored object (the store's own file when it is local, else a temporary copy)."""
    local = archive.store.local_path(key)
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="dal-") as tmp:
        yield archive.store.get_file(key, Path(tmp) / Path(key).name)


def sia_query(runner: QueryRunner, values: Values) -> Iterator[bytes]:
    """SIA 2.0 query: the VOTable of the matching ObsCore rows, in pieces (run by the TAP query runner).

    Raises
    ------
    DalError
        A malformed parameter.
    TapError
        The query failed or timed out.
    """
    config = runner.config
    query = sia.adql(values)
    qp = QueryParams(query, "ADQL", sia.maxrec(values, config.default_maxrec, config.hard_maxrec),
                     formats.resolve_format(None))  # fmt: skip
    oq = runner.open(qp, config.sync_timeout_s)
    return formats.stream(qp.fmt, oq.columns, oq.batches, overflow_after=oq.maxrec, infos=[("QUERY", query)])


def links(archive: Archive, base_url: str, values: Values) -> bytes:
    """DataLink ``links`` document of the ``ID`` values (repeatable); unknown ids are error rows.

    Raises
    ------
    DalError
        No ID given.
    """
    return datalink.links_votable(archive.engine, base_url, list(values.get("id", [])))


def _one(values: Values, name: str) -> str | None:
    got = [v for v in values.get(name, []) if v.strip()]
    if len(got) > 1:
        raise DalError(f"this service makes one cutout per request: give {name.upper()} at most once")
    return got[0] if got else None


@dataclass(frozen=True)
class Cutout:
    """A SODA cutout: the file's bytes, its media type and file name."""

    data: bytes
    media_type: str
    filename: str


def cutout(archive: Archive, values: Values) -> Cutout:
    """SODA sync cutout of one calibrated image (``ID``, ``CIRCLE``, ``POLYGON``, ``BAND``, ``RESPONSEFORMAT``).

    Raises
    ------
    DalError
        Missing or repeated parameters, an unknown product, one that is not a calibrated image, or a region or
        band off the image.
    """
    ident = _one(values, "id")
    if ident is None:
        raise DalError("missing ID parameter")
    product = lookup(archive.engine, ident)
    if not product.is_image:
        raise DalError(f"product {product.product_id} (level {product.level}) is not a calibrated image: "
                       "cutouts need level 2 or above")  # fmt: skip
    fmt = soda.FORMATS.get((_one(values, "responseformat") or "application/x-asdf").lower())
    if fmt is None:
        raise DalError("RESPONSEFORMAT must be application/x-asdf or application/fits")
    regions = []
    if (c := _one(values, "circle")) is not None:
        regions.append(soda.circle(c))
    if (p := _one(values, "polygon")) is not None:
        regions.append(soda.polygon(p))
    if (b := _one(values, "band")) is not None:
        soda.check_band(product, soda.band(b))
    with local_file(archive, product.key) as path:
        data = soda.cutout(path, product, regions, fmt)
    return Cutout(data, soda.MEDIA[fmt], soda.cutout_name(product, fmt))


def preview(archive: Archive, ident: str) -> Path:
    """Path of the cached PNG preview of the product ``ident`` names (rendered on first use).

    Raises
    ------
    DalError
        Unknown product, or not a calibrated image (404).
    """
    product: Product = lookup(archive.engine, ident)
    with local_file(archive, product.key) as path:
        return previews.cached_preview(archive.settings.home / "cache" / "previews", product, path)


def light_curve_document(archive: Archive, source_id: int, fmt: str) -> tuple[bytes, str]:
    """(bytes, media type) of the light curve of ``source_id`` in ``fmt`` (see `romanarchive.dal.lightcurve`).

    Raises
    ------
    LightCurveError
        No measurements of that source.
    """
    with archive.engine.connect() as conn:
        lc = lightcurve.light_curve(conn, source_id)
    return lightcurve.render(lc, fmt)
