"""The Level 5 submission contract: product declarations, the sidecar format, limits and error records.

A Level 5 product is either

* an **ASDF file** whose tree carries the declaration block at its top level, or
* a **catalog** (Parquet, FITS, VOTable or ECSV) plus its declaration with a ``table`` section, either in a YAML
  *sidecar* named after the data file (``cat.parquet`` → ``cat.parquet.l5.yaml``) or in the file's own metadata
  (Parquet schema metadata or ECSV ``meta``, key ``romanarchive_level5``, a mapping or its YAML/JSON text).

The declaration (documented in README.md, section "Level 5 community products")::

    romanarchive_level5: "1.0"            # format version of this declaration
    product: deep_photoz                  # product name: [a-z][a-z0-9_]*, at most 40 characters
    ccsp_schema: ccsp_custom_product-2.0.0  # a CCSP schema rad ships (ccsp_minimal / ccsp_custom_product, any version)
    meta:                                 # validated against that schema with asdf's schema machinery
      ccsp: {name: DEEP, investigator: ..., doi: ..., file_version: "1", data_release_id: DR1, license: CC-BY-4.0,
             license_url: ..., target_name: ...}
      file_date: "2026-11-01T00:00:00"    # ISO times (file_date, exposure.start_time/end_time) become asdf time tags
    table:                                # catalogs only
      description: One photometric redshift per object
      primary_key: [object_id]
      position: {ra: ra, dec: dec}        # ICRS degrees; or, instead, a link to a published archive catalog:
      link: {column: source_id, table: roman.objects, target_column: source_id}
      columns:
        - {name: object_id, type: bigint, ucd: meta.id;meta.main, description: ..., nullable: false}
        - {name: ra, type: double, unit: deg, ucd: pos.eq.ra;meta.main, description: ...}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Format version of the declaration block.
FORMAT_VERSION = "1.0"
#: Key of the declaration in sidecars, ASDF trees and in-file table metadata.
DECLARATION_KEY = "romanarchive_level5"
SIDECAR_SUFFIX = ".l5.yaml"
CATALOG_SUFFIXES = {".parquet": "parquet", ".fits": "fits", ".fit": "fits", ".vot": "votable", ".xml": "votable",
                    ".votable": "votable", ".ecsv": "ecsv"}  # fmt: skip
ASDF_SUFFIX = ".asdf"
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "fits": "application/fits",
               "votable": "application/x-votable+xml", "ecsv": "text/x-ecsv", "asdf": "application/asdf",
               "sidecar": "application/yaml"}  # fmt: skip
#: Logical column types a catalog may declare (a subset of the column registry's).
COLUMN_TYPES = ("smallint", "integer", "bigint", "real", "double", "boolean", "text")
PRODUCT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TEAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
#: Safe SQL identifier for a column: lower case, starts with a letter, at most 63 bytes (PostgreSQL's limit).
COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: Accepted uploaded file names: a plain base name, no path, no leading dot.
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


@dataclass(frozen=True)
class Limits:
    """Size limits of validation and submission.

    Attributes
    ----------
    max_file_bytes
        Largest accepted file.
    max_rows
        Most catalog rows.
    max_columns
        Most catalog columns.
    max_errors
        Errors collected before validation stops reporting (one pass, then a summary).
    max_files
        Files in one submission.
    """

    max_file_bytes: int = 2 << 30
    max_rows: int = 50_000_000
    max_columns: int = 500
    max_errors: int = 100
    max_files: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """Limits from ``ROMANARCHIVE_LEVEL5_MAX_FILE_BYTES``, ``..._MAX_ROWS``, ``..._MAX_COLUMNS``,
        ``..._MAX_ERRORS`` (the server's settings; unset ones keep their defaults)."""
        env = os.environ if env is None else env
        values = {f: int(env[f"ROMANARCHIVE_LEVEL5_{f.upper()}"]) for f in
                  ("max_file_bytes", "max_rows", "max_columns", "max_errors")
                  if env.get(f"ROMANARCHIVE_LEVEL5_{f.upper()}")}  # fmt: skip
        return cls(**values)


@dataclass(frozen=True)
class Issue:
    """One validation error.

    Attributes
    ----------
    code
        Stable machine-readable code, e.g. ``ccsp.schema`` or ``table.duplicate_key``.
    location
        Where: ``file:path.in.tree`` for metadata, ``file[row N, column 'c']`` for table cells.
    message
        What is wrong, for people.
    row, column
        Table row (0-based) and column, when the error is in a table.
    """

    code: str
    location: str
    message: str
    row: int | None = None
    column: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (row and column only when set)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Issues:
    """Errors collected in one pass, up to a cap."""

    cap: int = 100
    items: list[Issue] = field(default_factory=list)
    dropped: int = 0

    def add(self, code: str, location: str, message: str, row: int | None = None, column: str | None = None) -> None:
        """Record an error (counted only, past the cap)."""
        if len(self.items) < self.cap:
            self.items.append(Issue(code, location, message, row, column))
        else:
            self.dropped += 1

    @property
    def room(self) -> int:
        """How many more errors will be kept."""
        return max(self.cap - len(self.items), 0)

    def __bool__(self) -> bool:
        return bool(self.items)

    def report(self, **extra: Any) -> dict[str, Any]:
        """The report: ``{"valid", "errors": [{location, message, code, ...}], "errors_not_shown", ...}``."""
        out: dict[str, Any] = {"valid": not self.items, "errors": [i.as_dict() for i in self.items]}
        if self.dropped:
            out["errors_not_shown"] = self.dropped
        out.update(extra)
        return out


def ccsp_schema_dir() -> Path:
    """Folder of the CCSP schemas inside the installed ``rad`` package."""
    import rad

    return Path(rad.__file__).parent / "resources" / "schemas" / "CCSP"


@lru_cache(maxsize=1)
def ccsp_schemas() -> dict[str, str]:
    """Every CCSP schema rad ships: short name (``ccsp_minimal-1.0.0``) -> schema URI."""
    return {p.stem: f"asdf://stsci.edu/datamodels/roman/schemas/CCSP/{p.stem}"
            for p in sorted(ccsp_schema_dir().glob("ccsp_*.yaml"))}  # fmt: skip


def schema_short_name(value: str) -> str:
    """``asdf://.../CCSP/ccsp_minimal-1.0.0`` or ``ccsp_minimal-1.0.0`` -> ``ccsp_minimal-1.0.0``."""
    return value.rsplit("/", 1)[-1]


def parse_declaration_text(text: str | bytes) -> Any:
    """A declaration from YAML (JSON is YAML too); raises ``ValueError`` when unreadable."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}".replace("\n", " ")) from None


def sidecar_for(data: Path) -> Path:
    """The sidecar path of a data file."""
    return data.with_name(data.name + SIDECAR_SUFFIX)


def dumps(report: dict[str, Any]) -> str:
    """JSON text of a report."""
    return json.dumps(report, indent=2, default=str)
