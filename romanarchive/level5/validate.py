"""Validation of a Level 5 product: the same code runs in ``romanarchive level5 validate`` and on the server.

Every check runs; errors are collected (up to `Limits.max_errors`) with their location — the path in the metadata
tree, or the row and column of a table cell. Table checks are vectorised (pyarrow/numpy): a 1M-row catalog is
checked without a Python loop over its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from romanarchive.db.types import arrow_type, numpy_dtype
from romanarchive.level5.contract import (
    ASDF_SUFFIX,
    CATALOG_SUFFIXES,
    DECLARATION_KEY,
    FILE_NAME,
    SIDECAR_SUFFIX,
    Issues,
    Limits,
    parse_declaration_text,
)
from romanarchive.level5.metadata import check_declaration

#: Looks up linked ids: (published table, column, ids) -> boolean mask of the ids that are *unknown*.
#: Raises ``LookupError`` when the table or column is not published.
LinkChecker = Callable[[str, str, np.ndarray], np.ndarray]

#: Value range of the declarable integer types (from the archive's type table).
_INT_RANGE = {t: (int(np.iinfo(numpy_dtype(t)).min), int(np.iinfo(numpy_dtype(t)).max))
              for t in ("smallint", "integer", "bigint")}


@dataclass
class Validated:
    """The outcome of validating one product.

    Attributes
    ----------
    issues
        Every error found.
    kind
        ``catalog`` or ``asdf`` (``None`` when no data file was recognised).
    name
        Product name from the declaration.
    declaration
        The parsed declaration block.
    data, sidecar
        The data file and the sidecar (if any).
    fmt
        Format of the data file (``parquet``, ``fits``, ``votable``, ``ecsv``, ``asdf``).
    columns
        Catalog columns converted to their declared types (empty for ASDF products or when invalid).
    """

    issues: Issues
    kind: str | None = None
    name: str | None = None
    declaration: dict[str, Any] = field(default_factory=dict)
    data: Path | None = None
    sidecar: Path | None = None
    fmt: str | None = None
    columns: dict[str, pa.Array] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """No error was found."""
        return not self.issues

    @property
    def n_rows(self) -> int:
        """Catalog rows (0 for ASDF products)."""
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def report(self) -> dict[str, Any]:
        """JSON report ``{"valid", "errors", "product", "kind", "rows"}``."""
        rows = self.n_rows if self.kind == "catalog" else None
        return self.issues.report(product=self.name, kind=self.kind, rows=rows)


def classify(name: str) -> str | None:
    """``sidecar``, ``asdf``, a catalog format, or ``None`` from a file name."""
    lower = name.lower()
    if lower.endswith(SIDECAR_SUFFIX):
        return "sidecar"
    if lower.endswith(ASDF_SUFFIX):
        return "asdf"
    return CATALOG_SUFFIXES.get(Path(lower).suffix)


def validate_product(paths: Sequence[Path], limits: Limits | None = None, link_checker: LinkChecker | None = None,
                     names: Mapping[Path, str] | None = None) -> Validated:
    """Validate a product given as its data file and optional sidecar.

    Parameters
    ----------
    paths
        The files (data file first or not; they are told apart by name).
    limits
        Size limits and the error cap.
    link_checker
        Resolves ``link`` columns against published archive catalogs (the server has one; without it, links are
        checked only for their declaration).
    names
        Names to report for the paths (the names files were uploaded with).

    Returns
    -------
    Validated
        Errors, and what is needed to publish the product when there are none.
    """
    limits = limits or Limits()
    issues = Issues(limits.max_errors)
    out = Validated(issues)
    names = dict(names or {})
    if not paths:
        issues.add("submission.files", "submission", "no file given")
        return out
    if len(paths) > limits.max_files:
        issues.add("submission.files", "submission", f"{len(paths)} files given; at most {limits.max_files}")
        return out
    data: list[tuple[Path, str]] = []
    for p in paths:
        name = names.setdefault(p, p.name)
        kind = classify(name)
        if not FILE_NAME.match(name):
            issues.add("file.name", name, f"file name {name!r} is not a plain file name ({FILE_NAME.pattern})")
            continue
        if not p.is_file():
            issues.add("file.missing", name, "no such file")
            continue
        size = p.stat().st_size
        if size > limits.max_file_bytes:
            issues.add("file.too_large", name, f"{size} bytes is larger than the limit of {limits.max_file_bytes}")
            continue
        if size == 0:
            issues.add("file.corrupt", name, "the file is empty")
            continue
        if kind is None:
            issues.add("file.format", name, "unknown file type: expected .asdf, .parquet, .fits, .vot/.xml, .ecsv "
                       f"or a {SIDECAR_SUFFIX} sidecar")
        elif kind == "sidecar":
            out.sidecar = p
        else:
            data.append((p, kind))
    if issues:
        return out
    if len(data) != 1:
        issues.add("submission.files", "submission", f"expected exactly one data file, got {len(data)}")
        return out
    out.data, out.fmt = data[0]
    out.kind = "asdf" if out.fmt == "asdf" else "catalog"
    if out.kind == "asdf":
        _validate_asdf(out, names, issues)
    else:
        _validate_catalog(out, names, issues, limits, link_checker)
    return out


def _validate_asdf(out: Validated, names: Mapping[Path, str], issues: Issues) -> None:
    import asdf

    assert out.data is not None
    where = names[out.data]
    try:
        # Opening validates the tree against the ASDF standard and its tags; reading every block catches truncation.
        with asdf.open(out.data, lazy_load=False, memmap=False, lazy_tree=False) as af:
            tree = {k: v for k, v in af.tree.items() if k not in ("asdf_library", "history")}
            for block in _arrays(tree):
                np.asarray(block).sum()
    except Exception as exc:  # noqa: BLE001 - asdf raises many kinds for corrupt or truncated input
        issues.add("file.corrupt", where, f"not a readable ASDF file: {type(exc).__name__}: {exc}".splitlines()[0])
        return
    if DECLARATION_KEY not in tree:
        issues.add("declaration.missing", where, f"the ASDF tree has no top-level {DECLARATION_KEY!r} declaration")
        return
    out.declaration = tree
    out.name = check_declaration(tree, where, issues, catalog=False)


def _arrays(node: Any) -> list[Any]:
    if isinstance(node, np.ndarray):
        return [node]
    if isinstance(node, Mapping):
        return [a for v in node.values() for a in _arrays(v)]
    if isinstance(node, (list, tuple)):
        return [a for v in node for a in _arrays(v)]
    return []


def _validate_catalog(out: Validated, names: Mapping[Path, str], issues: Issues, limits: Limits,
                      link_checker: LinkChecker | None) -> None:
    assert out.data is not None and out.fmt is not None
    where = names[out.data]
    try:
        table, units, infile = read_catalog(out.data, out.fmt)
    except Exception as exc:  # noqa: BLE001 - readers raise many kinds for corrupt or truncated input
        issues.add("file.corrupt", where, f"not a readable {out.fmt} file: {type(exc).__name__}: {exc}".splitlines()[0])
        return
    decl_where = where
    if out.sidecar is not None:
        decl_where = names[out.sidecar]
        try:
            decl = parse_declaration_text(out.sidecar.read_bytes())
        except ValueError as exc:
            issues.add("declaration.invalid", decl_where, str(exc))
            return
    elif infile is not None:
        decl = infile
        decl_where = f"{where}#{DECLARATION_KEY}"
    else:
        issues.add("declaration.missing", where, f"no declaration: give a {SIDECAR_SUFFIX} sidecar or put it in the "
                   f"file's metadata under {DECLARATION_KEY!r}")
        return
    out.name = check_declaration(decl, decl_where, issues, catalog=True)
    if not isinstance(decl, Mapping) or not isinstance(decl.get("table"), Mapping):
        return
    out.declaration = dict(decl)
    if table.num_columns > limits.max_columns:
        issues.add("table.too_many_columns", where, f"{table.num_columns} columns; at most {limits.max_columns}")
        return
    if table.num_rows > limits.max_rows:
        issues.add("table.too_many_rows", where, f"{table.num_rows} rows; at most {limits.max_rows}")
        return
    if table.num_rows == 0:
        issues.add("table.empty", where, "the table has no rows")
        return
    if issues:  # a broken declaration makes data checks meaningless
        return
    columns = check_table(table, units, decl["table"], where, issues, link_checker)
    if not issues:
        out.columns = columns


def read_catalog(path: Path, fmt: str) -> tuple[pa.Table, dict[str, str], Any]:
    """Read a catalog: (table, units the file declares per column, in-file declaration or ``None``)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        raw = meta.get(DECLARATION_KEY.encode())
        units = {f.name: f.metadata[b"unit"].decode() for f in table.schema if f.metadata and b"unit" in f.metadata}
        return table, units, parse_declaration_text(raw) if raw else None
    from astropy.table import Table

    t = Table.read(path, format={"fits": "fits", "votable": "votable", "ecsv": "ascii.ecsv"}[fmt])
    arrays, units = {}, {}
    for name in t.colnames:
        col = t[name]
        if col.unit is not None:
            units[name] = col.unit.to_string("vounit")
        values = np.asarray(col)
        if values.dtype.byteorder not in ("=", "|"):  # FITS is big-endian; Arrow wants native order
            values = values.astype(values.dtype.newbyteorder("="))
        if values.dtype.kind == "S":
            values = np.char.decode(values, "utf-8")
        mask = np.ma.getmaskarray(col) if hasattr(col, "mask") else None
        arrays[name] = pa.array(values, mask=mask if mask is not None and mask.any() else None)
    infile = t.meta.get(DECLARATION_KEY)
    if isinstance(infile, (str, bytes)):
        infile = parse_declaration_text(infile)
    return pa.table(arrays), units, infile


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "str"
    return str(t)


_ACCEPTS = {"smallint": ("int",), "integer": ("int",), "bigint": ("int",), "real": ("int", "float"),
            "double": ("int", "float"), "boolean": ("bool",), "text": ("str",)}  # fmt: skip


def _rows(mask: np.ndarray, room: int) -> np.ndarray:
    return np.flatnonzero(mask)[: max(room, 1)]


def _report_rows(issues: Issues, code: str, where: str, column: str, mask: np.ndarray, what: Callable[[int], str]
                 ) -> None:
    """One error per offending row (up to the cap), then a summary of the rest."""
    bad = int(mask.sum())
    if not bad:
        return
    rows = _rows(mask, min(issues.room, 20))
    for r in rows:
        issues.add(code, f"{where}[row {r}, column {column!r}]", what(int(r)), row=int(r), column=column)
    if bad > len(rows):
        issues.add(code, f"{where}[column {column!r}]", f"{bad - len(rows)} more rows with this error", column=column)


def _fmt(template: str, values: np.ndarray) -> Callable[[int], str]:
    """Message of row ``r``: the template with the row's value."""
    return lambda r: template.format(values[r].item())


def _numpy(arr: pa.Array) -> np.ndarray:
    """Values as numpy (nulls as 0/False/NaN; the null mask is checked separately)."""
    if pa.types.is_floating(arr.type):
        return arr.fill_null(float("nan")).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(arr.type):
        return arr.fill_null(0).to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(arr.type):
        return arr.fill_null(False).to_numpy(zero_copy_only=False)
    return arr.to_numpy(zero_copy_only=False)


def check_table(table: pa.Table, units: Mapping[str, str], decl: Mapping[str, Any], where: str, issues: Issues,
                link_checker: LinkChecker | None) -> dict[str, pa.Array]:
    """Check a table's data against its declared schema; returns the columns cast to their declared types."""
    from astropy import units as u

    declared = {c["name"]: c for c in decl["columns"]}
    for name in table.column_names:
        if name not in declared:
            issues.add("table.undeclared_column", f"{where}[column {name!r}]",
                       f"column {name!r} of the file is not declared", column=name)  # fmt: skip
    pk = decl["primary_key"]
    pk = [pk] if isinstance(pk, str) else list(pk)
    pos = decl.get("position") or {}
    out: dict[str, pa.Array] = {}
    for name, col in declared.items():
        if name not in table.column_names:
            issues.add("table.missing_column", f"{where}[column {name!r}]", f"declared column {name!r} is not in the "
                       "file", column=name)
            continue
        arr = table.column(name).combine_chunks()
        if pa.types.is_dictionary(arr.type):  # e.g. pandas categoricals
            arr = arr.dictionary_decode()
        want = col["type"]
        kind = _kind(arr.type)
        if kind not in _ACCEPTS[want]:
            issues.add("table.type", f"{where}[column {name!r}]",
                       f"column {name!r} holds {arr.type} values; declared {want}", column=name)  # fmt: skip
            continue
        file_unit, unit = units.get(name), str(col.get("unit") or "")
        if file_unit and unit:
            try:
                same = u.Unit(file_unit, format="vounit", parse_strict="silent") == u.Unit(unit, format="vounit")
            except ValueError:
                same = False
            if not same:
                issues.add("table.unit_mismatch", f"{where}[column {name!r}]",
                           f"the file gives unit {file_unit!r}, the declaration {unit!r}", column=name)  # fmt: skip
        nulls = arr.is_null().to_numpy(zero_copy_only=False)
        values = _numpy(arr)
        if kind == "float":
            nulls = nulls | ~np.isfinite(values)
        if (not col.get("nullable", True) or name in pk) and nulls.any():
            _report_rows(issues, "table.null", where, name, nulls,
                         lambda r: "NULL or non-finite value in a column that does not allow NULL")  # fmt: skip
        if want in _INT_RANGE and kind == "int":
            lo, hi = _INT_RANGE[want]
            mm = pc.min_max(arr)
            vmin, vmax = mm["min"].as_py(), mm["max"].as_py()
            if vmin is not None and (vmin < lo or vmax > hi):
                bad = ((values < lo) | (values > hi)) & ~nulls
                _report_rows(issues, "table.type", where, name, bad,
                             _fmt(f"value {{!r}} does not fit in {want}", values))  # fmt: skip
                continue
        stored = arrow_type(want)
        out[name] = arr.cast(stored) if kind == "float" or arr.type != stored else arr
        if kind == "float":  # non-finite values are stored as NULL
            out[name] = pc.if_else(pa.array(nulls), pa.nulls(len(arr), stored), out[name])
    _check_positions(out, pos, where, issues)
    _check_primary_key(out, pk, where, issues)
    link = decl.get("link")
    if link and link_checker is not None:
        _check_link(out, link, where, issues, link_checker)
    return out


def _check_positions(cols: Mapping[str, pa.Array], pos: Mapping[str, str], where: str, issues: Issues) -> None:
    for key, lo, hi, closed in (("ra", 0.0, 360.0, False), ("dec", -90.0, 90.0, True)):
        name = pos.get(key)
        if name is None or name not in cols:
            continue
        arr = cols[name]
        if not pa.types.is_floating(arr.type):
            issues.add("table.type", f"{where}[column {name!r}]", f"{key} column {name!r} must be real or double",
                       column=name)  # fmt: skip
            continue
        v = _numpy(arr)
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        inside = (v >= lo) & ((v <= hi) if closed else (v < hi))
        bad = valid & ~inside
        _report_rows(issues, "table.coord_range", where, name, bad,
                     _fmt(f"{key} {{!r}} is outside [{lo:g}, {hi:g}{']' if closed else ')'} deg", v))  # fmt: skip


def _check_primary_key(cols: Mapping[str, pa.Array], pk: Sequence[str], where: str, issues: Issues) -> None:
    if not all(c in cols for c in pk):
        return
    # Integers compare as they are; dictionary codes make other key types (text) comparable as integers.
    codes = [_numpy(cols[c]) if pa.types.is_integer(cols[c].type) else
             pc.dictionary_encode(cols[c]).indices.to_numpy(zero_copy_only=False).astype(np.int64) for c in pk]
    if len(codes) == 1 and bool(np.all(codes[0][1:] > codes[0][:-1])):
        return  # already strictly increasing (the common case): unique
    order = np.lexsort(codes[::-1])
    same = np.ones(len(order) - 1, dtype=bool)
    for c in codes:
        s = c[order]
        same &= s[1:] == s[:-1]
    if not same.any():
        return
    dup = np.zeros(len(order), dtype=bool)
    dup[order[1:][same]] = True
    first_of = np.empty(len(order), dtype=np.int64)  # earliest row holding each key, for the message
    first_of[order] = order[np.r_[0, np.flatnonzero(~same) + 1][np.cumsum(np.r_[True, ~same]) - 1]]
    label = pk[0] if len(pk) == 1 else ",".join(pk)

    def what(r: int) -> str:
        key = tuple(cols[c][r].as_py() for c in pk)
        return f"duplicate primary key {key[0] if len(key) == 1 else key!r} (first at row {first_of[r]})"

    _report_rows(issues, "table.duplicate_key", where, label, dup, what)


def _check_link(cols: Mapping[str, pa.Array], link: Mapping[str, str], where: str, issues: Issues,
                link_checker: LinkChecker) -> None:
    name = link["column"]
    if name not in cols:
        return
    arr = cols[name]
    if not pa.types.is_integer(arr.type):
        issues.add("table.type", f"{where}[column {name!r}]", f"link column {name!r} must be an integer type",
                   column=name)  # fmt: skip
        return
    ids = _numpy(arr)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    try:
        unknown = link_checker(link["table"], link.get("target_column", name), ids[valid])
    except LookupError as exc:
        issues.add("table.link_target", f"{where}#table.link", str(exc), column=name)
        return
    bad = np.zeros(len(ids), dtype=bool)
    bad[np.flatnonzero(valid)[unknown]] = True
    _report_rows(issues, "table.link_unknown", where, name, bad,
                 lambda r: f"{name} {ids[r]} is not in {link['table']}")  # fmt: skip
