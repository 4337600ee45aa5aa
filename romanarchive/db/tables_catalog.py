"""Level 3/4 static-sky tables: data releases and the multiband object catalog.

The object catalog holds one row per object per release. ``source_id`` encodes the object's HEALPix cell as
Gaia's does (``source_id >> 35`` is its nested order-12 index), so ids are stable across releases and sort by sky
position; ``hpx`` (order 29) and ``pos`` (pgsphere point) give index-backed spatial queries. Photometry, shape and
classification columns are added by the catalog step's specification below.
"""

from __future__ import annotations

from romanarchive.db.registry import ColumnSpec, TableSpec

C = ColumnSpec

#: Release tag of rows and products that are not frozen yet.
LIVE = "live"

RELEASES = TableSpec(
    "releases",
    "Data releases: a frozen, named set of products and catalog rows ('live' is the current, changing set).",
    (
        C("release", "varchar(64)", "Release tag", ucd="meta.version;meta.main", primary_key=True),
        C("description", "text", "What the release contains", ucd="meta.note"),
        C("created_at", "timestamptz", "When the release was frozen", ucd="time.creation", nullable=False,
          server_default="now()"),
        C("n_products", "bigint", "Products in the release", ucd="meta.number"),
        C("n_objects", "bigint", "Object catalog rows in the release", ucd="meta.number"),
    ),
)

OBJECT_CORE: tuple[ColumnSpec, ...] = (
    C("source_id", "bigint", "Stable object identifier; source_id >> 35 is the nested HEALPix order-12 index of "
      "its position (as Gaia DR3's)", ucd="meta.id;meta.main", primary_key=True, principal=True),
    C("release", "varchar(64)", "Data release the row belongs to ('live' until frozen)", ucd="meta.version",
      primary_key=True, principal=True),
    C("ra", "double", "Right ascension (ICRS)", unit="deg", ucd="pos.eq.ra;meta.main", nullable=False,
      principal=True),
    C("dec", "double", "Declination (ICRS)", unit="deg", ucd="pos.eq.dec;meta.main", nullable=False, principal=True),
    C("pos", "spoint", "Position as a pgsphere point (indexed)", unit="deg", ucd="pos.eq", nullable=False,
      indexed=True),
    C("hpx", "bigint", "HEALPix nested index, order 29, of the position", ucd="pos.healpix", nullable=False,
      indexed=True),
    C("skycell", "varchar(32)", "Sky tessellation cell the object was measured in", ucd="meta.id;obs.field",
      indexed=True),
    C("point_like", "boolean", "Classified as point-like (star) from its shape", ucd="src.class.starGalaxy",
      principal=True),
)

#: Everything the catalog step measures, appended to the core columns (the catalog issue fills this in).
OBJECT_MEASUREMENTS: tuple[ColumnSpec, ...] = ()

OBJECTS = TableSpec(
    "objects",
    "Static-sky multiband object catalog built from the L3 mosaics: one row per object per release.",
    OBJECT_CORE + OBJECT_MEASUREMENTS,
)

TABLES: tuple[TableSpec, ...] = (RELEASES, OBJECTS)
