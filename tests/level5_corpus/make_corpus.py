"""Level 5 submission corpus: one valid catalog, one valid ASDF product, and malformed variants of them.

Every malformed case is built from a valid product by one named change, and says which error ``code`` it must
produce (and where). Run ``python tests/level5_corpus/make_corpus.py OUT`` to write the corpus to a folder for a
look; the tests build it in a temporary folder with :func:`build`.

A case's ``server_only`` flag marks what only the server can check: linked ids against the archive, tokens, and
upload file names (on a laptop the file name is the user's own path).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

N = 20

CCSP = {
    "name": "DEEP", "investigator": "A. Astronomer", "doi": "10.17909/deep-0001", "file_version": "1",
    "data_release_id": "DR1", "license": "CC-BY-4.0", "license_url": "https://creativecommons.org/licenses/by/4.0/",
    "target_name": "Roman deep field",
}  # fmt: skip


def declaration(product: str = "deep_photoz") -> dict[str, Any]:
    """The valid catalog declaration (sidecar content)."""
    return {
        "romanarchive_level5": "1.0",
        "product": product,
        "ccsp_schema": "ccsp_custom_product-2.0.0",
        "meta": {"ccsp": dict(CCSP), "file_date": "2026-11-01T00:00:00",
                 "instrument": {"name": "WFI", "detector": None, "optical_element": "F158"}},
        "table": {
            "description": "One photometric redshift per object of the deep field",
            "primary_key": ["object_id"],
            "position": {"ra": "ra", "dec": "dec"},
            "columns": [
                {"name": "object_id", "type": "bigint", "ucd": "meta.id;meta.main", "description": "Object id",
                 "nullable": False},
                {"name": "ra", "type": "double", "unit": "deg", "ucd": "pos.eq.ra;meta.main",
                 "description": "Right ascension (ICRS)", "nullable": False},
                {"name": "dec", "type": "double", "unit": "deg", "ucd": "pos.eq.dec;meta.main",
                 "description": "Declination (ICRS)", "nullable": False},
                {"name": "mag_f158", "type": "real", "unit": "mag", "ucd": "phot.mag;em.IR.H",
                 "description": "F158 AB magnitude"},
                {"name": "z_phot", "type": "double", "ucd": "src.redshift.phot", "description": "Photometric redshift"},
                {"name": "is_star", "type": "boolean", "ucd": "src.class.starGalaxy", "description": "Point source"},
                {"name": "label", "type": "text", "ucd": "meta.id", "description": "Team label"},
            ],
        },
    }  # fmt: skip


def columns(n: int = N, seed: int = 1) -> dict[str, np.ndarray]:
    """Valid column values."""
    rng = np.random.default_rng(seed)
    return {
        "object_id": np.arange(1, n + 1, dtype=np.int64),
        "ra": 270.0 + rng.uniform(-0.05, 0.05, n),
        "dec": -30.0 + rng.uniform(-0.05, 0.05, n),
        "mag_f158": rng.uniform(18, 26, n).astype(np.float32),
        "z_phot": rng.uniform(0, 3, n),
        "is_star": rng.uniform(size=n) < 0.2,
        "label": np.array([f"obj{i}" for i in range(n)]),
    }


def write_parquet(path: Path, cols: dict[str, Any], decl_in_file: dict[str, Any] | None = None) -> Path:
    """A Parquet file (declaration in its schema metadata when given)."""
    table = pa.table(cols)
    if decl_in_file is not None:
        table = table.replace_schema_metadata({"romanarchive_level5": json.dumps(decl_in_file)})
    pq.write_table(table, path)
    return path


def write_sidecar(data: Path, decl: Any) -> Path:
    """The sidecar of ``data``."""
    side = data.with_name(data.name + ".l5.yaml")
    side.write_text(decl if isinstance(decl, str) else yaml.safe_dump(decl, sort_keys=False))
    return side


def catalog(folder: Path, decl: Any = None, cols: dict[str, Any] | None = None, name: str = "deep_photoz.parquet"
            ) -> list[Path]:
    """A catalog product (Parquet + sidecar)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = write_parquet(folder / name, columns() if cols is None else cols)
    return [data, write_sidecar(data, declaration() if decl is None else decl)]


def asdf_product(folder: Path, tree_change: Callable[[dict[str, Any]], None] | None = None,
                 name: str = "deep_image.asdf") -> list[Path]:
    """An ASDF product carrying its declaration in the tree."""
    import asdf
    from astropy.time import Time

    folder.mkdir(parents=True, exist_ok=True)
    tree: dict[str, Any] = {
        "romanarchive_level5": "1.0", "product": "deep_image", "ccsp_schema": "ccsp_custom_product-2.0.0",
        "meta": {"ccsp": dict(CCSP), "file_date": Time("2026-11-01T00:00:00", scale="utc"),
                 "exposure": {"start_time": Time("2026-10-01T00:00:00", scale="utc"),
                              "end_time": Time("2026-10-02T00:00:00", scale="utc"), "exposure_time": 3600.0},
                 "target_coordinates": {"reference_frame": "ICRS", "ra": 270.0, "dec": -30.0}},
        "data": np.arange(64, dtype=np.float32).reshape(8, 8),
    }  # fmt: skip
    if tree_change:
        tree_change(tree)
    path = folder / name
    asdf.AsdfFile(tree).write_to(path)
    return [path]


@dataclass
class Case:
    """One malformed submission and the error it must give."""

    name: str
    build: Callable[[Path], list[Path]]
    code: str
    location: str = ""  # substring of the first matching error's location
    server_only: bool = False
    names: dict[str, str] = field(default_factory=dict)  # uploaded name per file name (hostile names)
    max_file_bytes: int | None = None


def _decl(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], list[Path]]:
    def build(folder: Path) -> list[Path]:
        d = declaration()
        change(d)
        return catalog(folder, d)
    return build


def _cols(change: Callable[[dict[str, Any]], None], decl_change: Callable[[dict[str, Any]], None] | None = None
          ) -> Callable[[Path], list[Path]]:
    def build(folder: Path) -> list[Path]:
        c: dict[str, Any] = columns()
        change(c)
        d = declaration()
        if decl_change:
            decl_change(d)
        return catalog(folder, d, c)
    return build


def _col(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in d["table"]["columns"] if c["name"] == name)


def _set(target: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        target(d)[key] = value
    return change


def _del(target: Callable[[dict[str, Any]], dict[str, Any]], key: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        del target(d)[key]
    return change


def _truncate(build: Callable[[Path], list[Path]], keep: float) -> Callable[[Path], list[Path]]:
    def b(folder: Path) -> list[Path]:
        paths = build(folder)
        data = paths[0].read_bytes()
        paths[0].write_bytes(data[: int(len(data) * keep)])
        return paths
    return b


def _bytes(name: str, content: bytes, sidecar: bool = True) -> Callable[[Path], list[Path]]:
    def b(folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / name
        p.write_bytes(content)
        return [p, write_sidecar(p, declaration())] if sidecar else [p]
    return b


def _ecsv(change: Callable[[Any], None], decl_change: Callable[[dict[str, Any]], None] | None = None
          ) -> Callable[[Path], list[Path]]:
    def b(folder: Path) -> list[Path]:
        from astropy.table import Table

        folder.mkdir(parents=True, exist_ok=True)
        t = Table(columns())
        t["ra"].unit = "deg"
        t["dec"].unit = "deg"
        change(t)
        d = declaration()
        if decl_change:
            decl_change(d)
        t.meta["romanarchive_level5"] = d
        p = folder / "deep_photoz.ecsv"
        t.write(p, format="ascii.ecsv", overwrite=True)
        return [p]
    return b


def _ccsp(d: dict[str, Any]) -> dict[str, Any]:
    return d["meta"]["ccsp"]  # type: ignore[no-any-return]


def _table(d: dict[str, Any]) -> dict[str, Any]:
    return d["table"]  # type: ignore[no-any-return]


def _asdf_no_decl(tree: dict[str, Any]) -> None:
    del tree["romanarchive_level5"]


def _asdf_no_doi(tree: dict[str, Any]) -> None:
    del tree["meta"]["ccsp"]["doi"]


def _asdf_bad_exposure(tree: dict[str, Any]) -> None:
    tree["meta"]["exposure"]["exposure_time"] = "one hour"


def _dup_ids(c: dict[str, Any]) -> None:
    c["object_id"][[5, 11, 17]] = c["object_id"][0]


def _null_in_required(c: dict[str, Any]) -> None:
    c["dec"] = pa.array(c["dec"], mask=np.arange(N) == 4)


def _hostile_col(c: dict[str, Any]) -> None:
    c['x"; DROP TABLE products; --'] = c.pop("label")


def _hostile_col_decl(d: dict[str, Any]) -> None:
    _col(d, "label")["name"] = 'x"; DROP TABLE products; --'


def _reserved_col(c: dict[str, Any]) -> None:
    c["select"] = c.pop("label")


def _reserved_col_decl(d: dict[str, Any]) -> None:
    _col(d, "label")["name"] = "select"


def _two_files(folder: Path) -> list[Path]:
    paths = catalog(folder)
    return paths + [write_parquet(folder / "other.parquet", columns())]


def _other_team(folder: Path) -> list[Path]:
    return catalog(folder, declaration("owned_elsewhere"))


CASES: list[Case] = [
    # --- CCSP metadata (rad schemas)
    Case("ccsp_missing_doi", _decl(_del(_ccsp, "doi")), "ccsp.schema", "meta.ccsp"),
    Case("ccsp_missing_investigator", _decl(_del(_ccsp, "investigator")), "ccsp.schema", "meta.ccsp"),
    Case("ccsp_name_too_long", _decl(_set(_ccsp, "name", "FAR_TOO_LONG_NAME")), "ccsp.schema", "meta.ccsp.name"),
    Case("ccsp_investigator_not_string", _decl(_set(_ccsp, "investigator", 42)), "ccsp.schema",
         "meta.ccsp.investigator"),
    Case("ccsp_file_version_too_long", _decl(_set(_ccsp, "file_version", "1.0.0-rc.12")), "ccsp.schema",
         "meta.ccsp.file_version"),
    Case("ccsp_bad_intent", _decl(_set(_ccsp, "intent", "FUN")), "ccsp.schema", "meta.ccsp.intent"),
    Case("ccsp_file_date_not_a_time", _decl(_set(lambda d: d["meta"], "file_date", "last tuesday")), "ccsp.schema",
         "meta.file_date"),
    Case("ccsp_missing_meta", _decl(_del(lambda d: d, "meta")), "ccsp.schema", "meta"),
    Case("ccsp_unknown_schema_version", _decl(_set(lambda d: d, "ccsp_schema", "ccsp_minimal-9.0.0")),
         "ccsp.version", "ccsp_schema"),
    Case("declaration_wrong_format_version", _decl(_set(lambda d: d, "romanarchive_level5", "0.1")),
         "declaration.version", "romanarchive_level5"),
    Case("declaration_bad_product_name", _decl(_set(lambda d: d, "product", "../Deep Field")), "declaration.product",
         "product"),
    Case("sidecar_not_yaml", lambda f: catalog(f, "romanarchive_level5: [1.0\n  product: {{"), "declaration.invalid"),
    Case("no_declaration", lambda f: [write_parquet((f.mkdir(parents=True) or f) / "cat.parquet", columns())],
         "declaration.missing"),
    # --- files
    Case("corrupt_parquet", _bytes("deep_photoz.parquet", b"PAR1" + bytes(range(256)) * 4), "file.corrupt"),
    Case("truncated_parquet", _truncate(lambda f: catalog(f), 0.6), "file.corrupt"),
    Case("corrupt_fits", _bytes("deep_photoz.fits", b"SIMPLE  =   garbage" + b"\0" * 500), "file.corrupt"),
    Case("corrupt_votable", _bytes("deep_photoz.vot", b"<?xml version='1.0'?><VOTABLE><RESOURCE><TABLE>"),
         "file.corrupt"),
    Case("empty_file", _bytes("deep_photoz.parquet", b""), "file.corrupt"),
    Case("truncated_asdf", _truncate(lambda f: asdf_product(f), 0.7), "file.corrupt"),
    Case("unknown_format", _bytes("deep_photoz.txt", b"object_id,ra,dec\n1,2,3\n", sidecar=False), "file.format"),
    Case("two_data_files", _two_files, "submission.files"),
    Case("oversized_file", lambda f: catalog(f), "file.too_large", max_file_bytes=2000),
    # --- ASDF products
    Case("asdf_missing_declaration", lambda f: asdf_product(f, _asdf_no_decl), "declaration.missing"),
    Case("asdf_missing_ccsp_doi", lambda f: asdf_product(f, _asdf_no_doi), "ccsp.schema", "meta.ccsp"),
    Case("asdf_exposure_time_not_number", lambda f: asdf_product(f, _asdf_bad_exposure), "ccsp.schema",
         "meta.exposure.exposure_time"),
    # --- table declaration
    Case("unknown_declared_type", _decl(lambda d: _col(d, "z_phot").update(type="float128")), "table.declared_type",
         "columns.4.type"),
    Case("bad_unit", _decl(lambda d: _col(d, "mag_f158").update(unit="magnitudes")), "table.unit",
         "columns.3.unit"),
    Case("bad_ucd", _decl(lambda d: _col(d, "z_phot").update(ucd="src.redshift.bogus")), "table.ucd"),
    Case("missing_description", _decl(lambda d: _col(d, "label").update(description="")), "table.description"),
    Case("no_primary_key", _decl(_del(_table, "primary_key")), "table.primary_key"),
    Case("no_position_or_link", _decl(_del(_table, "position")), "table.position"),
    Case("hostile_column_name", _cols(_hostile_col, _hostile_col_decl), "table.column_name", "columns.6.name"),
    Case("reserved_column_name", _cols(_reserved_col, _reserved_col_decl), "table.column_name", "columns.6.name"),
    # --- table data
    Case("float_in_bigint", _cols(lambda c: c.update(object_id=c["object_id"] + 0.5)), "table.type", "object_id"),
    Case("string_in_double", _ecsv(lambda t: t.replace_column("z_phot", [f"z={i}" for i in range(N)])),
         "table.type", "z_phot"),
    Case("smallint_overflow", _cols(lambda c: c.update(object_id=c["object_id"] * 100_000),
                                    lambda d: _col(d, "object_id").update(type="smallint")),
         "table.type", "row 0"),
    Case("duplicate_ids", _cols(_dup_ids), "table.duplicate_key", "row 5"),
    Case("null_in_required_column", _cols(_null_in_required), "table.null", "row 4"),
    Case("nan_ra", _cols(lambda c: c["ra"].__setitem__(7, np.nan)), "table.null", "row 7"),
    Case("ra_out_of_range", _cols(lambda c: c["ra"].__setitem__(3, 361.0)), "table.coord_range", "row 3"),
    Case("dec_out_of_range", _cols(lambda c: c["dec"].__setitem__(9, -91.0)), "table.coord_range", "row 9"),
    Case("unit_mismatch_in_file", _ecsv(lambda t: setattr(t["ra"], "unit", "arcsec")), "table.unit_mismatch", "ra"),
    Case("undeclared_column", _cols(lambda c: c.update(extra=np.zeros(N))), "table.undeclared_column", "extra"),
    Case("missing_column", _cols(lambda c: c.pop("z_phot")), "table.missing_column", "z_phot"),
    Case("empty_table", _cols(lambda c: [c.__setitem__(k, v[:0]) for k, v in list(c.items())]), "table.empty"),
    # --- server-side only
    Case("link_unknown_ids", _decl(lambda d: d["table"].update(link={"column": "object_id", "table": "roman.products",
                                                                     "target_column": "product_id"})),
         "table.link_unknown", "row 0", server_only=True),
    Case("link_unpublished_target", _decl(lambda d: d["table"].update(link={"column": "object_id",
                                                                            "table": "roman.secret_table"})),
         "table.link_target", server_only=True),
    Case("path_traversal_name", lambda f: catalog(f), "file.name", server_only=True,
         names={"deep_photoz.parquet": "../../../../tmp/evil.parquet"}),
    Case("absolute_path_name", lambda f: catalog(f), "file.name", server_only=True,
         names={"deep_photoz.parquet": "/etc/passwd.parquet"}),
    Case("hidden_file_name", lambda f: catalog(f), "file.name", server_only=True,
         names={"deep_photoz.parquet.l5.yaml": ".deep_photoz.parquet.l5.yaml"}),
    Case("other_teams_product", _other_team, "auth.forbidden", server_only=True),
]


def build(root: Path) -> dict[str, list[Path]]:
    """Write every case (and the two valid products) under ``root``; returns case name -> files."""
    out = {"valid_catalog": catalog(root / "valid_catalog"), "valid_asdf": asdf_product(root / "valid_asdf")}
    for case in CASES:
        out[case.name] = case.build(root / case.name)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "level5_corpus_out")
    for name, files in build(target).items():
        print(name, *[p.name for p in files])
